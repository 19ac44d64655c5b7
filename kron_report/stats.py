"""Statistics over tidy run tables that every page uses: final epochs, Welch comparisons, the verdict rules,
outcomes, intervals, fit diagnoses. Everything here returns numbers or tables; each page's ``prose`` words them.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import kron_utils as ku
import pandas as pd

__all__ = ["FAMILY_TEXT", "POST_DESCRIPTIONS", "DENSE", "describe_variant", "variant_family", "final_epochs", "mean_sd",
           "summary_table", "compare_final", "judge_no_loss", "judge_clear_loss", "judge_worse", "seed_groups",
           "outcome", "error_change", "mean_interval", "half_interval", "fit_diagnosis", "gap_change"]


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
    "monarch": ("Monarch, blocks per row and column",
                "input layer a Monarch matrix on the image grid: {gr} distinct blocks for the 28 image rows, {gc} for "
                "the 25 columns after them ({gr}x{gc}; 1x1 is U(x)V); dense output"),
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
    half = _welch_half_width([x, y])
    diff = x.mean() - y.mean()
    with warnings.catch_warnings():  # scipy warns of precision loss when a group's seeds agree exactly
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(x, y, equal_var=False).pvalue) if half > 0 else float("nan")
    return dict(a=a, b=b, mean_a=x.mean(), std_a=x.std(ddof=1), mean_b=y.mean(), std_b=y.std(ddof=1),
                diff=diff, low=diff - half, high=diff + half, half_width=half, n_a=len(x), n_b=len(y),
                p=p)


def gap_change(a, b, c, d) -> dict:
    """How much a gap moves: (mean a - mean b) - (mean c - mean d) over four independent groups of seeds (say a net
    and its reference under tuned recipes, then both under the default one), with the Welch-Satterthwaite 95%
    interval: variance the sum of each group's var/n, degrees of freedom by Satterthwaite. With c and d constant
    it is :func:`compare_final`'s interval of a - b."""
    import numpy as np
    groups = [np.asarray(g, dtype=float) for g in (a, b, c, d)]
    if min(len(g) for g in groups) < 2:
        raise ValueError(f"gap_change needs at least two seeds in each group, got {[len(g) for g in groups]}")
    half = _welch_half_width(groups)
    diff = (groups[0].mean() - groups[1].mean()) - (groups[2].mean() - groups[3].mean())
    return dict(diff=diff, low=diff - half, high=diff + half)


def _welch_half_width(groups) -> float:
    """Half-width of the Welch-Satterthwaite 95% interval of a signed sum of independent groups' means: the variance
    is the sum of each group's var/n, the degrees of freedom Satterthwaite's; 0 when every group is constant."""
    from scipy import stats
    parts = [g.var(ddof=1) / len(g) for g in groups]
    se = math.sqrt(sum(parts))
    df = sum(parts) ** 2 / (sum(v ** 2 / (len(g) - 1) for v, g in zip(parts, groups)) or float("inf"))
    return stats.t.ppf(0.975, df) * se if se > 0 else 0.0


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
