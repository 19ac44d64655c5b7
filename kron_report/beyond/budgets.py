"""Part 3 at equal budgets: each Kronecker net's equal-weight baselines, tensor-train partners, ranks,
Pareto fronts, the leaders per budget, and the harder dataset.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache
from typing import Mapping, Sequence

import kron_utils as ku
import numpy as np
import pandas as pd
import torch

from ..nets import input_layer_rank, input_layer_weight, input_weights
from ..stats import compare_final, final_epochs, half_interval, judge_no_loss, outcome, summary_table, variant_family
from ..words import ci_cell

__all__ = ["net_points", "pareto_front", "best_by_budget", "kronecker_margins", "tied_untied_gaps", "budget_leaders",
           "harder_dataset", "dataset_comparison", "equal_budget_baselines", "TT_MATCH_TOLERANCE",
           "tt_name", "tt_shapes", "tt_matches", "TT_CORES", "budget_table", "equal_budget_comparisons",
           "tt_comparisons", "tt_table", "tt_partner_nets", "TT_GRID", "layer_ranks", "rank_table", "rank_contrast",
           "UNTIED_MONARCH", "monarch_partner", "monarch_partner_nets", "monarch_comparisons", "monarch_table",
           "flops_points", "best_by_flops", "FLOPS_BUDGETS", "FLOPS_BATCH", "SPEED_LAYERS", "speed_table"]


def net_points(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: weights, params, mean, std and 95% half-interval (``half``, :func:`half_interval`) of the
    final accuracy over all its seeds, their number, family."""
    finals = final_epochs(rows)
    points = finals.groupby("variant", sort=False).agg(weights=("weights", "first"), params=("params", "first"),
                                                      mean=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                                                      half=("test_accuracy", half_interval), seeds=("seed", "nunique"))
    points["family"] = [variant_family(v) for v in points.index]
    return points


def pareto_front(points: pd.DataFrame, x: str = "weights", y: str = "mean") -> pd.DataFrame:
    """The points no other point beats: fewer-or-equal ``x`` and higher ``y``. Sorted by ``x``."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best = ordered[y].cummax().shift(fill_value=-math.inf)
    return ordered[ordered[y] > best]


def best_by_budget(points: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    """For each budget: the best mean accuracy each family reaches with at most that many weights,
    its best member, and the winning family. Families with no member that small are absent (NaN)."""
    table = {}
    for b in budgets:
        within = points[points.weights <= b]
        if len(within):
            table[b] = within.groupby("family")["mean"].max()
    best = pd.DataFrame(table).T
    best.index.name = "budget"
    best["winner"] = best.idxmax(axis=1)
    return best


def kronecker_margins(best: pd.DataFrame) -> pd.Series:
    """Per budget of :func:`best_by_budget`: the best Kronecker family's accuracy minus the best of every other
    family (dense, low-rank and tensor train); budgets where either side is absent are left out."""
    families = [c for c in best.columns if c != "winner"]
    kron = [f for f in families if f.startswith("Kronecker")]
    other = [f for f in families if f not in kron]
    if not kron or not other:
        return pd.Series(dtype=float, name="lead")
    return (best[kron].max(axis=1) - best[other].max(axis=1)).dropna().rename("lead")


def tied_untied_gaps(rows: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Each (tied, untied) pair present in ``rows``: difference tied - untied, Welch 95% interval, outcome."""
    present = set(rows.variant)
    return pd.DataFrame([dict(tied=t, untied=u, **{k: c[k] for k in ("diff", "low", "high")}, n=c["n_a"],
                              untied_n=c["n_b"], outcome=outcome(c))
                         for t, u in pairs if t in present and u in present
                         for c in [compare_final(rows, t, u)]],
                        columns=["tied", "untied", "diff", "low", "high", "n", "untied_n", "outcome"])


def budget_leaders(rows: pd.DataFrame, points: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Runs of consecutive budgets of :func:`best_by_budget` with the same leading and second nets: the budget
    span (``low``, ``high``), the leading family and net with its mean accuracy, and, where there is a second
    family, its net and the Welch comparison leader - second (``diff``, ``ci_low``, ``ci_high``, ``outcome``)."""
    entries = []
    for b, row in best.iterrows():
        scores = row.drop("winner").dropna().astype(float).sort_values(ascending=False)
        within = points[points.weights <= b]
        members = tuple(within[within.family == f]["mean"].idxmax() for f in scores.index[:2])
        if entries and entries[-1]["members"] == members:
            entries[-1]["high"] = b
            continue
        entry = dict(low=b, high=b, members=members, family=scores.index[0], net=members[0], mean=scores.iloc[0],
                     second_family=None, second=None, diff=math.nan, ci_low=math.nan, ci_high=math.nan, outcome=None,
                     n=None, second_n=None)
        if len(members) > 1:
            c = compare_final(rows, members[0], members[1])
            entry.update(second_family=scores.index[1], second=members[1], n=c["n_a"], second_n=c["n_b"],
                         diff=c["diff"], ci_low=c["low"], ci_high=c["high"], outcome=outcome(c))
        entries.append(entry)
    return pd.DataFrame(entries).drop(columns="members")


def harder_dataset(easy: pd.DataFrame, hard: pd.DataFrame, tolerance: float = 0.5) -> dict:
    """The Kronecker input layer's cost on two datasets: per dataset (``easy``, ``hard``) the comparisons
    two_kron - original and width10 - two_kron, and ``verdict``: :func:`judge_no_loss` of the cost on the hard one."""
    out = {name: dict(cost=compare_final(rows, "two_kron", "original"),
                      narrow=compare_final(rows, "width10", "two_kron")) for name, rows in (("easy", easy), ("hard", hard))}
    out["verdict"] = judge_no_loss(out["hard"]["cost"], tolerance)
    return out


def dataset_comparison(rows_by_dataset: Mapping[str, pd.DataFrame], variants: Sequence[str]) -> pd.DataFrame:
    """Per net, on each dataset: final accuracy (mean ± sd) and the difference to the original with its interval; flat
    headers, one pair of columns per dataset."""
    table = pd.DataFrame({"net": list(variants)})
    for name, rows in rows_by_dataset.items():
        summary = summary_table(rows, order=list(variants)).set_index("variant")
        table[f"{name}, %"] = [summary.loc[v, "final test acc. (%)"] for v in variants]
        table[f"{name}, vs original (pp)"] = ["–" if v == "original" else
                                              ci_cell(c)
                                              for v in variants for c in [compare_final(rows, v, "original") if v != "original" else {}]]
    return table


def equal_budget_baselines(variant: str) -> tuple[str, str]:
    """For a net with a Kronecker input layer: (the low-rank net whose input layer has about as many
    weights, the dense net of about the same total parameter count)."""
    model = ku.build_model(variant)
    per_rank = ku.IMAGE_SIZE + ku.HIDDEN_SIZE                            # P.Q: 1,409 weights per unit of rank
    per_width = ku.IMAGE_SIZE + 1 + ku.NUM_CLASSES                       # 784-h-10: 795 parameters per unit
    rank = max(1, round(ku.count_weights(model.fc1) / per_rank))
    width = max(1, round((ku.count_params(model) - ku.NUM_CLASSES) / per_width))
    return f"lowrank{rank}", f"width{width}"


#: A tensor train matches a Kronecker net when their input layers' weights differ by at most this fraction.
TT_MATCH_TOLERANCE = 0.10


#: The Pareto figure's zoom: nets up to this many weights within this many points of the best.


def tt_name(ranks: Sequence[int]) -> str:
    """The 4-core tensor-train net with these inner TT-ranks: 'tt4_r4' when they are equal, else 'tt4_r2-3-2'."""
    ranks = [int(r) for r in ranks]
    return f"tt{TT_CORES}_r" + (str(ranks[0]) if len(set(ranks)) == 1 else "-".join(map(str, ranks)))


def tt_shapes(max_rank: int = 64) -> pd.DataFrame:
    """:func:`_tt_shapes`, computed once per ``max_rank`` (tens of thousands of shapes; a page asks many times)."""
    return _tt_shapes(max_rank).copy()


@lru_cache(maxsize=None)
def _tt_shapes(max_rank: int) -> pd.DataFrame:
    """Every 4-core TT input layer of :data:`TT_GRID` with inner TT-ranks up to their largest possible (and at
    most ``max_rank``): name, ranks, input-layer weights (sum of r_(j-1) o_j i_j r_j) and spread (max - min rank).
    TT-rank 1-1-1 is left out: that layer is the 4-factor Kronecker product kron4_r1."""
    pairs = [o * i for o, i in zip(TT_GRID[1], TT_GRID[0])]
    bounds = [min(math.prod(pairs[:j]), math.prod(pairs[j:]), max_rank) for j in range(1, TT_CORES)]
    ranks = np.array(list(itertools.product(*(range(1, b + 1) for b in bounds))))[1:]
    full = np.column_stack([np.ones(len(ranks), int), ranks, np.ones(len(ranks), int)])
    weights = sum(full[:, j] * pairs[j] * full[:, j + 1] for j in range(TT_CORES))
    return pd.DataFrame(dict(net=[tt_name(r) for r in ranks], ranks=[tuple(map(int, r)) for r in ranks],
                             weights=weights, spread=ranks.max(1) - ranks.min(1)))


def tt_matches(variant: str, tolerance: float = TT_MATCH_TOLERANCE) -> list[str]:
    """The 4-core tensor trains to set beside ``variant`` at its input-layer budget: the one within
    ±``tolerance`` whose TT-ranks are most nearly equal (then the nearest in weights); where none is that
    close, the nearest smaller and the nearest larger one (only one where nothing is smaller)."""
    target = input_weights(variant)
    shapes = tt_shapes()
    shapes = shapes.assign(off=(shapes.weights / target - 1).abs())
    close = shapes[shapes.off <= tolerance]
    if len(close):
        return [close.sort_values(["spread", "off"], kind="stable").net.iloc[0]]
    sides = [shapes[shapes.weights < target], shapes[shapes.weights > target]]
    return [side.sort_values(["off", "spread"], kind="stable").net.iloc[0] for side in sides if len(side)]


TT_CORES = 4  # (7,4,7,4) -> (5,5,5,5), the t3f tutorial's split


def budget_table(points: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net beside its two equal-budget baselines, flat headers: per net its name with the budget that
    matches (input weights, or all parameters for the narrow net) and matrix rank, then its accuracy (mean ± sd, seeds)."""
    def name(v, budget):
        count = input_weights(v) if budget == "input weights" else int(points.loc[v, "params"])
        return f"{v} ({count:,}; rank {input_layer_rank(v)})"

    def accuracy(v):
        return f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f} ({int(points.loc[v, 'seeds'])})"
    rows = []
    for v in kron_variants:
        low, narrow = equal_budget_baselines(v)
        rows.append({"Kronecker net (input weights; rank)": name(v, "input weights"), "Kronecker, % (seeds)": accuracy(v),
                     "low-rank net, same input weights": name(low, "input weights"), "low-rank, %": accuracy(low),
                     "narrow dense net, same parameters": name(narrow, "params"), "narrow, %": accuracy(narrow)})
    return pd.DataFrame(rows)


def equal_budget_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against each of its equal-budget baselines: difference, interval, outcome, ranks."""
    out = []
    for v in kron_variants:
        for baseline in equal_budget_baselines(v):
            c = compare_final(rows, v, baseline)
            out.append(dict(variant=v, baseline=baseline, diff=c["diff"], low=c["low"], high=c["high"], n=c["n_a"],
                            baseline_n=c["n_b"], outcome=outcome(c), rank=input_layer_rank(v),
                            baseline_rank=input_layer_rank(baseline)))
    return pd.DataFrame(out)


def tt_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against the tensor train(s) of its input-layer budget (:func:`tt_matches`): both
    nets' input weights and seeds, whether the TT net is within the tolerance, difference Kronecker - TT in
    final accuracy, 95% Welch interval, outcome. Kronecker nets or TT nets missing from ``rows`` are left out."""
    out, present = [], set(rows.variant)
    for v in kron_variants:
        for tt in tt_matches(v):
            if v in present and tt in present:
                c = compare_final(rows, v, tt)
                out.append(dict(variant=v, baseline=tt, weights=input_weights(v), baseline_weights=input_weights(tt),
                                within=abs(input_weights(tt) / input_weights(v) - 1) <= TT_MATCH_TOLERANCE,
                                diff=c["diff"], low=c["low"], high=c["high"], n=c["n_a"], baseline_n=c["n_b"],
                                outcome=outcome(c)))
    return pd.DataFrame(out, columns=["variant", "baseline", "weights", "baseline_weights", "within", "diff", "low",
                                      "high", "n", "baseline_n", "outcome"])


def tt_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """:func:`tt_comparisons` for display: both nets with their input-layer weights and seeds, how far the tensor
    train's budget is off, and the difference Kronecker - TT with its interval and verdict."""
    verdict = {"win": "Kronecker ahead", "loss": "Kronecker behind", "tie": "level"}
    return pd.DataFrame({
        "Kronecker net": comparisons.variant, "input weights": comparisons.weights, "seeds": comparisons.n,
        "tensor train": comparisons.baseline, "TT input weights": comparisons.baseline_weights,
        "budget off by": [f"{b / w - 1:+.1%}" + ("" if ok else " (nearest)") for b, w, ok in
                          zip(comparisons.baseline_weights, comparisons.weights, comparisons.within)],
        "TT seeds": comparisons.baseline_n,
        "Kronecker − TT (pp), 95% CI": [ci_cell(r._asdict())
                                       for r in comparisons.itertuples()],
        "verdict": comparisons.outcome.map(verdict)})


def tt_partner_nets(kron_variants: Sequence[str]) -> list[str]:
    """The tensor trains that :func:`tt_comparisons` sets beside ``kron_variants``, each once."""
    return list(dict.fromkeys(tt for v in kron_variants for tt in tt_matches(v)))


#: The 4-core grid of the TT-rank columns: 784 = 7x4x7x4 -> 625 = 5x5x5x5 (the t3f tutorial's split).
TT_GRID = (ku.factorize(ku.IMAGE_SIZE, TT_CORES), ku.factorize(ku.HIDDEN_SIZE, TT_CORES))


def layer_ranks(variant: str) -> dict:
    """The input layer's weight count, matrix rank and minimal TT-ranks in :data:`TT_GRID` ('a-b-c'), taken
    on a freshly initialised net (:func:`kron_utils.unfolding_ranks`)."""
    weight = input_layer_weight(variant)
    return dict(input_weights=input_weights(variant), matrix_rank=int(torch.linalg.matrix_rank(weight)),
                tt_ranks="-".join(map(str, ku.unfolding_ranks(weight, *TT_GRID))))


def rank_table(points: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """For nets with a 784 -> 625 input layer: :func:`layer_ranks` and accuracy (the name says the family)."""
    names = {"input_weights": "input weights", "matrix_rank": "matrix rank", "tt_ranks": "TT-ranks"}
    return pd.DataFrame([dict(net=v, **layer_ranks(v),
                              accuracy=f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f}",
                              seeds=int(points.loc[v, "seeds"])) for v in variants]).rename(columns=names)


def rank_contrast(ranks: pd.DataFrame) -> dict:
    """From :func:`rank_table`: the layer of lowest matrix rank (``lowest``, with its TT-ranks), the layers of
    full matrix rank (``full``) and the smallest TT-ranks among them (``lowest_tt``)."""
    table = ranks.set_index("net").rename(columns={"matrix rank": "matrix_rank", "TT-ranks": "tt_ranks"})
    lowest = table.loc[table.matrix_rank.idxmin()]
    full = list(table[table.matrix_rank == table.matrix_rank.max()].index)
    return dict(lowest=lowest.name, lowest_rank=int(lowest.matrix_rank), lowest_tt=lowest.tt_ranks, full=full,
                full_rank=int(table.matrix_rank.max()), layers=len(table),
                lowest_tt_of_full=min((table.loc[v, "tt_ranks"] for v in full),
                                      key=lambda t: sum(map(int, t.split("-")))))


#: The Monarch layer with every block untied: 28 row blocks and 25 column blocks (37,100 input weights), the
#: family's far end, at a Kronecker layer's compute.
UNTIED_MONARCH = "monarch28x25"


def monarch_partner(variant: str) -> str | None:
    """The Monarch net with ``variant``'s input weights on the same 28 x 28 -> 25 x 25 grid: a two-factor Kronecker
    sum of rank r (r x 1,400 weights) has the budget of r row blocks and r column blocks (700 each), ``monarch<r>x<r>``.
    Rank 1 is the same layer (monarch1x1 = U (x) V), so it has no partner; nor does any other family."""
    family, args, init = ku.parse_variant(variant)
    if family.name != "kron" or args["k"] != 2 or init != "uniform" or not 2 <= args["r"] <= ku.HIDDEN_FACTORS[1]:
        return None
    return f"monarch{args['r']}x{args['r']}"


def monarch_partner_nets(kron_variants: Sequence[str]) -> list[str]:
    """The Monarch nets :func:`monarch_comparisons` sets beside ``kron_variants``, each once."""
    return list(dict.fromkeys(m for v in kron_variants if (m := monarch_partner(v))))


def monarch_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker sum against the Monarch layer of its input weights (:func:`monarch_partner`): untying the
    blocks at an equal budget and equal compute. Columns as :func:`tt_comparisons` (the budgets match exactly)."""
    out, present = [], set(rows.variant)
    for v in kron_variants:
        m = monarch_partner(v)
        if m and v in present and m in present:
            c = compare_final(rows, v, m)
            out.append(dict(variant=v, baseline=m, weights=input_weights(v), baseline_weights=input_weights(m),
                            within=True, diff=c["diff"], low=c["low"], high=c["high"], n=c["n_a"], baseline_n=c["n_b"],
                            outcome=outcome(c)))
    return pd.DataFrame(out, columns=["variant", "baseline", "weights", "baseline_weights", "within", "diff", "low",
                                      "high", "n", "baseline_n", "outcome"])


def monarch_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """:func:`monarch_comparisons` for display, in :func:`tt_table`'s words."""
    verdict = {"win": "Kronecker ahead", "loss": "Kronecker behind", "tie": "level"}
    return pd.DataFrame({
        "Kronecker net": comparisons.variant, "Monarch net": comparisons.baseline,
        "input weights (both)": comparisons.weights, "seeds": [f"{a}/{b}" for a, b in
                                                               zip(comparisons.n, comparisons.baseline_n)],
        "Kronecker − Monarch (pp), 95% CI": [ci_cell(r._asdict()) for r in comparisons.itertuples()],
        "verdict": comparisons.outcome.map(verdict)})


#: The batch over which :func:`flops_points` spreads a layer's once-per-batch work (the tensor train's core
#: products): the test batch.
FLOPS_BATCH = 1000


def flops_points(points: pd.DataFrame) -> pd.DataFrame:
    """:func:`net_points` with ``flops``: each net's forward FLOPs per image (:func:`kron_utils.forward_flops` on a
    batch of :data:`FLOPS_BATCH`, divided by it)."""
    return points.assign(flops=[ku.forward_flops(v, FLOPS_BATCH) / FLOPS_BATCH for v in points.index])


def best_by_flops(points: pd.DataFrame, budgets: Sequence[float]) -> pd.DataFrame:
    """:func:`best_by_budget` with FLOPs per image as the budget (``points`` from :func:`flops_points`)."""
    return best_by_budget(points.assign(weights=points.flops), budgets)


#: The input layers ``make bench`` row j times, one per family at the budgets Part 3 compares (the dense 784 -> 625
#: layer of ``original`` is the reference).
SPEED_LAYERS = ("original", "lowrank8", "two_kron", "kron2_r4", "monarch4x4", "monarch28x25", "tt4_r4")


#: The nested compute budgets of the equal-FLOPs leaders table (forward FLOPs per image).
FLOPS_BUDGETS = (20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)


def speed_table(record: Mapping | None, variants: Sequence[str]) -> pd.DataFrame | None:
    """Each family's input layer as ``make bench`` row j measured it (forward and backward, milliseconds a step and
    speed against the dense 784 x 625 layer, batch 64 and 1,000) beside its weights and forward FLOPs per image;
    None when the committed record has no row j."""
    got = {r["name"]: r["value"] for r in (record or {}).get("rows", []) if r.get("name")}
    if not any(k.startswith("layer_ms_") for k in got):
        return None
    table = []
    for v in variants:
        if f"layer_ms_{v}_64" not in got:
            continue
        row = {"input layer": v, "weights": input_weights(v),
               "FLOPs per image": ku.layer_macs(ku.build_model(v).fc1, FLOPS_BATCH) * 2 // FLOPS_BATCH}
        for b in (64, 1000):
            row[f"ms, batch {b:,}"] = f"{got[f'layer_ms_{v}_{b}']:.3f}"
            row[f"× dense, batch {b:,}"] = "1" if v == "original" else f"{got[f'layer_speed_{v}_{b}']:.1f}"
        table.append(row)
    return pd.DataFrame(table)
