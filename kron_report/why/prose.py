"""The 'why' page's sentences. Every function turns structured results into Markdown and computes no statistic
itself. The numbers live in the page's tables; a sentence carries the reasoning and at most a couple of them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..claims import weakest_margin
from ..recipes import recipe_family, split_recipe
from ..words import (
    count,
    epochs_phrase,
    gap_phrase,
    interval,
    join_words,
    recipe,
    recipe_name_of,
    seeds_phrase,
    signed,
)

__all__ = ["why_method", "control_sentence", "permutation_summary", "lead_summary", "permutation_caption",
           "random_feature_summary", "parametrization_summary",
           "fields_caption", "off_grid_summary", "underfit_sentence", "recipe_intro", "recipe_summary",
           "recipe_caption", "tuned_gap_sentence", "why_lede", "why_conclusion"]


def _names(nets: Sequence[str]) -> str:
    """'`a`', '`a` and `b`'."""
    return join_words([f"`{v}`" for v in nets])


def _below(c: Mapping) -> str:
    """A loss as a positive size with its interval: '1.26 points (95% CI 1.05 to 1.46)'."""
    return f"{-c['diff']:.2f} points (95% CI {-c['high']:.2f} to {-c['low']:.2f})"


def _above(c: Mapping) -> str:
    """A lead with its interval: '2.48 points (95% CI 2.19 to 2.77)'."""
    return f"{c['diff']:.2f} points (95% CI {c['low']:.2f} to {c['high']:.2f})"


def _comparisons(table: pd.DataFrame, diff: str, low: str = "low", high: str = "high") -> list[dict]:
    """The rows of ``table`` as comparison dicts (variant, diff, low, high) for :func:`claims.weakest_margin`."""
    return [dict(variant=r["variant"], diff=r[diff], low=r[low], high=r[high]) for _, r in table.iterrows()]


def why_method(settings: ku.TrainSettings, permuted: ku.TrainSettings, seeds: Sequence[int]) -> str:
    """How sections 1 to 4 trained their nets, and how the page compares them (section 5 says its own)."""
    return (f"*Method.* Sections 1 to 4 train every net with {recipe_name_of(settings)} ({recipe(settings)}). "
            f"They run {seeds_phrase(seeds)} and reuse another page's runs where the settings are the same, so the "
            f"post's nets bring more seeds; each table gives its seeds. The permutation of section 1 is drawn with "
            f"`torch.randperm` from seed {permuted.permutation_seed} and stored beside its runs. Differences are "
            "Welch 95% intervals.")


def control_sentence(control: Mapping) -> str:
    """Whether the nets that absorb any permutation came out level: the experiment's own check (numbers in the
    table under it)."""
    nets, tol = _names(control["nets"].variant), f"±{control['tolerance']:g} points"
    if control["verdict"] == "holds":
        return (f"**The control holds.** The nets whose input layer absorbs any permutation, {nets}, come out level: "
                f"each one's whole interval of change lies within {tol}.")
    if control["verdict"] == "fails":
        return (f"**The control fails.** The nets whose input layer absorbs any permutation, {nets}, should come out "
                f"level, but an interval of change lies wholly outside {tol}. The comparisons below are suspect until "
                "this is explained.")
    return (f"**The control is not settled.** The nets whose input layer absorbs any permutation, {nets}, should "
            f"come out level; their intervals of change neither all lie within {tol} nor outside it. More seeds would "
            "settle it.")


def permutation_summary(effects: pd.DataFrame) -> str:
    """What shuffled pixels do to the nets whose input layer follows the image's grid: which lose beyond the seed
    noise, with the weakest of those losses (:func:`claims.weakest_margin`), never a count of them."""
    grid = effects[~effects.control]
    losers, rest = grid[grid.outcome == "loss"], grid[grid.outcome != "loss"]
    if losers.empty:
        return ("No net whose input layer follows the image's grid loses beyond the seed noise on shuffled pixels: "
                "the grid is worth nothing measurable to them.")
    weak = weakest_margin(_comparisons(losers, "change"))
    text = ("Every net whose input layer follows the image's grid loses accuracy on shuffled pixels" if rest.empty
            else f"Of the nets whose input layer follows the image's grid, {_names(losers.variant)} lose accuracy on "
                 "shuffled pixels")
    text += (f", beyond the seed noise: the loss closest to zero, `{weak['variant']}`'s, is still at least "
             f"{-weak['high']:.2f} points at the near end of its 95% interval.")
    if not rest.empty:
        text += f" For {_names(rest.variant)} the change is within the seed noise."
    return text


def lead_summary(w: Mapping) -> str:
    """Whether the Kronecker net's lead over the dense net of its budget survives shuffled pixels, from
    :func:`why.analysis.why_answer`; where it does, what that lead cannot tell apart (hidden width and structure)."""
    lead = w["lead"]
    kron, dense, after = lead["kron"], lead["dense"], lead["permuted"]
    if not lead["survives"]:
        return (f"On shuffled pixels, `{kron}` is no longer ahead of `{dense}`, the dense net of its budget, beyond the "
                f"seed noise: the lead's 95% interval runs from {signed(after['low'])} to {signed(after['high'])} "
                "points. What it had over that net came from the image grid." if after["high"] > 0 else
                f"On shuffled pixels, `{kron}` falls behind `{dense}`, the dense net of its budget. What it had over "
                "that net came from the image grid.")
    (h_kron, h_dense), (r_kron, r_dense) = w["hidden"], w["ranks"]
    rank = (" (and in both nets the input layer's rank equals its width, so rank cannot be told apart from width "
            "either)" if (r_kron, r_dense) == (h_kron, h_dense) else
            f", and input-layer ranks of {r_kron:,} against {r_dense:,}")
    return (f"On shuffled pixels, `{kron}` is still ahead of `{dense}`, the dense net of its budget: the lead's whole "
            f"95% interval lies above zero, from {after['low']:.2f} points up. That part of the lead needs no image "
            f"grid. But it compares {h_kron:,} hidden units with {h_dense:,}{rank}, so it could be width alone; "
            "section 2 separates the two.")


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
    return (f"Receptive fields of {count(len(units), 'hidden unit')} of <code>two_kron</code> (seed {seed}, "
            f"{epochs_phrase(epochs)}): top, trained on MNIST; bottom, trained on permuted MNIST and put back on the "
            "image grid (red positive, blue negative). Each field is still a rank-1 product of a row of U and a row "
            "of V, but on the permuted grid, so on the image it is scattered.",
            f"Two blocks of {len(units)} small red-and-blue maps of 28 by 28 pixels. The upper block shows striped "
            "patterns aligned with the image's rows and columns; the lower block shows speckled patterns with no "
            "visible structure.")


def off_grid_summary(table: pd.DataFrame) -> str:
    """What factors that cut across the image's rows cost against the aligned net: which lose beyond the seed noise,
    with the weakest of those losses (:func:`claims.weakest_margin`), and whether they had more weights."""
    losers, rest = table[table.outcome == "loss"], table[table.outcome != "loss"]
    more = " even with more weights" if bool((losers.weights > losers.aligned_weights).all()) else ""
    if losers.empty:
        return "Misaligned factors cost nothing measurable here: no off-grid layer is behind the aligned one beyond the seed noise."
    weak = weakest_margin(_comparisons(losers, "diff"))
    text = ("Misaligned factors lose" + more + ": every off-grid layer is behind the aligned one beyond the seed noise"
            if rest.empty else
            f"Some misaligned factors lose{more}: {_names(losers.variant)} behind the aligned one beyond the seed noise")
    text += (f"; the closest, `{weak['variant']}`, is behind by at least {-weak['high']:.2f} points across its "
             "95% interval.")
    if not rest.empty:
        text += f" For {_names(rest.variant)} the difference is within the seed noise."
    return text


#: How :func:`stats.fit_diagnosis` reads, for one net and for several.
_FIT_WORDS = {"underfits": ("underfits: its final training loss is higher than `{ref}`'s beyond the seed noise",
                            "underfit: their final training loss is higher than `{ref}`'s beyond the seed noise"),
              "generalises worse": ("generalises worse: it reaches about `{ref}`'s training loss but scores lower",
                                    "generalise worse: they reach about `{ref}`'s training loss but score lower"),
              "fits better": ("fits the training set better than `{ref}` yet scores lower on the test set",
                              "fit the training set better than `{ref}` yet score lower on the test set"),
              "no gap": ("is not behind `{ref}` on the test set beyond the seed noise",
                         "are not behind `{ref}` on the test set beyond the seed noise")}


def underfit_sentence(fits: Sequence[Mapping]) -> str:
    """What the fit diagnoses (:func:`stats.fit_diagnosis`) say, grouped by reading; numbers in
    :func:`words.fit_table`."""
    groups: dict[str, list[str]] = {}
    for d in fits:
        groups.setdefault(d["kind"], []).append(d["net"])
    ref = fits[0]["reference"]
    parts = [f"{_names(nets)} {_FIT_WORDS[kind][len(nets) > 1].format(ref=ref)}" for kind, nets in groups.items()]
    text = "By the table, " + "; ".join(parts) + "."
    if "underfits" in groups:
        text += " Underfitting is what a better recipe or more capacity could help; section 5 tries the recipe."
    return text


def recipe_intro(recipes: Mapping[str, ku.TrainSettings], tuning_seeds: Sequence[int]) -> str:
    """What the recipe search tries (its families; the rates are on the figure's axis), on which images, and that the
    test set plays no part in the choice."""
    first = next(iter(recipes.values()))
    what = {"SGD": f"SGD with the post's momentum {first.momentum:g} at a constant rate",
            "SGD, cosine": "the same annealed to zero along a cosine",
            "SGD, per-tensor rates": "the same with per-tensor rates (structured nets only; below)",
            "Adam": "Adam (its defaults otherwise)"}
    families = list(dict.fromkeys(recipe_family(s) for s in recipes.values()))
    each = " at each learning rate of the figure" if len(recipes) > len(families) else ""
    plain = sum(s.parametrization != "structured" for s in recipes.values())
    tries = (f"Each net tries {count(len(recipes), 'recipe')}" if plain == len(recipes) else
             f"Each net tries {plain} recipes, a net with a structured layer {len(recipes)}")
    return (f"{tries}: {join_words([what.get(f, f) for f in families])}{each}. "
            f"It trains for {epochs_phrase(first.epochs)} on {seeds_phrase(tuning_seeds)}, on the first "
            f"{ku.train_size(first.dataset) - first.validation:,} training images, and keeps the recipe with the highest "
            f"mean final accuracy on the last {first.validation:,}, which it never trains on. **The test set plays no "
            "part in the choice**: the selection reads only the validation column (a test checks this), and the "
            "chosen recipe's test accuracy is read afterwards.")


def recipe_summary(tuned: pd.DataFrame, reference: str = "original", net: str = "two_kron",
                   default_recipe: str | None = None) -> str:
    """Against ``reference`` on its own chosen recipe: which nets stay behind beyond the seed noise (with the weakest
    of those gaps, :func:`claims.weakest_margin`), which are level, which ahead; with ``default_recipe``, whether
    ``net`` is behind on that recipe too, in the same runs."""
    others = tuned[tuned.variant != reference]
    if others.empty or "outcome" not in others:
        return f"Only `{reference}` was tuned: there is no gap to compare."
    losers, ties, wins = (others[others.outcome == o] for o in ("loss", "tie", "win"))
    parts = []
    if not losers.empty:
        weak = weakest_margin(_comparisons(losers, "gap"))
        parts.append(f"On their own recipes, {_names(losers.variant)} stay{'s' if len(losers) == 1 else ''} behind "
                     f"`{reference}` (on its own recipe) beyond the seed noise"
                     + (f"; the closest, `{weak['variant']}`, by at least {-weak['high']:.2f} points."
                        if len(losers) > 1 else f", by at least {-weak['high']:.2f} points."))
    if not ties.empty:
        seeds = count(int(ties.seeds.min()), "seed")
        parts.append(f"For {_names(ties.variant)} the interval reaches zero, so {seeds} cannot tell whether "
                     f"{'it is' if len(ties) == 1 else 'they are'} behind.")
    if not wins.empty:
        parts.append(f"Ahead of `{reference}` on their own recipes: {_names(wins.variant)}.")
    if default_recipe is not None and net in set(losers.variant):
        r = losers[losers.variant == net].iloc[0]
        if r.default_high < 0:
            parts.append(f"With both on *{default_recipe}*, in the same runs (last column), `{net}` is behind as well: "
                         "the gap does not come from the recipe.")
    return " ".join(parts)


def recipe_caption(scores: pd.DataFrame, chosen: pd.Series) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.recipe_figure`."""
    families = list(dict.fromkeys(split_recipe(r)[0] for r in scores.recipe))
    return ("Learning-rate sensitivity: final accuracy on the held-out validation images against the learning rate, "
            "mean and 95% CI over seeds, one line per recipe family, one panel per net with its own scale; the ring "
            "marks the recipe the net keeps, and a triangle on a panel's floor a recipe far below its best. The test "
            "set is not shown: it plays no part in the choice.",
            f"{count(len(chosen), 'small panel').capitalize()}, one per net, each with a line for "
            f"{join_words([repr(f) for f in families])} across the learning rates; "
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


def _answer(w: Mapping) -> str:
    """The first question's answer with its key numbers, from :func:`why.analysis.why_answer`."""
    net, dense, after = w["net"], w["dense"], w["lead"]["permuted"]
    drop = dict(diff=w["drop"].change, low=w["drop"].low, high=w["drop"].high)
    if w["answer"] == "both":
        return (f"Partly the fit to the image: shuffling the pixels costs `{net}` {_below(drop)}, while the dense nets "
                f"that cannot see the grid stay level. Partly something that needs no grid: on shuffled pixels it is "
                f"still {_above(after)} ahead of `{dense}`, the dense net of its budget (section 1). "
                + _RF_ANSWER[w.get("random_features", "unsettled")].format(hidden=w["hidden"][0]))
    if w["answer"] == "grid":
        return (f"The fit to the image: shuffling the pixels costs `{net}` {_below(drop)}, and its lead over `{dense}`, "
                "the dense net of its budget, does not survive (section 1).")
    if w["answer"] == "rank":
        return (f"Not the fit to the image: shuffling the pixels costs `{net}` nothing measurable, and it stays "
                f"{_above(after)} ahead of `{dense}`, the dense net of its budget (section 1).")
    return ("This run cannot tell: the permutation's control does not hold, or the net neither loses on shuffled pixels "
            "nor keeps a clear lead (section 1).")


#: What the random-feature control says about the lead that survives shuffled pixels (:func:`random_feature_summary`).
_RF_ANSWER = {
    "width": "That part is hidden width: {hidden:,} random hidden units, with only the output layer trained, do as well "
             "(section 2).",
    "factors": "That part is more than hidden width: the learned factors beat {hidden:,} random hidden units (section 2).",
    "unsettled": "Whether that part is more than hidden width, the random-feature control cannot settle (section 2).",
}


#: The same, for the conclusion, which states no numbers.
_RF_CONCLUSION = {
    "width": ("That part is hidden width: a frozen random input layer of the same width does as well, so what needs no "
              "grid is the wide hidden layer the Kronecker factors pay for cheaply, not what they learn."),
    "factors": ("That part is more than hidden width: the learned factors beat a frozen random input layer of the same "
                "width, so they learn something a random wide layer lacks, even without the grid."),
    "unsettled": "Whether that part is more than hidden width, the random-feature control cannot settle.",
}


def random_feature_summary(rf: Mapping, kron: str = "two_kron", narrow: str = "width10") -> str:
    """The random-feature control's verdict on the permuted pixels (:func:`why.analysis.random_feature_effects`),
    without numbers (they are in the table above it)."""
    label = rf["datasets"][-1]
    if rf["answer"] == "factors":
        return (f"**More than width.** On {label}, the trained `{kron}` beats {rf['hidden']:,} random dense units beyond the seed "
                f"noise: its lead over `{narrow}` is not hidden width alone.")
    if rf["answer"] == "width":
        return (f"**Width explains it.** On {label}, {rf['hidden']:,} random dense units, with only the output layer trained, beat "
                f"`{narrow}` beyond the seed noise, and the trained `{kron}` does not beat them: its lead over "
                f"`{narrow}` there is what a wide hidden layer gives, not what the Kronecker factors learn.")
    return (f"**Not settled.** On {label}, neither comparison is clear of the seed noise: {rf['hidden']:,} random units "
            f"{'beat' if rf['width'] == 'win' else 'do not clearly beat'} `{narrow}`, and the trained `{kron}` does "
            "not clearly beat them.")


def parametrization_summary(effect: pd.DataFrame) -> str:
    """Whether per-tensor learning rates beat plain SGD for the structured nets, on the validation split
    (:func:`recipes.family_effect`; the intervals are :func:`why.analysis.family_table`'s last column), both at a
    constant rate, as the search tried them."""
    if effect.empty:
        return ""
    wins, losses = (effect[effect.outcome == o] for o in ("win", "loss"))
    rest = effect[effect.outcome == "tie"]
    parts = []
    if not wins.empty:
        parts.append(f"Per-tensor rates help {_names(wins.variant)}: at its best rate, SGD with them beats plain SGD at "
                     "its best on the validation images beyond the seed noise. Both maxima are picked on the same "
                     "validation numbers, so the gain is if anything overstated.")
    if not losses.empty:
        parts.append(f"Per-tensor rates hurt {_names(losses.variant)}: plain SGD at its best rate is ahead beyond the "
                     "seed noise.")
    if not rest.empty:
        parts.append(f"For {_names(rest.variant)}, SGD with per-tensor rates and plain SGD, each at its best constant "
                     "rate, are level within the seed noise (the last column). The search did not combine per-tensor "
                     "rates with the cosine schedule, nor change the initialisation, so this does not rule out every "
                     "parametrisation.")
    return " ".join(parts)


def _misaligned(w: Mapping) -> str:
    """What factors cut across the image's rows cost, in words (numbers in section 3)."""
    if not w["misaligned"]:
        return "Factors cut across the image's rows cost nothing measurable (section 3)."
    if w["misaligned"] < w["off_grid"]:
        return "Some factorings across the image's rows cost accuracy, others nothing measurable (section 3)."
    return "Factors cut across the image's rows cost accuracy too, even with more weights (section 3)."


def why_lede(w: Mapping, tuned: pd.DataFrame, reference: str = "original", net: str = "two_kron") -> str:
    """The page's findings first, with their key numbers: what shuffling the pixels and misaligned factors do, then
    whether each net's own recipe closes the gap."""
    text = [f"**Why does it work?** {_answer(w)} {_misaligned(w)}"]
    if net in set(tuned.variant):
        r = tuned[tuned.variant == net].iloc[0]
        gap = dict(diff=r.gap, low=r.low, high=r.high)
        own = "With each net's recipe (learning rate, schedule, optimiser, per-tensor rates) chosen on held-out images"
        text.append("**Is the remaining gap the recipe?** " + (
            f"No. {own}, `{net}` is still behind `{reference}` by {_below(gap)}; section 5." if r.outcome == "loss" else
            f"Perhaps. {own}, `{net}` is level with `{reference}` within the seed noise "
            f"({signed(r.gap)} points, 95% CI {signed(r.low)} to {signed(r.high)}; section 5)." if r.outcome == "tie" else
            f"It is more than that. {own}, `{net}` comes out ahead of `{reference}` by {_above(gap)}; section 5."))
    return "\n\n".join(text)


def why_conclusion(w: Mapping, tuned: pd.DataFrame, fits: Sequence[Mapping] = (), reference: str = "original",
                   net: str = "two_kron", per_tensor: pd.DataFrame | None = None) -> str:
    """What the page's findings mean, in words: the numbers are in the lede and the sections' tables."""
    across = " or cutting its factors across the rows" if w["off_grid"] and w["misaligned"] == w["off_grid"] else ""
    first = {
        "both": ("The Kronecker layer works partly because its factors fit the image: they read its rows and columns, "
                 f"and shuffling the pixels{across} costs it accuracy while the dense nets, which cannot see the grid, "
                 "stay level. Part of its advantage needs no grid: on shuffled pixels it still beats a dense net with "
                 "the same weight budget. " + _RF_CONCLUSION[w.get("random_features", "unsettled")]),
        "grid": ("The Kronecker layer works because its factors fit the image: shuffling the pixels"
                 f"{across} costs it accuracy and its lead over the dense net of its budget, while the dense nets, "
                 "which cannot see the grid, stay level."),
        "rank": ("The Kronecker layer does not lean on the image grid here: shuffling the pixels costs it nothing "
                 "measurable, and it keeps its lead over the dense net of its budget. " + _RF_CONCLUSION[
                     w.get("random_features", "unsettled")]),
        "unsettled": ("This page cannot yet say why the Kronecker layer works: the permutation experiment did not "
                      "separate the fit to the image from the rest."),
    }[w["answer"]]
    if net not in set(tuned.variant):
        return first
    r = tuned[tuned.variant == net].iloc[0]
    underfit = any(d["kind"] == "underfits" for d in fits)
    second = {
        "loss": ("Its remaining gap to the full dense net is not the recipe: the best recipe each net found on "
                 f"held-out images still leaves `{net}` behind `{reference}`."
                 + (" Nor do per-tensor learning rates that give its factors a dense layer's step close it: at a "
                    "constant rate they do not beat plain SGD." if per_tensor is not None and net in set(per_tensor.variant)
                    and per_tensor.set_index("variant").outcome[net] != "win" else "")
                 + (" The Kronecker nets also underfit, so capacity is the next suspect; this page does not test it."
                    if underfit else "")),
        "tie": ("Its remaining gap to the full dense net may be the recipe: with each net's own recipe, chosen on "
                f"held-out images, `{net}` is not behind `{reference}` beyond the seed noise."),
        "win": ("Its remaining gap to the full dense net was the recipe: with each net's own recipe, chosen on held-out "
                f"images, `{net}` comes out ahead of `{reference}`."),
    }[r.outcome]
    return first + "\n\n" + second
