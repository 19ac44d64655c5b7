"""The rules that size a claim to its evidence, written once and used wherever a page chooses its verdict words.

Every comparison is a Welch comparison of :func:`stats.compare_final` (a dict with ``diff``, ``low``, ``high``,
the 95% interval of a - b in points of accuracy). The rules:

- **within x** only when the *whole* interval lies within ±x (:func:`within`); a mean inside ±x is not enough;
- **comparisons that share a baseline** are not independent evidence: never count them ("18 of 18"), report
  the weakest margin among them instead (:func:`weakest_margin`);
- **nested budgets** count distinct nets, not budgets (:func:`distinct_nets`): one net that wins four nested
  budgets is one finding;
- **a ratio of two estimates** gets a bootstrap interval (:func:`ratio_interval`) or is not stated;
- **a heading agrees with the verdict under it** (:func:`verdict_heading`);
- **two gaps shown side by side are like for like**: the same split and the same seeds (:func:`like_for_like`).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["within", "closeness", "weakest_margin", "distinct_nets", "ratio_interval", "VERDICT_HEADINGS",
           "verdict_heading", "like_for_like"]


def within(c: Mapping, margin: float) -> bool:
    """True when the whole 95% interval of ``c`` lies within ±``margin`` points (its mean alone never counts)."""
    return -margin <= c["low"] and c["high"] <= margin


def closeness(c: Mapping, margins: Sequence[float] = (0.25, 0.5, 1.0, 2.0)) -> str:
    """The strongest true statement about how close a and b are: 'no measurable difference' when the interval
    contains zero *and* lies within the smallest margin, else 'within x points' for the smallest margin that holds
    the whole interval, else 'ahead' / 'behind' by more than the largest margin or 'not settled'."""
    for m in sorted(margins):
        if within(c, m):
            points = f"{m:g} point{'s' if m != 1 else ''}"
            return (f"no measurable difference, within {points}" if c["low"] <= 0 <= c["high"]
                    else f"{'ahead' if c['low'] > 0 else 'behind'}, but within {points}")
    if c["low"] > 0:
        return "ahead"
    if c["high"] < 0:
        return "behind"
    return "not settled"


def weakest_margin(comparisons: Iterable[Mapping]) -> Mapping:
    """Of comparisons that share a baseline (or a net), the one whose interval comes closest to zero from the side
    of its mean: the single margin a page may state for all of them, instead of a count of wins."""
    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("weakest_margin needs at least one comparison")
    return min(comparisons, key=lambda c: c["low"] if c["diff"] >= 0 else -c["high"])


def distinct_nets(winners: Mapping[object, str] | Iterable[str]) -> list[str]:
    """The distinct nets among the winners of nested budgets ({budget: net} or a list), in first-seen order: a
    page counts these, since a net that wins one budget also wins every larger budget it falls in."""
    nets = winners.values() if isinstance(winners, Mapping) else winners
    return list(dict.fromkeys(nets))


def ratio_interval(x: Sequence[float], y: Sequence[float], seed: int = 0, resamples: int = 9999,
                   ) -> tuple[float, float, float]:
    """mean(x) / mean(y) with a 95% percentile-bootstrap interval (scipy.stats.bootstrap, independent samples,
    fixed ``seed``): the only form in which a page states a ratio of two noisy estimates."""
    from scipy import stats
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"ratio_interval needs at least two values on each side, got {len(x)} and {len(y)}")

    def ratio(a, b, axis=-1):
        return np.mean(a, axis=axis) / np.mean(b, axis=axis)
    result = stats.bootstrap((x, y), ratio, n_resamples=resamples, method="percentile", vectorized=True,
                             random_state=np.random.default_rng(seed))
    ci = result.confidence_interval
    return float(ratio(x, y)), float(ci.low), float(ci.high)


#: The heading above a group of verdicts, by the weakest verdict in it: 'holds' alone reads 'right'.
VERDICT_HEADINGS = {"holds": "Where the post was right",
                    "holds, real loss": "Right within the tolerance, with a real loss",
                    "real loss, size unsettled": "A real loss, of unsettled size",
                    "not settled": "Not settled by these seeds",
                    "fails, real loss": "Where the post was wrong",
                    "fails": "Where the post was wrong",
                    "not tested": "Not tested"}

_STRENGTH = list(VERDICT_HEADINGS)  # strongest agreement with the post first


def verdict_heading(verdicts: Iterable[str]) -> str:
    """The heading for a group of verdicts: the one its *weakest* verdict earns, so that a heading never claims more
    than any verdict beneath it ('Where the post was right' only when every verdict is 'holds')."""
    verdicts = list(verdicts)
    unknown = [v for v in verdicts if v not in VERDICT_HEADINGS]
    if not verdicts or unknown:
        raise ValueError(f"verdict_heading takes verdicts from {', '.join(VERDICT_HEADINGS)}; got {verdicts!r}")
    return VERDICT_HEADINGS[max(verdicts, key=_STRENGTH.index)]


def like_for_like(*gaps: Mapping, keys: Sequence[str] = ("split", "seeds")) -> bool:
    """True when gaps shown side by side were measured alike: each gap dict carries the same ``keys`` (the data split
    and the seeds, by default) with equal values. A page puts two gaps in one row only when this holds."""
    return all(all(k in g for k in keys) for g in gaps) and all(
        all(g[k] == gaps[0][k] for k in keys) for g in gaps[1:])
