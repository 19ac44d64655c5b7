"""What a notebook asks to run, checked before any work (the sweep that runs it is :mod:`sweep`).

Papermill passes ``-p`` values as strings: :func:`parse_list` reads '[1, 2]' and '1,2' alike. Each plan
(:class:`TrainRequest`, :class:`ReportPlan`, :class:`BeyondPlan`) checks every value of its notebook
before any work and raises one ValueError naming the parameter; the report plans ask :mod:`paths` where
the run may write.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

import kron_utils as ku

from .fetch import verify_dataset
from .experiments import (T3F_VARIANTS, TT_CORES, equal_budget_baselines, t3f_compression_settings, t3f_settings,
                          tt_partner_nets)
from .paths import check_dir, committed_results, notebook_parameters, output_dirs, project_path
from .store import PERMUTATION_FILE, load_results, require_runs, save_runs, settings_folder, stored_permutation
from . import why

#: Part 2's committed runs: the post's six nets and its four Kronecker nets with Gaussian factors, on
#: REPORT_SEEDS; Part 3 uses BEYOND_SEEDS. Which configuration is committed is decided in :mod:`paths`.
REPORT_SEEDS = tuple(range(1, 11))
GAUSS_VARIANTS = tuple(f"{v}_gauss" for v in ku.VARIANTS if "kron" in v)
REPORT_VARIANTS = ku.VARIANTS + GAUSS_VARIANTS
BEYOND_SEEDS = (1, 2, 3, 4, 5)


def parse_list(value):
    """A papermill-friendly list: '[1, 2]' (JSON) or '1,2' become lists, a scalar a 1-list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"cannot read a list from {value!r}; write it like [1, 2, 3]") from None
        items = [t.strip() for t in text.split(",") if t.strip()]
        return [int(t) if t.lstrip("-").isdigit() else t for t in items]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else value


def check_variants(variants) -> list[str]:
    """A non-empty list of distinct variant names that all build (papermill strings are read too)."""
    variants = parse_list(variants)
    if not isinstance(variants, list) or not variants:
        raise ValueError(f"variants must be a non-empty list of names, got {variants!r}")
    unknown = []
    for name in variants:
        try:
            ku.build_model(name)
        except ValueError:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; valid names: {', '.join(ku.VARIANTS)} "
                         "or a family member such as width32, lowrank2, kron2_r4, tiedkron2_r1, tt4_r4")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must be distinct, got {variants}")
    return variants


def check_seeds(seeds, minimum: int = 1) -> list[int]:
    """:func:`kron_utils.check_seeds` of a list or a papermill string, with at least ``minimum`` seeds."""
    seeds = ku.check_seeds(parse_list(seeds))
    if len(seeds) < minimum:
        raise ValueError(f"seeds: this notebook reports 95% intervals over seeds, so it needs at least {minimum} "
                         f"seeds, got {seeds}; give e.g. [1, 2, 3]")
    return seeds


def check_positive_ints(values, name: str, allow_empty: bool = False) -> list[int]:
    """A list of positive integers (papermill strings such as '[1, 2]' are read too); non-empty unless allowed."""
    values = parse_list(values)
    if not isinstance(values, list) or not (values or allow_empty):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}list of positive integers, "
                         f"got {values!r}")
    return [ku.check_positive_int(v, f"each of {name}") for v in values]


def check_tolerance(value) -> float:
    """``tolerance_pp``: a finite number >= 0 (percentage points)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"tolerance_pp must be a number of percentage points >= 0, got {value!r}")
    return float(value)


def check_sweep(variants, seeds, minimum_seeds: int = 1) -> tuple[list[str], list[int]]:
    """Validate a whole sweep up front: every variant name and the seeds (settings validate themselves)."""
    return check_variants(variants), check_seeds(seeds, minimum_seeds)


@dataclass(frozen=True)
class TrainRequest:
    """What the train notebook is asked to do, validated as one object before any work."""
    variant: str
    seeds: list[int]
    settings: ku.TrainSettings
    data_dir: Path
    results_dir: Path
    device: torch.device

    @classmethod
    def from_parameters(cls, parameters: Mapping) -> "TrainRequest":
        """Build from the notebook's parameters (a namespace holding at least the train notebook's
        parameter names); each bad value raises one ValueError naming it, before any training."""
        fields = ku.TrainSettings.__dataclass_fields__
        settings = ku.TrainSettings(**{name: parameters[name] for name in fields  # optional ones may be absent
                                       if name in parameters or name not in ku.TrainSettings.OPTIONAL})
        variant = check_variants([parameters["variant"]])[0]
        seeds = check_seeds(parameters["seeds"])
        device = ku.resolve_device(parameters["device"])
        if not str(parameters["data_dir"] or "").strip():
            raise ValueError(f"data_dir must name a folder, got {parameters['data_dir']!r}")
        data_dir = project_path(parameters["data_dir"])
        if settings.dataset != ku.SYNTHETIC:
            verify_dataset(data_dir, settings.dataset)
        return cls(variant, seeds, settings, data_dir, check_dir(parameters["results_dir"], "results_dir"), device)


def train_and_record(variant: str, seeds, settings: ku.TrainSettings, data_dir: str | Path, results_dir: str | Path,
                     device: str | torch.device = "auto", progress: bool = False):
    """Train ``variant`` on ``seeds``, save each run atomically; return the rows, the models and one warning line
    per run that diverged (the trainer's own warning is replaced by it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".* diverged in epoch", UserWarning)
        rows, models = ku.train(variant, seeds, settings, data_dir=data_dir, device=device, progress=progress)
    save_runs(rows, settings, results_dir)
    return rows, models, divergence_lines(rows)


def train_and_save(request: TrainRequest, progress: bool = True) -> tuple[pd.DataFrame, list[nn.Module]]:
    """Train what ``request`` asks, save each run, and print a warning naming any diverged run."""
    rows, models, lines = train_and_record(request.variant, request.seeds, request.settings, request.data_dir,
                                           request.results_dir, request.device, progress)
    for line in lines:
        print(line, flush=True)
    return rows, models


def divergence_lines(rows: pd.DataFrame) -> list[str]:
    """One 'WARNING: ... diverged' line per run whose training loss became non-finite."""
    diverged = rows[rows.status == "diverged"]
    return [f"WARNING: {r.dataset} {r.variant} seed {r.seed} diverged in epoch {r.epoch} "
            f"(training loss {r.train_loss}); its run stopped there" for r in diverged.itertuples()]


@dataclass(frozen=True)
class ReportPlan:
    """What Part 2 (and the front matter that reads its runs) shows, validated before any work."""
    settings: ku.TrainSettings
    variants: list[str]
    seeds: list[int]
    tolerance: float
    results_dir: Path
    figures_dir: Path
    reads: list[Path]
    full: bool

    @classmethod
    def from_parameters(cls, notebook: str, p: Mapping) -> "ReportPlan":
        """From the parameters of ``notebook`` ('00_article' or '03_report'); None takes the committed grid."""
        p = notebook_parameters(notebook, p)  # every value of its declared type first
        settings = ku.TrainSettings(epochs=p["epochs"], dataset=p["dataset"])
        variants, seeds = check_sweep(p["variants"] if p["variants"] is not None else list(REPORT_VARIANTS),
                                      p["seeds"] if p["seeds"] is not None else list(REPORT_SEEDS), minimum_seeds=2)
        tolerance = check_tolerance(p["tolerance_pp"])
        results_dir, figures_dir, full = output_dirs(notebook, p)
        return cls(settings, variants, seeds, tolerance, results_dir, figures_dir, reading(results_dir), full)

    def load(self, settings: ku.TrainSettings | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`load_runs` of this plan's folders and seeds (its settings and variants unless given)."""
        return load_runs(self.reads, settings or self.settings, variants or self.variants, self.seeds)


def load_runs(reads: Sequence[Path], settings: ku.TrainSettings, variants: Sequence[str],
              seeds: Sequence[int]) -> pd.DataFrame:
    """Every finished run of ``variants`` under ``settings`` in the folders ``reads``: each net with *all* the
    seeds it has (so a net shows one number wherever it appears), after checking that it has at least ``seeds``."""
    return require_runs(load_results(reads, settings, variants), variants, seeds)


def reading(results_dir: Path) -> list[Path]:
    """Where a run reads finished runs: its own results folder, then the committed one."""
    return list(dict.fromkeys([Path(results_dir), committed_results()]))


#: The default grid of Part 3: the Kronecker nets, dense widths (625 = the post's original), low ranks, and
#: the TT-ranks of 4-core tensor-train input layers (TT-rank 1 is kron4_r1 itself; ranks above 4 cost more
#: training time than ``make beyond``'s 45-minute budget leaves).
BEYOND_GRID = dict(kron_variants=["two_kron", "kron2_r2", "kron2_r4", "kron2_r8", "one_kron", "tiedkron2_r2",
                                  "tiedkron2_r4", "kron4_r1", "kron4_r4"],
                   dense_widths=[10, 32, 64, 128, 625], low_ranks=[1, 2, 4, 8, 16], tt_ranks=[2, 3, 4])


@dataclass(frozen=True)
class BeyondPlan:
    """What Part 3 runs, validated as one object before any work (see :meth:`from_parameters`)."""
    settings: ku.TrainSettings
    finetune: ku.TrainSettings
    harder: ku.TrainSettings | None
    t3f: ku.TrainSettings
    compression: ku.TrainSettings
    compression_finetune: ku.TrainSettings
    compression_rank: int
    kron_variants: list[str]
    tt_variants: list[str]
    grid: list[str]
    seeds: list[int]
    projection_ranks: list[int]
    results_dir: Path
    figures_dir: Path
    reads: list[Path]
    full: bool
    tolerance: float

    @classmethod
    def from_parameters(cls, p: Mapping) -> "BeyondPlan":
        """From the notebook's parameters; a grid entry of None takes its value from :data:`BEYOND_GRID`.
        Only the full grid with the default recipe and seeds writes to results/ and figures/."""
        p = notebook_parameters("04_beyond", p)  # every value of its declared type first
        settings = ku.TrainSettings(epochs=p["epochs"], dataset=p["dataset"])
        finetune = ku.TrainSettings(epochs=p["finetune_epochs"], dataset=p["dataset"])
        harder = ku.TrainSettings(epochs=p["epochs"], dataset=p["harder_dataset"]) if p["harder_dataset"] else None
        t3f = t3f_settings(p["t3f_epochs"], p["dataset"])
        compression, compression_finetune = (t3f_compression_settings(p["dataset"], ku.check_positive_int(p[k], k))
                                             for k in ("compression_epochs", "compression_finetune_epochs"))
        compression_rank = ku.check_positive_int(p["compression_tt_rank"], "compression_tt_rank")
        grid = {k: BEYOND_GRID[k] if p[k] is None else p[k] for k in BEYOND_GRID}
        names, seeds = check_sweep(list(dict.fromkeys(beyond_grid(**grid) + list(T3F_VARIANTS))),  # t3f: SGD too
                                   p["seeds"] if p["seeds"] is not None else BEYOND_SEEDS, minimum_seeds=2)
        ranks = check_positive_ints(p["projection_ranks"], "projection_ranks")
        tolerance = check_tolerance(p["tolerance_pp"])
        results_dir, figures_dir, full = output_dirs("04_beyond", p)
        kron_variants = check_variants(grid["kron_variants"])
        tt_variants = list(dict.fromkeys([f"tt{TT_CORES}_r{r}" for r in check_positive_ints(grid["tt_ranks"], "tt_ranks", True)]
                                         + tt_partner_nets(kron_variants)))
        return cls(settings, finetune, harder, t3f, compression, compression_finetune, compression_rank, kron_variants,
                   tt_variants, names,
                   seeds, ranks, results_dir, figures_dir, reading(results_dir), full, tolerance)

    def load(self, settings: ku.TrainSettings | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`load_runs` of this plan's folders and seeds (its settings and grid unless given)."""
        return load_runs(self.reads, settings or self.settings, variants or self.grid, self.seeds)


def beyond_grid(kron_variants, dense_widths, low_ranks, tt_ranks=()) -> list[str]:
    """The beyond sweep's variants: the Kronecker nets, their equal-budget baselines, the dense
    widths (625 is the post's ``original``, which is always in the grid), the low-rank nets and the
    4-core tensor trains of the given TT-ranks and those at the Kronecker nets' budgets
    (:func:`experiments.tt_partner_nets`), each once, in that order."""
    names = list(check_variants(kron_variants))
    for variant in names[:]:
        names += equal_budget_baselines(variant)
    names += ["original" if h == ku.HIDDEN_SIZE else f"width{h}" for h in check_positive_ints(dense_widths, "dense_widths")]
    names += ["original"]  # the dense reference of the page (and the source of the projection), always trained
    names += [f"lowrank{r}" for r in check_positive_ints(low_ranks, "low_ranks")]
    names += [f"tt{TT_CORES}_r{r}" for r in check_positive_ints(tt_ranks, "tt_ranks", allow_empty=True)]
    names += tt_partner_nets(kron_variants)  # a tensor train at each Kronecker net's input-layer budget
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class WhyPlan:
    """What the 'why' page runs, validated as one object before any work (see :meth:`from_parameters`)."""
    settings: ku.TrainSettings
    permuted: ku.TrainSettings
    recipes: dict[str, ku.TrainSettings]
    permuted_variants: list[str]
    off_grid_variants: list[str]
    tuning_variants: list[str]
    seeds: list[int]
    tuning_seeds: list[int]
    fields_seed: int
    results_dir: Path
    figures_dir: Path
    reads: list[Path]
    full: bool
    tolerance: float

    @classmethod
    def from_parameters(cls, p: Mapping) -> "WhyPlan":
        """From the notebook's parameters; None takes the committed nets and seeds of :mod:`why`. Only the
        defaults write to results/ and figures/."""
        p = notebook_parameters("05_why", p)
        settings = ku.TrainSettings(epochs=p["epochs"], dataset=p["dataset"])
        permuted = why.permuted_settings(settings, p["permutation_seed"])  # TrainSettings checks the seed
        rates = [float(r) for r in parse_list(p["sgd_learning_rates"])] if p["sgd_learning_rates"] else []
        for value in rates + [p["adam_learning_rate"]]:
            if isinstance(value, bool) or not 0 < value < 10:
                raise ValueError(f"learning rates must be numbers in (0, 10), got {value!r} "
                                 "(sgd_learning_rates or adam_learning_rate)")
        if not rates:
            raise ValueError("sgd_learning_rates must list at least one learning rate, e.g. [0.01]")
        validation = ku.check_positive_int(p["validation_images"], "validation_images")
        recipes = {why.recipe_name(s): s for s in why.recipe_grid(p["epochs"], p["dataset"], rates,
                                                                  p["adam_learning_rate"], validation)}
        if len(recipes) != len(rates) + 1:
            raise ValueError(f"sgd_learning_rates must be distinct, got {rates}")
        grid = {name: check_variants(list(default) if p[name] is None else p[name]) for name, default in (
            ("permuted_variants", why.PERMUTED_NETS), ("off_grid_variants", why.OFF_GRID_NETS),
            ("tuning_variants", why.TUNED_NETS))}
        for name in ("permuted_variants", "tuning_variants"):
            if "original" not in grid[name]:
                raise ValueError(f"{name} must include original, the dense reference, got {grid[name]}")
        if "two_kron" not in grid["permuted_variants"] or "width10" not in grid["permuted_variants"]:
            raise ValueError("permuted_variants must include two_kron and width10 (the lead that may or may not "
                             f"survive), got {grid['permuted_variants']}")
        seeds = check_seeds(p["seeds"] if p["seeds"] is not None else list(BEYOND_SEEDS), minimum=2)
        tuning_seeds = check_seeds(p["tuning_seeds"] if p["tuning_seeds"] is not None else list(why.TUNING_SEEDS),
                                   minimum=2)
        fields_seed = ku.check_seeds([p["fields_seed"]])[0]
        tolerance = check_tolerance(p["tolerance_pp"])
        results_dir, figures_dir, full = output_dirs("05_why", p)
        return cls(settings, permuted, recipes, grid["permuted_variants"], grid["off_grid_variants"],
                   grid["tuning_variants"], seeds, tuning_seeds, fields_seed, results_dir, figures_dir,
                   reading(results_dir), full, tolerance)

    @property
    def mnist_variants(self) -> list[str]:
        """The nets the page needs on plain MNIST: those it permutes, the off-grid ones and the aligned one."""
        return list(dict.fromkeys([*self.permuted_variants, why.ALIGNED_NET, *self.off_grid_variants]))

    def sweeps(self) -> list[tuple[list[str], list[int], ku.TrainSettings]]:
        """Every (variants, seeds, settings) the page trains: plain MNIST, permuted MNIST, and each recipe."""
        return ([(self.mnist_variants, self.seeds, self.settings), (self.permuted_variants, self.seeds, self.permuted)]
                + [(self.tuning_variants, self.tuning_seeds, s) for s in self.recipes.values()])

    def load(self, settings: ku.TrainSettings, variants: Sequence[str], seeds: Sequence[int] | None = None):
        """:func:`load_runs` of this plan's folders (its seeds unless given)."""
        return load_runs(self.reads, settings, variants, seeds or self.seeds)

    def permutation(self) -> list[int]:
        """The pixel permutation stored beside the permuted runs (in the first folder that has it)."""
        folder = next((d for d in self.reads if (settings_folder(d, self.permuted) / PERMUTATION_FILE).exists()),
                      self.reads[0])
        return stored_permutation(folder, self.permuted)

    def tuning_runs(self) -> pd.DataFrame:
        """Every tuning run, with a ``recipe`` column."""
        return load_tuning_runs(self.reads, self.recipes, self.tuning_variants, self.tuning_seeds)


def load_tuning_runs(reads: Sequence[Path], recipes: Mapping[str, ku.TrainSettings], variants: Sequence[str],
                     seeds: Sequence[int]) -> pd.DataFrame:
    """The runs of ``variants`` under every recipe (name -> settings) as one table with a ``recipe`` column
    (:func:`why.recipe_runs`); one ValueError listing missing runs, as :func:`load_runs`."""
    return why.recipe_runs({name: load_runs(reads, s, variants, seeds) for name, s in recipes.items()})


def tuned_comparison(reads: Sequence[Path], epochs: int, dataset: str) -> pd.DataFrame | None:
    """The why page's committed recipe search at ``epochs`` on ``dataset`` (its default nets, seeds and grid), as
    :func:`why.tuned_results`; None when any of its runs is missing (first page's conclusion reads it)."""
    if ku.train_size(dataset) <= why.VALIDATION_IMAGES:
        return None  # a dataset too small for the validation split (the synthetic stand-in)
    recipes = {why.recipe_name(s): s for s in why.recipe_grid(epochs, dataset)}
    try:
        runs = load_tuning_runs(reads, recipes, why.TUNED_NETS, why.TUNING_SEEDS)
    except ValueError:  # runs without results: the why page has not been run for these settings
        return None
    return why.tuned_results(runs, why.select_recipes(runs))
