"""Part 4's sentences: adapters at matched budgets. Every function turns structured results into Markdown and
computes no statistic itself beyond picking and ordering them. The numbers live in the page's tables; a sentence
carries the verdict and at most the one or two numbers that decide it.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..claims import closeness, weakest_margin, within
from ..readability import numbers_in
from ..words import count, epochs_phrase, interval, join_words, number_word, recipe, seeds_phrase
from .arms import ADAPTER_KINDS, Arm, base_settings, lokr_shapes
from .results import lokr_default_ceiling

__all__ = ["DATASET_TEXT", "ROUNDING", "adapters_method", "kind_verdict", "smallest_budgets_win",
           "adapters_lede", "reference_sentence", "top_arms_sentence", "twin_sentence", "rank_sentence",
           "cost_sentence", "winners_summary", "delta_summary", "timing_summary",
           "lokr_advice", "twin_check_sentence"]


DATASET_TEXT = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", ku.SYNTHETIC: "synthetic data"}

#: Each adapter kind in a sentence, singular and plural.
_KIND_WORDS = {"lora": ("LoRA", "LoRA"), "lokr": ("peft's LoKr", "peft's LoKr"),
               "kronsum": ("the Kronecker sum", "the Kronecker sums")}

#: The largest difference between two float32 computations of the same thing that the page calls rounding.
ROUNDING = 1e-5


def _name(dataset: str) -> str:
    return DATASET_TEXT.get(dataset, dataset)


def _closeness(c: Mapping) -> str:
    """For an interval that holds zero: :func:`claims.closeness` in the page's grammar ('no measurable difference,
    within 1 point'), or, where no margin holds the whole interval, no closer claim than the noise allows."""
    words = re.sub(r"\bwithin 1 points\b", "within 1 point", closeness(c))
    return words if words.startswith("no measurable") else "no difference beyond the seed noise, in a wide interval"


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _headed(heading: str, anchor: str) -> str:  # a lede bullet's bold heading, linked to its evidence
    return f"**[{heading}](#{anchor})**"


def adapters_method(source: str, target: str, settings: ku.TrainSettings, rates: Sequence[float],
                    seeds: Sequence[int], base: Mapping | None) -> str:
    """How the page's runs were made: the base, the target, the recipe, the choice of learning rate."""
    base_text = f" It scores {base['test_accuracy']:.2f}% on the {_name(source)} test set." if base else ""
    post = ku.TrainSettings(**base["settings"]) if base else base_settings(source)  # as recorded with the base
    return (f"**How the runs were made.** The base is the post's dense net trained on {_name(source)} with "
            f"the post's recipe ({recipe(post)}; seed 1).{base_text} Its 625→10 head is replaced by a new one for the "
            f"{_name(target)} classes, trained in every arm and counted apart from the adapter. Adapters go on the "
            f"784→625 layer only, with its weights frozen. Every arm trains with Adam, batches of "
            f"{settings.batch_size}, for {epochs_phrase(settings.epochs)} on the first "
            f"{ku.train_size(target) - settings.validation:,} {_name(target)} training images; the last "
            f"{settings.validation:,} are held out. Each arm's learning rate is chosen from "
            f"{join_words([f'{r:g}' for r in rates])} by its final validation accuracy with seed {seeds[0]}; then "
            f"{seeds_phrase(seeds)} train at that rate, each seed drawing the new head, the adapter and the data "
            f"order. The test set only reports. Full fine-tuning and training from scratch are trained here with this "
            f"page's recipe, not taken from the beyond page. LoRA and LoKr use alpha = r (scale 1), as the Kronecker sum does. "
            f"Differences are Welch 95% intervals over seeds.")


# --- The lede: one claim a bullet, each with the number that decides it ---

def smallest_budgets_win(gaps: pd.DataFrame) -> bool:
    """True when the budgets where the first kind is ahead are exactly the smallest ones (and there are some)."""
    ahead = sorted(gaps.level[gaps.outcome == "ahead"])
    return bool(ahead) and ahead == list(range(1, len(ahead) + 1)) and len(ahead) < len(gaps)


def _levels(gaps: pd.DataFrame, outcome: str, among: Sequence[int] | None = None) -> list[int]:
    levels = sorted(int(v) for v in gaps.level[gaps.outcome == outcome])
    return [v for v in levels if among is None or v in among]


def _budgets(names: Mapping[int, int], levels: Sequence[int]) -> str:
    """'1,400 and 5,600 weights': the budgets of ``levels``, named by ``names`` (level -> weights)."""
    return join_words([f"{names[v]:,}" for v in levels]) + " weights"


def _margin(gaps: Sequence[pd.DataFrame], outcome: str, levels: Sequence[int]) -> str:
    """The interval of the one comparison at ``levels``, or, for several (they share LoRA as the baseline), the
    narrowest margin among them (:func:`claims.weakest_margin`)."""
    rows = [dict(g) for frame in gaps for _, g in frame[frame.level.isin(levels) & (frame.outcome == outcome)].iterrows()]
    c = weakest_margin(rows)
    text = interval(c["diff"], c["low"], c["high"])
    return f"({text})" if len(rows) == 1 else f"(the narrowest margin: {text})"


_VERB = {"ahead": "beats LoRA beyond the seed noise", "level": "is level with LoRA",
         "behind": "trails LoRA beyond the seed noise"}


def _kind_clauses(gaps: pd.DataFrame, names: Mapping[int, int], among: Sequence[int], every: str) -> str:
    """What one kind does at the budgets ``among``: 'is level with LoRA at every other budget', or each outcome
    with its budgets and, for a lead or a lag, its margin (dropped when the sentence would hold too many numbers)."""
    outcomes = [o for o in ("ahead", "level", "behind") if _levels(gaps, o, among)]
    if len(outcomes) == 1:
        o = outcomes[0]
        margin = f" {_margin([gaps], o, among)}" if o != "level" else ""
        return f"{_VERB[o]}{' ' + every if every else ''}{margin}"
    parts = []
    for k, o in enumerate(outcomes):
        levels = _levels(gaps, o, among)
        margin = f" {_margin([gaps], o, levels)}" if o != "level" else ""
        verb = _VERB[o] if k == 0 else _VERB[o].replace("LoRA", "it")
        parts.append((f"{verb} at {_budgets(names, levels)}", margin))
    with_margins = join_words([p + m for p, m in parts])
    return with_margins if numbers_in(with_margins) <= 8 else join_words([p for p, _ in parts])


def kind_verdict(kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> tuple[str, str]:
    """(heading, text): where the two Kronecker adapters beat LoRA of the same budget, with the narrowest margin of
    those wins (they share LoRA as the baseline, so they are not counted), then what each does at the other budgets.
    Budgets are named by the Kronecker sum's weights (:func:`adapters.results.kind_gaps`), as the level table does."""
    names = dict(zip(kron_gaps.level.astype(int), kron_gaps.a_weights.astype(int)))
    levels = sorted(names)
    both = [v for v in _levels(kron_gaps, "ahead") if v in _levels(lokr_gaps, "ahead")]
    anywhere = set(_levels(kron_gaps, "ahead")) | set(_levels(lokr_gaps, "ahead"))
    if not anywhere:
        heading = "Kronecker structure never beat LoRA beyond the seed noise."
    elif both == levels:
        heading = "Kronecker structure beat LoRA at every budget."
    elif set(both) == anywhere and both == levels[:len(both)]:
        heading = "Kronecker structure paid off only at the smallest budgets."
    elif not _levels(lokr_gaps, "ahead"):
        heading = "Only the Kronecker sum beat LoRA beyond the seed noise."
    elif not _levels(kron_gaps, "ahead"):
        heading = "Only LoKr beat LoRA beyond the seed noise."
    else:
        heading = "Kronecker structure paid off at some budgets, not others."
    sentences = []
    if both:
        sentences.append(f"Both Kronecker adapters beat LoRA beyond the seed noise at {_budgets(names, both)} "
                         f"{_margin([kron_gaps, lokr_gaps], 'ahead', both)}.")
    rest = [v for v in levels if v not in both]
    if rest:
        prefix = "Above that, " if both and both == levels[:len(both)] else "Elsewhere, " if both else ""
        every = "" if prefix == "Above that, " else "at every other budget" if both else "at every budget"
        kron = _kind_clauses(kron_gaps, names, rest, every)
        lokr = _kind_clauses(lokr_gaps, names, rest, every)
        if {*kron_gaps.outcome[kron_gaps.level.isin(rest)], *lokr_gaps.outcome[lokr_gaps.level.isin(rest)]} == {"level"}:
            sentences.append(_first_upper(f"{prefix}both are level with LoRA{' ' + every if every else ''}."))
        else:
            sentences.append(_first_upper(f"{prefix}the Kronecker sum {kron}."))
            sentences.append(f"LoKr {lokr}.")
    return heading, " ".join(sentences)


def reference_sentence(c: Mapping, seeds: Sequence[int], source: str, target: str) -> str:
    """What this page can measure at all: full fine-tuning against training from scratch (:func:`stats.compare_final`,
    full minus scratch), and where the learning rates were chosen."""
    gap = interval(c["diff"], c["low"], c["high"])
    if c["low"] <= 0 <= c["high"]:
        text = (f"**Read this first: pre-training buys nothing measurable here.** Fine-tuning the whole pre-trained "
                f"input layer is level with training the net from scratch on {_name(target)} ({_closeness(c)}; {gap}). "
                f"So this page measures which small layer trains best from a random start more than which adapts a trained "
                f"layer best.")
    elif c["diff"] > 0:
        text = (f"**Pre-training helps here.** Fine-tuning the whole pre-trained input layer beats training the net "
                f"from scratch on {_name(target)} ({gap}), so the {_name(source)} base carries something to adapt.")
    else:
        text = (f"**Read this first: pre-training hurts here.** Fine-tuning the whole pre-trained input layer is worse "
                f"than training the net from scratch on {_name(target)} ({gap}). So this page measures which small "
                f"layer trains best more than which adapts a trained layer best.")
    return (f"{text} Each arm's learning rate was chosen on seed {seeds[0]}'s validation accuracy, and that seed also "
            f"counts in the test means.")


def _arm_words(arms: pd.DataFrame) -> str:
    """'the Kronecker sums at 5,600 and 11,200 weights and LoRA at 22,544 weights', by kind."""
    parts = []
    for kind in ADAPTER_KINDS:
        part = arms[arms.kind == kind]
        if not part.empty:
            word = _KIND_WORDS[kind][len(part) > 1]
            parts.append(f"{word} at {join_words([f'{int(w):,}' for w in part.adapter_weights])} weights")
    return join_words(parts)


def top_arms_sentence(winners: pd.DataFrame, against: pd.DataFrame) -> str:
    """Whether any adapter is best at a budget (only where the interval to the runner-up excludes zero, from
    :func:`adapters.results.level_winners`), and how close the adapters come to full fine-tuning of the layer
    (:func:`adapters.results.against_full`): 'level' with the margin that holds every such interval."""
    clear = winners[winners.low > 0]
    leaders = [f"{_KIND_WORDS[w.best_kind][0]} at {int(w.budget):,} weights" for w in clear.itertuples()]
    lead = f"{_first_upper(join_words(leaders))} {'leads' if len(clear) == 1 else 'lead'} the runner-up" if leaders else ""
    if clear.empty:
        best = f"{_headed('No adapter is best at any budget.', 'budgets')} At each, the top two are level."
    elif len(clear) == len(winners):
        best = f"{_headed('A best adapter at every budget.', 'budgets')} {lead}."
    else:
        best = f"{_headed('A best adapter at some budgets only.', 'budgets')} {lead}; elsewhere the top two are level."
    adapters = against[against.kind.isin(ADAPTER_KINDS)]
    ahead, level = adapters[adapters.outcome == "ahead"], adapters[adapters.outcome == "level"]
    first = ("No adapter beats full fine-tuning of the layer" if ahead.empty else
             f"{_first_upper(_arm_words(ahead))} beat full fine-tuning of the layer beyond the seed noise")
    first += " ([section 4](#delta))"
    if level.empty:
        rest = "every other adapter trails it" if not ahead.empty else "every adapter trails it"
    else:
        margin = next((m for m in (0.25, 0.5, 1, 2, 5, 10) if all(within(c, m) for c in level.to_dict("records"))),
                      None)
        bound = f" (each 95% interval within ±{margin:g} point{'s' if margin != 1 else ''})" if margin else ""
        rest = f"{_arm_words(level)} {'is' if len(level) == 1 else 'are'} level with it{bound}"
    return f"{best} {first}; {rest}."


def twin_sentence(twin: Mapping, short: bool = False) -> str:
    """Our rank-1 Kronecker sum against peft's LoKr with the same A ⊗ B and seeds: in the lede (``short``), the
    verdict; in section 3, the difference with its interval and seeds."""
    agree = twin["within_noise"]
    if short:
        verdict = (f"show {_closeness(twin)}" if agree else f"differ beyond the seed noise "
                   f"({interval(twin['diff'], twin['low'], twin['high'])})")
        heading = "The implementation is not the story." if agree else "The implementation matters."
        return (f"{_headed(heading, 'twin')} Our rank-1 Kronecker sum and peft's LoKr at its default factors compute "
                f"the same update, ΔW = A ⊗ B; trained with the same seeds they {verdict}.")
    return ("Our adapter and peft's LoKr show " + ("no measurable difference" if agree else
                                                   "a difference beyond the seed noise")
            + f" ({interval(twin['diff'], twin['low'], twin['high'], (twin['n_a'], twin['n_b']))}).")


def rank_sentence(deltas: pd.DataFrame, results: pd.DataFrame) -> str:
    """What the learned ΔW look like: the Kronecker sums' rank against LoRA's r, and how little any adapter's
    update points the way full fine-tuning's does."""
    d = _by_arm(deltas, results)
    kron, adapters = d[d.kind == "kronsum"], d[d.kind.isin(ADAPTER_KINDS)]
    full_rank = (kron["rank"] == ku.HIDDEN_SIZE).all()
    rank = "full rank" if full_rank else f"rank up to {kron['rank'].max():.0f}"
    cosine = adapters.cosine.max()
    if cosine < 0.5:
        return (f"{_headed('High rank does not mean a copy of full fine-tuning.', 'delta')} Every Kronecker-sum "
                f"update has {rank}, where LoRA's has rank r, yet no adapter's update points the way full "
                f"fine-tuning's does: the cosine between them is at most {cosine:.2f}.")
    heading = "Some adapters learn part of full fine-tuning's update."
    return (f"{_headed(heading, 'delta')} Every Kronecker-sum "
            f"update has {rank}, where LoRA's has rank r; the cosine between an adapter's update and full "
            f"fine-tuning's reaches {cosine:.2f}.")


def _seconds(timing: pd.DataFrame) -> pd.Series:
    return timing.groupby("arm").seconds_per_epoch.median()


def cost_sentence(timing: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> str:
    """Which adapter is cheapest per epoch at each budget (median seconds measured side by side), and where the
    Kronecker sum costs LoRA's time without buying accuracy."""
    seconds = _seconds(timing)
    names = dict(zip(kron_gaps.level.astype(int), kron_gaps.a_weights.astype(int)))
    cheapest = [int(k.level) for k, (_, l) in zip(kron_gaps.itertuples(), lokr_gaps.iterrows())
                if seconds[k.b] <= min(seconds[k.a], seconds[l.a])]
    if len(cheapest) == len(kron_gaps):
        claim = "LoRA is the cheapest adapter per epoch at every budget"
    elif cheapest:
        claim = f"LoRA is the cheapest adapter per epoch at {_budgets(names, cheapest)}"
    else:
        claim = "LoRA is never the cheapest adapter per epoch"
    wasted = [int(g.level) for g in kron_gaps.itertuples() if g.outcome != "ahead" and seconds[g.b] < seconds[g.a]]
    tail = (f" At {_budgets(names, wasted)} the Kronecker sum costs more time for no accuracy." if wasted else "")
    return f"{_headed(claim + '.', 'cost')}{tail}"


def adapters_lede(results: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame, winners: pd.DataFrame,
                  against: pd.DataFrame, twin: Mapping, deltas: pd.DataFrame, reference: Mapping,
                  timing: pd.DataFrame, seeds: Sequence[int], source: str, target: str) -> str:
    """The page's argument first: what full fine-tuning against scratch says this page can measure, then one bullet a
    claim (the Kronecker adapters against LoRA, whether any adapter is best, the twin check, what ΔW looks like, the
    cost), each with the number that decides it and a link to its evidence."""
    adapters = results[results.kind.isin(ADAPTER_KINDS)]
    heading, story = kind_verdict(kron_gaps, lokr_gaps)
    bullets = [f"{_headed(heading, 'budgets')} {story}", top_arms_sentence(winners, against),
               twin_sentence(twin, short=True), rank_sentence(deltas, results),
               cost_sentence(timing, kron_gaps, lokr_gaps)]
    return (f"We froze the input layer of the post's dense {_name(source)} net and fine-tuned it to {_name(target)} "
            f"through three kinds of adapter at {number_word(len(kron_gaps))} matched budgets, from "
            f"{int(adapters.adapter_weights.min()):,} to {int(adapters.adapter_weights.max()):,} trainable weights.\n\n"
            f"{reference_sentence(reference, seeds, source, target)}\n\nWhat we found:\n\n"
            + "\n".join(f"- {b}" for b in bullets))


# --- The sections ---

def _by_arm(deltas: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Seed means of :func:`adapters.results.delta_table` per arm, with the arm's kind."""
    kinds = results.set_index("arm").kind
    return deltas.assign(kind=deltas.arm.map(kinds)).groupby("arm", sort=False).agg(
        kind=("kind", "first"), rank=("rank", "median"), eff=("effective_rank", "mean"),
        cosine=("cosine_to_full", "mean"), distance=("distance_to_full", "mean"))


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
               f"closer, but only in part: the nearest is at a relative distance of {nearest:.2f}")
    return (f"Full fine-tuning's update has effective rank {full.eff:.0f} of {ku.HIDDEN_SIZE}. The best rank-{top} LoRA "
            f"could reproduce it to a relative error of {best[('LoRA', top)]:.2f}; the best sum of {top} Kronecker "
            f"products, with about as many weights, only to {best[('Kronecker sum', top)]:.2f}. Like the W − W₀ of "
            f"[the beyond page](beyond.html), it has little Kronecker structure on the image grid"
            + (", and by this measure LoRA is the closer approximation at every budget shown." if lora_closer else ".")
            + f" The trained adapters are {trained}. Each adapter reaches its accuracy with an update of its own, not "
            f"with a compressed copy of full fine-tuning's.")


def timing_summary(timing: pd.DataFrame, results: pd.DataFrame) -> str:
    """Section 5: how the seconds per epoch (in the table of section 4) were measured, and why LoKr and the Kronecker
    sum cost what they do: our Kronecker sum against peft's LoKr for the same update, and at its most terms."""
    seconds = _seconds(timing)
    full = seconds[results.arm[results.kind == "full"].iloc[0]]
    kron = results[results.kind == "kronsum"].sort_values("rank")
    one, many, twin = seconds[kron.arm.iloc[0]], seconds[kron.arm.iloc[-1]], seconds[results.arm[results.kind == "lokr"].iloc[0]]
    most = f"{many:.1f} s at {int(kron['rank'].iloc[-1])} terms" + (f", more than full fine-tuning's {full:.1f} s"
                                                                     if many > full else "")
    return (f"The seconds per epoch in the table of section 4 were measured side by side in one process "
            f"({count(int(timing.threads.iloc[0]), 'thread')}, median of {count(int(timing['round'].max()), 'round')}). "
            f"peft's LoKr builds the whole {ku.HIDDEN_SIZE}×{ku.IMAGE_SIZE} ΔW at every step; the Kronecker sum never "
            f"builds it but applies its factors to the input. Doing so is {'faster' if one < twin else 'no faster'} for "
            f"one term ({one:.1f} s against LoKr's {twin:.1f} s for the same update) and "
            f"{'slower' if many > one else 'no slower'} for many ({most}).")


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
        advice = "The rank argument held at some budgets and not others, so test it on your own layer."
    others = [a for a in arms if a.kind == "lokr" and a.factor != -1]
    shape = (f"The shape of the factors matters as much as their rank. At peft's default factorisation LoKr cannot "
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
            f"**What this setting cannot tell.** One small MLP, one base, one pair of datasets ({_name(source)} to "
            f"{_name(target)}; the reverse was not run), a new head in every arm, one optimiser (Adam) at one batch "
            f"size and epoch count, {count(len(seeds), 'seed')}, alpha = r throughout, and the CPU only. Large models, "
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
