"""What Part 3 ('beyond the post') runs, checked before any work: its grid of nets and its settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..params import read_parameters
from ..paths import output_dirs
from ..store import load_runs, reading
from .budgets import TT_CORES, UNTIED_MONARCH, equal_budget_baselines, monarch_partner_nets, tt_partner_nets
from .compression import T3F_VARIANTS, t3f_compression_settings, t3f_settings

__all__ = ['BEYOND_SEEDS', 'BEYOND_GRID', 'TEN_SEED_NETS', 'TEN_SEEDS', 'BeyondPlan', 'beyond_grid']


BEYOND_SEEDS = (1, 2, 3, 4, 5)

#: The Kronecker nets the post names beyond the post's own: trained, with their Gaussian-factor twins (``_gauss``), on
#: TEN_SEEDS as the post's nets are, so that a headline rests on as much evidence under both initialisations.
TEN_SEED_NETS = ("kron2_r2", "tiedkron2_r2", "kron4_r4")
TEN_SEEDS = tuple(range(1, 11))


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
    ten_seed_nets: list[str]
    ten_seeds: list[int]
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
        v = read_parameters("04_beyond", p)  # every value checked by its rule, before any work
        settings = ku.TrainSettings(epochs=v["epochs"], dataset=v["dataset"])
        finetune = ku.TrainSettings(epochs=v["finetune_epochs"], dataset=v["dataset"])
        harder = ku.TrainSettings(epochs=v["epochs"], dataset=v["harder_dataset"]) if v["harder_dataset"] else None
        t3f = t3f_settings(v["t3f_epochs"], v["dataset"])
        compression, compression_finetune = (t3f_compression_settings(v["dataset"], v[k])
                                             for k in ("compression_epochs", "compression_finetune_epochs"))
        compression_rank = v["compression_tt_rank"]
        grid = {k: list(BEYOND_GRID[k]) if v[k] is None else v[k] for k in BEYOND_GRID}
        names = list(dict.fromkeys(beyond_grid(**grid) + list(T3F_VARIANTS)))  # t3f: SGD too
        seeds = v["seeds"] if v["seeds"] is not None else list(BEYOND_SEEDS)
        ranks, tolerance = v["projection_ranks"], v["tolerance_pp"]
        results_dir, figures_dir, full = output_dirs("04_beyond", p)
        kron_variants = grid["kron_variants"]
        tt_variants = list(dict.fromkeys([f"tt{TT_CORES}_r{r}" for r in grid["tt_ranks"]] + tt_partner_nets(kron_variants)))
        ten = [n for v in TEN_SEED_NETS if v in kron_variants for n in (v, f"{v}_gauss")]
        ten_seeds = list(TEN_SEEDS) if v["seeds"] is None else seeds   # an exploratory run keeps its own seeds
        return cls(settings, finetune, harder, t3f, compression, compression_finetune, compression_rank, kron_variants,
                   tt_variants, names, seeds, ten, ten_seeds, ranks, results_dir, figures_dir, reading(results_dir), full,
                   tolerance)

    def load(self, settings: ku.TrainSettings | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`load_runs` of this plan's folders and seeds (its settings and grid unless given)."""
        return load_runs(self.reads, settings or self.settings, variants or self.grid, self.seeds)


def beyond_grid(kron_variants, dense_widths, low_ranks, tt_ranks=()) -> list[str]:
    """The beyond sweep's variants: the Kronecker nets, their equal-budget baselines, the dense
    widths (625 is the post's ``original``, which is always in the grid), the low-rank nets and the
    4-core tensor trains of the given TT-ranks and those at the Kronecker nets' budgets
    (:func:`beyond.budgets.tt_partner_nets`), the Monarch nets at the Kronecker sums' budgets
    (:func:`beyond.budgets.monarch_partner_nets`) and the untied Monarch layer, each once, in that order."""
    names = list(kron_variants)   # checked by the plan (params.RULES)
    for variant in names[:]:
        names += equal_budget_baselines(variant)
    names += ["original" if h == ku.HIDDEN_SIZE else f"width{h}" for h in dense_widths]
    names += ["original"]  # the dense reference of the page (and the source of the projection), always trained
    names += [f"lowrank{r}" for r in low_ranks]
    names += [f"tt{TT_CORES}_r{r}" for r in tt_ranks]
    names += tt_partner_nets(kron_variants)  # a tensor train at each Kronecker net's input-layer budget
    names += monarch_partner_nets(kron_variants) + [UNTIED_MONARCH]  # Monarch at each Kronecker sum's budget, untied
    return list(dict.fromkeys(names))
