"""Part 3's sentences: the short answers, each section's finding, the captions and alt text.

Every function turns structured results into Markdown and computes no statistic itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..claims import closeness, distinct_nets, weakest_margin, within
from ..stats import compare_final, final_epochs, mean_sd, outcome
from ..words import (
    ci_cell,
    count,
    epochs_phrase,
    join_words,
    number_word,
    recipe,
    seeds_phrase,
    seeds_counts,
    seeds_statement,
    signed,
)
from .budgets import TT_MATCH_TOLERANCE

__all__ = ["seeds_note", "beyond_method", "equal_budget_counts", "equal_budget_summary", "leaders_table",
           "family_summary", "kronecker_lead", "tied_vs_untied", "tied_table", "tt_budget_counts", "tt_summary",
           "tt_rank_summary", "against_two_kron", "t3f_intro", "t3f_summary", "t3f_lede", "compression_lede",
           "beyond_lede", "projection_summary", "compression_intro", "compression_summary", "compression_story",
           "dense_before_projection", "harder_answer", "harder_dataset_summary", "pareto_caption", "t3f_caption",
           "projection_caption", "monarch_summary"]


def seeds_note(rows: pd.DataFrame, variants: Sequence[str] | None = None) -> str:
    """A table's footnote: accuracies are mean ± sd over each net's seeds, and which nets have how many (per
    dataset, when ``rows`` hold several)."""
    if rows.dataset.nunique() > 1:
        return ("*Mean ± sd over each net's seeds: " + "; ".join(
            f"on {d}, {seeds_statement(part, variants)}" for d, part in rows.groupby("dataset", sort=False)) + ".*")
    return f"*Mean ± sd over each net's seeds: {seeds_statement(rows, variants)}.*"


def beyond_method(settings: ku.TrainSettings, t3f: ku.TrainSettings, rows: pd.DataFrame) -> str:
    """How every Part 3 net was trained, and on which seeds."""
    return (f"Every net is trained with the post's recipe ({recipe(settings)}) unless a section says otherwise. The t3f "
            f"tutorial's net is also trained with its own ({recipe(t3f)}). Each net is shown with all the seeds it has: "
            f"{seeds_counts(rows)}; Welch 95% intervals allow for unequal seed counts. The short answers first:")


def _floor(value: float) -> str:
    """A lower bound with two decimals, rounded down, so that 'or more' stays true (0.966 -> '0.96')."""
    import math
    return f"{math.floor(value * 100) / 100:.2f}"


def _margin(c: Mapping) -> str:
    """'+3.64 to +4.11 pp': an interval as a margin, for a sentence."""
    return f"{signed(c['low'])} to {signed(c['high'])} pp"


def equal_budget_counts(comparisons: pd.DataFrame) -> str:
    """The equal-budget finding in one sentence. The comparisons share baselines, so they are not counted as wins:
    the sentence states the weakest margin (:func:`claims.weakest_margin`) and names any pair that is not a win."""
    wins = comparisons[comparisons.outcome == "win"]
    others = comparisons[comparisons.outcome != "win"]
    if wins.empty:
        return "No Kronecker net is ahead of an equal-budget baseline beyond the seed noise."
    weakest = weakest_margin(wins.to_dict("records"))
    text = ("Every Kronecker net is ahead of both dense baselines of its budget" if others.empty else
            "The Kronecker nets are ahead of their equal-budget baselines except "
            + join_words([f"`{r.variant}` against `{r.baseline}` ({'behind' if r.outcome == 'loss' else 'level'})"
                          for r in others.itertuples()]))
    return (f"{text}; the narrowest winning margin, `{weakest['variant']}` over `{weakest['baseline']}`, is "
            f"{_margin(weakest)}.")


def equal_budget_summary(comparisons: pd.DataFrame) -> str:
    """Section 1's answer to 'is it the rank?' (the short answers above it give the margins): whether matrix rank and
    accuracy go together in every pair, said as the correlation it is."""
    wins = int((comparisons.outcome == "win").sum())
    higher = bool((comparisons["rank"] > comparisons.baseline_rank).all())
    if higher and wins == len(comparisons):
        return ("In every pair the Kronecker layer has the higher matrix rank and the higher accuracy. That is a "
                "correlation across these pairs, not proof that rank is the cause: section 3 compares layers of equal "
                "matrix rank.")
    return ("In every pair the Kronecker layer has the higher matrix rank, but not always the higher accuracy: rank "
            "alone does not explain it." if higher else "The Kronecker layer does not always have the higher matrix rank.")


def leaders_table(leaders: pd.DataFrame, unit: str = "weights") -> pd.DataFrame:
    """:func:`beyond.budgets.budget_leaders` for display: per span of nested budgets (of ``unit``), the net with the
    highest mean, the highest of any other family, and the difference with its interval (which says whether it leads)."""
    return pd.DataFrame({
        f"budget, {unit}": [f"≤ {r.low:,}" if r.low == r.high else f"≤ {r.low:,} to {r.high:,}" for r in leaders.itertuples()],
        "highest mean": list(leaders.net), "accuracy, %": [f"{m:.2f}" for m in leaders["mean"]],
        "highest, other family": [r if r else "–" for r in leaders.second],
        "difference, pp (95% CI)": ["–" if r.second is None else ci_cell(dict(diff=r.diff, low=r.ci_low, high=r.ci_high))
                                    for r in leaders.itertuples()]})


def family_summary(leaders: pd.DataFrame) -> str:
    """Which nets lead the nested budgets, counted as distinct nets (:func:`claims.distinct_nets`), and whether any
    lead is beyond the seed noise."""
    kron = leaders[leaders.family.str.startswith("Kronecker")]
    if kron.empty:
        return "No Kronecker net has the highest mean at any budget compared."
    nets = distinct_nets(list(kron.net))
    clear = distinct_nets(list(kron.net[kron.outcome == "win"]))
    top = kron.high.max()
    return (f"A Kronecker net has the highest mean at every budget up to {top:,} weights"
            + ("" if top == leaders.high.max() else "; above that, a net of another family leads")
            + f". The budgets are nested, so {'this is one net' if len(nets) == 1 else 'these are ' + count(len(nets), 'net')}: "
            + join_words([f"`{v}`" for v in nets]) + ". "
            + (f"The lead over every other family is beyond the seed noise only for {join_words([f'`{v}`' for v in clear])}."
               if clear else "None of these leads is beyond the seed noise."))


def kronecker_lead(leaders: pd.DataFrame) -> str:
    """The family finding for the short answers: :func:`family_summary`."""
    return family_summary(leaders)


def tied_vs_untied(gaps: pd.DataFrame) -> str:
    """Tied factors (U = V) against untied ones at the same Kronecker rank, from :func:`beyond.budgets.tied_untied_gaps`:
    the pairs share no net, so the sentence says whether any differs, and the widest loss the intervals allow."""
    if gaps.empty:
        return ""
    differ = gaps[gaps.outcome != "tie"]
    worst = gaps.low.min()
    return (("Tying the factors makes no difference beyond the seed noise at any Kronecker rank tried"
             if differ.empty else "Tying the factors changes accuracy beyond the seed noise for "
             + join_words([f"`{t}`" for t in differ.tied]))
            + f"; no interval allows a loss larger than {abs(worst):.2f} pp.")


def tied_table(gaps: pd.DataFrame) -> pd.DataFrame:
    """Tied minus untied factors at each Kronecker rank, with the interval and seeds."""
    return pd.DataFrame({"tied": list(gaps.tied), "untied": list(gaps.untied),
                         "tied − untied, pp (95% CI)": [ci_cell(r._asdict())
                                                        for r in gaps.itertuples()],
                         "seeds": [f"{r.n} + {r.untied_n}" for r in gaps.itertuples()]})


def tt_budget_counts(comparisons: pd.DataFrame) -> str:
    """Kronecker against tensor train at matching input-layer budgets in one clause (no full stop). Each pair has its
    own Kronecker net and its own tensor train, so the pairs are counted."""
    matched = comparisons[comparisons.within] if len(comparisons) else comparisons
    if matched.empty:
        return f"No tensor-train net has an input-layer budget within ±{TT_MATCH_TOLERANCE:.0%} of a Kronecker net's"
    counts = matched.outcome.value_counts()
    shared = matched.baseline.nunique() < len(matched)
    return (f"Against the tensor train of its input-layer budget (within ±{TT_MATCH_TOLERANCE:.0%}), the Kronecker "
            f"net is ahead in {number_word(counts.get('win', 0))} of {count(len(matched), 'pair')}, behind in "
            f"{number_word(counts.get('loss', 0))} and level in {number_word(counts.get('tie', 0))}"
            + (" (some Kronecker nets share a tensor train, so these are not independent tests)" if shared else ""))


def tt_summary(comparisons: pd.DataFrame) -> str:
    """The matching-budget comparison in words (the table holds each pair's numbers): the counts, and the Kronecker
    nets without a tensor train within the tolerance."""
    text = []
    for v, near in comparisons[~comparisons.within].groupby("variant", sort=False):
        text.append(f"The Kronecker net `{v}` has no tensor train within ±{TT_MATCH_TOLERANCE:.0%} of its input weights, so the table "
                    f"sets it against the nearest {'ones on each side' if len(near) == 2 else 'one'}.")
    return " ".join(text)


def tt_rank_summary(contrast: Mapping) -> str:
    """Matrix rank against TT-rank, from :func:`beyond.budgets.rank_contrast` (the table names the layers)."""
    c = contrast
    return (f"Matrix rank and TT-rank measure different things. The layer of `{c['lowest']}` has matrix rank "
            f"{c['lowest_rank']} but TT-ranks {c['lowest_tt']}. By contrast, {len(c['full'])} of the {c['layers']} layers "
            f"have the full matrix rank "
            f"{c['full_rank']}, at TT-ranks as low as {c['lowest_tt_of_full']}.")


def against_two_kron(c: Mapping) -> str:
    """'ahead of / behind / level with the post's `two_kron` (+0.20 to +0.30 pp)' from a comparison net - two_kron."""
    verdict = {"win": "ahead of", "loss": "behind", "tie": "level with"}[outcome(c)]
    return f"{verdict} the post's `two_kron` ({_margin(c)})"


def t3f_intro(t3f: ku.TrainSettings, seeds: Sequence[int], tutorial: Mapping) -> str:
    """What the t3f tutorial does and how we rerun it."""
    return (f"The tutorial trains it in Keras ({recipe(t3f)}) and reports {tutorial['accuracy']:.2f}% test "
            f"accuracy. We train it and the post's `two_kron` in PyTorch under that recipe and the post's, on "
            f"{seeds_phrase(seeds)}.")


def t3f_summary(t: Mapping) -> str:
    """The t3f comparison in words, from :func:`beyond.compression.t3f_comparison` (the table holds the numbers)."""
    tutorial, ours = t["tutorial"], t["adam"]
    inside = ours.min() <= tutorial["accuracy"] <= ours.max()
    same = t["params"] == tutorial["params"]
    return (f"Our `{t['net']}` has {'exactly the tutorial' if same else 'not the tutorial'}'s parameter count, and with "
            f"the tutorial's recipe the tutorial's number lies {'inside' if inside else 'outside'} the range of our "
            f"{count(len(ours), 'seed')}. Under the tutorial's recipe the tensor train is "
            f"{against_two_kron(t['vs_two_kron']['adam'])}; under the post's it is {against_two_kron(t['vs_two_kron']['sgd'])}.")


def t3f_lede(t: Mapping) -> str:
    """One sentence for the top of the page: does the t3f tutorial's net reproduce, and how it compares to two_kron."""
    inside = t["adam"].min() <= t["tutorial"]["accuracy"] <= t["adam"].max()
    return (f"The t3f tutorial's tensor-train net {'reproduces' if inside else 'does not reproduce'}: its reported "
            f"{t['tutorial']['accuracy']:.2f}% lies {'inside' if inside else 'outside'} the range of our seeds. Trained "
            f"with the post's recipe it is {against_two_kron(t['vs_two_kron']['sgd'])}.")


def _against_dense(f: Mapping, key: str) -> dict:
    """The compressed ``key`` ('tt' or 'kron') after fine-tuning minus the trained dense nets: a Welch comparison."""
    rows = pd.concat([pd.DataFrame(dict(dataset="-", variant=name, seed=range(len(values)), epoch=1,
                                        test_accuracy=list(values)))
                      for name, values in ((key, f[key]["after"]), ("dense", f["dense"]))])
    return compare_final(rows, key, "dense")


def compression_lede(f: Mapping, tutorial: Mapping) -> str:
    """One or two sentences: what compressing a trained dense layer costs at once, for each structure, and how close
    fine-tuning brings the worse of the two, worded by :func:`claims.closeness` (the whole interval, not the mean)."""
    lost = {k: f["dense"].mean() - f[k]["first"].mean() for k in ("tt", "kron")}
    worse = min(("tt", "kron"), key=lambda k: f[k]["after"].mean())
    return (f"Compressing a trained dense layer after the fact, as the t3f tutorial does, costs {lost['tt']:.0f} points "
            f"at once with a TT-SVD and {lost['kron']:.0f} with the nearest Kronecker sum. After "
            f"{epochs_phrase(f['epochs'])} of fine-tuning the worse of the two is "
            f"{_relative_to(closeness(_against_dense(f, worse)), 'the dense net')}.")


def _relative_to(words: str, other: str) -> str:
    """A :func:`claims.closeness` phrase set against ``other``: 'behind, but within 0.5 points of the dense net',
    'behind the dense net', 'level with it within the noise' and so on."""
    if words == "ahead":
        return f"ahead of {other}"
    if words == "behind":
        return f"behind {other}"
    if words == "not settled":
        return f"not distinguishable from {other} by these seeds"
    return f"{words} of {other}"


def beyond_lede(comparisons: pd.DataFrame, leaders: pd.DataFrame, tt: pd.DataFrame, t3f: Mapping,
                compression: Mapping | None = None, tutorial: Mapping | None = None, harder: Mapping | None = None,
                names: Sequence[str] = ()) -> str:
    """Part 3's short answers, one bullet per section, each linked to it."""
    bullets = [f"**Equal budgets** ([1](#budgets)). {equal_budget_counts(comparisons)}",
               f"**The best family at each budget** ([2](#plane)). {family_summary(leaders)}",
               f"**Tensor trains** ([3](#tensor-trains)). {tt_budget_counts(tt)}. {t3f_lede(t3f)}"]
    if compression is not None:
        bullets.append(f"**Compression after training** ([4](#projection)). {compression_lede(compression, tutorial)}")
    if harder is not None:
        bullets.append(f"**Fashion-MNIST** ([5](#fashion)). {harder_answer(harder, *names)}")
    return "\n".join(f"- {b}" for b in bullets)


def projection_summary(f: Mapping, dense_accuracy: float) -> str:
    """The projection finding in words, from :func:`beyond.compression.projection_findings`."""
    first, errors, top = f["first"], f["errors"], f["top_rank"]
    closer = f["update_error"] < errors.min() - 0.1
    text = [f"Right after projection the nets reach {first.min():.0f}% to {first.max():.0f}% "
            f"(chance is 10%): the trained dense layer is {'far from' if errors.min() > 0.5 else 'close to'} every "
            f"Kronecker sum of these ranks (relative error {_floor(errors.min())} or more).",
            f"Training moved the weights by {f['moved']:.0%} of their norm, and the change W − W₀ alone is "
            f"{'much' if closer else 'hardly'} closer to a Kronecker sum of rank {top} (relative error "
            f"{f['update_error']:.2f}), so "
            + ("the random initialisation left in W is a large part of what the projection cannot keep."
               if closer else "what training learned is not Kronecker-structured either.")]
    gains, longer, tune, epochs = f["gains"], f["longer"], f["finetune_epochs"], f["epochs"]
    if gains:
        text.append(f"After {epochs_phrase(tune)} of fine-tuning the projected nets lead the same structures trained "
                    f"from scratch for as long at {'every rank' if all(g > 0 for g in gains.values()) else 'some ranks'} "
                    "(the figure), but they had the dense net's training behind them: a head start, not a free lunch. "
                    + (f"Trained from scratch for {epochs_phrase(epochs)}, the same structures end higher at "
                       f"{'every rank' if len(longer) == len(gains) else 'ranks ' + join_words(list(map(str, longer)))}."
                       if longer else f"Even {epochs_phrase(epochs)} from scratch do not catch up with them."))
    return " ".join(text)


def compression_intro(compression: ku.TrainSettings, finetune: ku.TrainSettings, seeds: Sequence[int],
                      tutorial: Mapping, commit: str) -> str:
    """The t3f tutorial's compression experiment, and how we rerun it (the table holds the tutorial's numbers)."""
    return (f"The same t3f tutorial (commit `{commit}`) has a second experiment that asks this section's question. It "
            f"trains the dense net with Adam for {epochs_phrase(tutorial['epochs'])}, compresses its input layer with "
            f"`t3f.to_tt_matrix` to TT-rank {tutorial['tt_rank']}, and fine-tunes for "
            f"{epochs_phrase(tutorial['finetune_epochs'])}. We rerun it on {seeds_phrase(seeds)}, with {recipe(compression)}. "
            "We compress with a TT-SVD (tensorly's `tensor_train_matrix`, the algorithm of `to_tt_matrix`) and set "
            "beside it the nearest Kronecker sum of about the same input-layer budget.")


def compression_summary(f: Mapping, tutorial: Mapping) -> str:
    """The compression experiment in words, from :func:`beyond.compression.compression_findings`."""
    first, after = f["first_gap"], f["after_gap"]
    def side(gap):
        return {"win": "ahead of", "loss": "behind", "tie": "level with"}[outcome(gap)]
    return (f"Right after compression the tensor train is {side(first)} the Kronecker sum ({_margin(first)}); after "
            f"fine-tuning it is {side(after)} it ({_margin(after)}).")


def compression_story(projection: Mapping, f: Mapping) -> str:
    """Section 4's two experiments as one answer: which structure keeps more of a trained layer, and how fast
    fine-tuning gets the accuracy back."""
    tt, kron = f["tt"], f["kron"]
    error = min(tt["error"], kron["error"])
    gaps = [_against_dense(f, k) for k in ("tt", "kron")]   # each whole interval must lie within the margin
    margin = next((m for m in (0.25, 0.5, 1.0) if all(within(c, m) for c in gaps)), None)
    return ("**One story.** " + ("Neither structure at this budget keeps much of a trained dense layer"
                                  if error > 0.5 else "Both structures keep most of a trained dense layer")
            + f": the relative error is {_floor(error)} or more, for tensor trains and Kronecker sums alike. "
            + (f"Yet {epochs_phrase(f['epochs'])} of fine-tuning bring both to within {margin:g} "
               f"point{'s' if margin != 1 else ''} of the dense net: what the trained layer gives a compressed net is "
               "a head start more than its weights."
               if error > 0.5 and margin is not None else ""))


def dense_before_projection(rows: pd.DataFrame) -> str:
    """The dense net's accuracy before it is projected."""
    return (f"The dense `original` reaches {mean_sd(final_epochs(rows[rows.variant == 'original']).test_accuracy)}% "
            "before projection.")


def harder_answer(h: Mapping, easy_name: str, hard_name: str) -> str:
    """Does 'a Kronecker input layer costs almost nothing' hold on the harder dataset? One or two sentences, no
    ratio of the two costs (a ratio of two noisy estimates would need its own interval)."""
    hard, narrow = h["hard"]["cost"], h["hard"]["narrow"]   # narrow: width10 minus two_kron
    answer = {"fails": "No, not quite.", "holds": "Roughly, yes.",
              "holds, real loss": "Within the tolerance, yes, but the loss is real."}.get(h["verdict"], "Only partly.")
    hard_name = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}.get(hard_name, hard_name)
    return (f"{answer} On {hard_name} the Kronecker input layer costs {-hard['diff']:.2f} pp "
            f"({-hard['high']:.2f} to {-hard['low']:.2f}); against the equal-budget dense net "
            + (f"it still wins, by {-narrow['high']:.2f} to {-narrow['low']:.2f} pp."
               if narrow["high"] < 0 else "its advantage is not beyond the seed noise."))


def harder_dataset_summary(h: Mapping, easy_name: str, hard_name: str) -> str:
    """The harder dataset's answer: :func:`harder_answer` (the table holds both datasets' numbers)."""
    return harder_answer(h, easy_name, hard_name)


# --- Captions and alt text ------------------------------------------------------------

def pareto_caption(points: pd.DataFrame, rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the accuracy-weights plane, and of its accuracy-FLOPs panel when ``points`` has
    ``flops`` (:func:`beyond.budgets.flops_points`)."""
    best = points.loc[points["mean"].idxmax()]
    by_family = points.groupby("family")["mean"].max().sort_values(ascending=False)
    flops = "flops" in points
    caption = ("Final test accuracy against weight count" + (" (top) and against forward FLOPs per image (bottom, "
               "counted from each layer's shapes and spread over a batch of 1,000 images)" if flops else "")
               + ", log scale, one point per net: the mean over its seeds, bars its 95% interval. Lines join each "
               "family's Pareto frontier; nets far below the rest are named above the plot instead of squeezing the "
               "axis.")
    alt = (f"A scatter plot of accuracy against weights on a log scale, {count(len(points), 'net')} in "
           f"{count(len(by_family), 'family', 'families')}. The best net is {best.name} at {best['mean']:.1f} percent "
           f"with {int(best.weights):,} weights; the best member of each family reaches "
           + join_words([f"{fam} {acc:.1f}" for fam, acc in by_family.items()]) + " percent.")
    if flops:
        cheapest = points.loc[points.flops.idxmin()]
        alt += (f" Below it the same nets against FLOPs per image: the cheapest is {cheapest.name} at "
                f"{cheapest.flops:,.0f}, the best costs {best.flops:,.0f}.")
    return caption, alt


def t3f_caption(t: Mapping) -> tuple[str, str]:
    """(caption, alt text) of the t3f figure."""
    return (f"Test accuracy per epoch of the t3f tutorial's tensor-train net ({t['net']}) and the post's two_kron, "
            f"under the post's recipe (solid) and the tutorial's (dashed); mean over each net's seeds with its 95% "
            f"interval as a band, and the tutorial's reported number (star).",
            f"A line chart of accuracy against epoch on a log axis. {t['net']} ends at {t['adam'].mean():.1f} percent "
            f"under Adam, beside the tutorial's star at {t['tutorial']['accuracy']:.1f}, and at {t['sgd'].mean():.1f} "
            "percent under SGD.")


def projection_caption(f: Mapping, gaps: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the projection figure, from :func:`beyond.compression.projection_findings` and
    :func:`beyond.compression.projection_gaps`."""
    short = gaps[gaps.against == f["finetune_epochs"]]
    full = gaps[gaps.against == f["epochs"]]
    return (f"The nearest Kronecker sums of the trained dense layer, fine-tuned for {epochs_phrase(f['finetune_epochs'])}, "
            f"minus the same structures trained from scratch for {epochs_phrase(f['finetune_epochs'])} and for "
            f"{epochs_phrase(f['epochs'])}: mean difference and 95% Welch interval, by Kronecker rank.",
            f"A dot plot by Kronecker rank. Against as many epochs from scratch the differences run from "
            f"{short['diff'].min():+.1f} to {short['diff'].max():+.1f} points"
            + (f"; against {epochs_phrase(f['epochs'])} from scratch, from {full['diff'].min():+.1f} to "
               f"{full['diff'].max():+.1f}." if len(full) and f["epochs"] != f["finetune_epochs"] else "."))


def monarch_summary(comparisons: pd.DataFrame, flops_leaders: pd.DataFrame | None = None) -> str:
    """What untying the Kronecker factors into Monarch blocks does at equal weights (the Monarch layer costs r times
    fewer multiply-adds than a sum of r products), in words; each pair's numbers are in the table above it."""
    if comparisons.empty:
        return "No Kronecker sum in this run has a Monarch layer of its budget."
    untie_wins, untie_loses = comparisons[comparisons.outcome == "loss"], comparisons[comparisons.outcome == "win"]
    level = comparisons[comparisons.outcome == "tie"]
    parts = []
    if len(untie_wins) == len(comparisons):
        parts.append("Untying helps at every budget: each Monarch layer beats the Kronecker sum of its weights beyond "
                     "the seed noise, with fewer multiply-adds.")
    elif len(untie_loses) == len(comparisons):
        parts.append("Untying costs accuracy at every budget: each Kronecker sum beats the Monarch layer of its weights "
                     "beyond the seed noise, though the Monarch layer needs fewer multiply-adds.")
    else:
        for nets, words in ((untie_wins, "the Monarch layer is ahead"), (untie_loses, "the Kronecker sum is ahead"),
                            (level, "the two are level")):
            if not nets.empty:
                parts.append(f"At the budget{'s' if len(nets) > 1 else ''} of "
                             f"{join_words([f'`{v}`' for v in nets.variant])}, {words}"
                             + (" beyond the seed noise." if words != "the two are level" else " within the seed noise."))
    helps = not comparisons[comparisons.outcome == "loss"].empty
    parts.append("Potapczynski et al. (2024) find that less sharing pays as models grow; at this one small scale, "
                 f"untying at equal weights {'pays at some budgets' if helps else 'does not pay'}.")
    if flops_leaders is not None:
        lead = flops_leaders[flops_leaders.net.str.startswith("monarch") & (flops_leaders.outcome == "win")]
        if not lead.empty:
            r = lead.iloc[0]
            parts.append(f"At equal compute a Monarch layer does lead: `{r.net}` is ahead of every other family up to "
                         f"{r.high:,} FLOPs per image, beyond the seed noise (the equal-compute table).")
    return " ".join(parts)
