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

__all__ = ["SGD_RATES", "ADAM_RATES", "TUNED_NETS", "TUNING_SEEDS", "VALIDATION_IMAGES", "recipe_grid", "recipe_name",
           "recipe_family", "split_recipe", "recipe_applies", "family_bests", "family_effect", "SELECTION_COLUMNS", "recipe_runs", "validation_scores", "select_recipes", "tuned_results",
           "load_tuning_runs", "tuned_comparison"]


#: The recipe grid: SGD with the post's momentum at these learning rates (constant; cosine-annealed; with per-tensor
#: rates for structured layers), and Adam at these.
SGD_RATES = (0.003, 0.01, 0.03, 0.1)


ADAM_RATES = (3e-4, 1e-3, 3e-3)


TUNED_NETS = ("original", "two_kron", "one_kron", "kron2_r2", "width10")


TUNING_SEEDS = (1, 2, 3)


VALIDATION_IMAGES = 10_000


def recipe_grid(epochs: int = 35, dataset: str = "mnist", sgd_rates: Sequence[float] = SGD_RATES,
                adam_rates: Sequence[float] = ADAM_RATES, validation: int = VALIDATION_IMAGES, *, cosine: bool = True,
                structured: bool = True) -> list[ku.TrainSettings]:
    """The recipes tried for each net, each holding out the last ``validation`` training images: SGD (momentum
    0.5, the post's) at each of ``sgd_rates`` with a constant rate, then (``cosine``) cosine-annealed, then
    (``structured``) with per-tensor rates (:func:`kron_utils.structured_rates`; only nets with a structured layer
    take these, :func:`recipe_applies`), then Adam at each of ``adam_rates``."""
    base = ku.TrainSettings(epochs=epochs, dataset=dataset, validation=validation)
    kinds = [{}] + [dict(schedule="cosine")] * cosine + [dict(parametrization="structured")] * structured
    grid = [dataclasses.replace(base, lr=float(lr), **kind) for kind in kinds for lr in sgd_rates]
    return grid + [dataclasses.replace(base, lr=float(lr), optimizer="adam") for lr in adam_rates]


def recipe_family(settings: ku.TrainSettings) -> str:
    """'SGD', 'SGD, cosine', 'SGD, per-tensor rates' or 'Adam' (with ', cosine' or ', per-tensor rates' as set):
    a recipe without its learning rate."""
    return ", ".join([{"sgd": "SGD", "adam": "Adam"}[settings.optimizer]]
                     + ["cosine"] * (settings.schedule == "cosine")
                     + ["per-tensor rates"] * (settings.parametrization == "structured"))


def recipe_name(settings: ku.TrainSettings) -> str:
    """'SGD, lr 0.01', 'SGD, cosine, lr 0.03', 'Adam, lr 0.001': the recipe's family and learning rate."""
    return f"{recipe_family(settings)}, lr {settings.lr:g}"


def split_recipe(name: str) -> tuple[str, float]:
    """('SGD, cosine', 0.03) from 'SGD, cosine, lr 0.03': a :func:`recipe_name` back into family and rate."""
    family, _, lr = name.rpartition(", lr ")
    return family, float(lr)


def recipe_applies(settings: ku.TrainSettings, variant: str) -> bool:
    """Whether ``variant`` takes the recipe: per-tensor rates only where the net has a structured layer (for any
    other net they are the plain recipe again)."""
    return settings.parametrization != "structured" or bool(ku.structured_layers(ku.build_model(variant)))


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
    """The runs of ``variants`` under every recipe (name -> settings) that applies to them (:func:`recipe_applies`)
    as one table with a ``recipe`` column (:func:`recipes.recipe_runs`); one ValueError listing missing runs, as
    :func:`load_runs`."""
    return recipe_runs({name: load_runs(reads, s, [v for v in variants if recipe_applies(s, v)], seeds)
                        for name, s in recipes.items() if any(recipe_applies(s, v) for v in variants)})


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


def family_bests(scores: pd.DataFrame) -> pd.DataFrame:
    """Per net and recipe family (:func:`split_recipe`): the learning rate with the highest mean final validation
    accuracy and that mean (from :func:`validation_scores`; the test set plays no part)."""
    parts = scores.assign(**dict(zip(("family", "lr"), zip(*scores.recipe.map(split_recipe)))))
    best = parts.loc[parts.groupby(["variant", "family"], sort=False)["mean"].idxmax()]
    return best[["variant", "family", "lr", "recipe", "mean", "half", "seeds"]].reset_index(drop=True)


def family_effect(runs: pd.DataFrame, scores: pd.DataFrame, family: str, baseline: str = "SGD") -> pd.DataFrame:
    """For each net that has both: its best recipe of ``family`` minus its best of ``baseline`` (each at its own best
    learning rate, :func:`family_bests`), in final *validation* accuracy with a Welch 95% interval. Both maxima are
    picked on the same validation numbers, so the difference leans towards the family with more rates tried."""
    best = family_bests(scores).set_index(["variant", "family"])
    out = []
    for net in dict.fromkeys(runs.variant):
        if (net, family) not in best.index or (net, baseline) not in best.index:
            continue
        a, b = best.loc[(net, family)].recipe, best.loc[(net, baseline)].recipe
        rows = pd.concat([_labelled(runs[(runs.variant == net) & (runs.recipe == a)], " | a"),
                          _labelled(runs[(runs.variant == net) & (runs.recipe == b)], " | b")])
        c = compare_final(rows[["dataset", *SELECTION_COLUMNS]], f"{net} | a", f"{net} | b", metric="validation_accuracy")
        out.append(dict(variant=net, recipe=a, baseline=b, diff=c["diff"], low=c["low"], high=c["high"],
                        outcome=outcome(c)))
    return pd.DataFrame(out)
