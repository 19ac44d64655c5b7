"""What the 'why' page runs, checked before any work: permuted pixels, off-grid factors, the recipe search.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..params import read_parameters
from ..paths import output_dirs
from ..recipes import TUNED_NETS, TUNING_SEEDS, load_tuning_runs, recipe_applies, recipe_grid, recipe_name
from ..store import PERMUTATION_FILE, load_runs, reading, settings_folder, stored_permutation

__all__ = ["WHY_SEEDS", "PERMUTATION_SEED", "PERMUTED_NETS", "OFF_GRID_NETS", "ALIGNED_NET", "permuted_settings",
           "RANDOM_FEATURE_NETS", "FROZEN_LAYER", "FIELD_UNITS", "WhyPlan"]


#: The seeds of the permuted and off-grid runs (Part 3's five).
WHY_SEEDS = (1, 2, 3, 4, 5)
#: The stated seed of the one pixel permutation (torch.randperm(784) from a generator with this seed).
PERMUTATION_SEED = 0


#: The nets trained on permuted pixels: the post's dense net and its equal-budget one (the control), its two
#: Kronecker nets, and a Kronecker sum, a low-rank and a tensor-train layer from Part 3.
PERMUTED_NETS = ("original", "two_kron", "one_kron", "width10", "kron2_r2", "lowrank8", "tt4_r4")


#: Kronecker layers whose input factors cut across the 28 x 28 grid: U (25x16) (x) V (25x49) and its mirror.
OFF_GRID_NETS = ("kron_25x16_25x49", "kron_25x49_25x16")


ALIGNED_NET = "two_kron"  # U (25x28) (x) V (25x28): one factor per image row, one per column


#: The random-feature control: these nets with their input layer frozen at its initialisation (625 random hidden
#: units, dense or Kronecker), only the output layer trained, on MNIST and on the permuted pixels.
RANDOM_FEATURE_NETS = ("original", "two_kron")
FROZEN_LAYER = "fc1"


def permuted_settings(settings: ku.TrainSettings, seed: int = PERMUTATION_SEED) -> ku.TrainSettings:
    """``settings`` with every image fed through :func:`kron_utils.pixel_permutation` (``seed``)."""
    return dataclasses.replace(settings, permutation_seed=seed)


#: The hidden units whose receptive fields the page shows, (a, b) = (row of U, row of V).
FIELD_UNITS = ((0, 0), (3, 8), (6, 16), (9, 24), (12, 4), (15, 12), (18, 20), (24, 2))


@dataclass(frozen=True)
class WhyPlan:
    """What the 'why' page runs, validated as one object before any work (see :meth:`from_parameters`)."""
    settings: ku.TrainSettings
    permuted: ku.TrainSettings
    frozen: ku.TrainSettings
    frozen_permuted: ku.TrainSettings
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
        """From the notebook's parameters; None takes the committed nets and seeds of this module. Only the
        defaults write to results/ and figures/."""
        v = read_parameters("05_why", p)  # every value checked by its rule, before any work
        settings = ku.TrainSettings(epochs=v["epochs"], dataset=v["dataset"])
        permuted = permuted_settings(settings, v["permutation_seed"])
        recipes = {recipe_name(s): s for s in recipe_grid(v["epochs"], v["dataset"], v["sgd_learning_rates"],
                                                          v["adam_learning_rates"], v["validation_images"],
                                                          cosine=v["cosine"], structured=v["structured"])}
        grid = {name: list(default) if v[name] is None else v[name] for name, default in (
            ("permuted_variants", PERMUTED_NETS), ("off_grid_variants", OFF_GRID_NETS),
            ("tuning_variants", TUNED_NETS))}
        for name in ("permuted_variants", "tuning_variants"):
            if "original" not in grid[name]:
                raise ValueError(f"05_why: {name} must include original, the dense reference, got {grid[name]}")
        if "two_kron" not in grid["permuted_variants"] or "width10" not in grid["permuted_variants"]:
            raise ValueError("05_why: permuted_variants must include two_kron and width10 (the lead that may or may "
                             f"not survive), got {grid['permuted_variants']}")
        seeds = v["seeds"] if v["seeds"] is not None else list(WHY_SEEDS)
        tuning_seeds = v["tuning_seeds"] if v["tuning_seeds"] is not None else list(TUNING_SEEDS)
        fields_seed = v["fields_seed"]
        if fields_seed not in seeds:
            raise ValueError(f"05_why: fields_seed must be one of seeds {seeds} (its receptive fields are drawn "
                             f"from that run), got {fields_seed}")
        tolerance = v["tolerance_pp"]
        results_dir, figures_dir, full = output_dirs("05_why", p)
        frozen = [dataclasses.replace(s, frozen=FROZEN_LAYER) for s in (settings, permuted)]
        return cls(settings, permuted, *frozen, recipes, grid["permuted_variants"], grid["off_grid_variants"],
                   grid["tuning_variants"], seeds, tuning_seeds, fields_seed, results_dir, figures_dir,
                   reading(results_dir), full, tolerance)

    @property
    def mnist_variants(self) -> list[str]:
        """The nets the page needs on plain MNIST: those it permutes, the off-grid ones and the aligned one."""
        return list(dict.fromkeys([*self.permuted_variants, ALIGNED_NET, *self.off_grid_variants]))

    def sweeps(self) -> list[tuple[list[str], list[int], ku.TrainSettings]]:
        """Every (variants, seeds, settings) the page trains: plain MNIST, permuted MNIST, the random-feature nets on
        both, and each recipe (for the nets it applies to, :func:`recipes.recipe_applies`)."""
        tuning = [([v for v in self.tuning_variants if recipe_applies(s, v)], self.tuning_seeds, s)
                  for s in self.recipes.values()]
        return ([(self.mnist_variants, self.seeds, self.settings), (self.permuted_variants, self.seeds, self.permuted),
                 (list(RANDOM_FEATURE_NETS), self.seeds, self.frozen),
                 (list(RANDOM_FEATURE_NETS), self.seeds, self.frozen_permuted)]
                + [(variants, seeds, s) for variants, seeds, s in tuning if variants])

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
