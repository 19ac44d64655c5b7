"""Part 3's sentences: the short answers, each section's finding, the captions and alt text.

Every function turns structured results into Markdown and computes no statistic itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..stats import final_epochs, mean_sd, outcome
from ..words import (
    count,
    epochs_phrase,
    interval,
    join_words,
    ranked_values,
    recipe,
    seeds_phrase,
    seeds_statement,
    signed,
)
from .budgets import PARETO_ZOOM, TT_MATCH_TOLERANCE

__all__ = ["seeds_note", "beyond_method", "equal_budget_counts", "equal_budget_summary", "budget_lines",
           "kronecker_lead", "tied_vs_untied", "tt_budget_counts", "tt_summary", "tt_rank_summary",
           "against_two_kron", "t3f_intro", "t3f_summary", "t3f_lede", "compression_lede", "beyond_lede",
           "beyond_conclusion", "projection_summary", "compression_intro", "compression_summary",
           "compression_story", "dense_before_projection", "harder_dataset_summary", "pareto_caption",
           "t3f_caption", "projection_caption", "datasets_caption"]


def seeds_note(rows: pd.DataFrame, variants: Sequence[str] | None = None) -> str:
    """A table's footnote: accuracies are mean ± sd over each net's seeds, and which nets have how many (per
    dataset, when ``rows`` hold several)."""
    if rows.dataset.nunique() > 1:
        return ("*Mean ± sd over each net's seeds: " + "; ".join(
            f"on {d}, {seeds_statement(part, variants)}" for d, part in rows.groupby("dataset", sort=False)) + ".*")
    return f"*Mean ± sd over each net's seeds: {seeds_statement(rows, variants)}.*"


def beyond_method(settings: ku.TrainSettings, t3f: ku.TrainSettings, rows: pd.DataFrame) -> str:
    """How every Part 3 net was trained, and on which seeds."""
    return (f"Every net is trained with the same recipe as Part 2 ({recipe(settings)}); the t3f net also with its "
            f"tutorial's recipe ({recipe(t3f)}). Each net is shown with all the seeds it has, the same runs and the "
            f"same numbers as on the other page: {seeds_statement(rows)}. Differences between nets are Welch 95% "
            "intervals, which allow for unequal numbers of seeds. The short answers first:")


def equal_budget_counts(comparisons: pd.DataFrame) -> str:
    """The equal-budget finding in one sentence: how many comparisons the Kronecker nets win, lose and tie."""
    n, counts = len(comparisons), comparisons.outcome.value_counts()
    wins, losses = int(counts.get("win", 0)), int(counts.get("loss", 0))
    nets, baselines = comparisons.variant.nunique(), comparisons.baseline.nunique()
    return (f"Out of {n} equal-budget comparisons ({nets} Kronecker net{'s' * (nets != 1)} against "
            f"{baselines} distinct baseline{'s' * (baselines != 1)}, so they are not independent), the Kronecker net "
            f"is better beyond the seed noise (95% Welch interval above zero) in **{wins}**, worse in **{losses}**, "
            f"and indistinguishable in **{n - wins - losses}**.")


def equal_budget_summary(comparisons: pd.DataFrame) -> str:
    """The equal-budget finding in words, from :func:`beyond.budgets.equal_budget_comparisons`."""
    n, wins = len(comparisons), int((comparisons.outcome == "win").sum())
    text = [equal_budget_counts(comparisons)]
    margins = comparisons.loc[comparisons.outcome == "win", "diff"]
    if len(margins):
        text.append(f"Where it wins, the margin ranges from {margins.min():.2f} to {margins.max():.2f} percentage points.")
    for r in comparisons[comparisons.outcome == "loss"].itertuples():
        text.append(f"`{r.variant}` loses to `{r.baseline}` by {-r.diff:.2f} pp "
                    f"(95% CI {signed(r.low)} to {signed(r.high)}).")
    ranks = sorted(set(comparisons["rank"]))
    higher = bool((comparisons["rank"] > comparisons.baseline_rank).all())
    text.append(f"The Kronecker input layers have matrix rank {' or '.join(map(str, ranks))}, the baselines at most "
                f"{comparisons.baseline_rank.max()}: "
                + ("in every pair the Kronecker layer has the higher matrix rank"
                   + (" and the higher accuracy." if wins == n else ", but not always the higher accuracy.")
                   if higher else "the Kronecker layer does not always have the higher matrix rank."))
    return " ".join(text)


def budget_lines(leaders: pd.DataFrame) -> list[str]:
    """One bullet per row of :func:`beyond.budgets.budget_leaders`: which family leads, by how much, and whether beyond
    the seed noise ('level with' the runner-up when the interval reaches zero)."""
    lines = []
    for r in leaders.itertuples():
        span = f"≤ {r.low:,}" if r.low == r.high else f"≤ {r.low:,} to ≤ {r.high:,}"
        line = f"- {span} weights: **{r.family}** (`{r.net}`, {r.mean:.2f}%)"
        if r.second is not None:
            tie = r.ci_low <= 0
            line += (f", {'level with' if tie else 'ahead of'} {r.second_family} (`{r.second}`): "
                     f"{interval(r.diff, r.ci_low, r.ci_high, (r.n, r.second_n))}" + (", within the seed noise." if tie else "."))
        lines.append(line)
    return lines


def kronecker_lead(lead: pd.Series) -> str:
    """At which budgets the best Kronecker family is above every other family (tensor trains included), from
    :func:`beyond.budgets.kronecker_margins`."""
    if lead.empty:
        return "No budget has both a Kronecker net and a net of another family."
    ahead = lead[lead > 0]
    first = (f"The best Kronecker family has the highest mean of all families (dense, low-rank and tensor train) at "
             f"{len(ahead)} of {len(lead)} budget{'s' * (len(lead) != 1)} (" + join_words([f"≤ {b:,}" for b in ahead.index])
             + f"), by up to {ahead.max():.2f} pp" if len(ahead) else
             f"No Kronecker family has the highest mean at any budget compared ({len(lead)})")
    return f"{first}; at the largest budget ({lead.index[-1]:,}) the difference is {signed(lead.iloc[-1])} pp."


def tied_vs_untied(gaps: pd.DataFrame) -> str:
    """Tied factors (U = V) against untied ones at the same Kronecker rank, from :func:`beyond.budgets.tied_untied_gaps`."""
    if gaps.empty:
        return ""
    beyond = int((gaps.outcome != "tie").sum())
    pairs = join_words([f"`{r.tied}` − `{r.untied}` {interval(r.diff, r.low, r.high, (r.n, r.untied_n))}" for r in gaps.itertuples()])
    return (f"Tied factors against untied ones at the same Kronecker rank: {pairs}; {beyond} of {len(gaps)} "
            "beyond the seed noise.")


def tt_budget_counts(comparisons: pd.DataFrame) -> str:
    """Kronecker against tensor train at matching input-layer budgets in one clause (no full stop)."""
    matched = comparisons[comparisons.within] if len(comparisons) else comparisons
    if matched.empty:
        return "No tensor-train net has an input-layer budget within ±10% of a Kronecker net's"
    counts = matched.outcome.value_counts()
    return (f"Against a tensor train whose input layer has within ±{TT_MATCH_TOLERANCE:.0%} of its weights, the "
            f"Kronecker net is ahead in {int(counts.get('win', 0))}, behind in {int(counts.get('loss', 0))} and no "
            f"different beyond the seed noise in {int(counts.get('tie', 0))}, of {len(matched)} "
            f"comparison{'s' * (len(matched) != 1)}")


def tt_summary(comparisons: pd.DataFrame) -> str:
    """The matching-budget comparison in words: the counts, the largest gaps, and the Kronecker nets without a
    tensor train within the tolerance (shown against their nearest neighbours)."""
    text = [tt_budget_counts(comparisons) + "."]
    for r in comparisons[comparisons.within & (comparisons.outcome != "tie")].itertuples():
        text.append(f"`{r.variant}` is {'ahead of' if r.outcome == 'win' else 'behind'} `{r.baseline}` by "
                    f"{abs(r.diff):.2f} pp ({interval(r.diff, r.low, r.high, (r.n, r.baseline_n))}).")
    for v, near in comparisons[~comparisons.within].groupby("variant", sort=False):
        sides = ("smaller and larger: " if len(near) == 2 else
                 f"{'larger' if near.baseline_weights.iloc[0] > near.weights.iloc[0] else 'smaller'} one (no tensor "
                 "train lies on the other side): ")
        text.append(f"No tensor train other than itself lies within ±{TT_MATCH_TOLERANCE:.0%} of `{v}`'s "
                    f"{near.weights.iloc[0]:,} input weights, so it is set against the nearest {sides}"
                    + join_words([f"`{r.baseline}` ({r.baseline_weights:,}): {interval(r.diff, r.low, r.high, (r.n, r.baseline_n))}"
                                  for r in near.itertuples()]) + ".")
    return " ".join(text)


def tt_rank_summary(contrast: Mapping) -> str:
    """Matrix rank against TT-rank, from :func:`beyond.budgets.rank_contrast`."""
    c = contrast
    return (f"Matrix rank and TT-rank measure different things: `{c['lowest']}` has matrix rank {c['lowest_rank']} "
            f"but TT-ranks {c['lowest_tt']}, while {len(c['full'])} of the {c['layers']} layers "
            f"({', '.join(f'`{v}`' for v in c['full'])}) have the full matrix rank {c['full_rank']} at TT-ranks as "
            f"low as {c['lowest_tt_of_full']}.")


def against_two_kron(c: Mapping) -> str:
    """'ahead of / behind / level with the post's `two_kron` (diff, 95% CI)' from a comparison net - two_kron."""
    verdict = {"win": "ahead of", "loss": "behind", "tie": "level with"}[outcome(c)]
    return f"{verdict} the post's `two_kron` ({interval(c['diff'], c['low'], c['high'], (c['n_a'], c['n_b']))})"


def t3f_intro(t3f: ku.TrainSettings, seeds: Sequence[int], tutorial: Mapping) -> str:
    """What the t3f tutorial does and how we rerun it."""
    return (f"The tutorial (commit `{tutorial['commit']}`) trains it with Keras' Adam at a learning rate of {tutorial['lr']:g} and batches of "
            f"{tutorial['batch_size']} and reports {tutorial['accuracy']:.2f}% test accuracy after "
            f"{epochs_phrase(tutorial['epochs'])}. We train it with that recipe in PyTorch ({recipe(t3f)}) on "
            f"{seeds_phrase(seeds)}, and with the post's, and put the post's `two_kron` beside it under both.")


def t3f_summary(t: Mapping) -> str:
    """The t3f comparison in words, from :func:`beyond.compression.t3f_comparison`."""
    tutorial, ours = t["tutorial"], t["adam"]
    inside = ours.min() <= tutorial["accuracy"] <= ours.max()
    text = [f"Our `{t['net']}` has {t['params']:,} parameters, biases included: "
            + ("exactly the tutorial's count." if t["params"] == tutorial["params"] else
               f"the tutorial counts {tutorial['params']:,}.")]
    text.append(f"With the tutorial's recipe it reaches {mean_sd(ours)}% after {epochs_phrase(t['adam_epochs'])}, "
                f"{signed(ours.mean() - tutorial['accuracy'])} pp from the tutorial's {tutorial['accuracy']:.2f}%, "
                + ("which lies inside" if inside else "which lies outside")
                + f" the range of our {count(len(ours), 'seed')} ({ours.min():.2f} to {ours.max():.2f}%).")
    for name, key in [("the tutorial's recipe", "adam"), ("the post's recipe", "sgd")]:
        text.append(f"Under {name} the tensor train is {against_two_kron(t['vs_two_kron'][key])}.")
    return " ".join(text)


def t3f_lede(t: Mapping) -> str:
    """One sentence for the top of the page: the t3f net under both recipes against the tutorial and two_kron."""
    return (f"The t3f tutorial's tensor-train net (`{t['net']}`, {t['params']:,} parameters) reaches "
            f"{mean_sd(t['adam'])}% after {epochs_phrase(t['adam_epochs'])} of its Adam recipe (the tutorial, at commit "
            f"`{t['tutorial']['commit']}`, reports {t['tutorial']['accuracy']:.2f}%) and {mean_sd(t['sgd'])}% after {epochs_phrase(t['sgd_epochs'])} of "
            f"the post's, {against_two_kron(t['vs_two_kron']['sgd'])}.")


def compression_lede(f: Mapping, tutorial: Mapping) -> str:
    """One sentence: the t3f compression experiment against the tutorial's numbers."""
    tt, kron = f["tt"], f["kron"]
    return (f"Compressing a trained dense layer after the fact, as the t3f tutorial does, costs {f['dense'].mean() - tt['first'].mean():.1f} "
            f"points at once (TT-SVD to `{tt['net']}`: {mean_sd(tt['first'])}%, the tutorial {tutorial['compressed']:.2f}%; "
            f"the Kronecker sum `{kron['net']}`: {mean_sd(kron['first'])}%); after {epochs_phrase(f['epochs'])} of "
            f"fine-tuning they reach {mean_sd(tt['after'])}% and {mean_sd(kron['after'])}% (the tutorial "
            f"{tutorial['finetuned']:.2f}%).")


def beyond_lede(comparisons: pd.DataFrame, lead: pd.Series, tt: pd.DataFrame, t3f: Mapping,
                compression: Mapping | None = None, tutorial: Mapping | None = None) -> str:
    """Part 3's short answers, one bullet per finding."""
    bullets = [equal_budget_counts(comparisons), kronecker_lead(lead), tt_budget_counts(tt) + ".", t3f_lede(t3f)]
    if compression is not None:
        bullets.append(compression_lede(compression, tutorial))
    return "\n".join(f"- {b}" for b in bullets)


def beyond_conclusion(comparisons: pd.DataFrame, leaders: pd.DataFrame, lead: pd.Series, tt: pd.DataFrame,
                      t3f: Mapping, compression: Mapping, tutorial: Mapping, harder: Mapping | None,
                      names: Sequence[str] = ()) -> str:
    """The answers to the page's five questions, in the order it asked them."""
    higher = bool((comparisons["rank"] > comparisons.baseline_rank).all())
    wins = int((comparisons.outcome == "win").sum())
    rank = (f"{equal_budget_counts(comparisons)} " + ("In every pair the Kronecker layer also has the higher matrix "
            "rank, so matrix rank and accuracy go together in these pairs." if higher and wins == len(comparisons) else
            "Matrix rank does not line up with accuracy in every pair."))
    winners = ", then ".join(f"*{f}*" for f in dict.fromkeys(leaders.family))
    family = f"The family with the best net, from the smallest budget up: {winners}. {kronecker_lead(lead)}"
    trains = f"{tt_budget_counts(tt)}. {t3f_lede(t3f)}"
    compress = compression_lede(compression, tutorial)
    answers = [rank, family, trains, compress]
    if harder is not None:
        answers.append(harder_dataset_summary(harder, *names).split("\n")[0])
    else:
        answers.append("This run leaves out the harder dataset.")
    return "\n".join(f"{i}. {a}" for i, a in enumerate(answers, 1))


def projection_summary(f: Mapping, dense_accuracy: float) -> str:
    """The projection finding in words, from :func:`beyond.compression.projection_findings`."""
    first, errors, top = f["first"], f["errors"], f["top_rank"]
    closer = f["update_error"] < errors.min() - 0.1
    text = (f"Right after projection, with no training, the nets reach {first.min():.1f}% to {first.max():.1f}% "
            f"(chance is 10%, the dense net {dense_accuracy:.2f}%): the trained dense layer is "
            f"{'far from' if errors.min() > 0.5 else 'close to'} the Kronecker sums of these Kronecker ranks (relative "
            f"error {errors.max():.3f} to {errors.min():.3f}). Training moved the weights "
            f"by {f['moved']:.0%} of their norm (‖W − W₀‖/‖W‖, W₀ the seeded initialisation); the change W − W₀ alone "
            f"is {'much' if closer else 'hardly'} closer to a Kronecker sum of Kronecker rank {top} (relative error "
            f"{f['update_error']:.3f}), so "
            + ("the random initialisation left in W is a large part of what the projection cannot keep."
               if closer else
               "what training learned is itself not Kronecker-structured, not only the leftover initialisation."))
    gains, longer, tune, epochs = f["gains"], f["longer"], f["finetune_epochs"], f["epochs"]
    if gains:
        ahead = ", ".join(f"Kronecker rank {r} ({signed(g)} pp)" for r, g in sorted(gains.items()))
        text += (f" After {epochs_phrase(tune)} of fine-tuning, against the same structure trained from scratch "
                 f"for {epochs_phrase(tune)}: {ahead}. The projected nets had the dense net's {epochs_phrase(epochs)} "
                 "behind them, so this is a head start, not a free lunch. "
                 + (f"Trained from scratch for {epochs_phrase(epochs)}, the same structures end higher at "
                    f"{'every Kronecker rank' if len(longer) == len(gains) else 'Kronecker ranks ' + ', '.join(map(str, longer))}."
                    if longer else f"Even {epochs_phrase(epochs)} from scratch do not catch up with them."))
    return text


def compression_intro(compression: ku.TrainSettings, finetune: ku.TrainSettings, seeds: Sequence[int],
                      tutorial: Mapping, commit: str) -> str:
    """The t3f tutorial's compression experiment, and how we rerun it."""
    return (f"The same t3f tutorial (commit `{commit}`) has a second experiment that asks this section's question. "
            f"It trains the dense 784-625-10 net with Adam at {tutorial['lr']:g} and batches of "
            f"{tutorial['batch_size']} for {epochs_phrase(tutorial['epochs'])} ({tutorial['dense']:.2f}%), compresses "
            f"its input layer with `t3f.to_tt_matrix` to a TT-matrix of TT-rank {tutorial['tt_rank']} "
            f"({tutorial['compressed']:.2f}% right after) and fine-tunes for {epochs_phrase(tutorial['finetune_epochs'])} "
            f"of the same Adam ({tutorial['finetuned']:.2f}%). We rerun it on {seeds_phrase(seeds)} ({recipe(compression)}, "
            f"then {recipe(finetune)}), compress with a TT-SVD (tensorly's `tensor_train_matrix`, the algorithm of "
            "`to_tt_matrix`), and set beside it the nearest Kronecker sum of about the same input-layer budget.")


def compression_summary(f: Mapping, tutorial: Mapping) -> str:
    """The compression experiment in words, from :func:`beyond.compression.compression_findings`."""
    tt, kron, first, after = f["tt"], f["kron"], f["first_gap"], f["after_gap"]
    def side(gap):
        return {"win": "ahead", "loss": "behind", "tie": "no different beyond the seed noise"}[outcome(gap)]
    return (f"Our dense nets reach {mean_sd(f['dense'])}% (the tutorial's single run {tutorial['dense']:.2f}%). "
            f"The TT-SVD to TT-rank {tutorial['tt_rank']} (`{tt['net']}`, {tt['weights']:,} input weights, relative "
            f"error {tt['error']:.3f}) leaves {mean_sd(tt['first'])}% right after compression, against the tutorial's "
            f"{tutorial['compressed']:.2f}%, and {mean_sd(tt['after'])}% after {epochs_phrase(f['epochs'])} of Adam, "
            f"against {tutorial['finetuned']:.2f}%. The Kronecker sum of about the same budget (`{kron['net']}`, "
            f"{kron['weights']:,} input weights, relative error {kron['error']:.3f}) leaves {mean_sd(kron['first'])}% "
            f"and then {mean_sd(kron['after'])}%. Tensor train minus Kronecker sum: "
            f"{interval(first['diff'], first['low'], first['high'], (first['n_a'], first['n_b']))} "
            f"right after compression ({side(first)}), "
            f"{interval(after['diff'], after['low'], after['high'], (after['n_a'], after['n_b']))} after "
            f"fine-tuning ({side(after)}).")


def compression_story(projection: Mapping, f: Mapping) -> str:
    """Sections 4's two experiments as one answer: which structure keeps more of a trained layer, and how fast
    fine-tuning gets the accuracy back."""
    tt, kron = f["tt"], f["kron"]
    keeps = "TT-SVD" if tt["error"] < kron["error"] else "Kronecker sum"
    error = min(tt["error"], kron["error"])
    lost = f["dense"].mean() - max(tt["first"].mean(), kron["first"].mean())
    behind = [f["dense"].mean() - c["after"].mean() for c in (tt, kron)]
    return (f"**One story.** " + ("Neither structure at this budget keeps much of a trained dense layer"
                                  if error > 0.5 else "Both structures keep most of a trained dense layer")
            + f": the relative error is {error:.2f} or more for the TT-SVD and the Kronecker sum at about "
            f"{tt['weights']:,} input weights (the {keeps} is closer), and {projection['errors'].min():.2f} or more "
            f"for the Kronecker sums of Kronecker rank up to {projection['top_rank']} under the SGD recipe. Right after "
            f"compression the nets are {lost:.1f} points or more below the dense nets. After {epochs_phrase(f['epochs'])} "
            f"of Adam the TT net is {abs(behind[0]):.2f} pp {'below' if behind[0] > 0 else 'above'} them and the "
            f"Kronecker sum {abs(behind[1]):.2f} pp {'below' if behind[1] > 0 else 'above'}"
            + (": what the trained layer gives a compressed net is a head start more than its weights."
                      if error > 0.5 and max(behind) < 1 else "."))


def dense_before_projection(rows: pd.DataFrame) -> str:
    """The dense net's accuracy before it is projected."""
    return (f"The dense `original` reaches {mean_sd(final_epochs(rows[rows.variant == 'original']).test_accuracy)}% "
            "before projection.")


def harder_dataset_summary(h: Mapping, easy_name: str, hard_name: str) -> str:
    """Does 'a Kronecker input layer costs almost nothing' hold on the harder dataset? From :func:`beyond.budgets.harder_dataset`."""
    lines = []
    for name, key in ((easy_name, "easy"), (hard_name, "hard")):
        c, w = h[key]["cost"], h[key]["narrow"]
        lines.append(f"- **{name}**: the Kronecker input layer (`two_kron`) costs {-c['diff']:.2f} pp against the "
                     f"dense original (95% CI {-c['high']:.2f} to {-c['low']:.2f}); the equal-budget `width10` is "
                     f"{-w['diff']:.2f} pp behind `two_kron`.")
    e, hard = h["easy"]["cost"], h["hard"]["cost"]
    answer = {"fails": "**No, not quite.**", "holds": "**Roughly, yes.**",
              "holds, real loss": "**Within the tolerance, yes, but the loss is real.**"}.get(h["verdict"],
                                                                                             "**Only partly.**")
    ratio = f", {hard['diff'] / e['diff']:.1f} times its cost on {easy_name}" if e["diff"] < 0 else ""
    lines.insert(0, f"{answer} On {hard_name} the Kronecker input layer costs {-hard['diff']:.2f} pp{ratio}; against "
                    "the equal-budget dense net "
                    + ("it still wins beyond the seed noise." if h["hard"]["narrow"]["high"] < 0 else
                       "its advantage is not beyond the seed noise."))
    return "\n".join(lines)


# --- Captions and alt text ------------------------------------------------------------

def pareto_caption(points: pd.DataFrame, rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the accuracy-weights plane."""
    best = points.loc[points["mean"].idxmax()]
    by_family = points.groupby("family")["mean"].max().sort_values(ascending=False)
    seeds = seeds_statement(rows).replace("`", "")  # a caption is HTML, not Markdown
    return (f"Final test accuracy (mean and 95% CI over each net's seeds: {seeds}) against weight count, "
            "by family, with each family's Pareto frontier. Below: the nets up to "
            f"{PARETO_ZOOM['weights']:,} weights within {PARETO_ZOOM['points']:g} points of the best, named.",
            f"Two stacked scatter plots of accuracy against weights on a log scale, {count(len(points), 'net')} in "
            f"{count(len(by_family), 'family', 'families')}. The best net is {best.name} at {best['mean']:.1f} percent "
            f"with {int(best.weights):,} weights; the best member of each family reaches "
            + join_words([f"{fam} {acc:.1f}" for fam, acc in by_family.items()]) + " percent.")


def t3f_caption(t: Mapping) -> tuple[str, str]:
    """(caption, alt text) of the t3f figure."""
    two_kron = ku.count_params(ku.build_model("two_kron"))
    return (f"Test accuracy per epoch of the t3f tutorial's tensor-train net ({t['net']}, {t['params']:,} parameters) "
            f"and the post's two_kron ({two_kron:,}), under the post's recipe (solid, {epochs_phrase(t['sgd_epochs'])} "
            f"of SGD) and the tutorial's (dashed, {epochs_phrase(t['adam_epochs'])} of Adam); mean over each net's "
            f"seeds (the legend gives their number) with its 95% CI as a band, and the number the tutorial reports at commit "
            f"{t['tutorial']['commit']} (star).",
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


def datasets_caption(finals: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str]) -> tuple[str, str]:
    """(caption, alt text) of the dataset comparison."""
    means = finals.groupby(["dataset", "variant"]).test_accuracy.mean()
    seeds = "; ".join(f"on {d}, {seeds_statement(finals[finals.dataset == d])}" for d in datasets).replace("`", "")
    return (f"Final test accuracy of the post's {count(len(variants), 'net')} on each dataset: dots are means, bars "
            f"the 95% CI over each net's seeds ({seeds}); dense nets black, Kronecker nets blue, as on the first page.",
            f"{count(len(datasets), 'dot plot').capitalize()}, one per dataset. "
            + " ".join(f"On {d}: {ranked_values(means[d].reindex(list(variants)).dropna())}." for d in datasets))
