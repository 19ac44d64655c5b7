"""Part 4's sentences: adapters at matched budgets. Every function turns structured results into Markdown and
computes no statistic itself beyond picking and ordering them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..words import count, epochs_phrase, interval, join_words, number_word, recipe, seeds_phrase, signed
from .arms import KIND_TEXT, Arm, base_settings, factorisation_text, lokr_shapes
from .results import gap_closed, lokr_default_ceiling

__all__ = ["SHORT", "DATASET_TEXT", "adapters_method", "gap_story", "smallest_budgets_win", "adapters_lede",
           "reference_sentence", "twin_sentence", "rank_sentence", "budget_caption", "winners_summary",
           "delta_summary", "fits_caption", "timing_summary", "lokr_advice", "twin_check_sentence"]


SHORT = {"lora": "LoRA", "lokr": "LoKr", "kronsum": "the Kronecker sum", "head": "the head alone",
         "full": "full fine-tuning", "scratch": "training from scratch"}


DATASET_TEXT = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", ku.SYNTHETIC: "synthetic data"}


def _pct(value: float) -> str:
    return f"{value:.2f}%"


def _name(dataset: str) -> str:
    return DATASET_TEXT.get(dataset, dataset)


def adapters_method(source: str, target: str, settings: ku.TrainSettings, rates: Sequence[float],
                    seeds: Sequence[int], base: Mapping | None) -> str:
    """How the page's runs were made: the base, the target, the recipe, the choice of learning rate."""
    base_text = f" It scores {base['test_accuracy']:.2f}% on the {_name(source)} test set." if base else ""
    post = ku.TrainSettings(**base["settings"]) if base else base_settings(source)  # as recorded with the base
    return (f"**How the runs were made.** The base is the post's dense 784-625-10 net trained on {_name(source)} with "
            f"the post's recipe ({recipe(post)}; seed 1).{base_text} Its 625→10 head is replaced by a new one for the "
            f"{_name(target)} classes, trained in every arm and counted apart from the adapter. Adapters go on the "
            f"784→625 layer only, with its weights frozen. Every arm trains with Adam, batches of "
            f"{settings.batch_size}, for {epochs_phrase(settings.epochs)} on the first "
            f"{ku.train_size(target) - settings.validation:,} {_name(target)} training images; the last "
            f"{settings.validation:,} are held out. Each arm's learning rate is chosen from "
            f"{join_words([f'{r:g}' for r in rates])} by its final validation accuracy with seed {seeds[0]}; then "
            f"{seeds_phrase(seeds)} train at that rate, each seed drawing the new head, the adapter and the data "
            f"order. The test set only reports. Part 3's {_name(target)} runs are not reused for the references: "
            f"they follow the post's recipe on all {ku.train_size(target):,} images, so full fine-tuning and training "
            f"from scratch are trained here with this page's recipe. LoRA and LoKr use alpha = r (scale 1), as the "
            f"Kronecker sum does. Differences are Welch 95% intervals over seeds.")


def gap_story(gaps: pd.DataFrame, subject: str, other: str = "LoRA", describe: Mapping[str, str] | None = None) -> str:
    """'X beats LoRA beyond the seed noise at 1,400 and 5,600 weights (+1.32 and +1.90 pp) and is level with it at
    11,200 to 44,800 (...)' from :func:`adapters.results.kind_gaps`, naming each outcome's budgets; ``describe`` adds a
    note (e.g. the factorisation) to the arms that fall behind."""
    parts = []
    for outcome, verb in (("ahead", f"beats {other} beyond the seed noise at"), ("level", "is level with it at"),
                          ("behind", "trails it beyond the seed noise at")):
        part = gaps[gaps.outcome == outcome]
        if part.empty:
            continue
        budgets = join_words([f"{int(w):,}" for w in part.a_weights])
        diffs = join_words([signed(d) for d in part["diff"]])
        notes = "".join(f"; `{a}`: {describe[a]}" for a in part.a if describe and a in describe and outcome == "behind")
        parts.append(f"{verb} {budgets} weights ({diffs} pp{notes})")
    return f"{subject} {join_words(parts)}"


def smallest_budgets_win(gaps: pd.DataFrame) -> bool:
    """True when the budgets where the first kind is ahead are exactly the smallest ones (and there are some)."""
    ahead = sorted(gaps.level[gaps.outcome == "ahead"])
    return bool(ahead) and ahead == list(range(1, len(ahead) + 1)) and len(ahead) < len(gaps)


def adapters_lede(results: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame, twin: Mapping,
                  deltas: pd.DataFrame, reference: Mapping, arms: Sequence[Arm], source: str, target: str) -> str:
    """The findings first, as bullets linking to their sections: the Kronecker sum and LoKr against LoRA at each
    budget, how close the best adapter gets to full fine-tuning (and full fine-tuning to scratch), whether our
    adapter and peft's LoKr agree, and what ΔW looks like."""
    adapters = results[results.kind.isin(["lora", "lokr", "kronsum"])]
    top = adapters.sort_values("mean").iloc[-1]
    full, head = (results[results.kind == k].iloc[0] for k in ("full", "head"))
    kron, lokr = gap_story(kron_gaps, "Our Kronecker sum"), gap_story(lokr_gaps, "peft's LoKr", describe=_shapes(arms))
    closes = (f"The best adapter, `{top.arm}` ({int(top.adapter_weights):,} weights), reaches {_pct(top['mean'])}: "
              f"{gap_closed(results, top.arm):.0%} of the way from the head alone ({_pct(head['mean'])}) to "
              f"fine-tuning all {int(full.adapter_weights):,} parameters of fc1 ({_pct(full['mean'])}).")
    bullets = [f"**{kron}** ([section 2](#budgets)).", f"{lokr}.", f"{closes} {reference_sentence(reference, source, target)}",
               twin_sentence(twin, short=True), rank_sentence(deltas, results)]
    return (f"We froze the input layer of the post's dense {_name(source)} net and fine-tuned it to {_name(target)} "
            f"through three kinds of adapter at {number_word(len(kron_gaps))} matched budgets, from "
            f"{int(adapters.adapter_weights.min()):,} to {int(adapters.adapter_weights.max()):,} trainable weights. "
            "What we found:\n\n" + "\n".join(f"- {b}" for b in bullets))


def reference_sentence(c: Mapping, source: str, target: str) -> str:
    """Full fine-tuning against training from scratch (:func:`stats.compare_final`, full minus scratch)."""
    gap = interval(c["diff"], c["low"], c["high"])
    if c["low"] <= 0 <= c["high"]:
        return (f"Fine-tuning from the {_name(source)} base is level with training the whole net from scratch on "
                f"{_name(target)} ({_pct(c['mean_b'])}; {gap}).")
    word = "better" if c["diff"] > 0 else "worse"
    return (f"Fine-tuning from the {_name(source)} base is {word} than training from scratch on {_name(target)} "
            f"({_pct(c['mean_b'])}; {gap}).")


def twin_sentence(twin: Mapping, short: bool = False) -> str:
    """Our rank-1 Kronecker sum against peft's LoKr with the same A ⊗ B and seeds: within the noise or not."""
    gap = interval(twin["diff"], twin["low"], twin["high"], (twin["n_a"], twin["n_b"]))
    verdict = ("land within the seed noise of each other" if twin["within_noise"]
               else "differ by more than the seed noise")
    if short:
        return (f"Our rank-1 Kronecker sum and peft's LoKr at its default factors, the same update ΔW = A ⊗ B, "
                f"{verdict} ({gap}; [section 3](#twin)).")
    return (f"`{twin['a']}` scores {_pct(twin['mean_a'])} and `{twin['b']}` {_pct(twin['mean_b'])}: they {verdict} "
            f"({gap}).")


def rank_sentence(deltas: pd.DataFrame, results: pd.DataFrame) -> str:
    """What the learned ΔW look like: the Kronecker sums' rank against LoRA's r, and how little any adapter's
    update points the way full fine-tuning's does."""
    d = _by_arm(deltas, results)
    kron, adapters = d[d.kind == "kronsum"], d[d.kind.isin(["lora", "lokr", "kronsum"])]
    closest = adapters.cosine.idxmax()
    return (f"Every Kronecker-sum update has matrix rank {_span(kron['rank'], '{:.0f}')} (effective rank "
            f"{_span(kron.eff, '{:.0f}')}), where LoRA's has rank r; yet no adapter's update points the way full "
            f"fine-tuning's does: the cosine between them is at most {adapters.cosine.max():.2f} (`{closest}`) "
            f"([section 4](#delta)).")


def _by_arm(deltas: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Seed means of :func:`adapters.results.delta_table` per arm, with the arm's kind."""
    kinds = results.set_index("arm").kind
    return deltas.assign(kind=deltas.arm.map(kinds)).groupby("arm", sort=False).agg(
        kind=("kind", "first"), rank=("rank", "median"), eff=("effective_rank", "mean"),
        cosine=("cosine_to_full", "mean"), distance=("distance_to_full", "mean"))


def _span(values: pd.Series, form: str) -> str:
    low, high = form.format(values.min()), form.format(values.max())
    return low if low == high else f"{low} to {high}"


def budget_caption(results: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.budget_figure`."""
    adapters = results[results.kind.isin(["lora", "lokr", "kronsum"])]
    refs = results[results.kind.isin(["head", "full", "scratch"])]
    caption = ("Final Fashion-MNIST test accuracy against the adapter's trainable weights on fc1, each arm at the "
               "learning rate its validation accuracy chose; points are seed means with 95% t-intervals. The three "
               "adapter kinds sit at matched budgets (within 10% of each other at each level; their exact weights are "
               "in the table below), drawn slightly apart so that their intervals stay visible. Horizontal lines: the head alone, full fine-tuning of fc1 and training "
               "from scratch, with their intervals as bands.")
    alt = ("Line plot of accuracy against adapter weights. " + "; ".join(
        f"{KIND_TEXT[k]}: " + ", ".join(f"{int(r.adapter_weights):,} weights {r.mean:.1f}%"
                                        for r in adapters[adapters.kind == k].itertuples())
        for k in ("lora", "lokr", "kronsum")) + ". References: " + ", ".join(
        f"{KIND_TEXT[r.kind]} {r.mean:.1f}%" for r in refs.itertuples()) + ".")
    return caption, alt


def _w1(arm: Arm) -> str:
    """LoKr's first factor's shape, '5×16'."""
    (out_l, _), (in_m, _) = lokr_shapes(arm.factor)
    return f"{out_l}×{in_m}"


def _shapes(arms: Sequence[Arm]) -> dict[str, str]:
    """Each LoKr arm's update in words, 'ΔW = w1 (1×4) ⊗ w2 (625×196 of rank 55)'."""
    return {a.name: f"ΔW = {factorisation_text(a)}" for a in arms if a.kind == "lokr"}


def winners_summary(winners: pd.DataFrame) -> str:
    """Which adapter has the best mean at each budget, and whether its lead over the runner-up is beyond the noise
    (from :func:`adapters.results.level_winners`)."""
    clear = winners[winners.low > 0]
    best = join_words([f"`{w.best}` at {int(w.budget):,}" for w in winners.itertuples()])
    tail = ("its lead over the runner-up is within the seed noise at every budget" if clear.empty else
            "its lead over the runner-up is beyond the seed noise at " + join_words(
                [f"{int(w.budget):,} weights ({signed(w.diff)} pp over `{w.runner_up}`)" for w in clear.itertuples()]))
    return (f"*Mean ± sd over seeds; weights in brackets; differences with their Welch 95% interval.* The best mean at "
            f"each budget: {best} weights; {tail}.")


def delta_summary(deltas: pd.DataFrame, fits: pd.DataFrame, results: pd.DataFrame) -> str:
    """Section 4 in words: full fine-tuning's update, the best any LoRA or Kronecker sum could do at matching it,
    and how little the trained adapters' updates resemble it."""
    d = _by_arm(deltas, results)
    full = d[d.kind == "full"].iloc[0]
    best = fits.groupby(["structure", "rank"]).error.mean()
    top = int(fits["rank"].max())
    kron, adapters = d[d.kind == "kronsum"], d[d.kind.isin(["lora", "lokr", "kronsum"])]
    lora = d[d.kind == "lora"]
    ranks = sorted(set(fits["rank"]))
    lora_closer = all(best[("LoRA", r)] < best[("Kronecker sum", r)] for r in ranks)
    return (f"Full fine-tuning's update has effective rank {full.eff:.0f} of 625. The best rank-{top} LoRA could "
            f"reproduce it to a relative error of {best[('LoRA', top)]:.2f}, the best sum of {top} Kronecker products, "
            f"with about as many weights, only to {best[('Kronecker sum', top)]:.2f}: like the W − W₀ of "
            f"[Part 3](beyond.html), full fine-tuning's update has little Kronecker structure on the image grid"
            + (", and by this measure LoRA is the better approximation at every budget shown." if lora_closer else ".")
            + f" The trained adapters {'hardly approximate it' if adapters.distance.min() > 0.9 else 'approximate it only in part'}"
            f": their relative distances to it are {_span(adapters.distance, '{:.2f}')}, where the zero update's is "
            f"1, and the cosine between their update and full fine-tuning's is "
            f"{_span(lora.cosine, '{:.2f}')} for LoRA and {_span(kron.cosine, '{:.2f}')} for the Kronecker sums, "
            f"whose updates have rank {_span(kron['rank'], '{:.0f}')} and effective rank {_span(kron.eff, '{:.0f}')}. "
            f"Each adapter reaches its accuracy with an update of its own, not with a compressed copy of full "
            f"fine-tuning's.")


def fits_caption(fits: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.best_fit_figure`."""
    best = fits.groupby(["structure", "rank"], sort=False).agg(weights=("weights", "first"), error=("error", "mean"))
    caption = ("Relative distance ‖ΔW − ΔW_full‖ / ‖ΔW_full‖ to full fine-tuning's update against weights (1 is the "
               "distance of the zero update). Dashed: the best any update of that structure could do (LoRA: the "
               "truncated SVD, Eckart–Young; Kronecker sum: the nearest sum of Kronecker products, Van Loan–Pitsianis), "
               "mean over seeds. Markers: the adapters as trained, mean over seeds.")
    alt = "Line plot. Best possible relative error: " + "; ".join(
        f"{s} " + ", ".join(f"{int(r.weights):,} weights {r.error:.2f}" for r in part.reset_index().itertuples())
        for s, part in best.groupby(level=0, sort=False)) + "."
    return caption, alt


def timing_summary(timing: pd.DataFrame, results: pd.DataFrame, kron_gaps: pd.DataFrame) -> str:
    """Seconds per epoch measured side by side: the references, each adapter kind's range, which kind is cheapest
    at each budget, and our Kronecker sum against peft's LoKr for the same update."""
    seconds = timing.groupby("arm").seconds_per_epoch.median()
    by_kind = {k: seconds[[a for a in results.arm[results.kind == k]]] for k in ("lora", "lokr", "kronsum")}
    full = seconds[results.arm[results.kind == "full"].iloc[0]]
    head = seconds[results.arm[results.kind == "head"].iloc[0]]
    threads = int(timing.threads.iloc[0])
    lora_cheapest = sum(seconds[g.b] <= seconds[g.a] for g in kron_gaps.itertuples())
    first, last = kron_gaps.a.iloc[0], kron_gaps.a.iloc[-1]
    parts = [f"{SHORT[k]} {v.min():.1f} to {v.max():.1f} s" for k, v in by_kind.items()]
    twin = results.arm[results.kind == "lokr"].iloc[0]
    return (f"Measured side by side in one process ({count(threads, 'thread')}, median of "
            f"{count(int(timing['round'].max()), 'round')}), one training epoch costs {head:.1f} s for the head alone "
            f"and {full:.1f} s for full fine-tuning of fc1; {join_words(parts)}. LoRA's two thin matrices are the "
            f"cheapest adapter at {number_word(lora_cheapest)} of the {number_word(len(kron_gaps))} budgets. peft's "
            f"LoKr builds the whole 625×784 ΔW at every step; the Kronecker sum never builds it but applies its "
            f"factors to the input, which is faster for few terms (`{first}` {seconds[first]:.1f} s against "
            f"`{twin}`'s {seconds[twin]:.1f} s for the same update) and slower for many (`{last}` "
            f"{seconds[last]:.1f} s" + (", more than full fine-tuning)." if seconds[last] > full else ")."))


def _cost_note(kron_gaps: pd.DataFrame, timing: pd.DataFrame) -> str:
    """Where a Kronecker adapter is level with LoRA and LoRA is cheaper per epoch, say that it buys nothing there."""
    seconds = timing.groupby("arm").seconds_per_epoch.median()
    level = kron_gaps[(kron_gaps.outcome != "ahead") & kron_gaps.apply(lambda g: seconds[g.b] < seconds[g.a], axis=1)]
    if level.empty:
        return ""
    return (f" At {join_words([f'{int(w):,}' for w in level.a_weights])} weights it bought no accuracy and cost more "
            f"time per epoch than LoRA (section 5).")


def lokr_advice(kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame, twin: Mapping, arms: Sequence[Arm], source: str,
                target: str, seeds: Sequence[int], timing: pd.DataFrame) -> str:
    """What the page suggests for LoKr users, and what this small setting cannot tell."""
    ahead = kron_gaps[kron_gaps.outcome == "ahead"]
    if ahead.empty:
        claim = ("here a Kronecker update never beat a low-rank one of the same budget beyond the seed noise: "
                 "\"higher rank for the same weights\" did not pay off")
    else:
        rest = len(kron_gaps) - len(ahead)
        claim = (f"here a Kronecker update beat a low-rank one of the same budget beyond the seed noise at "
                 f"{join_words([f'{int(w):,}' for w in ahead.a_weights])} weights"
                 + (f", but not at the other {count(rest, 'budget')}" if rest else "")
                 + (": higher rank for the same weights paid off where the budget is smallest"
                    if smallest_budgets_win(kron_gaps) else ""))
    shapes = _shapes(arms)
    behind = lokr_gaps[lokr_gaps.outcome == "behind"]
    unsplit = {a.name for a in arms if a.kind == "lokr" and lokr_shapes(a.factor)[0][0] == 1}
    design = "".join(f" `{a}` ({shapes[a]}) trails LoRA by {-d:.2f} pp" + (
        f"; peft leaves its {ku.HIDDEN_SIZE} outputs unsplit, so only the input side is Kronecker-factored."
        if a in unsplit else ".") for a, d in zip(behind.a, behind["diff"]))
    others = [a for a in arms if a.kind == "lokr" and a.factor != -1]
    shape = (f"The shape of the factors matters: at peft's default factorisation LoKr cannot grow past "
             f"{lokr_default_ceiling():,} weights on this layer, and larger budgets through `decompose_factor` get a "
             f"w1 of {join_words(list(dict.fromkeys(_w1(a) for a in others)))}, so what the library calls LoKr at a "
             f"given budget can be a very different update." if others else
             f"Every LoKr here keeps peft's default factorisation, which cannot grow past {lokr_default_ceiling():,} "
             f"weights on this layer; other factor shapes were not run.")
    return (f"{claim[0].upper() + claim[1:]}.{_cost_note(kron_gaps, timing)} {shape}{design} Our rank-1 adapter and peft's LoKr "
            + ("agree" if twin["within_noise"] else "do not agree")
            + " at the one budget where they are the same update, so the implementation is not the story.\n\n"
            f"**What this setting cannot tell.** One small MLP, one base, one pair of datasets ({_name(source)} to "
            f"{_name(target)}; the reverse was not run), a new head in every arm, one optimiser (Adam) at one batch "
            f"size and epoch count, learning rates chosen on seed {seeds[0]} alone, {count(len(seeds), 'seed')}, "
            f"alpha = r throughout, and the CPU only. Large models, attention layers and the diffusion models where LoKr is used most have other "
            f"spectra and other budgets; what holds for a 784×625 layer on 28×28 images need not hold there.")


def twin_check_sentence(check: Mapping) -> str:
    """The structural check of section 3, in words."""
    same = check["ours_trainable"] == check["peft_trainable"]
    delta = ("are identical" if check["delta_max_diff"] == 0 else
             f"differ by at most {check['delta_max_diff']:.1e}")
    return (f"Given the same two 25×28 factors, the two layers' ΔW {delta}, their outputs differ by at most "
            f"{check['forward_max_diff']:.1e} (float32 rounding), and they train "
            f"{check['ours_trainable']:,} and {check['peft_trainable']:,} parameters with the head"
            + (" (peft's own count)." if same else ": the counts differ."))
