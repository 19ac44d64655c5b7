"""Why the Kronecker layer works, and whether its gap to the dense net is the recipe (the 'why' page).

Three experiments, each a table computed here from tidy run rows; :mod:`prose_why` turns them into sentences:

- permuted pixels: the same nets on images whose 784 pixels go through one fixed permutation. A dense or low-rank
  first layer absorbs any permutation (its dense matrix's columns permute with the pixels), so those nets are the
  control; a Kronecker layer's factors follow the image's rows and columns, and lose that fit.
- off-grid factors: a Kronecker layer whose input factors (16 x 49) cut across the image's rows.
- recipes: each net's learning rate and optimiser chosen on a held-out validation split (the last 10,000
  training images), never on the test set; then the gap to the dense net under each net's own best recipe.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

import kron_utils as ku

from .experiments import input_layer_rank, input_weights, unpermute_weight
from .stats import compare_final, final_epochs, half_interval, mean_sd, outcome
from .store import cached, settings_folder

#: The stated seed of the one pixel permutation (torch.randperm(784) from a generator with this seed).
PERMUTATION_SEED = 0
#: The nets trained on permuted pixels: the post's dense net and its equal-budget one (the control), its two
#: Kronecker nets, and a Kronecker sum, a low-rank and a tensor-train layer from Part 3.
PERMUTED_NETS = ("original", "two_kron", "one_kron", "width10", "kron2_r2", "lowrank8", "tt4_r4")
#: Kronecker layers whose input factors cut across the 28 x 28 grid: U (25x16) (x) V (25x49) and its mirror.
OFF_GRID_NETS = ("kron_25x16_25x49", "kron_25x49_25x16")
ALIGNED_NET = "two_kron"  # U (25x28) (x) V (25x28): one factor per image row, one per column
#: The recipe grid: SGD with the post's momentum at these learning rates, and Adam at its default rate.
SGD_RATES = (0.003, 0.01, 0.03, 0.1)
ADAM_RATE = 1e-3
TUNED_NETS = ("original", "two_kron", "one_kron", "kron2_r2", "width10")
TUNING_SEEDS = (1, 2, 3)
VALIDATION_IMAGES = 10_000


def absorbs_permutation(variant: str) -> bool:
    """True for nets whose input layer meets the pixels through a dense matrix (dense nets, and low-rank P·Q
    layers, whose Q is a dense r x 784 matrix): permuting its columns with the pixels gives the same function, so a
    fixed pixel permutation cannot change what they can learn. These nets are the permutation's control."""
    return ku.parse_variant(variant)[0].name in ("width", "lowrank")


def permuted_settings(settings: ku.TrainSettings, seed: int = PERMUTATION_SEED) -> ku.TrainSettings:
    """``settings`` with every image fed through :func:`kron_utils.pixel_permutation` (``seed``)."""
    return dataclasses.replace(settings, permutation_seed=seed)


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


def permutation_effects(mnist: pd.DataFrame, permuted: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """Per net of ``variants``: final test accuracy on MNIST and on permuted MNIST (mean, seeds) and the change
    permuted - MNIST with its Welch 95% interval and outcome ('loss' when the whole interval lies below zero)."""
    out = []
    for v in variants:
        both = pd.concat([mnist[mnist.variant == v], _labelled(permuted[permuted.variant == v], " | permuted")])
        c = compare_final(both, f"{v} | permuted", v)
        out.append(dict(variant=v, weights=int(mnist[mnist.variant == v].weights.iloc[0]), mnist=c["mean_b"],
                        mnist_sd=c["std_b"], permuted=c["mean_a"], permuted_sd=c["std_a"], change=c["diff"],
                        low=c["low"], high=c["high"], n=c["n_b"], permuted_n=c["n_a"], outcome=outcome(c),
                        control=absorbs_permutation(v)))
    return pd.DataFrame(out)


def control_verdict(effects: pd.DataFrame, tolerance: float) -> dict:
    """Whether the nets that absorb any permutation (:func:`absorbs_permutation`) come out level: 'holds' when each
    one's interval of change lies within ±``tolerance`` points, 'fails' when one lies wholly outside it, else 'not
    settled'. Returns the verdict and those nets' rows."""
    nets = effects[effects.control]
    if nets.empty:
        raise ValueError("the permutation control needs a net whose input layer absorbs a permutation (dense or "
                         f"low-rank) among {list(effects.variant)}")
    inside = (nets.low > -tolerance) & (nets.high < tolerance)
    outside = (nets.high < -tolerance) | (nets.low > tolerance)
    verdict = "holds" if inside.all() else "fails" if outside.any() else "not settled"
    return dict(verdict=verdict, tolerance=tolerance, nets=nets.reset_index(drop=True))


def lead_over_dense(mnist: pd.DataFrame, permuted: pd.DataFrame, kron: str = "two_kron",
                    dense: str = "width10") -> dict:
    """The Kronecker net's lead over the dense net of its budget on MNIST and on permuted MNIST (Welch), and
    whether it survives the permutation (the interval on permuted MNIST lies wholly above zero)."""
    before, after = compare_final(mnist, kron, dense), compare_final(permuted, kron, dense)
    return dict(kron=kron, dense=dense, mnist=before, permuted=after, survives=outcome(after) == "win")


def off_grid_comparison(rows: pd.DataFrame, aligned: str = ALIGNED_NET,
                        off_grid: Sequence[str] = OFF_GRID_NETS) -> pd.DataFrame:
    """Each off-grid Kronecker net against the aligned one: input-layer weights of both, final accuracy, the
    difference off-grid - aligned with its Welch interval and outcome."""
    weights = {v: input_weights(v) for v in [aligned, *off_grid]}
    out = []
    for v in off_grid:
        c = compare_final(rows, v, aligned)
        out.append(dict(variant=v, aligned=aligned, weights=int(weights[v]), aligned_weights=int(weights[aligned]),
                        mean=c["mean_a"], aligned_mean=c["mean_b"], diff=c["diff"], low=c["low"], high=c["high"],
                        n=c["n_a"], aligned_n=c["n_b"], outcome=outcome(c)))
    return pd.DataFrame(out)


def why_answer(effects: pd.DataFrame, lead: dict, off_grid: pd.DataFrame, control: dict) -> dict:
    """The first question's answer as numbers: what the image grid is worth to the Kronecker net (its drop on
    permuted pixels), how much of its lead over the dense net of its budget survives without the grid, and what
    misaligned factors cost. ``answer`` is 'both' (the net drops, and its lead survives), 'grid' (it drops and its
    lead does not survive), 'rank' (it does not drop, its lead survives), or 'unsettled' (the control does not
    hold, or neither)."""
    kron = effects[effects.variant == lead["kron"]].iloc[0]
    drops, survives = kron.outcome == "loss", lead["survives"]
    answer = ("unsettled" if control["verdict"] != "holds" else "both" if drops and survives else
              "grid" if drops else "rank" if survives else "unsettled")
    misaligned = off_grid[off_grid.outcome == "loss"]
    return dict(answer=answer, net=lead["kron"], weights=input_weights(lead["kron"]), dense=lead["dense"],
                ranks=(input_layer_rank(lead["kron"]), input_layer_rank(lead["dense"])), drop=kron,
                lead_before=lead["mnist"]["diff"], lead_after=lead["permuted"]["diff"],
                kept=lead["permuted"]["diff"] / lead["mnist"]["diff"], misaligned=len(misaligned),
                off_grid=len(off_grid), worst=misaligned.sort_values("diff").iloc[0] if len(misaligned) else None)


def fit_diagnosis(rows: pd.DataFrame, net: str, reference: str = "original") -> dict:
    """Does ``net`` fit the training set less well than ``reference`` (underfit), or generalise worse at equal
    train loss? Welch comparisons of final train loss and test accuracy; ``kind`` is 'underfits' when its train
    loss is higher beyond the seed noise, 'generalises worse' when it is not but its accuracy is lower, 'no gap'
    when its accuracy is not lower, else 'fits better'."""
    loss, accuracy = compare_final(rows, net, reference, "train_loss"), compare_final(rows, net, reference)
    if outcome(accuracy) != "loss":
        kind = "no gap"
    elif outcome(loss) == "win":  # 'win' on a loss means higher: a worse fit
        kind = "underfits"
    elif outcome(loss) == "tie":
        kind = "generalises worse"
    else:
        kind = "fits better"
    return dict(net=net, reference=reference, train_loss=loss, accuracy=accuracy, kind=kind)


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


#: The hidden units whose receptive fields the page shows, (a, b) = (row of U, row of V).
FIELD_UNITS = ((0, 0), (3, 8), (6, 16), (9, 24), (12, 4), (15, 12), (18, 20), (24, 2))


def trained_factors(settings: ku.TrainSettings, seed: int, results_dir: str | Path, *,
                    data_dir: str | Path = "data", device: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """U (25x28) and V (25x28) of :data:`ALIGNED_NET` trained with ``settings`` and ``seed``: the sweep's run of that
    seed, retrained alone (the sweep stacks seeds, so the two agree to float rounding, not bit for bit), its two
    factors kept as JSON (six significant digits, 15 kB) through :func:`store.cached` beside that run's record, so a
    page shows them without training."""
    path = settings_folder(results_dir, settings) / ALIGNED_NET / f"factors-seed-{seed}.json"

    def compute():
        _, (model,) = ku.train(ALIGNED_NET, [seed], settings, data_dir=data_dir, device=device)
        return [[[float(f"{x:.6g}") for x in row] for row in factor[0].detach().cpu().tolist()]
                for factor in model.fc1.factors]
    u, v = cached(path, dict(variant=ALIGNED_NET, seed=seed, settings=settings.record()), compute,
                  save=lambda value, target: target.write_text(json.dumps(value)),
                  load=lambda source: json.loads(source.read_text()))
    return torch.tensor(u), torch.tensor(v)


def receptive_fields(u: torch.Tensor, v: torch.Tensor, perm: Sequence[int] | None = None) -> torch.Tensor:
    """The (25, 25, 28, 28) receptive fields of the input layer U (x) V: field (a, b) is row (25a + b) of the
    weight, on the image grid. With ``perm`` (the net was trained on permuted images) each row is first put back
    on the original pixels by :func:`experiments.unpermute_weight`."""
    weight = torch.kron(u, v)
    if perm is not None:
        weight = unpermute_weight(weight, perm)
    return weight.reshape(u.shape[0], v.shape[0], *ku.IMAGE_FACTORS)


def permutation_table(effects: pd.DataFrame) -> pd.DataFrame:
    """:func:`permutation_effects` for display: one row per net, accuracies (mean ± sd over its seeds) and the change
    with its interval."""
    return pd.DataFrame({
        "net": effects.variant, "MNIST (%)": [f"{r.mnist:.2f} ± {r.mnist_sd:.2f}" for r in effects.itertuples()],
        "permuted (%)": [f"{r.permuted:.2f} ± {r.permuted_sd:.2f}" for r in effects.itertuples()],
        "change (pp) [95% CI]": [f"{r.change:+.2f} [{r.low:+.2f}, {r.high:+.2f}]" for r in effects.itertuples()]})


def off_grid_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`off_grid_comparison` for display, the aligned net first (the names spell the factor shapes)."""
    first = table.iloc[0]
    rows = [{"net": first.aligned, "input weights": f"{first.aligned_weights:,}", "test acc. (%)": f"{first.aligned_mean:.2f}",
             "vs aligned (pp) [95% CI]": "–"}]
    rows += [{"net": r.variant, "input weights": f"{r.weights:,}", "test acc. (%)": f"{r.mean:.2f}",
              "vs aligned (pp) [95% CI]": f"{r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"} for r in table.itertuples()]
    return pd.DataFrame(rows)


def tuned_table(tuned: pd.DataFrame, reference: str = "original") -> pd.DataFrame:
    """:func:`tuned_results` for display: each net's recipe, validation and test accuracy, gap to the reference."""
    gap = [("–" if r.variant == reference else f"{r.gap:+.2f} [{r.low:+.2f}, {r.high:+.2f}]") for r in tuned.itertuples()]
    return pd.DataFrame({"net": tuned.variant, "recipe": tuned.recipe, "validation (%)": tuned.validation,
                         "test (%)": tuned.test, f"vs {reference} (pp) [95% CI]": gap})
