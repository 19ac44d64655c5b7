"""Part 4's runs: the candidate transfer settings and the adapter comparison in the chosen one (checked before any
work), the two-stage sweep that trains each, and the tables it reads back.

Where it writes follows the one rule of :mod:`paths`: the default configuration writes to
``results/adapters/from-<source>/`` (and figures/), any other to runs/. Under that folder the runs are stored as
every run is (:func:`store.save_runs`: ``<dataset>/<settings key>/<arm>/seed-<k>.csv``, one settings key per
learning rate and target). Each run's ΔW goes to the git-ignored ``runs/deltas/`` mirror of that path, from which
``deltas.csv`` and ``best_fits.csv`` are computed (and committed, so the page renders without them);
``epoch_seconds.csv`` holds the side-by-side timing.

The sweep: stage 1 trains every arm at every learning rate with the choosing seeds; each arm's rate is chosen on
the validation split (:func:`adapters.results.validation_choice`, with its tie rule); stage 2 trains the other seeds
at the chosen rate. The setting the adapters are compared in is the candidate whose pre-training gain on validation
has the highest lower bound (:func:`adapters.results.choose_transfer`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import kron_utils as ku
import pandas as pd
import torch
from tqdm import tqdm

from ..fetch import verify_dataset
from ..nets import trained_models
from ..paths import ROOT, SCRATCH, check_dir, project_path
from ..store import (
    MissingRuns,
    atomic_write,
    cached_table,
    load_results,
    run_file,
    save_runs,
    settings_folder,
    settings_key,
    settings_record,
)
from ..sweep import _execute_calls, check_scheduler, divergence_lines, missing_seeds
from .arms import (
    BASE_SEED,
    BASE_VARIANT,
    adapted_net,
    adapter_settings,
    base_settings,
    delta_weight,
    epoch_seconds,
    parse_arm,
    task_parts,
    task_slug,
)
from .results import best_fit_errors, delta_table, validation_choice

__all__ = ["DELTAS", "BASES", "AdaptersPlan", "train_arm", "run_adapter_sweep", "base_file", "base_record",
           "delta_tables", "timing_table"]


DELTAS = SCRATCH / "deltas"   # git-ignored: each run's ΔW, from which the committed tables are computed


BASES = SCRATCH / "models" / "adapter-base"  # git-ignored: the base nets (experiments.trained_models' cache)


@dataclass(frozen=True)
class AdaptersPlan:
    """One transfer setting's arms, validated before any work: what the sweep trains and the page reads."""
    transfer: "Transfer"  # adapters.transfer.Transfer
    arms: list
    ranks: list[int]
    shape_ranks: list[int]
    rates: list[float]
    seeds: list[int]
    choice_seeds: int
    validation: int
    results_dir: Path
    figures_dir: Path
    reads: list[Path]
    full: bool

    @property
    def source(self) -> str:
        return self.transfer.source

    @property
    def target(self) -> str:
        return self.transfer.target

    @property
    def epochs(self) -> int:
        return self.transfer.epochs

    @property
    def tie(self) -> float:
        """Mean validation accuracies closer than one validation image (in points) count as tied."""
        return 100.0 / self.validation

    def settings(self, lr: float) -> ku.TrainSettings:
        """The fine-tuning settings at learning rate ``lr``."""
        return adapter_settings(lr, self.epochs, self.target, self.validation, self.transfer.images)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.arms]

    def deltas_dir(self) -> Path:
        """Where this plan's ΔW files go: runs/deltas/ mirroring the results folder below the repository root."""
        try:
            tail = self.results_dir.resolve().relative_to(ROOT.resolve())
        except ValueError:
            tail = Path(*self.results_dir.resolve().parts[1:])
        return project_path(DELTAS) / tail

    def load(self, lr: float, arms: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
        """The finished runs of ``arms`` at ``lr`` with ``seeds`` (first folder of :attr:`reads` first), with an
        ``lr`` column."""
        rows = load_results(self.reads, self.settings(lr), arms, seeds)
        return rows.assign(lr=lr)

    @property
    def timing_file(self) -> Path:
        """Where a sweep that trained all of this plan's runs at once records its wall time."""
        key = settings_key(self.settings(self.rates[0]))
        return self.results_dir / f"sweep-{key}-{len(self.names)}-arms.json"

    @property
    def choosing(self) -> list[int]:
        """The seeds that choose each arm's learning rate: the first :attr:`choice_seeds`."""
        return self.seeds[:self.choice_seeds]

    def stage_one(self) -> pd.DataFrame:
        """Every arm at every rate with the choosing seeds: what the choice reads."""
        return pd.concat([self.load(lr, self.names, self.choosing) for lr in self.rates], ignore_index=True)

    def chosen(self) -> pd.DataFrame:
        """Each arm's learning rate, chosen on validation over the choosing seeds, ties by the stated rule
        (:func:`adapters.results.validation_choice`); one MissingRuns error listing any run it lacks."""
        runs = self.stage_one()
        done = set(zip(runs.variant, runs.lr, runs.seed))
        missing = sorted({(a, lr, s) for a in self.names for lr in self.rates for s in self.choosing} - done)
        if missing:
            raise MissingRuns(f"adapter runs without results ({self.transfer.text}): {missing[:8]}"
                              + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
        return validation_choice(runs, self.tie)

    def final_runs(self, chosen: pd.DataFrame) -> pd.DataFrame:
        """Every seed of every arm at its chosen rate; one ValueError listing missing runs."""
        frames = [self.load(lr, [arm], self.seeds) for arm, lr in zip(chosen.variant, chosen.lr)]
        runs = pd.concat(frames, ignore_index=True)
        missing = sorted({(a, s) for a in self.names for s in self.seeds} - set(zip(runs.variant, runs.seed)))
        if missing:
            raise MissingRuns(f"adapter runs without results: {missing}")
        return runs.sort_values("variant", key=lambda v: v.map(self.names.index), kind="stable", ignore_index=True)

    def delta_file(self, arm: str, lr: float, seed: int) -> Path:
        """The git-ignored file holding one run's ΔW."""
        return self.deltas_dir() / run_file(".", self.settings(lr), arm, seed).with_suffix(".pt")

    def base_net(self, data_dir: str | Path = "data", device: str = "auto") -> torch.nn.Module:
        """The base: the post's dense net trained on the source with the post's recipe, seed 1 (cached in runs/)."""
        return trained_models(BASE_VARIANT, [BASE_SEED], base_settings(self.source), project_path(BASES),
                              data_dir=data_dir, device=device)[0].cpu()


def train_arm(arm: str, lr: float, seeds: Sequence[int], plan: AdaptersPlan, data_dir: str, base_file: str,
              force: bool = False, threads: int | None = None) -> dict:
    """One task of the sweep: under the arm's file lock, train ``arm`` at ``lr`` for each seed still missing, and
    save its rows (atomically) and its ΔW, one seed at a time. Runs in this process or on a Dask worker (one torch
    thread there). Returns what it trained, its seconds and its warning lines (bad records moved aside)."""
    from filelock import FileLock
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    parsed, settings = parse_arm(arm), plan.settings(lr)
    lines = []
    with FileLock(check_dir(settings_folder(plan.results_dir, settings) / ".locks", "results_dir") / f"{arm}.lock"):
        todo = missing_seeds(arm, seeds, settings, plan.reads, force, notes=lines)
        if todo:
            base = ku.build_model(BASE_VARIANT)
            base.load_state_dict(torch.load(base_file, map_location="cpu", weights_only=True))
            splits = ku.data_splits(settings, data_dir, "cpu")
        for seed in todo:
            net = adapted_net(parsed, base, seed)
            rows = ku.train_module(net, seed, settings, splits, label=arm)
            delta = delta_weight(parsed, net, base)
            if delta is not None:
                atomic_write(plan.delta_file(arm, lr, seed), lambda tmp: torch.save(delta.contiguous(), tmp))
            save_runs(rows, settings, plan.results_dir)
            lines += divergence_lines(rows)
    return dict(arm=arm, lr=lr, seeds=todo, seconds=round(time.perf_counter() - start, 1), warnings=lines)


def run_adapter_sweep(plan: AdaptersPlan, *, data_dir: str | Path = "data", device: str = "auto",
                      force: bool = False, scheduler: str = "local") -> pd.DataFrame:
    """Train what the page needs and is not yet done: stage 1 (every arm x rate, first seed), the choice on
    validation, stage 2 (the other seeds at the chosen rates). Returns one row per task trained. A rerun trains only
    what is missing; finished runs are never lost. A sweep that trained every run records its wall time in
    sweep.json."""
    scheduler = check_scheduler(scheduler)
    data_dir = project_path(data_dir)
    start, done, notes = time.perf_counter(), [], []

    def missing(pairs, seeds):
        return [(a, lr, missing_seeds(a, seeds, plan.settings(lr), plan.reads, force, notes)) for a, lr in pairs]
    stage_one = [t for t in missing([(a, lr) for a in plan.names for lr in plan.rates], plan.choosing) if t[2]]
    base_file = None
    for stage in (1, 2):
        if stage == 2:
            chosen = plan.chosen()
            tasks = [t for t in missing(list(zip(chosen.variant, chosen.lr)), plan.seeds[plan.choice_seeds:]) if t[2]]
        else:
            tasks = stage_one
        if not tasks:
            continue
        for line in notes:
            print(line, flush=True)
        notes.clear()
        if base_file is None:
            verify_dataset(data_dir, task_parts(plan.source)[0])
            verify_dataset(data_dir, task_parts(plan.target)[0])
            base_file = _base_file(plan, data_dir, device)
        calls = [dict(arm=a, lr=lr, seeds=s, plan=plan, data_dir=str(data_dir), base_file=str(base_file), force=force)
                 for a, lr, s in tasks]
        bar = tqdm(total=sum(len(s) for _, _, s in tasks), desc=f"{plan.transfer.text}, stage {stage}", unit="run",
                   file=sys.stdout, dynamic_ncols=True)
        failures = []
        for call, outcome in _execute_calls(train_arm, calls, scheduler):
            if isinstance(outcome, BaseException):
                failures.append(f"{call['arm']} lr {call['lr']}: {type(outcome).__name__}: {outcome}")
                continue
            done.append(outcome)
            bar.update(len(outcome["seeds"]))
            for line in outcome.pop("warnings"):
                tqdm.write(line, file=sys.stdout)
        bar.close()
        if failures:
            raise RuntimeError("adapter runs failed (the others are saved; rerun to train only what is missing):\n  "
                               + "\n  ".join(failures))
    planned = len(plan.names) * (len(plan.rates) * len(plan.choosing) + len(plan.seeds) - len(plan.choosing))
    if sum(len(d["seeds"]) for d in done) == planned:  # the wall time of a sweep that trained everything now
        atomic_write(plan.timing_file, json.dumps(dict(
            wall_seconds=round(time.perf_counter() - start, 1), runs=planned, cores=os.cpu_count(),
            scheduler=scheduler, torch=torch.__version__, date=time.strftime("%Y-%m-%d")), indent=1).encode())
    return pd.DataFrame(done)


def _base_file(plan: AdaptersPlan, data_dir: Path, device: str) -> Path:
    """The base net's weights as one state-dict file for the workers (trained once and cached)."""
    net = plan.base_net(data_dir, device)
    path = base_file(plan.source)
    atomic_write(path, lambda tmp: torch.save(net.state_dict(), tmp))
    loss, accuracy = ku.score_module(net, *ku.data_splits(base_settings(plan.source), data_dir, "cpu")["test"])
    record = dict(variant=BASE_VARIANT, seed=BASE_SEED, settings=settings_record(base_settings(plan.source)),
                  test_loss=loss, test_accuracy=accuracy)
    atomic_write(check_dir(plan.results_dir, "results_dir") / "base.json", json.dumps(record, indent=1).encode())
    return path


def base_file(source: str) -> Path:
    """The git-ignored file holding the base net's state dict, for the workers and the timing."""
    return project_path(BASES) / task_slug(source) / "adapter_base.pt"


def _first_stored(plan: AdaptersPlan, name: str) -> Path | None:
    """``name`` in the first folder of ``plan.reads`` that has it (the plan's own results, then the committed)."""
    return next((d / name for d in plan.reads if (d / name).is_file()), None)


def base_record(plan: AdaptersPlan) -> dict | None:
    """The base net's description and its test accuracy on the source (base.json), or None before any sweep."""
    found = _first_stored(plan, "base.json")
    return json.loads(found.read_text()) if found else None


def delta_tables(plan: AdaptersPlan, chosen: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ΔW of every run at its chosen rate: :func:`adapters.results.delta_table`; the best LoRA and Kronecker-sum fits to
    full fine-tuning's ΔW: :func:`adapters.results.best_fit_errors`, per seed). Read from the first folder of
    :attr:`AdaptersPlan.reads` whose tables were computed from the same runs (same settings, each arm at the same
    rate, at least these seeds and ranks; rows for other seeds or ranks are dropped); otherwise computed from the
    runs' ΔW files and cached in the plan's results folder (one ValueError naming a missing file)."""
    runs = {a: float(lr) for a, lr in zip(chosen.variant, chosen.lr)}
    settings = {k: v for k, v in settings_record(plan.settings(plan.rates[0])).items() if k != "lr"}  # each arm's own lr: in runs
    key = dict(runs=[[a, lr] for a, lr in runs.items()], seeds=plan.seeds, settings=settings, ranks=plan.ranks)
    for folder in plan.reads:
        found = _stored_tables(folder, key)
        if found is not None:
            return found
    pairs = [(a, lr) for a, lr in runs.items() if a != "scratch"]

    def load(arm, lr, seed):
        path = plan.delta_file(arm, lr, seed)
        if not path.is_file():
            raise ValueError(f"{path}: ΔW of {arm} (lr {lr}, seed {seed}) is missing; rerun the notebook with "
                             "force=True to retrain it")
        return torch.load(path, weights_only=True)

    table = cached_table(plan.results_dir / "deltas.csv", key, lambda: delta_table(
        {(a, s): load(a, lr, s) for a, lr in pairs for s in plan.seeds}))
    fits = cached_table(plan.results_dir / "best_fits.csv", key, lambda: pd.concat(
        [best_fit_errors(load("full_fc1", runs["full_fc1"], s), plan.ranks).assign(seed=s) for s in plan.seeds],
        ignore_index=True))
    return table, fits


def _stored_tables(folder: Path, key: dict) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """deltas.csv and best_fits.csv of ``folder`` restricted to ``key``'s arms, seeds and ranks, when their own key
    covers it (see :func:`delta_tables`); else None."""
    tables = []
    for name in ("deltas.csv", "best_fits.csv"):
        marker = folder / f"{name}.key.json"
        if not (marker.is_file() and (folder / name).is_file()):
            return None
        stored = json.loads(marker.read_text())
        if not (stored.get("settings") == key["settings"] and set(key["seeds"]) <= set(stored.get("seeds", []))
                and set(key["ranks"]) <= set(stored.get("ranks", []))
                and all(pair in stored.get("runs", []) for pair in key["runs"])):
            return None
        tables.append(pd.read_csv(folder / name))
    deltas, fits = tables
    arms = [a for a, _ in key["runs"]]
    deltas = deltas[deltas.arm.isin(arms) & deltas.seed.isin(key["seeds"])].reset_index(drop=True)
    fits = fits[fits["rank"].isin(key["ranks"]) & fits.seed.isin(key["seeds"])].reset_index(drop=True)
    return deltas, fits


def timing_table(plan: AdaptersPlan, data_dir: str | Path = "data", force: bool = False) -> pd.DataFrame:
    """Seconds per epoch of every arm measured side by side (:func:`adapters.arms.epoch_seconds`), stored as
    epoch_seconds.csv in the results folder; measured only when missing (or with ``force``), since timings differ
    from run to run."""
    stored = _first_stored(plan, "epoch_seconds.csv")
    if stored is not None and not force:
        table = pd.read_csv(stored)
        if set(plan.names) <= set(table.arm) and "ms_per_step" in table:
            return table
    base = ku.build_model(BASE_VARIANT)
    base.load_state_dict(torch.load(base_file(plan.source), weights_only=True))
    x, y = ku.data_splits(plan.settings(plan.rates[0]), data_dir, "cpu")["train"]
    table = epoch_seconds(plan.arms, base, x, y)
    atomic_write(check_dir(plan.results_dir, "results_dir") / "epoch_seconds.csv", table.to_csv(index=False).encode())
    return table
