"""Why the Kronecker layer works, and whether its gap to the dense net is the recipe (the 'why' page).

Its experiments as tables computed from tidy run rows (:func:`why_answer` sums them up; :mod:`why.prose` turns
them into sentences):

- permuted pixels: the same nets on images whose 784 pixels go through one fixed permutation. A dense or low-rank
  first layer absorbs any permutation (its dense matrix's columns permute with the pixels), so those nets are the
  control; a Kronecker layer's factors follow the image's rows and columns, and lose that fit.
- off-grid factors: a Kronecker layer whose input factors (16 x 49) cut across the image's rows.
- random features: the dense and the Kronecker input layer frozen at initialisation, only the output layer trained:
  what 625 random hidden units give, against the learned factors and the narrow dense net.
- recipes: each net's learning rate and optimiser chosen on a held-out validation split, never on the test set
  (the search itself is the shared :mod:`recipes`, which the first page reads too); here its display table.

And the trained factors behind the receptive-field figure (:func:`trained_factors`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd
import torch

from ..claims import like_for_like
from ..nets import input_layer_rank, input_layer_weight, input_weights
from ..recipes import _labelled
from ..stats import compare_final, outcome
from ..words import ci_cell
from ..store import cached, settings_folder, settings_record
from .plan import ALIGNED_NET, OFF_GRID_NETS

__all__ = ["absorbs_permutation", "matched_seeds", "permutation_effects", "control_verdict", "lead_over_dense",
           "off_grid_comparison", "why_answer", "trained_factors", "permutation_table", "lead_table", "factor_shapes",
           "off_grid_table", "tuned_table", "random_feature_effects", "random_feature_table",
           "random_feature_comparison_table", "family_table"]


def absorbs_permutation(variant: str) -> bool:
    """True for nets whose input layer meets the pixels through a dense matrix (dense nets, and low-rank P·Q
    layers, whose Q is a dense r x 784 matrix): permuting its columns with the pixels gives the same function, so a
    fixed pixel permutation cannot change what they can learn. These nets are the permutation's control."""
    return ku.parse_variant(variant)[0].name in ("width", "lowrank")


def matched_seeds(rows: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``rows`` whose (variant, seed) also appears in ``other``: the seeds a net has in both tables, so
    that a change from one table to the other compares the same seeds (like for like)."""
    pairs = set(zip(other.variant, other.seed))
    return rows[[(v, s) in pairs for v, s in zip(rows.variant, rows.seed)]]


def permutation_effects(mnist: pd.DataFrame, permuted: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """Per net of ``variants``, on the seeds it has on both datasets (:func:`matched_seeds`): final test accuracy on
    MNIST and on permuted MNIST (mean, sd, seeds) and the change permuted - MNIST with its Welch 95% interval and
    outcome ('loss' when the whole interval lies below zero)."""
    mnist, permuted = matched_seeds(mnist, permuted), matched_seeds(permuted, mnist)
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
    """The Kronecker net's lead over the dense net of its budget on MNIST and on permuted MNIST (Welch), both on
    the seeds each net has on both datasets (:func:`matched_seeds`), and whether it survives the permutation (the
    interval on permuted MNIST lies wholly above zero). Each comparison carries its ``split`` and ``seeds``."""
    mnist, permuted = matched_seeds(mnist, permuted), matched_seeds(permuted, mnist)

    def lead(rows):
        seeds = tuple(tuple(sorted(int(s) for s in rows[rows.variant == v].seed.unique())) for v in (kron, dense))
        return compare_final(rows, kron, dense) | dict(split="test", seeds=seeds)
    before, after = lead(mnist), lead(permuted)
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


def why_answer(effects: pd.DataFrame, lead: dict, off_grid: pd.DataFrame, control: dict,
               random_features: Mapping | None = None) -> dict:
    """The first question's answer as numbers: what the image grid is worth to the Kronecker net (its drop on
    permuted pixels, ``drop``), its lead over the dense net of its budget with and without the grid (``lead``), the
    two nets' input-layer ranks and hidden widths (the lead compares both at once), and how many misaligned
    layers lose. ``answer`` is 'both' (the net drops, and its lead survives), 'grid' (it drops and its
    lead does not survive), 'rank' (it does not drop, its lead survives), or 'unsettled' (the control does not
    hold, or neither); ``random_features``, the answer of :func:`random_feature_effects` ('unsettled' without it)."""
    kron = effects[effects.variant == lead["kron"]].iloc[0]
    drops, survives = kron.outcome == "loss", lead["survives"]
    answer = ("unsettled" if control["verdict"] != "holds" else "both" if drops and survives else
              "grid" if drops else "rank" if survives else "unsettled")
    misaligned = off_grid[off_grid.outcome == "loss"]
    nets = (lead["kron"], lead["dense"])
    return dict(answer=answer, net=lead["kron"], weights=input_weights(lead["kron"]), dense=lead["dense"],
                ranks=tuple(input_layer_rank(v) for v in nets),
                hidden=tuple(int(input_layer_weight(v).shape[0]) for v in nets), drop=kron, lead=lead,
                misaligned=len(misaligned), off_grid=len(off_grid),
                random_features=random_features["answer"] if random_features else "unsettled")


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
    u, v = cached(path, dict(variant=ALIGNED_NET, seed=seed, settings=settings_record(settings)), compute,
                  save=lambda value, target: target.write_text(json.dumps(value)),
                  load=lambda source: json.loads(source.read_text()))
    return torch.tensor(u), torch.tensor(v)


def permutation_table(effects: pd.DataFrame) -> pd.DataFrame:
    """:func:`permutation_effects` for display: one row per net, accuracies (mean ± sd over its seeds), the change
    with its interval, and the seeds behind both datasets."""
    return pd.DataFrame({
        "net": effects.variant, "MNIST (%)": [f"{r.mnist:.2f} ± {r.mnist_sd:.2f}" for r in effects.itertuples()],
        "permuted (%)": [f"{r.permuted:.2f} ± {r.permuted_sd:.2f}" for r in effects.itertuples()],
        "change (pp, 95% CI)": [ci_cell(dict(diff=r.change, low=r.low, high=r.high)) for r in effects.itertuples()],
        "seeds": [f"{r.n}" if r.n == r.permuted_n else f"{r.n}, {r.permuted_n}" for r in effects.itertuples()]})


def lead_table(lead: Mapping) -> pd.DataFrame:
    """:func:`lead_over_dense` for display: the two nets' accuracies and the lead on each dataset. Refuses leads
    that were not measured alike (:func:`claims.like_for_like`: the same split and seeds), since they sit side by
    side."""
    before, after = lead["mnist"], lead["permuted"]
    if not like_for_like(before, after):
        raise ValueError(f"the leads on MNIST and on permuted MNIST were not measured alike: {before.get('seeds')} "
                         f"against {after.get('seeds')}")
    return pd.DataFrame([{"data": name, f"{lead['kron']} (%)": f"{c['mean_a']:.2f}", f"{lead['dense']} (%)": f"{c['mean_b']:.2f}",
                          "lead (pp, 95% CI)": ci_cell(c), "seeds": f"{c['n_a']}"}
                         for name, c in (("MNIST", before), ("permuted MNIST", after))])


def factor_shapes(variant: str) -> str:
    """The shapes of a Kronecker input layer's factors, as '25×16 ⊗ 25×49' (U first)."""
    factors = ku.build_model(variant).fc1.factors
    return " ⊗ ".join("×".join(str(n) for n in f.shape[-2:]) for f in factors)


def off_grid_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`off_grid_comparison` for display, the aligned net first: factor shapes, input weights, accuracy, the
    difference to the aligned net and the seeds."""
    first = table.iloc[0]
    rows = [{"net": first.aligned, "factors": factor_shapes(first.aligned), "input weights": f"{first.aligned_weights:,}",
             "test acc. (%)": f"{first.aligned_mean:.2f}", "vs aligned (pp, 95% CI)": "–", "seeds": f"{first.aligned_n}"}]
    rows += [{"net": r.variant, "factors": factor_shapes(r.variant), "input weights": f"{r.weights:,}",
              "test acc. (%)": f"{r.mean:.2f}", "vs aligned (pp, 95% CI)": ci_cell(dict(diff=r.diff, low=r.low, high=r.high)),
              "seeds": f"{r.n}"} for r in table.itertuples()]
    return pd.DataFrame(rows)


def tuned_table(tuned: pd.DataFrame, reference: str = "original", default_recipe: str | None = None) -> pd.DataFrame:
    """:func:`recipes.tuned_results` for display: each net's recipe, validation and test accuracy (%), its test gap to
    the reference (pp) on their own recipes and, with ``default_recipe`` (the one :func:`recipes.tuned_results` was given),
    on that recipe in the same runs (the same split and seeds)."""
    def cell(r, prefix=""):
        if r.variant == reference:
            return "–"
        return ci_cell(dict(diff=getattr(r, f"{prefix}gap"), low=getattr(r, f"{prefix}low"), high=getattr(r, f"{prefix}high")))
    table = pd.DataFrame({"net": tuned.variant, "recipe": tuned.recipe, "validation (%)": tuned.validation,
                          "test (%)": tuned.test, f"vs {reference}, own recipes (95% CI)": [cell(r) for r in tuned.itertuples()]})
    if default_recipe is not None:
        table[f"both on {default_recipe} (95% CI)"] = [cell(r, "default_") for r in tuned.itertuples()]
    return table


#: The random-feature comparisons, (a, b, what a - b measures); a net ending in FROZEN has its input layer frozen.
FROZEN = " | random fc1"
RANDOM_FEATURE_COMPARISONS = (
    ("original" + FROZEN, "width10", "width alone"),
    ("two_kron", "original" + FROZEN, "learned factors vs random width"),
    ("two_kron", "two_kron" + FROZEN, "learned vs random factors"),
)


def random_feature_effects(trained: Mapping[str, pd.DataFrame], frozen: Mapping[str, pd.DataFrame],
                           kron: str = "two_kron", narrow: str = "width10") -> dict:
    """The random-feature control on each dataset (``trained`` and ``frozen``: dataset label -> run rows; frozen
    rows are the nets trained with their input layer frozen at initialisation). Per dataset, the final test accuracy
    of each net (``nets``: mean, sd, seeds) and the comparisons of :data:`RANDOM_FEATURE_COMPARISONS` (Welch 95%,
    ``comparisons``); ``answer`` on the last dataset (the permuted one): 'width' when 625 random dense units beat the
    narrow net and the learned factors do not beat them, 'factors' when the learned factors beat 625 random dense
    units, else 'unsettled'."""
    nets, comparisons = [], []
    for label in trained:
        rows = pd.concat([trained[label], _labelled(frozen[label], FROZEN)], ignore_index=True)
        for net in dict.fromkeys([kron, kron + FROZEN, "original" + FROZEN, narrow]):
            final = rows[(rows.variant == net) & (rows.epoch == rows[rows.variant == net].epoch.max())].test_accuracy
            nets.append(dict(dataset=label, variant=net, mean=final.mean(), sd=final.std(ddof=1), n=len(final)))
        for a, b, what in RANDOM_FEATURE_COMPARISONS:
            c = compare_final(rows, a, b)
            comparisons.append(dict(dataset=label, a=a, b=b, what=what, diff=c["diff"], low=c["low"], high=c["high"],
                                    n_a=c["n_a"], n_b=c["n_b"], outcome=outcome(c)))
    comparisons = pd.DataFrame(comparisons)
    last = comparisons[comparisons.dataset == list(trained)[-1]].set_index("what")
    width, learned = (last.loc[RANDOM_FEATURE_COMPARISONS[i][2]].outcome for i in (0, 1))
    answer = "factors" if learned == "win" else "width" if width == "win" else "unsettled"
    return dict(nets=pd.DataFrame(nets), comparisons=comparisons, answer=answer, datasets=list(trained),
                width=width, learned=learned, hidden=ku.build_model("original").fc1.out_features)


def _net_label(variant: str) -> str:
    return f"{variant.removesuffix(FROZEN)}, random input layer" if variant.endswith(FROZEN) else variant


def random_feature_table(effects: Mapping) -> pd.DataFrame:
    """Final test accuracy (%) of each net of the random-feature control, one column per dataset, with its seeds."""
    nets = effects["nets"]
    out = nets.pivot(index="variant", columns="dataset", values="mean").reindex(
        list(dict.fromkeys(nets.variant)))[effects["datasets"]]
    seeds = nets.groupby("variant", sort=False).n.agg(lambda n: "/".join(str(int(k)) for k in n))
    table = pd.DataFrame({"net": [_net_label(v) for v in out.index],
                          "hidden units": [ku.build_model(v.removesuffix(FROZEN)).fc1.out_features for v in out.index]})
    for label in effects["datasets"]:
        table[f"{label} (%)"] = [f"{m:.2f}" for m in out[label]]
    table["seeds"] = list(seeds.reindex(out.index))
    return table


def random_feature_comparison_table(effects: Mapping) -> pd.DataFrame:
    """Each comparison of the random-feature control, its difference (pp, 95% CI) on each dataset."""
    c = effects["comparisons"]
    table = pd.DataFrame({"comparison": [f"{_net_label(a)} − {_net_label(b)}" for a, b, _ in RANDOM_FEATURE_COMPARISONS],
                          "measures": [what for *_, what in RANDOM_FEATURE_COMPARISONS]})
    for label in effects["datasets"]:
        part = c[c.dataset == label]
        table[f"{label} (pp, 95% CI)"] = [ci_cell(r) for r in part.to_dict("records")]
    return table


def family_table(bests: pd.DataFrame, effect: pd.DataFrame | None = None,
                 label: str = "per-tensor − SGD, pp (95% CI)") -> pd.DataFrame:
    """:func:`recipes.family_bests` for display: per net, each recipe family's best mean validation accuracy (%) and
    the learning rate that reached it; '–' where the family does not apply. With ``effect``
    (:func:`recipes.family_effect`), a last column (``label``): that family's best minus plain SGD's, with its Welch
    interval."""
    families = list(dict.fromkeys(bests.family))
    cells = {(r.variant, r.family): f"{r.mean:.2f} ({r.lr:g})" for r in bests.itertuples()}
    nets = list(dict.fromkeys(bests.variant))
    table = pd.DataFrame({"net": nets, **{f: [cells.get((n, f), "–") for n in nets] for f in families}})
    if effect is not None and not effect.empty:
        diffs = {r.variant: ci_cell(dict(diff=r.diff, low=r.low, high=r.high)) for r in effect.itertuples()}
        table[label] = [diffs.get(n, "–") for n in nets]
    return table
