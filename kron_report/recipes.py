"""Recipes chosen on a validation split, never on the test set: the grid of learning rates and optimisers, the
validation scores, the chosen recipe per net and the tuned gap to the dense net. The why page shows the search;
the first page reads its committed result (:func:`tuned_comparison`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from .stats import compare_final, final_epochs, half_interval, mean_sd, outcome
from .store import MissingRuns, load_runs

__all__ = ["SGD_RATES", "ADAM_RATE", "TUNED_NETS", "TUNING_SEEDS", "VALIDATION_IMAGES", "recipe_grid", "recipe_name",
           "SELECTION_COLUMNS", "recipe_runs", "validation_scores", "select_recipes", "tuned_results",
           "load_tuning_runs", "tuned_comparison"]


#: The recipe grid: SGD with the post's momentum at these learning rates, and Adam at its default rate.
SGD_RATES = (0.003, 0.01, 0.03, 0.1)


ADAM_RATE = 1e-3


TUNED_NETS = ("original", "two_kron", "one_kron", "kron2_r2", "width10")


TUNING_SEEDS = (1, 2, 3)


VALIDATION_IMAGES = 10_000


def recipe_grid(epochs: int = 35, dataset: str = "mnist", sgd_rates: Sequence[float] = SGD_RATES,
                adam_rate: float | None = ADAM_RATE, validation: int = VALIDATION_IMAGES) -> list[ku.TrainSettings]:
    """The recipes tried for each net, each holding out the last ``validation`` training images: SGD (momentum
    0.5, the post's) at each of ``sgd_rates``, then Adam at ``adam_rate`` (None: no Adam)."""
    base = ku.TrainSettings(epochs=epochs, dataset=dataset, validation=validation)
    grid = [dataclasses.replace(base, lr=float(lr)) for lr in sgd_rates]
    if adam_rate is not None:
        grid.append(dataclasses.replace(base, lr=float(adam_rate), optimizer="adam"))
    return grid


def recipe_name(settings: ku.TrainSettings) -> str:
    """'SGD, lr 0.01' or 'Adam, lr 0.001': the optimiser and learning rate of a recipe."""
    return f"{'SGD' if settings.optimizer == 'sgd' else 'Adam'}, lr {settings.lr:g}"


def _labelled(rows: pd.DataFrame, label: str) -> pd.DataFrame:
    """``rows`` with ``label`` appended to every variant name (two runs of one net, told apart for Welch)."""
    return rows.assign(variant=rows.variant + label)


#: The only columns recipe selection may read: no test column can reach the choice.
SELECTION_COLUMNS = ["variant", "recipe", "seed", "epoch", "validation_accuracy"]


def recipe_runs(rows_by_recipe: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One tidy table of tuning runs, with a ``recipe`` column naming each run's recipe (dict keys)."""
    return pd.concat([rows.assign(recipe=name) for name, rows in rows_by_recipe.items()], ignore_index=True)


def validation_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Per net and recipe: mean, std and 95% half-interval (``half``) of the final validation accuracy over seeds,
    and their number. Reads only :data:`SELECTION_COLUMNS`."""
    held_out = runs[SELECTION_COLUMNS]
    last = held_out.groupby(["variant", "recipe", "seed"]).epoch.transform("max")
    finals = held_out[held_out.epoch == last]
    return (finals.groupby(["variant", "recipe"], sort=False).validation_accuracy
            .agg(mean="mean", std="std", half=half_interval, seeds="nunique").reset_index())


def select_recipes(runs: pd.DataFrame) -> pd.Series:
    """Each net's recipe with the highest mean final validation accuracy (the first listed on a tie). Reads only
    :data:`SELECTION_COLUMNS`: the test set plays no part in the choice."""
    scores = validation_scores(runs)
    return scores.loc[scores.groupby("variant", sort=False)["mean"].idxmax()].set_index("variant").recipe


def tuned_results(runs: pd.DataFrame, chosen: pd.Series, reference: str = "original",
                  default_recipe: str | None = None) -> pd.DataFrame:
    """Per net, under its chosen recipe: final validation and test accuracy, and the test gap net - reference
    (the reference under *its* own chosen recipe) with the Welch interval; with ``default_recipe``, the same gap
    when both nets use that recipe. The test set is only read here, after the choice."""
    def under(v, recipe):
        return runs[(runs.variant == v) & (runs.recipe == recipe)]
    out = []
    for v, recipe in chosen.items():
        mine, ref = under(v, recipe), under(reference, chosen[reference])
        row = dict(variant=v, recipe=recipe, validation=mean_sd(final_epochs(mine).validation_accuracy),
                   test=mean_sd(final_epochs(mine).test_accuracy), seeds=final_epochs(mine).seed.nunique(),
                   test_mean=final_epochs(mine).test_accuracy.mean())
        if default_recipe is not None:  # what its own recipe gains over the default, on the test set, read afterwards
            row.update(gain=row["test_mean"] - final_epochs(under(v, default_recipe)).test_accuracy.mean())
        if v != reference:
            c = compare_final(pd.concat([mine, ref.assign(variant=f"{reference} | tuned")]), v, f"{reference} | tuned")
            row.update(gap=c["diff"], low=c["low"], high=c["high"], outcome=outcome(c))
            if default_recipe is not None:
                d = compare_final(pd.concat([under(v, default_recipe), under(reference, default_recipe)]), v, reference)
                row.update(default_gap=d["diff"], default_low=d["low"], default_high=d["high"])
        out.append(row)
    return pd.DataFrame(out)


def load_tuning_runs(reads: Sequence[Path], recipes: Mapping[str, ku.TrainSettings], variants: Sequence[str],
                     seeds: Sequence[int]) -> pd.DataFrame:
    """The runs of ``variants`` under every recipe (name -> settings) as one table with a ``recipe`` column
    (:func:`recipes.recipe_runs`); one ValueError listing missing runs, as :func:`load_runs`."""
    return recipe_runs({name: load_runs(reads, s, variants, seeds) for name, s in recipes.items()})


def tuned_comparison(reads: Sequence[Path], epochs: int, dataset: str) -> pd.DataFrame | None:
    """The why page's committed recipe search at ``epochs`` on ``dataset`` (its default nets, seeds and grid), as
    :func:`recipes.tuned_results`; None when any of its runs is missing (first page's conclusion reads it)."""
    if ku.train_size(dataset) <= VALIDATION_IMAGES:
        return None  # a dataset too small for the validation split (the synthetic stand-in)
    recipes = {recipe_name(s): s for s in recipe_grid(epochs, dataset)}
    try:
        runs = load_tuning_runs(reads, recipes, TUNED_NETS, TUNING_SEEDS)
    except MissingRuns:  # the why page has not been run for these settings (a damaged record still fails)
        return None
    return tuned_results(runs, select_recipes(runs))
