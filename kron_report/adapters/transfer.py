"""Part 4's question: the candidate transfer settings, each measured for a pre-training gain (the head alone, full
fine-tuning of the input layer and training from scratch), and the adapter comparison in the one whose gain on
validation is clearest (:func:`adapters.results.choose_transfer`). Checked before any work, as every plan is.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import kron_utils as ku
import pandas as pd

from ..params import check_validation_split, read_parameters
from ..paths import committed_results, output_dirs
from .arms import (
    ADAPTER_SEEDS,
    BUDGET_RANKS,
    FACTOR_SHAPES,
    LOKR_CONFIGS,
    SHAPE_RANKS,
    Arm,
    budget_arms,
    check_budgets,
    shape_arms,
    task_parts,
    task_slug,
    task_text,
)
from .plan import AdaptersPlan
from .results import choose_transfer, transfer_table

__all__ = ["Transfer", "TRANSFER_CANDIDATES", "TRANSFER_ARMS", "TransferStudy"]


@dataclass(frozen=True)
class Transfer:
    """One transfer setting: a base net trained on ``source``, adapted to ``target`` with its first ``images``
    labelled training images (None: all) for ``epochs`` epochs. Tasks are datasets or some of their classes,
    'mnist:5-9' (:func:`adapters.arms.task_parts`)."""
    source: str
    target: str
    images: int | None
    epochs: int

    @property
    def text(self) -> str:
        """The setting in words: 'MNIST digits 0–4 → MNIST digits 5–9, 1,000 labelled images'."""
        images = "all labelled images" if self.images is None else f"{self.images:,} labelled images"
        target = task_text(self.target)
        if task_parts(self.source)[0] == task_parts(self.target)[0] and task_parts(self.target)[1]:
            target = target.replace(task_text(task_parts(self.target)[0]) + " ", "", 1)  # 'digits 5–9'
        return f"{task_text(self.source)} → {target}, {images}"


#: The settings measured for a pre-training gain (full fine-tuning against training from scratch), in order: MNIST's
#: digits split between base and target with a small labelled target set, Fashion-MNIST with a small one, two shifted
#: domains of MNIST's own classes (rotated, noisy) with a small one, and the earlier setting (all of Fashion-MNIST),
#: where pre-training did not help.
TRANSFER_CANDIDATES = (Transfer("mnist:0-4", "mnist:5-9", 1000, 30), Transfer("mnist:0-4", "mnist:5-9", 5000, 10),
                       Transfer("mnist", "fashion-mnist", 1000, 30), Transfer("mnist", "mnist+rotate30", 1000, 30),
                       Transfer("mnist", "mnist+noise0.5", 1000, 30), Transfer("mnist", "fashion-mnist", None, 10))


#: What each candidate setting trains: the head alone, all of fc1, and the whole net from scratch.
TRANSFER_ARMS = ("head", "full", "scratch")


@dataclass(frozen=True)
class TransferStudy:
    """Part 4's question, validated before any work: the candidate settings, each an :class:`AdaptersPlan` of
    :data:`TRANSFER_ARMS`, and the adapter comparison's arms, which the setting with the clearest pre-training gain
    on validation (:func:`adapters.results.choose_transfer`) trains."""
    candidates: list[AdaptersPlan]
    arms: list

    @classmethod
    def from_parameters(cls, p: Mapping) -> "TransferStudy":
        """From the notebook's parameters; None takes the committed grids of :mod:`adapters.arms` and
        :data:`TRANSFER_CANDIDATES`."""
        v = read_parameters("06_adapters", p)  # every value checked by its rule, before any work
        ranks = v["budget_ranks"] if v["budget_ranks"] is not None else list(BUDGET_RANKS)
        lokr = v["lokr_configs"] if v["lokr_configs"] is not None else [tuple(c) for c in LOKR_CONFIGS]
        shape_ranks = v["shape_ranks"] if v["shape_ranks"] is not None else list(SHAPE_RANKS)
        shapes = v["factor_shapes"] if v["factor_shapes"] is not None else [tuple(s) for s in FACTOR_SHAPES]
        transfers = ([Transfer(*c) for c in v["candidates"]] if v["candidates"] is not None
                     else list(TRANSFER_CANDIDATES))
        seeds = v["seeds"] if v["seeds"] is not None else list(ADAPTER_SEEDS)
        try:
            arms = budget_arms(ranks, lokr)
            check_budgets(arms, ranks)
            for rank in shape_ranks:
                arms += [a for a in shape_arms(rank, shapes) if a not in arms]
            for transfer in transfers:
                _check_transfer(transfer, v["validation_images"])
            if v["choice_seeds"] > len(seeds):
                raise ValueError(f"choice_seeds ({v['choice_seeds']}) must not exceed the {len(seeds)} seeds")
        except ValueError as error:
            raise ValueError(f"06_adapters: {error}") from None
        results_root, figures_dir, full = output_dirs("06_adapters", p)
        plans = []
        for transfer in transfers:
            folder = Path("adapters") / f"from-{task_slug(transfer.source)}"
            reads = list(dict.fromkeys([results_root / folder, committed_results() / folder]))
            plans.append(AdaptersPlan(transfer, [Arm(k) for k in TRANSFER_ARMS], ranks, shape_ranks, v["learning_rates"],
                                      seeds, v["choice_seeds"], v["validation_images"], results_root / folder,
                                      figures_dir, reads, full))
        return cls(plans, arms)

    def table(self) -> pd.DataFrame:
        """Each candidate's pre-training gain, on validation and on test (:func:`adapters.results.transfer_table`);
        a MissingRuns error before its runs exist."""
        return transfer_table(self.candidates)

    def adapters_plan(self, table: pd.DataFrame | None = None) -> AdaptersPlan:
        """The chosen setting's plan with every arm of the comparison (its three reference arms are the candidate's
        own runs)."""
        chosen = self.candidates[choose_transfer(self.table() if table is None else table)]
        return replace(chosen, arms=list(self.arms))


def _check_transfer(transfer: Transfer, validation: int) -> None:
    """One ValueError naming what is wrong with a candidate setting (its types are :func:`params.check_candidates`'):
    unknown tasks, the same task twice, or too few target images for the validation split and the labelled set."""
    for task in (transfer.source, transfer.target):
        try:
            task_parts(task)
        except ValueError as error:
            raise ValueError(f"candidates: {error} (in {transfer})") from None
    if transfer.source == transfer.target and task_parts(transfer.source)[0] != ku.SYNTHETIC:  # a shift differs
        raise ValueError(f"candidates: source and target must differ, got {transfer.source!r} for both")
    total = ku.train_size(*task_parts(transfer.target))
    check_validation_split(validation, total, transfer.target)
    if transfer.images is not None and transfer.images > total - validation:
        raise ValueError(f"candidates: target images must be None or a whole number in [1, {total - validation:,}] "
                         f"(the {transfer.target} training images beside the validation split), got "
                         f"{transfer.images!r}")
