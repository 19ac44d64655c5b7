"""Part 2's verdicts on the post's four observations, under both initialisations, and its cost table.
"""
from __future__ import annotations

import pandas as pd

from ..stats import compare_final, final_epochs, judge_clear_loss, judge_no_loss, judge_worse

__all__ = ['OBSERVATIONS', 'post_verdicts', 'verdicts_by_init', 'init_robustness', 'cost_table']


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
