"""Part 3's sentences: the short answers, each section's finding, the captions and alt text.

As in :mod:`prose`, every function turns structured results of :mod:`stats` and :mod:`experiments` into
Markdown and computes no statistic itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

import kron_utils as ku

from .experiments import PARETO_ZOOM, TT_PARTNER_RATIO
from .prose import count, epochs_phrase, join_words, ranked_values, recipe, seeds_phrase
from .stats import mean_sd, signed

def interval(diff: float, low: float, high: float) -> str:
    """'+0.23 pp, 95% CI +0.01 to +0.45'."""
    return f"{signed(diff)} pp, 95% CI {signed(low)} to {signed(high)}"


def beyond_method(settings: ku.TrainSettings, t3f: ku.TrainSettings, seeds: Sequence[int]) -> str:
    """How every Part 3 net was trained."""
    return (f"Every net is trained with the same recipe as Part 2 ({recipe(settings)}) on {seeds_phrase(seeds)}; "
            f"the t3f net also with its tutorial's recipe ({recipe(t3f)}). Every number is shown with its seed "
            "spread. The short answers first:")


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
    """The equal-budget finding in words, from :func:`experiments.equal_budget_comparisons`."""
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
    text.append(f"The Kronecker input layers have rank {' or '.join(map(str, ranks))}, the baselines at most "
                f"{comparisons.baseline_rank.max()}: "
                + ("in every pair the Kronecker layer has the higher rank"
                   + (" and the higher accuracy." if wins == n else ", but not always the higher accuracy.")
                   if higher else "the Kronecker layer does not always have the higher rank."))
    return " ".join(text)


def budget_lines(leaders: pd.DataFrame) -> list[str]:
    """One bullet per row of :func:`stats.budget_leaders`: who leads, by how much, and whether beyond the noise."""
    lines = []
    for r in leaders.itertuples():
        span = f"≤ {r.low:,}" if r.low == r.high else f"≤ {r.low:,} to ≤ {r.high:,}"
        line = f"- {span} weights: **{r.family}** (`{r.net}`, {r.mean:.2f}%)"
        if r.second is not None:
            tie = r.ci_low <= 0
            line += (f", {'tied with' if tie else 'ahead of'} {r.second_family} (`{r.second}`): "
                     f"{interval(r.diff, r.ci_low, r.ci_high)}" + (", within the seed noise." if tie else "."))
        lines.append(line)
    return lines


def kronecker_lead(lead: pd.Series) -> str:
    """How far the best Kronecker family leads the best dense or low-rank family, from :func:`stats.kronecker_margins`."""
    if lead.empty:
        return "No budget has both a Kronecker net and a dense or low-rank net."
    ahead = lead[lead > 0]
    first = (f"Up to {ahead.index[-1]:,} weights a Kronecker family is on top, by up to {lead.max():.2f} pp "
             "over the best dense or low-rank net" if len(ahead) else "No Kronecker family is on top at any budget")
    return f"{first}; at the largest budget ({lead.index[-1]:,}) the difference is {signed(lead.iloc[-1])} pp."


def tied_vs_untied(gaps: pd.DataFrame) -> str:
    """Tied against untied at the same rank, from :func:`stats.tied_untied_gaps`."""
    if gaps.empty:
        return ""
    beyond = int((gaps.outcome != "tie").sum())
    return (f"Tied against untied at the same rank: differences of {signed(gaps['diff'].min())} to "
            f"{signed(gaps['diff'].max())} pp, {beyond} of {len(gaps)} beyond the seed noise.")


def tt_budget_counts(comparisons: pd.DataFrame) -> str:
    """Kronecker against tensor train in one clause (no full stop): wins, losses and ties."""
    if comparisons.empty:
        return "No tensor-train net of the grid has about the input-layer budget of a Kronecker net"
    counts = comparisons.outcome.value_counts()
    return (f"Against the tensor train of about the same input-layer budget (within a factor {TT_PARTNER_RATIO:g}), "
            "the Kronecker net "
            f"wins {int(counts.get('win', 0))}, loses {int(counts.get('loss', 0))} and ties "
            f"{int(counts.get('tie', 0))} of {len(comparisons)} comparisons")


def tt_rank_summary(partners: pd.DataFrame, contrast: Mapping) -> str:
    """What TT-rank buys, from :func:`experiments.tt_partners` and :func:`experiments.rank_contrast`."""
    verdicts = {"win": "better", "loss": "worse", "tie": "no different beyond the seed noise"}
    lines = [f"- `{r.net}` ({r.weights:,} weights, TT-ranks {r.tt_ranks}) against `{r.partner}` "
             f"({r.partner_weights:,} weights, TT-ranks {r.partner_tt_ranks}): {interval(r.diff, r.low, r.high)}: "
             f"{verdicts[r.outcome]}." for r in partners.itertuples()]
    c = contrast
    lines.append(f"- Matrix rank and TT-rank measure different things: `{c['lowest']}` has matrix rank "
                 f"{c['lowest_rank']} but TT-ranks {c['lowest_tt']}, while {len(c['full'])} of the {c['layers']} "
                 f"layers ({', '.join(f'`{v}`' for v in c['full'])}) have the full matrix rank {c['full_rank']} at "
                 f"TT-ranks as low as {c['lowest_tt_of_full']}.")
    return "\n".join(lines)


def against_two_kron(c: Mapping) -> str:
    """'ahead of / behind / level with the post's `two_kron` (diff, 95% CI)' from a comparison net - two_kron."""
    from .stats import outcome
    verdict = {"win": "ahead of", "loss": "behind", "tie": "level with"}[outcome(c)]
    return f"{verdict} the post's `two_kron` ({interval(c['diff'], c['low'], c['high'])})"


def t3f_intro(t3f: ku.TrainSettings, seeds: Sequence[int], tutorial: Mapping) -> str:
    """What the t3f tutorial does and how we rerun it."""
    return (f"The tutorial trains it with Keras' Adam at a learning rate of {tutorial['lr']:g} and batches of "
            f"{tutorial['batch_size']} and reports {tutorial['accuracy']:.2f}% test accuracy after "
            f"{epochs_phrase(tutorial['epochs'])}. We train it with that recipe in PyTorch ({recipe(t3f)}) on "
            f"{seeds_phrase(seeds)}, and with the post's, and put the post's `two_kron` beside it under both.")


def t3f_summary(t: Mapping) -> str:
    """The t3f comparison in words, from :func:`experiments.t3f_comparison`."""
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
            f"{mean_sd(t['adam'])}% after {epochs_phrase(t['adam_epochs'])} of its Adam recipe (the tutorial reports "
            f"{t['tutorial']['accuracy']:.2f}%) and {mean_sd(t['sgd'])}% after {epochs_phrase(t['sgd_epochs'])} of "
            f"the post's, {against_two_kron(t['vs_two_kron']['sgd'])}.")


def beyond_lede(comparisons: pd.DataFrame, lead: pd.Series, tt: pd.DataFrame, t3f: Mapping) -> str:
    """Part 3's short answers, one bullet per finding."""
    bullets = [equal_budget_counts(comparisons), kronecker_lead(lead), tt_budget_counts(tt) + ".", t3f_lede(t3f)]
    return "\n".join(f"- {b}" for b in bullets)


def projection_summary(f: Mapping, dense_accuracy: float) -> str:
    """The projection finding in words, from :func:`experiments.projection_findings`."""
    first, errors, top = f["first"], f["errors"], f["top_rank"]
    closer = f["update_error"] < errors.min() - 0.1
    text = (f"Right after projection, with no training, the nets reach {first.min():.1f}% to {first.max():.1f}% "
            f"(chance is 10%, the dense net {dense_accuracy:.2f}%): the trained dense layer is far from any Kronecker "
            f"sum of these ranks (relative error {errors.max():.3f} to {errors.min():.3f}). Training moved the weights "
            f"by {f['moved']:.0%} of their norm (‖W − W₀‖/‖W‖, W₀ the seeded initialisation); the change W − W₀ alone "
            f"is {'much' if closer else 'hardly'} closer to a rank-{top} Kronecker sum (relative error "
            f"{f['update_error']:.3f}), so "
            + ("the random initialisation left in W is a large part of what the projection cannot keep."
               if closer else
               "what training learned is itself not Kronecker-structured, not only the leftover initialisation."))
    gains, longer, tune, epochs = f["gains"], f["longer"], f["finetune_epochs"], f["epochs"]
    if gains:
        ahead = ", ".join(f"rank {r} ({signed(g)} pp)" for r, g in sorted(gains.items()))
        text += (f" After {epochs_phrase(tune)} of fine-tuning, against the same structure trained from scratch "
                 f"for {epochs_phrase(tune)}: {ahead}. The projected nets had the dense net's {epochs_phrase(epochs)} "
                 "behind them, so this is a head start, not a free lunch. "
                 + (f"Trained from scratch for {epochs_phrase(epochs)}, the same structures end higher at "
                    f"{'every rank' if len(longer) == len(gains) else 'ranks ' + ', '.join(map(str, longer))}."
                    if longer else f"Even {epochs_phrase(epochs)} from scratch do not catch up with them."))
    return text


def dense_before_projection(rows: pd.DataFrame) -> str:
    """The dense net's accuracy before it is projected."""
    from .stats import final_epochs
    return (f"The dense `original` reaches {mean_sd(final_epochs(rows[rows.variant == 'original']).test_accuracy)}% "
            "before projection.")


def harder_dataset_summary(h: Mapping, easy_name: str, hard_name: str) -> str:
    """Does 'a Kronecker input layer costs almost nothing' hold on the harder dataset? From :func:`stats.harder_dataset`."""
    lines = []
    for name, key in ((easy_name, "easy"), (hard_name, "hard")):
        c, w = h[key]["cost"], h[key]["narrow"]
        lines.append(f"- **{name}**: the Kronecker input layer (`two_kron`) costs {-c['diff']:.2f} pp against the "
                     f"dense original (95% CI {-c['high']:.2f} to {-c['low']:.2f}); the equal-budget `width10` is "
                     f"{-w['diff']:.2f} pp behind `two_kron`.")
    e, hard = h["easy"]["cost"], h["hard"]["cost"]
    answer = {"refuted": "**No, not quite.**", "confirmed": "**Roughly, yes.**"}.get(h["verdict"], "**Only partly.**")
    ratio = f", {hard['diff'] / e['diff']:.1f} times its cost on {easy_name}" if e["diff"] < 0 else ""
    lines.insert(0, f"{answer} On {hard_name} the Kronecker input layer costs {-hard['diff']:.2f} pp{ratio}; against "
                    "the equal-budget dense net "
                    + ("it still wins beyond the seed noise." if h["hard"]["narrow"]["high"] < 0 else
                       "its advantage is not beyond the seed noise."))
    return "\n".join(lines)


# --- Captions and alt text ------------------------------------------------------------

def pareto_caption(points: pd.DataFrame, seeds: int) -> tuple[str, str]:
    """(caption, alt text) of the accuracy-weights plane."""
    best = points.loc[points["mean"].idxmax()]
    by_family = points.groupby("family")["mean"].max().sort_values(ascending=False)
    return (f"Final test accuracy (mean ± sd over {count(seeds, 'seed')}) against weight count for every net, by "
            "family (tensor trains are their own family), with each family's Pareto frontier. Right: the nets up to "
            f"{PARETO_ZOOM['weights']:,} weights within {PARETO_ZOOM['points']:g} points of the best.",
            f"Two scatter plots of accuracy against weights on a log scale, {count(len(points), 'net')} in "
            f"{count(len(by_family), 'family', 'families')}. The best net is {best.name} at {best['mean']:.1f} percent "
            f"with {int(best.weights):,} weights; the best member of each family reaches "
            + join_words([f"{fam} {acc:.1f}" for fam, acc in by_family.items()]) + " percent.")


def t3f_caption(t: Mapping, seeds: int) -> tuple[str, str]:
    """(caption, alt text) of the t3f figure."""
    two_kron = ku.count_params(ku.build_model("two_kron"))
    return (f"Test accuracy per epoch of the t3f tutorial's tensor-train net ({t['net']}, {t['params']:,} parameters) "
            f"and the post's two_kron ({two_kron:,}), under the post's recipe (solid, {epochs_phrase(t['sgd_epochs'])} "
            f"of SGD) and the tutorial's (dashed, {epochs_phrase(t['adam_epochs'])} of Adam); mean over "
            f"{count(seeds, 'seed')} with a ± 1 sd band, and the tutorial's reported number (star).",
            f"A line chart of accuracy against epoch on a log axis. {t['net']} ends at {t['adam'].mean():.1f} percent "
            f"under Adam, beside the tutorial's star at {t['tutorial']['accuracy']:.1f}, and at {t['sgd'].mean():.1f} "
            "percent under SGD.")


def projection_caption(f: Mapping) -> tuple[str, str]:
    """(caption, alt text) of the projection figure."""
    first, after = f["first"], f["after"]
    return ("Test accuracy of the nearest rank-r Kronecker sums of the trained dense layer, right after projection "
            "(epoch 0) and while fine-tuned, against the same structures trained from scratch (mean and min-max "
            "over seeds).",
            f"A line chart: the projected nets start between {first.min():.0f} and {first.max():.0f} percent at "
            f"epoch 0 and reach {after.min():.0f} to {after.max():.0f} percent after "
            f"{epochs_phrase(f['finetune_epochs'])} of fine-tuning.")


def datasets_caption(finals: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str]) -> tuple[str, str]:
    """(caption, alt text) of the dataset comparison."""
    means = finals.groupby(["dataset", "variant"]).test_accuracy.mean()
    return (f"Final test accuracy of the post's {count(len(variants), 'net')} on each dataset: dots are means, bars "
            f"± 1 sd over {count(finals.seed.nunique(), 'seed')}.",
            f"{count(len(datasets), 'dot plot').capitalize()}, one per dataset. "
            + " ".join(f"On {d}: {ranked_values(means[d].reindex(list(variants)).dropna())}." for d in datasets))
