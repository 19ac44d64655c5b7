"""The 'why' page's sentences. Every function turns structured results into Markdown and computes no statistic
itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..words import (
    count,
    epochs_phrase,
    gap_phrase,
    interval,
    join_words,
    recipe,
    recipe_name_of,
    seeds_phrase,
    seeds_statement,
    signed,
)

__all__ = ["why_method", "control_sentence", "permutation_note", "permutation_summary", "permutation_caption",
           "fields_caption", "off_grid_summary", "recipe_intro", "recipe_summary", "recipe_caption",
           "tuned_gap_sentence", "why_answer_sentence", "misaligned_sentence", "why_lede", "why_conclusion"]


def why_method(settings: ku.TrainSettings, permuted: ku.TrainSettings, recipes: Mapping[str, ku.TrainSettings],
               seeds: Sequence[int], tuning_seeds: Sequence[int]) -> str:
    """How the page's nets were trained, on which data and seeds."""
    first = next(iter(recipes.values()))
    return (f"Sections 1 and 2 train every net with {recipe_name_of(settings)} ({recipe(settings)}) on "
            f"{seeds_phrase(seeds)}, "
            f"and reuse the runs of the other pages where the settings are the same (so the post's nets show all "
            f"their seeds). Section 1 feeds every image through one fixed permutation of its {ku.IMAGE_SIZE} pixels, "
            f"drawn with `torch.randperm` from seed {permuted.permutation_seed} and stored beside its runs. Section 4 "
            f"holds out the last {first.validation:,} training images, trains on the other "
            f"{ku.train_size(first.dataset) - first.validation:,}, and tries {count(len(recipes), 'recipe')} for "
            f"{epochs_phrase(first.epochs)} each on {seeds_phrase(tuning_seeds)}. Differences are Welch 95% intervals.")


def control_sentence(control: Mapping) -> str:
    """Whether the nets that absorb any permutation came out level: the experiment's own check."""
    nets = "; ".join(f"`{r.variant}` {interval(r.change, r.low, r.high, (r.permuted_n, r.n))}"
                     for r in control["nets"].itertuples())
    tol = f"±{control['tolerance']:g} pp"
    if control["verdict"] == "holds":
        return (f"**The control holds.** The nets whose input layer absorbs any permutation come out level with their "
                f"MNIST numbers, each interval inside {tol}: {nets}.")
    if control["verdict"] == "fails":
        return (f"**The control fails.** The nets whose input layer absorbs any permutation should come out level "
                f"with their MNIST numbers, but one interval lies outside {tol}: {nets}. The comparisons below are "
                "suspect until this is explained.")
    return (f"**The control is not settled.** The nets whose input layer absorbs any permutation should come out "
            f"level; their intervals neither all lie inside {tol} nor outside it: {nets}. More seeds would settle it.")


def permutation_note(mnist: pd.DataFrame, permuted: pd.DataFrame, variants: Sequence[str]) -> str:
    """The permutation table's footnote: over which seeds each net's mean ± sd is taken, on each dataset."""
    return (f"*Mean ± sd over each net's seeds: on MNIST, {seeds_statement(mnist, variants)}; on permuted MNIST, "
            f"{seeds_statement(permuted, variants)}.*")


def permutation_summary(effects: pd.DataFrame, lead: Mapping) -> str:
    """Each other net's change from MNIST to permuted MNIST, and whether the Kronecker lead survives."""
    others = effects[~effects.control].sort_values("change")
    lines = [f"`{r.variant}` {r.mnist:.2f}% → {r.permuted:.2f}% ({interval(r.change, r.low, r.high, (r.permuted_n, r.n))})"
             for r in others.itertuples()]
    before, after = lead["mnist"], lead["permuted"]
    survives = ("**survives**: it is still ahead beyond the seed noise" if lead["survives"] else
                "**does not survive**: it is no longer ahead beyond the seed noise" if after["low"] <= 0 < after["high"]
                else "**turns into a loss**")
    return ("The other nets, from MNIST to permuted MNIST: " + "; ".join(lines) + ". "
            f"The lead of `{lead['kron']}` over `{lead['dense']}`, the dense net of its budget, is "
            f"{gap_phrase(before)} on MNIST and {gap_phrase(after)} on permuted MNIST: it {survives}.")


def permutation_caption(effects: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.permutation_figure`."""
    ordered = effects.sort_values("change")
    return ("Change in final test accuracy when every image goes through one fixed pixel permutation: permuted minus "
            "MNIST, with its 95% Welch interval. The dense and low-rank nets (black squares, orange triangles) are the "
            "control: their input layer meets the pixels through a dense matrix, which absorbs any permutation, so "
            "they should sit at zero.",
            f"A dot plot of {count(len(effects), 'net')}, largest drop first: " + ", ".join(
                f"{r.variant} {signed(r.change)} points" for r in ordered.itertuples()) + ".")


def fields_caption(units: Sequence[tuple[int, int]], epochs: int, seed: int) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.permuted_fields_figure`."""
    return (f"Receptive fields of {count(len(units), 'hidden unit')} of two_kron (seed {seed}, "
            f"{epochs_phrase(epochs)}): top, trained on MNIST; bottom, trained on permuted MNIST and put back on the "
            "image grid (red positive, blue negative). Each field is still a rank-1 product of a row of U and a row "
            "of V, but on the permuted grid, so on the image it is scattered.",
            f"Two blocks of {len(units)} small red-and-blue maps of 28 by 28 pixels. The upper block shows striped "
            "patterns aligned with the image's rows and columns; the lower block shows speckled patterns with no "
            "visible structure.")


def off_grid_summary(table: pd.DataFrame) -> str:
    """The off-grid Kronecker nets against the aligned one."""
    parts = []
    for r in table.itertuples():
        verdict = {"loss": "loses", "win": "wins", "tie": "is level"}[r.outcome]
        parts.append(f"`{r.variant}` ({r.weights:,} input weights) {verdict} against `{r.aligned}` "
                     f"({r.aligned_weights:,}): {r.mean:.2f}% against {r.aligned_mean:.2f}%, {interval(r.diff, r.low, r.high, (r.n, r.aligned_n))}.")
    losses = int((table.outcome == "loss").sum())
    more = bool((table.weights > table.aligned_weights).all())
    answer = (f"So a misaligned Kronecker layer {'with more weights ' if more else ''}loses to the aligned one "
              + ("in every case." if losses == len(table) else f"in {losses} of {len(table)} cases.")
              if losses else "So misaligned factors cost nothing measurable here.")
    return " ".join(parts) + " " + answer


def recipe_intro(recipes: Mapping[str, ku.TrainSettings], tuning_seeds: Sequence[int]) -> str:
    """What the recipe search tries, and that the test set plays no part in the choice."""
    first = next(iter(recipes.values()))
    return (f"Each net tries {join_words([f'*{name}*' for name in recipes])} (SGD with the post's momentum "
            f"{first.momentum:g}; Adam with its defaults), for {epochs_phrase(first.epochs)} on "
            f"{seeds_phrase(tuning_seeds)}, trained on the first {ku.train_size(first.dataset) - first.validation:,} "
            f"training images. Its recipe is the one with the highest mean final accuracy on the last "
            f"{first.validation:,} training images, which it never trains on. **The test set plays no part in the "
            "choice**: the selection function reads only the validation column (a test checks this), and the test "
            "accuracy of the chosen recipe is read afterwards.")


def recipe_summary(tuned: pd.DataFrame, reference: str = "original", default_recipe: str | None = None) -> str:
    """Each net's chosen recipe and, against the reference under its own chosen recipe, the test gap."""
    ref = tuned[tuned.variant == reference].iloc[0]
    parts = [f"`{reference}` picks *{ref.recipe}* ({ref.test}% on the test set)."]
    for r in tuned[tuned.variant != reference].itertuples():
        text = f"`{r.variant}` picks *{r.recipe}* ({r.test}%): {interval(r.gap, r.low, r.high, (r.seeds, ref.seeds))} against `{reference}`"
        if default_recipe is not None and not pd.isna(getattr(r, "default_gap", float("nan"))):
            text += (f", where both on *{default_recipe}* give "
                     f"{interval(r.default_gap, r.default_low, r.default_high)}")
        parts.append(text + ".")
    return " ".join(parts)


def recipe_caption(scores: pd.DataFrame, chosen: pd.Series) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.recipe_figure`."""
    return ("Final accuracy on the held-out validation images under each recipe, mean and 95% CI over seeds, one panel "
            "per net with its own scale; the filled marker is the recipe the net keeps. The test set is not shown: it "
            "plays no part in the choice.",
            f"{count(len(chosen), 'small panel').capitalize()}, one per net, each with "
            f"{count(scores.recipe.nunique(), 'point')}; "
            + "; ".join(f"{v} peaks at {r}" for v, r in chosen.items()) + ".")


def tuned_gap_sentence(post_gap: Mapping, tuned: pd.DataFrame | None, net: str = "two_kron",
                       reference: str = "original", settings: ku.TrainSettings = ku.TrainSettings()) -> str:
    """Page 1's sentence: the gap ``net`` - ``reference`` under Part 2's recipe (``settings``), and under each net's
    own recipe chosen on held-out data (None: the tuning runs for these settings do not exist yet)."""
    head = f"The gap `{net}` minus `{reference}` is {gap_phrase(post_gap)} under {recipe_name_of(settings)}"
    if tuned is None or net not in set(tuned.variant):
        return head + "; the tuned comparison (the [why page](why.html#recipes)) has not been run for these settings."
    r = tuned[tuned.variant == net].iloc[0]
    ref = tuned[tuned.variant == reference].iloc[0]
    return (head + f", and {interval(r.gap, r.low, r.high, (r.seeds, ref.seeds))} when each net gets its own recipe, "
            f"chosen on held-out validation images (*{r.recipe}* for `{net}`, *{ref.recipe}* for `{reference}`; "
            "the [why page](why.html#recipes)).")


def why_answer_sentence(w: Mapping) -> str:
    """The first question's answer in one or two sentences, from :func:`why.analysis.why_answer`."""
    net, d = w["net"], w["drop"]
    drop = f"Shuffling the pixels changes the accuracy of `{net}` by {interval(d.change, d.low, d.high, (d.permuted_n, d.n))}"
    lead = (f"it stays {w['lead_after']:.2f} pp ahead of `{w['dense']}`, the dense net of its budget "
            f"({w['lead_before']:.2f} pp on MNIST), so {w['kept']:.0%} of its lead survives without the image grid")
    rank = (f"the structure itself, whose input layer has matrix rank {w['ranks'][0]:,} against "
            f"{w['ranks'][1]:,} for `{w['dense']}`")
    if w["answer"] == "both":
        return (f"Both the fit to the image and the layer's rank. {drop}: that much is the fit to the image's rows "
                f"and columns. Yet {lead}: that part owes nothing to the grid; it is {rank}.")
    if w["answer"] == "grid":
        return f"The fit to the image. {drop}, and its lead over the dense net of its budget does not survive."
    if w["answer"] == "rank":
        return f"The rank. Shuffling the pixels costs `{net}` nothing measurable, and {lead}."
    return (f"This run cannot tell: the permutation's control does not hold, or the net neither loses on shuffled "
            f"pixels nor keeps a clear lead. {drop}.")


def misaligned_sentence(w: Mapping) -> str:
    """What factors cut across the image's rows cost, from :func:`why.analysis.why_answer`."""
    if not w["misaligned"]:
        return "Factors cut across the image's rows cost nothing measurable."
    r = w["worst"]
    return (f"Factors cut across the image's rows lose too, even with more weights: `{r['variant']}` ({r['weights']:,} "
            f"input weights) is {interval(r['diff'], r['low'], r['high'])} against the aligned "
            f"{r['aligned_weights']:,}-weight layer"
            + (f" ({w['misaligned']} of {w['off_grid']} misaligned shapes lose)." if w["off_grid"] > 1 else "."))


def why_lede(w: Mapping, tuned: pd.DataFrame, reference: str = "original", net: str = "two_kron") -> str:
    """The page's findings first: what shuffling the pixels and misaligned factors do, then what tuning does."""
    text = [f"**Why does a {w['weights']:,}-weight Kronecker layer work?** {why_answer_sentence(w)}",
            misaligned_sentence(w)]
    if net in set(tuned.variant):
        r = tuned[tuned.variant == net].iloc[0]
        text.append(f"**Is its remaining gap to the dense net the recipe?** With each net's learning rate and optimiser "
                    f"chosen on held-out images, `{net}` is {interval(r.gap, r.low, r.high)} against `{reference}`"
                    + (", still behind beyond the seed noise." if r.outcome == "loss" else
                       ", no longer behind beyond the seed noise." if r.outcome == "tie" else ", ahead."))
    return " ".join(text)


def why_conclusion(w: Mapping, tuned: pd.DataFrame, reference: str = "original", net: str = "two_kron") -> str:
    """The page's two questions answered in plain words, from :func:`why.analysis.why_answer` and the tuned gaps."""
    first = "**Why does it work?** " + why_answer_sentence(w) + " " + misaligned_sentence(w)
    if net not in set(tuned.variant):
        return first
    r = tuned[tuned.variant == net].iloc[0]
    default = ("" if pd.isna(getattr(r, "default_gap", float("nan"))) else
               f" (on the post's recipe, in the same runs: {interval(r.default_gap, r.default_low, r.default_high)})")
    second = (f"**Is the gap the recipe?** With each net's own recipe, chosen on held-out images, `{net}` is "
              f"{interval(r.gap, r.low, r.high)} against `{reference}`{default}. " + (
                  "The gap is not the recipe: it stays beyond the seed noise when each net has its own." if r.outcome == "loss"
                  else "The recipe explains it: with each net's own, the gap is within the seed noise." if r.outcome == "tie"
                  else "With each net's own recipe the Kronecker net comes out ahead."))
    if "gain" in tuned:
        ref = tuned[tuned.variant == reference].iloc[0]
        second += (f" Its own recipe changes `{reference}`'s test accuracy by {signed(ref.gain)} pp (*{ref.recipe}*) and "
                   f"`{net}`'s by {signed(r.gain)} pp (*{r.recipe}*), against the post's recipe in the same runs.")
    return first + "\n\n" + second
