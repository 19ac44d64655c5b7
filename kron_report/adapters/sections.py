"""Part 4's section sentences and small tables: the transfer settings, the factor shapes, the cost, what ΔW learned,
and the advice; each turns structured results into Markdown or a display table and computes no statistic itself.
The lede's bullets live in :mod:`adapters.prose`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..claims import weakest_margin
from ..words import ci_cell, cite, count, interval, join_words, number_word
from .arms import ADAPTER_KINDS, Arm, lokr_shapes, parse_arm, shape_text, task_text
from .prose import _KIND_WORDS, ROUNDING, _by_arm, _seconds, smallest_budgets_win
from .results import lokr_default_ceiling

__all__ = ["transfer_view", "transfer_summary", "shape_summary", "winners_summary", "delta_summary",
           "timing_summary", "step_time_table", "lokr_advice", "twin_check_sentence"]


def transfer_view(table: pd.DataFrame, chosen: int) -> pd.DataFrame:
    """The candidate settings as the page shows them (:func:`adapters.results.transfer_table`): the pre-training gain
    on validation (what chose the setting) and on test, the head alone against scratch, and which setting the
    adapters are compared in."""
    return pd.DataFrame({
        "setting": table.setting,
        "full − scratch, validation (pp)": [ci_cell(dict(diff=r.val_gain, low=r.val_low, high=r.val_high))
                                           for r in table.itertuples()],
        "full − scratch, test (pp)": [ci_cell(dict(diff=r.gain, low=r.low, high=r.high)) for r in table.itertuples()],
        "head − scratch, test (pp)": [ci_cell(dict(diff=r.head_gain, low=r.head_low, high=r.head_high))
                                      for r in table.itertuples()],
        "adapters": ["compared here" if i == chosen else "" for i in range(len(table))]})


def transfer_summary(table: pd.DataFrame, chosen: int) -> str:
    """Section 1 in words: which setting the adapters are compared in and why (validation only), its gain on test,
    and the settings where pre-training buys nothing measurable: the no-transfer contrast."""
    best = table.iloc[chosen]
    gain = interval(best.gain, best.low, best.high)
    verdict = ("There full fine-tuning beats training from scratch on test too" if best.low > 0 else
               "On test, though, full fine-tuning is not ahead of scratch beyond the seed noise")
    text = (f"The adapters are compared in the setting where full fine-tuning's lead over training from scratch has the "
            f"highest lower bound on validation: {best.setting}. {verdict} ({gain}).")
    none = table[(table.low <= 0) & (table.index != table.index[chosen])]
    if not none.empty:
        earlier = none[none.images.isna()] if "images" in none else none.iloc[:0]
        among = f", among them {earlier.setting.iloc[0]}," if not earlier.empty and len(none) > 1 else ""
        which = "that setting is" if len(none) == 1 else "they are"
        text += (f" In {number_word(len(none))} of the other settings{among} pre-training buys nothing measurable on "
                 f"test: {which} the no-transfer contrast, where an adapter comparison would measure which small layer "
                 f"trains best from a random start.")
    return text


def shape_summary(comparisons: pd.DataFrame) -> str:
    """Section 3 in words: at each budget, how many Kronecker-sum shapes beat or trail the balanced sum beyond the seed
    noise (they share it as the baseline, so only the narrowest winning margin is quoted; the table names them all),
    the shapes that win at every budget, and what that says of the two published claims: CDKA's that the components'
    shape and number matter, LyCORIS's maintainer's that a non-square factor does not."""
    parts, moved, winners = [], False, None
    for budget, part in comparisons.groupby("budget", sort=False):
        kron = part[part.kind == "kronsum"]
        ahead, behind = kron[kron.outcome == "ahead"], kron[kron.outcome == "behind"]
        moved |= not (ahead.empty and behind.empty)
        shapes = {parse_arm(a).shape for a in ahead.arm}
        winners = shapes if winners is None else winners & shapes
        clauses = []
        if not ahead.empty:
            c = weakest_margin(ahead.to_dict("records"))
            margin = ("" if len(ahead) == 1 else "the narrowest margin: ") + interval(c["diff"], c["low"], c["high"])
            clauses.append(f"{count(len(ahead), 'shape')} {'beats' if len(ahead) == 1 else 'beat'} the balanced sum "
                           f"({margin})")
        if not behind.empty:
            clauses.append(f"{number_word(len(behind))} {'trails' if len(behind) == 1 else 'trail'} it")
        parts.append(f"At {int(budget):,} weights, " + (join_words(clauses) + "; the others are level with it" if clauses
                     else "no Kronecker-sum shape differs from the balanced one beyond the seed noise") + ".")
    every = "both budgets" if comparisons.budget.nunique() == 2 else "every budget"
    if winners and comparisons.budget.nunique() > 1:
        names = join_words([shape_text(f"kronsum_{o}x{i}_r1").split(" (")[0] for o, i in sorted(winners)])
        parts.append(f"Only {names} {'beats' if len(winners) == 1 else 'beat'} it at {every}.")
    claim = (f"So on this layer the factors' shape decides part of the accuracy, as CDKA reports "
             f"{cite('cdka', 'adapters')}, at least between the shapes tried; at equal weights a shape also sets the "
             "number of terms, so the two are not separated, and every shape is compared with the one balanced "
             "sum, so these comparisons are not independent." if moved else
             f"So on this layer the shape buys nothing measurable at equal weights, as LyCORIS's maintainer says of "
             f"non-square factors {cite('lycoris164', 'adapters')}, and not the gain that CDKA "
             f"{cite('cdka', 'adapters')} and DiffuseKronA {cite('diffusekrona', 'adapters')} report for theirs.")
    return " ".join(parts) + " " + claim


def winners_summary(winners: pd.DataFrame) -> str:
    """The level table's note, and the evidence for the lede's 'best adapter' claim (from
    :func:`adapters.results.level_winners`): where the top adapter's lead over the runner-up excludes zero, or,
    where it never does, the lead that comes closest."""
    note = ("*Test accuracy: mean ± sd over seeds. Differences: Welch 95% intervals. Budgets are named by the "
            "Kronecker sum's weights.*")
    clear = winners[winners.low > 0]
    if clear.empty:
        near = winners.loc[winners.low.idxmax()]
        return (f"{note} The nearest any adapter comes to a clear lead over the runner-up is "
                f"{_KIND_WORDS[near.best_kind][0]} over {_KIND_WORDS[near.runner_up_kind][0]} at "
                f"{int(near.budget):,} weights ({interval(near['diff'], near.low, near.high)}).")
    leads = [f"{_KIND_WORDS[w.best_kind][0]} over {_KIND_WORDS[w.runner_up_kind][0]} at {int(w.budget):,} weights "
             f"({interval(w.diff, w.low, w.high)})" for w in clear.itertuples()]
    rest = "" if len(clear) == len(winners) else " Elsewhere the top two are level."
    return f"{note} A lead beyond the seed noise: {'; '.join(leads)}.{rest}"


def delta_summary(deltas: pd.DataFrame, fits: pd.DataFrame, results: pd.DataFrame) -> str:
    """Section 4 in words: full fine-tuning's update, the best any LoRA or Kronecker sum could do at matching it,
    and how far the trained adapters' updates are from it (their ranks and cosines are in the table)."""
    d = _by_arm(deltas, results)
    full = d[d.kind == "full"].iloc[0]
    best = fits.groupby(["structure", "rank"]).error.mean()
    top = int(fits["rank"].max())
    adapters = d[d.kind.isin(ADAPTER_KINDS)]
    ranks = sorted(set(fits["rank"]))
    lora_closer = all(best[("LoRA", r)] < best[("Kronecker sum", r)] for r in ranks)
    nearest = adapters.distance.min()
    trained = (f"hardly closer to it than the zero update: no relative distance is below {nearest:.2f}, where the "
               f"zero update's is 1" if nearest > 0.9 else
               f"closer than the zero update, but only in part: the nearest is at a relative distance of {nearest:.2f}")
    return (f"Full fine-tuning's update has effective rank {full.eff:.0f} of {ku.HIDDEN_SIZE}. The best rank-{top} LoRA "
            f"could reproduce it to a relative error of {best[('LoRA', top)]:.2f}; the best sum of {top} Kronecker "
            f"products, with about as many weights, only to {best[('Kronecker sum', top)]:.2f}. Like the W − W₀ of "
            f"[the beyond page](beyond.html), it has little Kronecker structure on the image grid"
            + (", and by this measure LoRA is the closer approximation at every budget shown." if lora_closer else ".")
            + f" The trained adapters are {trained}. Each adapter reaches its accuracy with an update of its own, not "
            f"with a compressed copy of full fine-tuning's.")


def timing_summary(timing: pd.DataFrame, results: pd.DataFrame, batch: int) -> str:
    """Section 6: how the step times were measured, and how the Kronecker sum applies its update: by the cost model
    of :func:`kron_utils.adapter_step_macs`, contracting the input with the factors for few terms and building ΔW
    once per step for many (peft's LoKr always builds it)."""
    kron = results[(results.kind == "kronsum")].sort_values("rank")
    paths = {r.arm: ku.adapter_path(*_factor_shapes(r.arm), batch) for r in kron.itertuples()}
    contract = [int(r) for a, r in zip(kron.arm, kron["rank"]) if paths[a] == "contract"]
    form = [int(r) for a, r in zip(kron.arm, kron["rank"]) if paths[a] == "form"]
    switch = (f"at this batch of {batch} it contracts for {join_words([str(r) for r in contract])} "
              f"term{'s' if contract != [1] else ''} and builds ΔW for {join_words([str(r) for r in form])}"
              if contract and form else f"at this batch of {batch} it {'contracts' if contract else 'builds ΔW'} at "
              f"every budget")
    return (f"Step times are medians of {count(int(timing['round'].max()), 'round')}, every arm timed in turn in one "
            f"process ({count(int(timing.threads.iloc[0]), 'thread')}; Adam on the trainable weights, new head "
            f"included). The Kronecker sum applies its update in whichever of two ways costs fewer multiply-adds for "
            f"the batch: through the factors, without building ΔW (the cost grows with batch × terms), or by building "
            f"ΔW once per step and adding it to the frozen weight (the cost grows with the terms, plus one ΔW "
            f"gradient as full fine-tuning takes); {switch}. peft's LoKr builds the whole "
            f"{ku.HIDDEN_SIZE}×{ku.IMAGE_SIZE} ΔW at every step.")


def _factor_shapes(arm: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A Kronecker-sum arm's factor tensors' shapes, (r, O_A, I_A) and (r, O_B, I_B)."""
    from .arms import kron_shapes
    parsed = parse_arm(arm)
    (o1, i1), (o2, i2) = kron_shapes(parsed.shape)
    return (parsed.rank, o1, i1), (parsed.rank, o2, i2)


def step_time_table(timing: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> pd.DataFrame:
    """Milliseconds per training step at each budget: LoRA, peft's LoKr, the Kronecker sum, and its ratio to full
    fine-tuning of the layer (median over rounds, measured side by side)."""
    ms = _seconds(timing)
    full = ms[timing.arm[timing.kind == "full"].iloc[0]]
    return pd.DataFrame([{"budget": f"≈{int(k.a_weights):,}", "LoRA": f"{ms[k.b]:.2f}", "LoKr": f"{ms[l.a]:.2f}",
                          "Kron. sum": f"{ms[k.a]:.2f}", "full fine-tuning": f"{full:.2f}",
                          "Kron. sum ÷ full": f"{ms[k.a] / full:.2f}", "Kron. sum ÷ LoRA": f"{ms[k.a] / ms[k.b]:.2f}"}
                         for (_, k), (_, l) in zip(kron_gaps.iterrows(), lokr_gaps.iterrows())])


def lokr_advice(kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame, arms: Sequence[Arm], source: str,
                target: str, seeds: Sequence[int], timing: pd.DataFrame) -> str:
    """What the page suggests for LoKr users (the verdicts are the lede's; this says what to do with them), what the
    shape of LoKr's factors does, and what this small setting cannot tell."""
    ahead = kron_gaps[kron_gaps.outcome == "ahead"]
    if ahead.empty:
        advice = ("If you reach for a Kronecker adapter for its higher rank, nothing here supports it: on this layer "
                  "a low-rank update of the same budget did as well.")
    elif len(ahead) == len(kron_gaps):
        advice = "Here the rank argument held at every budget, so a Kronecker adapter is the better default."
    elif smallest_budgets_win(kron_gaps):
        seconds = _seconds(timing)
        rest = kron_gaps[kron_gaps.outcome != "ahead"]
        cheaper = all(seconds[g.b] < seconds[g.a] for g in rest.itertuples())
        advice = ("The rank argument held here only where the budget is tiny. Above that, LoRA did as well"
                  + (" at less cost" if cheaper else "") + ", so a Kronecker adapter needs evidence from your own "
                  "layer.")
    else:
        advice = "The Kronecker adapters beat LoRA at some budgets and not others here, so test them on your own layer."
    others = [a for a in arms if a.kind == "lokr" and a.factor != -1]
    shape = (f"Which factors LoKr uses depends on its settings. At peft's default factorisation LoKr cannot "
             f"grow past {lokr_default_ceiling():,} weights on this layer. Larger budgets, through `decompose_factor`, "
             f"get a w1 of {join_words(list(dict.fromkeys(_w1(a) for a in others)))}: what the library calls LoKr at "
             f"a given budget can be a very different update." if others else
             f"Every LoKr here keeps peft's default factorisation, which cannot grow past {lokr_default_ceiling():,} "
             f"weights on this layer; other factor shapes were not run.")
    by_name = {a.name: a for a in arms}
    behind = [by_name[a] for a in lokr_gaps.a[lokr_gaps.outcome == "behind"] if a in by_name]
    unsplit = [a for a in behind if lokr_shapes(a.factor)[0][0] == 1]
    if unsplit:
        subject = "The LoKr that trails LoRA has" if len(unsplit) == 1 else "The LoKr arms that trail LoRA have"
        shape += (f" {subject} a w1 of {join_words(list(dict.fromkeys(_w1(a) for a in unsplit)))}: peft leaves the "
                  f"{ku.HIDDEN_SIZE} outputs unsplit, so only the input side is Kronecker-factored.")
    return (f"{advice} {shape}\n\n"
            f"**What this setting cannot tell.** One small MLP, one base, one pair of tasks ({task_text(source)} to "
            f"{task_text(target)}), a new head in every arm, one optimiser (Adam) at one batch size and epoch count, "
            f"{count(len(seeds), 'seed')}, alpha = r throughout, and the CPU only. Large models, "
            f"attention layers and the diffusion models where LoKr is used most have other spectra and other budgets; "
            f"what holds for a 784×625 layer on 28×28 images need not hold there.")


def _w1(arm: Arm) -> str:
    """LoKr's first factor's shape, '5×16'."""
    (out_l, _), (in_m, _) = lokr_shapes(arm.factor)
    return f"{out_l}×{in_m}"


def twin_check_sentence(check: Mapping) -> str:
    """The structural check of section 3, in words: differences up to :data:`ROUNDING` are float32 rounding."""
    def agree(diff: float, verb: str) -> str:
        return (f"{verb} identical" if diff == 0 else "agree to float32 rounding" if diff <= ROUNDING
                else "differ by more than float32 rounding")
    same = check["ours_trainable"] == check["peft_trainable"]
    counts = (f"both train {check['ours_trainable']:,} parameters with the head (peft's own count for LoKr)" if same
              else f"they train {check['ours_trainable']:,} and {check['peft_trainable']:,} parameters with the "
                   f"head: the counts differ")
    return (f"Given the same two 25×28 factors, the two layers' ΔW {agree(check['delta_max_diff'], 'are')}, their "
            f"outputs {agree(check['forward_max_diff'], 'are')}, and {counts}.")
