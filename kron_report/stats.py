"""Statistics over tidy run tables: final epochs, Welch comparisons, verdicts and outcomes, Pareto
fronts, budgets. Everything here returns numbers or tables; :mod:`prose` turns them into sentences.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import pandas as pd

import kron_utils as ku

#: How tables and plots name each family of :data:`kron_utils.FAMILIES`: (plot label, member description).
FAMILY_TEXT = {
    "width": ("dense (width h)", "dense 784-{h}-10"),
    "lowrank": ("low-rank P·Q (matrix rank r)", "input layer of matrix rank {r}: P (625x{r}) . Q ({r}x784); dense output"),
    "kron": ("Kronecker, {k} factors, Kronecker rank r",
             "input layer a sum of {r} {k}-factor Kronecker products (Kronecker rank {r}); dense output"),
    "tiedkron": ("Kronecker, {k} tied factors, Kronecker rank r",
                 "as kron{k}_r{r}, with tied factors: one factor shared by all {k} positions"),
    "kron_outkron": ("Kronecker input and output", "input layer as kron{k}_r{r}; Kronecker output (5x25)(x)(2x25)"),
    "tiedkron_outkron": ("Kronecker input (tied factors) and output",
                         "input layer as tiedkron{k}_r{r}; Kronecker output (5x25)(x)(2x25)"),
    "tt": ("tensor train, {k} cores", "input layer a TT-matrix of {k} cores with TT-ranks {r}; dense output"),
    "kronshape": ("Kronecker, 2 factors of given shapes",
                  "input layer U ({o1}x{i1}) (x) V ({o2}x{i2}): the pixels split into {i1} blocks of {i2}; dense output"),
}
#: The post's nets described in its own terms.
POST_DESCRIPTIONS = {
    "original": "dense 784-625-10",
    "one_kron": "Kronecker input layer U(x)U with tied factors, U 25x28; dense output",
    "two_kron": "Kronecker input layer U(x)V, U, V 25x28; dense output",
    "one_kron_out_kron": "Kronecker input layer with tied factors; Kronecker output (5x25)(x)(2x25)",
    "two_kron_out_kron": "Kronecker input layer; Kronecker output (5x25)(x)(2x25)",
    "width10": "dense 784-10-10: as many weights as the Kronecker nets",
}
DENSE = FAMILY_TEXT["width"][0]


def describe_variant(variant: str) -> str:
    """One-line description of a variant name (raises ValueError if it is unknown)."""
    family, args, init = ku.parse_variant(variant)
    name = variant[:-len(init) - 1] if init != "uniform" else variant
    if name in ku.POST_NETS:
        post_name, text = ku.POST_NETS[name][0], POST_DESCRIPTIONS[name]
        quoted = f"the post's '{post_name}'" if name == "original" else f"'{post_name}'"
        text = f"{text} ({quoted})" if post_name else text
    else:
        text = FAMILY_TEXT[family.name][1].format(**{k: "-".join(map(str, a)) if isinstance(a, tuple) else a
                                                     for k, a in args.items()})
    return text if init == "uniform" else f"{text}; Gaussian factor init"


def variant_family(variant: str) -> str:
    """The plot label of the family ``variant`` belongs to (two_kron is kron2_r1, and so on)."""
    family, args, init = ku.parse_variant(variant)
    return FAMILY_TEXT[family.name][0].format(**args) + ("" if init == "uniform" else f", {init} init")


def final_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's last row (its final epoch, or the epoch where it diverged)."""
    last = rows.groupby(["dataset", "variant", "seed"]).epoch.transform("max")
    return rows[rows.epoch == last].reset_index(drop=True)


def signed(value: float, digits: int = 2) -> str:
    """'+1.25', '-0.40', and '0.00' for anything that rounds to zero (never '-0.00')."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def epochs_phrase(n: int) -> str:
    """'35 epochs', '1 epoch': epoch counts stay in digits, as in the recipe."""
    return f"{int(n)} epoch{'s' if int(n) != 1 else ''}"


def mean_sd(values) -> str:
    """'97.77 ± 0.12' from a sample (the standard deviation is 0 for one value)."""
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std() if len(values) > 1 else 0.0:.2f}"


def _mean_sd3(values) -> str:
    """'0.039 ± 0.001': a loss, mean ± sd over seeds, to three decimals."""
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std() if len(values) > 1 else 0.0:.3f}"


def summary_table(rows: pd.DataFrame, reference: str = "original", order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant (in ``order``, else as they first appear): post name, weight and parameter counts,
    compression against ``reference``, and final and best test accuracy as mean ± std over seeds."""
    final = final_epochs(rows)
    best = rows.groupby(["variant", "seed"]).test_accuracy.max()
    names = [v for v in (order or dict.fromkeys(rows.variant)) if v in set(final.variant)]
    first = final.groupby("variant").first()
    ref_weights = (first.weights[reference] if reference in first.index
                   else ku.count_weights(ku.build_model(reference)))
    return pd.DataFrame({
        "name in the post": [ku.POST_NETS.get(v, (None,))[0] or "-" for v in names],
        "variant": names,
        "description": [describe_variant(v) for v in names],
        "weights": [int(first.weights[v]) for v in names],
        "params (with biases)": [int(first.params[v]) for v in names],
        "compression": [f"{ref_weights / first.weights[v]:,.0f}x" for v in names],
        "final test acc. (%)": [mean_sd(final.test_accuracy[final.variant == v]) for v in names],
        "best test acc. (%)": [mean_sd(best[v]) for v in names],
        "final train loss": [_mean_sd3(final.train_loss[final.variant == v]) for v in names],
        "seeds": [int(final.seed[final.variant == v].nunique()) for v in names],
    })


def compare_final(rows: pd.DataFrame, a: str, b: str, metric: str = "test_accuracy") -> dict:
    """Final-epoch ``metric`` of variant a minus variant b over seeds, with a Welch 95% interval."""
    from scipy import stats
    final = final_epochs(rows)
    x = final.loc[final.variant == a, metric].to_numpy(float)
    y = final.loc[final.variant == b, metric].to_numpy(float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least two seeds of {a} and of {b} to compare, got {len(x)} and {len(y)}")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1)) or float("inf"))
    half = stats.t.ppf(0.975, df) * se if se > 0 else 0.0
    diff = x.mean() - y.mean()
    with warnings.catch_warnings():  # scipy warns of precision loss when a group's seeds agree exactly
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(x, y, equal_var=False).pvalue) if se > 0 else float("nan")
    return dict(a=a, b=b, mean_a=x.mean(), std_a=x.std(ddof=1), mean_b=y.mean(), std_b=y.std(ddof=1),
                diff=diff, low=diff - half, high=diff + half, half_width=half, n_a=len(x), n_b=len(y),
                p=p)


def judge_no_loss(c: dict, tolerance: float) -> str:
    """'a loses nothing against b', judged on the interval of a - b:

    - 'holds': the interval lies above -tolerance and reaches zero (no loss beyond the noise);
    - 'holds, real loss': it lies between -tolerance and zero: within the tolerance, but a loss all the same;
    - 'real loss, size unsettled': it lies below zero but reaches past -tolerance;
    - 'fails': it lies below -tolerance;
    - 'not settled': it includes both zero and -tolerance.
    """
    if c["low"] > -tolerance:
        return "holds" if c["high"] >= 0 else "holds, real loss"
    if c["high"] < -tolerance:
        return "fails"
    return "real loss, size unsettled" if c["high"] < 0 else "not settled"


def judge_clear_loss(c: dict, tolerance: float) -> str:
    """'a loses noticeably against b': 'holds' when the interval lies below -tolerance, 'fails' when it lies above
    it and reaches zero, 'fails, real loss' when it lies between -tolerance and zero; otherwise as
    :func:`judge_no_loss`."""
    verdict = judge_no_loss(c, tolerance)
    return {"holds": "fails", "holds, real loss": "fails, real loss", "fails": "holds"}.get(verdict, verdict)


def judge_worse(c: dict, tolerance: float) -> str:
    """'a does not reach b': 'holds' when the whole interval lies below zero, 'fails' above it."""
    return {"loss": "holds", "win": "fails", "tie": "not settled"}[outcome(c)]


#: The post's four observations: (claim, rule, comparisons a vs b).
OBSERVATIONS = [
    ("A Kronecker input layer does not hurt.", judge_no_loss, [("two_kron", "original"), ("one_kron", "original")]),
    ("Tying the factors (U = V) does not hurt.", judge_no_loss, [("one_kron", "two_kron")]),
    ("A Kronecker output layer loses noticeably.", judge_clear_loss,
     [("two_kron_out_kron", "two_kron"), ("one_kron_out_kron", "one_kron")]),
    ("The equal-parameter dense net (width 10) does not reach the Kronecker nets.", judge_worse,
     [("width10", "two_kron"), ("width10", "one_kron")]),
]


def post_verdicts(rows: pd.DataFrame, tolerance: float = 0.5) -> pd.DataFrame:
    """One row per comparison behind the post's observations, with the Welch interval, the rule that judged
    it (``rule``: a function name above) and the verdict.

    A comparison whose nets are missing, or have fewer than two seeds, gets the verdict 'not tested'.
    """
    seeds = final_epochs(rows).groupby("variant").seed.nunique()
    out = []
    for number, (claim, rule, pairs) in enumerate(OBSERVATIONS, start=1):
        for a, b in pairs:
            row = dict(observation=number, claim=claim, a=a, b=b, rule=rule.__name__, tolerance=tolerance)
            if seeds.get(a, 0) < 2 or seeds.get(b, 0) < 2:
                row.update(verdict="not tested")
            else:
                c = compare_final(rows, a, b)
                row.update({k: c[k] for k in ("mean_a", "std_a", "mean_b", "std_b", "diff", "low", "high",
                                              "half_width", "n_a", "n_b")}, verdict=rule(c, tolerance))
            out.append(row)
    return pd.DataFrame(out)


def verdicts_by_init(rows: pd.DataFrame, tolerance: float = 0.5) -> pd.DataFrame:
    """:func:`post_verdicts` once per factor init: 'uniform' on the post's names, and 'gauss' with every
    ``<net>_gauss`` run standing in for ``<net>`` (the dense nets are shared). Column ``init`` says which."""
    tables = [post_verdicts(rows[~rows.variant.str.endswith("_gauss")], tolerance).assign(init="uniform")]
    gauss = rows[rows.variant.str.endswith("_gauss")]
    if len(gauss):
        swapped = pd.concat([rows[rows.variant.isin(["original", "width10"])],
                             gauss.assign(variant=gauss.variant.str.removesuffix("_gauss"))])
        tables.append(post_verdicts(swapped, tolerance).assign(init="gauss"))
    return pd.concat(tables, ignore_index=True)


def init_robustness(by_init: pd.DataFrame) -> pd.DataFrame:
    """Per observation: its verdicts under each init (one per comparison, joined by ' / ') and whether every
    comparison's verdict agrees between the two."""
    verdicts = (by_init.groupby(["observation", "init"], sort=False).verdict.agg(" / ".join)
                .unstack("init").sort_index())
    verdicts["holds under both"] = verdicts.nunique(axis=1) == 1
    return verdicts


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant: median seconds per epoch of one run, and the minutes all its runs take at that median rate (its
    epochs x the median / 60). The median, not the sum, so that a burst of contention on a shared machine does not
    show up as a fact about a net."""
    table = rows.groupby("variant", sort=False).agg(
        runs=("seed", "nunique"), epochs=("epoch", "size"), **{"seconds per epoch, one run": ("seconds", "median")})
    table["minutes, all runs, at the median"] = table.epochs * table["seconds per epoch, one run"] / 60
    return table.drop(columns="epochs").round(2)


def net_points(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: weights, params, mean, std and 95% half-interval (``half``, :func:`half_interval`) of the
    final accuracy over all its seeds, their number, family."""
    finals = final_epochs(rows)
    points = finals.groupby("variant", sort=False).agg(weights=("weights", "first"), params=("params", "first"),
                                                      mean=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                                                      half=("test_accuracy", half_interval), seeds=("seed", "nunique"))
    points["family"] = [variant_family(v) for v in points.index]
    return points


def seed_groups(rows: pd.DataFrame, variants: Sequence[str] | None = None) -> dict[tuple[int, ...], list[str]]:
    """The nets of ``rows`` (or only ``variants``) grouped by the seeds they have, most seeds first."""
    seeds = final_epochs(rows).groupby("variant", sort=False).seed.agg(lambda s: tuple(sorted(set(s))))
    groups: dict[tuple[int, ...], list[str]] = {}
    for v, s in seeds.items():
        if variants is None or v in variants:
            groups.setdefault(s, []).append(v)
    return dict(sorted(groups.items(), key=lambda g: -len(g[0])))


def outcome(c: dict) -> str:
    """'win' when a's interval lies above b, 'loss' below it, else 'tie'."""
    return "win" if c["low"] > 0 else "loss" if c["high"] < 0 else "tie"


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
    """Per dataset and variant: final accuracy (mean ± sd) and the difference to the original with its interval."""
    out = []
    for name, rows in rows_by_dataset.items():
        table = summary_table(rows, order=list(variants)).set_index("variant")
        for v in variants:
            c = compare_final(rows, v, "original") if v != "original" else None
            out.append({"dataset": name, "variant": v, "final test acc. (%)": table.loc[v, "final test acc. (%)"],
                        "vs original (pp)": "-" if c is None else
                        f"{signed(c['diff'])} [{signed(c['low'])}, {signed(c['high'])}]"})
    return pd.DataFrame(out).pivot(index="variant", columns="dataset").reindex(list(variants))


def error_change(mean_a: float, mean_b: float) -> dict:
    """Accuracies (%) of a and b as test errors: error_a, error_b, and ``relative`` = error_a / error_b - 1 (the
    share more mistakes a makes; None when b makes none)."""
    error_a, error_b = 100 - mean_a, 100 - mean_b
    return dict(error_a=error_a, error_b=error_b, relative=error_a / error_b - 1 if error_b > 0 else None)


def mean_interval(values) -> tuple[float, float]:
    """The 95% t-interval of the mean of ``values`` (seeds): mean ± t(0.975, n-1) · sd / sqrt(n); the mean itself
    for one value. The convention of every interval the figures draw."""
    import numpy as np
    from scipy import stats
    values = np.asarray(values, dtype=float)
    mean = values.mean()
    if len(values) < 2:
        return mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean - half, mean + half


def half_interval(values) -> float:
    """The half-width of :func:`mean_interval` (NaN for fewer than two values): what the figures draw as ± bars."""
    low, high = mean_interval(values)
    return (high - low) / 2 if len(values) > 1 else float("nan")
