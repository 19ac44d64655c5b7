"""Part 2's sentences: the lede, the verdicts, the conclusion, the limitations and the captions.

Each function takes structured results (tables, dicts) and returns Markdown; none computes a statistic itself.
The notebooks' Markdown cells keep the argument and leave every number to these functions.
"""
from __future__ import annotations

from typing import Sequence

import kron_utils as ku
import pandas as pd

from ..stats import final_epochs
from ..words import (
    ci_cell,
    count,
    epochs_phrase,
    is_post_recipe,
    ranked_values,
    recipe,
    seeds_phrase,
    signed,
)

__all__ = ["VERDICT_WORDS", "VERDICT_CLAUSES", "REASONS", "verdict_words", "verdict_clause", "reason", "compared_nets", "observation_verdict",
           "part2_method", "runs_sentence", "summary_note", "tolerance_sentence",
           "headline_caption", "curves_caption", "loss_caption", "verdict_table", "observations_markdown",
           "init_table"]


# --- Part 2: the post's experiment ---------------------------------------------

#: A verdict of :mod:`stats` in words ({tol}: the tolerance in pp). A real loss is never called a success
#: without saying it is real.
VERDICT_WORDS = {
    "holds": "holds",
    "holds, real loss": "holds within {tol} pp, but the loss is real",
    "real loss, size unsettled": "the loss is real and may exceed {tol} pp",
    "fails": "fails",
    "fails, real loss": "fails: the loss is real but under {tol} pp",
    "not settled": "not settled",
    "not tested": "not tested",
}


#: Why a comparison got its verdict, by rule and verdict (the rules live in :mod:`stats`).
REASONS = {
    ("judge_no_loss", "holds"): "any loss is smaller than {tol} pp",
    ("judge_no_loss", "holds, real loss"): "the whole interval lies between -{tol} pp and zero",
    ("judge_no_loss", "real loss, size unsettled"): "the whole interval lies below zero and reaches past -{tol} pp",
    ("judge_no_loss", "fails"): "it loses more than {tol} pp",
    ("judge_no_loss", "not settled"): "the interval includes both no loss and a loss above {tol} pp",
    ("judge_clear_loss", "holds"): "it loses more than {tol} pp",
    ("judge_clear_loss", "fails"): "any loss is smaller than {tol} pp",
    ("judge_clear_loss", "fails, real loss"): "the whole interval lies between -{tol} pp and zero",
    ("judge_clear_loss", "real loss, size unsettled"): "the whole interval lies below zero and reaches past -{tol} pp",
    ("judge_clear_loss", "not settled"): "the interval includes both no loss and a loss above {tol} pp",
    ("judge_worse", "holds"): "it is worse beyond the seed noise",
    ("judge_worse", "fails"): "it is better beyond the seed noise",
    ("judge_worse", "not settled"): "the interval includes zero",
}


#: A verdict as the clause of a sentence about one net ('for the post's U⊗V, the loss is real but under 0.5 points').
VERDICT_CLAUSES = {
    "holds": "it holds",
    "holds, real loss": "the loss is real but under {tol} points",
    "real loss, size unsettled": "the loss is real and may exceed {tol} points",
    "fails": "it fails",
    "fails, real loss": "the loss is real but under {tol} points",
    "not settled": "the interval cannot settle it",
    "not tested": "it is not tested",
}


def verdict_clause(verdict: str, tolerance: float) -> str:
    """A verdict code as a clause for prose (:data:`VERDICT_CLAUSES`), where :func:`verdict_words` is a table label."""
    return VERDICT_CLAUSES[verdict].format(tol=f"{tolerance:g}")


def verdict_words(verdict: str, tolerance: float) -> str:
    """'holds within 0.5 pp, but the loss is real' for 'holds, real loss': a verdict code in words."""
    return VERDICT_WORDS[verdict].format(tol=f"{tolerance:g}")


def reason(row) -> str:
    """Why one comparison of :func:`post.verdicts.post_verdicts` got its verdict."""
    if row.verdict == "not tested":
        return f"it needs {row.a} and {row.b} with two or more seeds each"
    return REASONS[(row.rule, row.verdict)].format(tol=f"{row.tolerance:g}")


def compared_nets(group: pd.DataFrame) -> pd.Series:
    """The net that tells an observation's comparisons apart: ``a`` (two_kron, one_kron), or ``b`` where every
    comparison has the same ``a`` (width10 against two_kron and against one_kron)."""
    return group.b if group.a.nunique() == 1 and len(group) > 1 else group.a


def observation_verdict(group: pd.DataFrame) -> str:
    """One observation's verdict in words: the common one, or each comparison's with its net when they differ."""
    tol = group.tolerance.iloc[0]
    if group.verdict.nunique() == 1:
        return verdict_words(group.verdict.iloc[0], tol)
    return "; ".join(f"{verdict_words(v, tol)} for `{n}`" for v, n in zip(group.verdict, compared_nets(group)))


def part2_method(settings: ku.TrainSettings, seeds: Sequence[int]) -> str:
    """How Part 2 reran the post: dataset, recipe and seeds."""
    return (f"The post shows accuracy and loss curves and gives no numbers. Here we rerun every net on "
            f"{'real ' + settings.dataset.upper() if settings.dataset == 'mnist' else settings.dataset} with "
            f"{'the same' if is_post_recipe(settings) else 'this'} recipe ({recipe(settings)}), "
            f"**{seeds_phrase(seeds)}** each, and check each claim against the seed spread.")


def runs_sentence(rows: pd.DataFrame) -> str:
    """What the table below rests on: nets, seeds, epochs, diverged runs."""
    runs = rows.groupby(["variant", "seed"]).ngroups
    diverged = int((rows.status == "diverged").sum())
    return (f"{count(rows.variant.nunique(), 'net').capitalize()} × {count(rows.seed.nunique(), 'seed')}: {runs:,} runs of up to "
            f"{epochs_phrase(rows.epoch.max())}; {count(diverged, 'run')} diverged.")


def summary_note(variants: Sequence[str]) -> str:
    """Which rows of the summary table are the Gaussian-init reruns, if any."""
    gauss = [v for v in variants if v.endswith("_gauss")]
    if not gauss:
        return ""
    return (f"The last {count(len(gauss), 'row')} are the post's Kronecker nets with Gaussian factors (see below). "
            if len(gauss) > 1 else "The last row is a Kronecker net with Gaussian factors (see below). ")


def tolerance_sentence(tolerance: float) -> str:
    """How the verdicts read a difference."""
    return (f"We read them with a stated tolerance: a gap smaller than {tolerance:g} percentage points counts as "
            "\"no loss\". The tolerance is our judgement call: the post gives no numbers to derive it from.")


#: How the conclusion files an observation, by its comparisons' verdicts.
# --- Captions and alt text of Parts 1 and 2 -------------------------------------

def headline_caption(rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the headline dot plot."""
    finals = final_epochs(rows)
    means = finals.groupby("variant").test_accuracy.mean()
    return (f"Final test accuracy after {epochs_phrase(finals.epoch.max())} of the post's nets and the equal-budget "
            f"dense net: mean over {count(finals.seed.nunique(), 'seed')} with its 95% confidence interval. Weight "
            "counts exclude biases, as in the post.",
            f"A dot plot of {count(len(means), 'net')}' final test accuracy, highest first: {ranked_values(means, 2)}.")


def curves_caption(rows: pd.DataFrame, baseline: str = "width10") -> tuple[str, str]:
    """(caption, alt text) of the accuracy-by-epoch figure."""
    finals = final_epochs(rows).groupby("variant").test_accuracy.mean()
    dashed = f" The dashed black line is the equal-budget dense net {baseline}." if baseline in finals.index else ""
    return ("Test accuracy by epoch, mean over seeds with its 95% confidence interval as a band. Below: the top of "
            "the upper panel, enlarged." + dashed,
            f"Two line charts of test accuracy against epoch for {count(len(finals), 'net')}, which end at "
            f"{ranked_values(finals)} after epoch {rows.epoch.max()}.")


def loss_caption(rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the loss-by-epoch figure."""
    final = final_epochs(rows).groupby("variant")
    train, test = final.train_loss.mean().sort_values(), final.test_loss.mean().sort_values()
    return ("Training loss (top) and test loss (bottom) by epoch, log scale, mean over seeds with its 95% confidence "
            "interval as a band.",
            f"Two line charts of loss against epoch on a log scale for {count(len(test), 'net')}. At epoch "
            f"{rows.epoch.max()} the training loss is lowest for {train.index[0]} ({train.iloc[0]:.3f}) and highest for "
            f"{train.index[-1]} ({train.iloc[-1]:.3f}); the test loss is lowest for {test.index[0]} "
            f"({test.iloc[0]:.3f}) and highest for {test.index[-1]} ({test.iloc[-1]:.3f}).")


def _nets(a: str, b: str) -> str:
    return f"{a} vs {b}"


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as a table a reader can scan: one row per comparison, with both nets' final accuracy (mean ± sd),
    the difference and its 95% interval, the test errors, the verdict and why."""
    rows = []
    for r in verdicts.itertuples():
        tested = r.verdict != "not tested"
        rows.append({"#": r.observation, "compared": _nets(r.a, r.b),
                     "accuracy, %": f"{r.mean_a:.2f} ± {r.std_a:.2f} vs {r.mean_b:.2f} ± {r.std_b:.2f}" if tested else "",
                     "difference, pp (95% CI)": ci_cell(r._asdict()) if tested else "",
                     "test error, %": f"{100 - r.mean_b:.2f} → {100 - r.mean_a:.2f}" if tested else "",
                     "seeds": f"{int(r.n_a)} + {int(r.n_b)}" if tested else "",
                     "verdict": verdict_words(r.verdict, r.tolerance), "because": reason(r)})
    return pd.DataFrame(rows)


def observations_markdown(verdicts: pd.DataFrame) -> str:
    """The post's observations as a numbered list, each with its verdict in bold (the table holds the numbers)."""
    return "\n".join(f"{number}. {group.claim.iloc[0]} **{observation_verdict(group)}.**"
                     for number, group in verdicts.groupby("observation", sort=True))


def init_table(by_init: pd.DataFrame) -> pd.DataFrame:
    """Each comparison under uniform and Gaussian factors: the difference ± the half-width of its 95% interval, and
    the verdict under each (one cell when they agree)."""
    pairs = by_init[by_init.verdict != "not tested"].set_index(["a", "b", "init"])
    rows = []
    for r in by_init[(by_init.init == "uniform") & (by_init.verdict != "not tested")].itertuples():
        if (r.a, r.b, "gauss") not in pairs.index:
            continue
        g = pairs.loc[(r.a, r.b, "gauss")]
        same = r.verdict == g.verdict
        rows.append({"#": r.observation, "compared": _nets(r.a, r.b),
                     "uniform, pp": f"{signed(r.diff)} ± {r.half_width:.2f}",
                     "Gaussian, pp": f"{signed(g['diff'])} ± {g.half_width:.2f}",
                     "verdict": verdict_words(r.verdict, r.tolerance) if same else
                     f"{verdict_words(r.verdict, r.tolerance)} → {verdict_words(g.verdict, g.tolerance)}",
                     "same under both": "yes" if same else "no"})
    return pd.DataFrame(rows)
