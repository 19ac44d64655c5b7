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
    count,
    epochs_phrase,
    error_rates,
    is_post_recipe,
    join_words,
    number_word,
    ranked_values,
    recipe,
    seeds_phrase,
    signed,
)
from .verdicts import init_robustness

__all__ = ["VERDICT_WORDS", "REASONS", "verdict_words", "reason", "observation_verdict", "observation_effects",
           "part2_method", "runs_sentence", "summary_note", "tolerance_sentence", "init_intro", "verdict_markdown",
           "init_markdown", "lede", "REAL_LOSS", "conclusion_group", "effect_with_errors", "conclusion",
           "limitations", "headline_caption", "curves_caption", "loss_caption"]


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


def verdict_words(verdict: str, tolerance: float) -> str:
    """'holds within 0.5 pp, but the loss is real' for 'holds, real loss': a verdict code in words."""
    return VERDICT_WORDS[verdict].format(tol=f"{tolerance:g}")


def reason(row) -> str:
    """Why one comparison of :func:`post.verdicts.post_verdicts` got its verdict."""
    if row.verdict == "not tested":
        return f"it needs {row.a} and {row.b} with two or more seeds each"
    return REASONS[(row.rule, row.verdict)].format(tol=f"{row.tolerance:g}")


def observation_verdict(group: pd.DataFrame) -> str:
    """One observation's verdict in words: the common one, or each comparison's with its net when they differ."""
    tol = group.tolerance.iloc[0]
    if group.verdict.nunique() == 1:
        return verdict_words(group.verdict.iloc[0], tol)
    return "; ".join(f"{verdict_words(r.verdict, tol)} for `{r.a}`" for r in group.itertuples())


def observation_effects(group: pd.DataFrame) -> str:
    """'-0.40 pp (`two_kron` vs `original`) and -0.43 pp (`one_kron` vs `original`)': the measured effects."""
    tested = group[group.verdict != "not tested"]
    return join_words([f"{signed(r.diff)} pp (`{r.a}` vs `{r.b}`)" for r in tested.itertuples()]) if len(tested) \
        else "none measured"


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


def init_intro(by_init: pd.DataFrame, seeds: Sequence[int]) -> str:
    """What the second initialisation is and on how many seeds it ran."""
    return ("Another common choice draws each factor entry from a Gaussian whose scale gives the rebuilt matrix "
            "that standard deviation on average. We trained the post's Kronecker nets again that way, on the same "
            f"{seeds_phrase(seeds)}, and judged each observation again with the Gaussian nets standing in for the "
            "uniform ones. The half-width of each 95% interval follows the ±."
            if "gauss" in set(by_init.init) else "")


def verdict_markdown(verdicts: pd.DataFrame) -> str:
    """The verdicts as Markdown: per observation its measured effects, then its verdict, then one bullet per
    comparison with the interval, the error rates and the reason for the verdict."""
    lines = []
    for number, group in verdicts.groupby("observation", sort=True):
        lines.append(f"**{number}. {group.claim.iloc[0]}** Effect: {observation_effects(group)}. "
                     f"Verdict: **{observation_verdict(group)}**.")
        for r in group.itertuples():
            if r.verdict == "not tested":
                lines.append(f"- `{r.a}` vs `{r.b}`: not tested, {reason(r)}.")
                continue
            lines.append(f"- `{r.a}` {r.mean_a:.2f} ± {r.std_a:.2f}% vs `{r.b}` {r.mean_b:.2f} ± {r.std_b:.2f}%: "
                         f"difference **{signed(r.diff)} pp** (95% CI {signed(r.low)} to {signed(r.high)}, "
                         f"half-width {r.half_width:.2f}, n = {int(r.n_a)} + {int(r.n_b)}); {error_rates(r)}. "
                         f"Verdict: {verdict_words(r.verdict, r.tolerance)}, as {reason(r)}.")
    return "\n\n".join(lines)


def init_markdown(by_init: pd.DataFrame) -> str:
    """Per observation: whether each comparison's verdict survives the other factor initialisation, with both
    effects (± the half-width of the 95% interval)."""
    table = init_robustness(by_init)
    if "gauss" not in table:
        return "No runs with Gaussian factors: the verdicts were not checked under a second initialisation."
    lines = []
    for number, row in table.iterrows():
        tested = by_init[(by_init.observation == number) & (by_init.verdict != "not tested")]
        pairs = tested.set_index(["a", "b", "init"])
        detail = []
        for a, b in dict.fromkeys(zip(tested.a, tested.b)):
            if (a, b, "uniform") not in pairs.index or (a, b, "gauss") not in pairs.index:
                continue
            u, g = pairs.loc[(a, b, "uniform")], pairs.loc[(a, b, "gauss")]
            words = (verdict_words(g.verdict, g.tolerance) if u.verdict == g.verdict else
                     f"{verdict_words(u.verdict, u.tolerance)} → {verdict_words(g.verdict, g.tolerance)}")
            detail.append(f"`{a}` vs `{b}` {signed(u['diff'])} ± {u.half_width:.2f} pp → "
                          f"{signed(g['diff'])} ± {g.half_width:.2f} pp, {words}")
        lines.append(f"- **{number}.** {'Same verdict' if row['holds under both'] else 'The verdict changes'} with "
                     "Gaussian factors" + (": " + "; ".join(detail) + "." if detail else "."))
    return "\n".join(lines)


def lede(verdicts: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The article's opening findings, in words, from the verdicts and the final accuracies of the post's nets
    (those of them in ``rows``)."""
    finals = final_epochs(rows)
    mean, seeds = finals.groupby("variant").test_accuracy.mean(), finals.groupby("variant").seed.nunique()
    weights = finals.groupby("variant").weights.first()
    claims = {n: c[0].lower() + c[1:].rstrip(".") for n, c in verdicts.groupby("observation").claim.first().items()}
    first = verdicts[verdicts.verdict != "not tested"].groupby("observation").first()
    effect = {n: (f"{signed(first.loc[n, 'diff'])} pp (95% CI {signed(first.loc[n, 'low'])} to "
                  f"{signed(first.loc[n, 'high'])}, `{first.loc[n, 'a']}` vs `{first.loc[n, 'b']}`), "
                  f"**{verdict_words(first.loc[n, 'verdict'], first.loc[n, 'tolerance'])}**"
                  if n in first.index else "**not tested**") for n in claims}
    listing = "; ".join(f"({n}) {claims[n]}: {effect[n]}" for n in claims)
    u_shape = f"{ku.IMAGE_FACTORS[0]}×{ku.HIDDEN_FACTORS[0]}"  # as the post writes U, V ∈ R^{28×25}
    text = [f"In 2018 Kento Nozawa replaced the {ku.IMAGE_SIZE}×{ku.HIDDEN_SIZE} weight matrix of an MNIST MLP with "
            f"a Kronecker product U⊗V of two {u_shape} matrices"
            + (f", shrinking the net from {weights['original']:,} weights to {weights['two_kron']:,}," if
               {"original", "two_kron"} <= set(weights.index) else "")
            + " and reported that performance did not drop."]
    kron_nets = [v for v in ku.VARIANTS if "kron" in v and v in mean.index]
    others = [v for v in mean.index if v not in kron_nets]
    names = {"original": "the dense original", "width10": "an equal-budget dense net"}
    ran = ([f"his {count(len(kron_nets), 'Kronecker net')}"] if kron_nets else []) + [
        names.get(v, f"`{v}`") for v in others]
    text.append(f"We reran {join_words(ran)} with his recipe on {number_word(seeds.min())} seeds each.")
    if {"original", "two_kron", "one_kron", "width10"} <= set(mean.index):
        text.append(f"After {epochs_phrase(finals.epoch.max())} the dense net reaches {mean['original']:.2f}%, the "
                    f"Kronecker input layer {mean['two_kron']:.2f}% ({mean['one_kron']:.2f}% with tied factors), and "
                    f"the dense net with the same budget only {mean['width10']:.2f}%.")
    else:
        text.append(f"After {epochs_phrase(finals.epoch.max())}: {ranked_values(mean, 2)}.")
    text.append(f"Measured against the seed noise, with our verdict on each of the post's "
                f"{count(len(claims), 'observation')} after its effect: {listing}.")
    return " ".join(text)


#: How the conclusion files an observation, by its comparisons' verdicts.
REAL_LOSS = {"holds, real loss", "real loss, size unsettled", "fails, real loss"}


def conclusion_group(group: pd.DataFrame) -> str:
    """'right' when every comparison holds, 'missed' when one shows a real loss the claim leaves out, 'wrong' when
    one fails outright, else 'unsettled'."""
    verdicts = set(group.verdict)
    if verdicts == {"holds"}:
        return "right"
    if verdicts & REAL_LOSS:
        return "missed"
    return "wrong" if "fails" in verdicts else "unsettled"


def effect_with_errors(r) -> str:
    """'`two_kron` vs `original` -0.40 pp (95% CI -0.47 to -0.33; test error 1.84% → 2.24%, 22% more mistakes)'."""
    return f"`{r.a}` vs `{r.b}` {signed(r.diff)} pp (95% CI {signed(r.low)} to {signed(r.high)}; {error_rates(r)})"


def conclusion(verdicts: pd.DataFrame, by_init: pd.DataFrame) -> str:
    """Where the post was right, what it missed (a real loss it does not report), where it was wrong and what the
    runs cannot settle, each observation with its effects, from the verdicts and their robustness to the init."""
    robust = init_robustness(by_init)["holds under both"] if "gauss" in set(by_init.init) else None
    heads = {"right": "Where the post was right.", "missed": "What it missed.", "wrong": "Where it was wrong.",
             "unsettled": "What these runs cannot settle."}
    parts: dict[str, list[str]] = {key: [] for key in heads}
    for n, group in verdicts.groupby("observation", sort=True):
        key, claim = conclusion_group(group), group.claim.iloc[0]
        tested = [effect_with_errors(r) for r in group.itertuples() if r.verdict != "not tested"]
        text = f"({n}) {claim}"
        if key == "missed":
            text += f" The loss is real: {join_words(tested)}. Verdict: {observation_verdict(group)}."
        elif key != "right":
            text += (f" {join_words(tested)}." if tested else "") + f" Verdict: {observation_verdict(group)}."
        if robust is not None:
            text += (" Both initialisations agree." if robust[n]
                     else " The Gaussian initialisation gives another verdict.")
        parts[key].append(text)
    return "\n\n".join(f"**{heads[key]}** " + " ".join(texts) for key, texts in parts.items() if texts)


def limitations(rows: pd.DataFrame, settings: ku.TrainSettings, recipes: int, device: str | None = None) -> str:
    """What these results cannot say, with the counts they rest on: the data, the one net shape, the recipes, the
    seeds and, where the sweep recorded it, the device."""
    seeds = final_epochs(rows).groupby("variant").seed.nunique()
    spread = (count(seeds.min(), "seed") if seeds.min() == seeds.max()
              else f"{number_word(seeds.min())} to {count(seeds.max(), 'seed')}")
    ran = f", trained on {device.upper() if device == 'cpu' else device}" if device else ""
    whose = "the post's one recipe" if is_post_recipe(settings) else "one recipe"
    return (f"Everything here is one small net on one kind of data: a {ku.IMAGE_SIZE}-{ku.HIDDEN_SIZE}-"
            f"{ku.NUM_CLASSES} MLP on {settings.dataset.upper() if settings.dataset == 'mnist' else settings.dataset} "
            f"(Part 3 adds Fashion-MNIST), with {whose} ({recipe(settings)}) on this page and "
            f"{count(recipes, 'recipe')} on the why page, {spread} per net{ran}. It says nothing about convolutional "
            "or transformer nets, larger inputs, other optimisers at scale, or speed on accelerators; the seed "
            "intervals cover training noise, not the choice of dataset or architecture.")


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
