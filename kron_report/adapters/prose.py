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
from .arms import ADAPTER_KINDS, base_settings, parse_arm, shape_text, task_parts, task_text

__all__ = ["DATASET_TEXT", "ROUNDING", "SLOWER", "adapters_method", "kind_verdict", "smallest_budgets_win", "adapters_lede",
           "reference_sentence", "top_arms_sentence", "twin_sentence", "rank_sentence", "cost_sentence",
           "shape_bullet"]


DATASET_TEXT = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", ku.SYNTHETIC: "synthetic data"}

#: Each adapter kind in a sentence, singular and plural.
_KIND_WORDS = {"lora": ("LoRA", "LoRA"), "lokr": ("peft's LoKr", "peft's LoKr"),
               "kronsum": ("the Kronecker sum", "the Kronecker sums")}

#: The largest difference between two float32 computations of the same thing that the page calls rounding.
ROUNDING = 1e-5


def _closeness(c: Mapping) -> str:
    """For an interval that holds zero: :func:`claims.closeness` in the page's grammar ('no measurable difference,
    within 1 point'), or, where no margin holds the whole interval, no closer claim than the noise allows."""
    words = re.sub(r"\bwithin 1 points\b", "within 1 point", closeness(c))
    return words if words.startswith("no measurable") else "no difference beyond the seed noise, in a wide interval"


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _headed(heading: str, anchor: str) -> str:  # a lede bullet's bold heading, linked to its evidence
    return f"**[{heading}](#{anchor})**"


def adapters_method(plan, base: Mapping | None, chosen: pd.DataFrame | None = None) -> str:
    """How the page's runs were made: the base, the target, the recipe, the choice of learning rate and its tie
    rule (``plan``: an :class:`adapters.plan.AdaptersPlan`), and how many arms chose a rate at an edge of the grid
    (``chosen``: :func:`adapters.results.validation_choice`), where a wider grid might have chosen otherwise."""
    settings, source, target = plan.settings(plan.rates[0]), task_text(plan.source), task_text(plan.target)
    base_text = f" It scores {base['test_accuracy']:.2f}% on the {source} test images." if base else ""
    post = ku.TrainSettings(**base["settings"]) if base else base_settings(plan.source)  # as recorded with the base
    images = plan.transfer.images or ku.train_size(*task_parts(plan.target)) - settings.validation
    choosing = plan.choosing
    return (f"**How the runs were made.** The base is the post's dense net trained on {source} with the post's recipe "
            f"({recipe(post)}; seed 1).{base_text} Its 625→10 head is replaced by a new one, trained in every arm and "
            f"counted apart from the adapter. Adapters go on the 784→625 layer only, with its weights frozen. Every arm "
            f"trains with Adam, batches of {settings.batch_size}, for {epochs_phrase(settings.epochs)} on the first "
            f"{images:,} {target} training images; the last {settings.validation:,} are held out for validation. Each "
            f"arm's learning rate is chosen from {_rates(plan.rates)} by its final validation "
            f"accuracy averaged over seeds {join_words([str(x) for x in choosing])}; rates within one validation image "
            f"of the best count as tied, and a tie goes to the lower validation loss. Then {seeds_phrase(plan.seeds)} "
            f"train at that rate, each drawing the new head, the adapter and the data order. The test set only reports. "
            f"LoRA and LoKr use alpha = r (scale 1), as the Kronecker sum does. Differences are Welch 95% intervals "
            f"over seeds.{_edges(plan.rates, chosen)}")


def _rates(rates: Sequence[float]) -> str:
    """'six rates from 0.00003 to 0.01', or the one rate: a grid in words, without float notation."""
    def plain(r: float) -> str:
        return f"{r:.8f}".rstrip("0").rstrip(".")
    if len(rates) == 1:
        return plain(rates[0])
    return f"{number_word(len(rates))} rates from {plain(min(rates))} to {plain(max(rates))}"


def _edges(rates: Sequence[float], chosen: pd.DataFrame | None) -> str:
    """' Of the 27 arms, four chose the grid's lowest rate, where a wider grid might choose otherwise.' (and the
    highest), or '' when none did."""
    if chosen is None or len(rates) < 2:
        return ""
    parts = [f"{number_word(int(n))} chose the grid's {end} rate" for end, n in (
        ("lowest", (chosen.lr == min(rates)).sum()), ("highest", (chosen.lr == max(rates)).sum())) if n]
    return (f" Of the {number_word(len(chosen))} arms, {join_words(parts)}, where a wider grid might choose otherwise."
            if parts else "")


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
        heading = "Kronecker structure beat LoRA only at the smallest budgets."
    elif not _levels(lokr_gaps, "ahead"):
        heading = "Only the Kronecker sum beat LoRA beyond the seed noise."
    elif not _levels(kron_gaps, "ahead"):
        heading = "Only LoKr beat LoRA beyond the seed noise."
    else:
        heading = "Kronecker structure beat LoRA at some budgets, not others."
    sentences = []
    if both:
        sentences.append(f"Both Kronecker adapters beat LoRA beyond the seed noise at {_budgets(names, both)} "
                         f"{_margin([kron_gaps, lokr_gaps], 'ahead', both)}.")
    rest = [v for v in levels if v not in both]
    if rest:
        prefix = "Above that, " if both and both == levels[:len(both)] else "Elsewhere, " if both else ""
        every = "" if prefix else "at every budget"
        kron = _kind_clauses(kron_gaps, names, rest, every)
        lokr = _kind_clauses(lokr_gaps, names, rest, every)
        if {*kron_gaps.outcome[kron_gaps.level.isin(rest)], *lokr_gaps.outcome[lokr_gaps.level.isin(rest)]} == {"level"}:
            sentences.append(_first_upper(f"{prefix}both are level with LoRA{' ' + every if every else ''}."))
        else:
            sentences.append(_first_upper(f"{prefix}the Kronecker sum {kron}."))
            sentences.append(f"LoKr {lokr}.")
    return heading, " ".join(sentences)


def reference_sentence(c: Mapping, plan) -> str:
    """What this page can measure at all: full fine-tuning against training from scratch in the setting the adapters
    are compared in (:func:`stats.compare_final`, full minus scratch)."""
    gap, target = interval(c["diff"], c["low"], c["high"]), task_text(plan.target)
    if c["low"] > 0:
        return (f"**Pre-training helps here.** Fine-tuning the whole pre-trained input layer beats training the net "
                f"from scratch on {target} ({gap}), so the {task_text(plan.source)} base carries something to adapt "
                f"([section 1](#transfer)).")
    if c["high"] < 0:
        return (f"**Read this first: pre-training hurts even here.** Fine-tuning the whole pre-trained input layer is "
                f"worse than training the net from scratch on {target} ({gap}), so this page measures which small "
                f"layer trains best more than which adapts a trained layer best.")
    return (f"**Read this first: pre-training buys nothing measurable even here.** Fine-tuning the whole pre-trained "
            f"input layer is level with training the net from scratch on {target} ({_closeness(c)}; {gap}), so this "
            f"page measures which small layer trains best more than which adapts a trained layer best.")


def top_arms_sentence(winners: pd.DataFrame, against: pd.DataFrame, head: Mapping | None = None) -> str:
    """Whether any adapter is best at a budget (only where the interval to the runner-up excludes zero, from
    :func:`adapters.results.level_winners`), how the adapters stand against full fine-tuning of the layer
    (:func:`adapters.results.against_full`, counted, not listed), and, when given, the head alone against the best
    adapter (``head``: :func:`stats.compare_final`, head minus that adapter)."""
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
    counts = {o: int((adapters.outcome == o).sum()) for o in ("ahead", "level", "behind")}
    verbs = {"ahead": ("beats", "beat"), "level": ("is level with", "are level with"), "behind": ("trails", "trail")}
    level = adapters[adapters.outcome == "level"].to_dict("records")
    margin = next((m for m in (0.25, 0.5, 1, 2, 5, 10) if all(within(c, m) for c in level)), None) if level else None
    bound = f" (each 95% interval within ±{margin:g} point{'s' if margin != 1 else ''})" if margin else ""
    first, *rest = [o for o in ("ahead", "level", "behind") if counts[o]]
    others = "".join(f", {number_word(counts[o])} {verbs[o][counts[o] > 1]} it{bound if o == 'level' else ''}"
                     for o in rest)
    versus = (f" {_first_upper(number_word(counts[first]))} of the {number_word(len(adapters))} adapters "
              f"{verbs[first][counts[first] > 1]} full fine-tuning of the layer ([section 5](#delta))"
              f"{bound if first == 'level' else ''}{others}.")
    if head is not None and head["low"] > 0:  # the strongest finding leads the bullet
        plain = re.sub(r"\*\*\[(.*?)\]\(#budgets\)\*\*", r"\1", best)
        return (f"{_headed('The head alone beats every adapter.', 'delta')} With the layer left as it was, it beats "
                f"even the adapter with the highest mean ({interval(head['diff'], head['low'], head['high'])}): "
                f"here, every change to the layer that we trained costs accuracy. Among the adapters: "
                f"{plain[:1].lower() + plain[1:]}{versus}")
    return best + versus


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
    top = adapters.cosine.idxmax()
    kron_top = kron.cosine.max()
    heading = "Some adapters learn part of full fine-tuning's update."
    who = _KIND_WORDS[adapters.kind[top]][0]
    return (f"{_headed(heading, 'delta')} Every Kronecker-sum update has {rank}, where LoRA's has rank r, yet the "
            f"update closest in direction to full fine-tuning's is {who}'s (cosine {cosine:.2f})"
            + (f"; no Kronecker sum's passes {kron_top:.2f}." if adapters.kind[top] != "kronsum" else "."))


def _seconds(timing: pd.DataFrame) -> pd.Series:
    """Each arm's median milliseconds per training step, measured side by side."""
    return timing.groupby("arm").ms_per_step.median()


#: Step times are medians of a few rounds without an interval: a step counts as slower only beyond this ratio.
SLOWER = 1.05


def cost_sentence(timing: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> str:
    """Which adapter is cheapest per step at each budget (median, measured side by side), whether the Kronecker sum
    ever costs more than fine-tuning the whole layer, and where it costs more than LoRA without buying accuracy."""
    seconds = _seconds(timing)
    names = dict(zip(kron_gaps.level.astype(int), kron_gaps.a_weights.astype(int)))
    full = seconds[timing.arm[timing.kind == "full"].iloc[0]]
    cheapest = [int(k.level) for k, (_, l) in zip(kron_gaps.itertuples(), lokr_gaps.iterrows())
                if seconds[k.b] <= min(seconds[k.a], seconds[l.a])]
    if len(cheapest) == len(kron_gaps):
        claim = "LoRA is the cheapest adapter per step at every budget"
    elif cheapest:
        claim = f"LoRA is the cheapest adapter per step at {_budgets(names, cheapest)}"
    else:
        claim = "LoRA is never the cheapest adapter per step"
    slower = [int(g.level) for g in kron_gaps.itertuples() if seconds[g.a] > SLOWER * full]
    against_full = (" The Kronecker sum's step is never more than 5% slower than fine-tuning the whole layer." if not slower
                    else f" The Kronecker sum's step is more than 5% slower than fine-tuning the whole layer at "
                         f"{_budgets(names, slower)}.")
    wasted = [int(g.level) for g in kron_gaps.itertuples() if g.outcome != "ahead" and seconds[g.b] < seconds[g.a]]
    tail = f" At {_budgets(names, wasted)} it costs more time than LoRA for no accuracy." if wasted else ""
    return f"{_headed(claim + '.', 'cost')}{against_full}{tail}"


def shape_bullet(comparisons: pd.DataFrame) -> str:
    """The lede's bullet on factor shapes: whether any Kronecker-sum shape differs from the balanced one."""
    kron = comparisons[comparisons.kind == "kronsum"]
    moved = kron[kron.outcome.isin(["ahead", "behind"])]
    budgets = join_words([f"{int(b):,}" for b in dict.fromkeys(comparisons.budget)])
    shapes = kron["update"].str.extract(r"A \((.*?)\)")[0].nunique()
    if moved.empty:
        return (f"{_headed('The shape of the factors buys nothing measurable.', 'shapes')} At {budgets} weights, "
                f"Kronecker sums of {count(shapes, 'shape')} are level with the balanced 25×28 ⊗ 25×28.")
    ahead, behind = moved[moved.outcome == "ahead"], moved[moved.outcome == "behind"]
    heading = ("Factor shapes move accuracy: some beat the balanced one, some trail it." if not (ahead.empty or behind.empty) else
               "Some factor shapes beat the balanced one." if not ahead.empty else
               "Some factor shapes trail the balanced one.")
    others = len(kron) - comparisons.budget.nunique()
    worst = behind.loc[behind["diff"].idxmin(), "arm"] if not behind.empty else None
    tail = ("" if worst is None else "; the sum written as a LoRA, which also starts differently, trails it most"
            if parse_arm(worst).shape == (1, ku.IMAGE_SIZE) else f"; {shape_text(worst)} trails it most")
    where = "Across both budgets" if comparisons.budget.nunique() == 2 else f"At {budgets} weights"
    return (f"{_headed(heading, 'shapes')} {where}, {number_word(len(moved))} of the {number_word(others)} other "
            f"Kronecker-sum shapes differ from the balanced one beyond the seed noise{tail}.")


def adapters_lede(results: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame, winners: pd.DataFrame,
                  against: pd.DataFrame, twin: Mapping, deltas: pd.DataFrame, reference: Mapping,
                  timing: pd.DataFrame, shapes: pd.DataFrame, plan, head: Mapping | None = None) -> str:
    """The page's argument first: the setting and whether pre-training helps there, then one bullet a claim (the
    Kronecker adapters against LoRA, whether any adapter is best, the factor shapes, the twin check, what ΔW looks
    like, the cost), each with the number that decides it and a link to its evidence."""
    adapters = results[results.kind.isin(ADAPTER_KINDS)]
    heading, story = kind_verdict(kron_gaps, lokr_gaps)
    top = top_arms_sentence(winners, against, head)
    kinds = f"{_headed(heading, 'budgets')} {story}"
    first = [top, kinds] if head is not None and head["low"] > 0 else [kinds, top]  # the strongest finding first
    bullets = [*first, shape_bullet(shapes),
               twin_sentence(twin, short=True), rank_sentence(deltas, results),
               cost_sentence(timing, kron_gaps, lokr_gaps)]
    images = plan.transfer.images
    data = f"{images:,} labelled images" if images else "all its labelled images"
    return (f"We trained the post's dense net on {task_text(plan.source)}, froze its input layer and adapted it to "
            f"{task_text(plan.target)} from {data}, through three kinds of adapter at "
            f"{number_word(len(kron_gaps))} matched budgets, from {int(adapters.adapter_weights.min()):,} to "
            f"{int(adapters.adapter_weights.max()):,} trainable weights, {count(len(plan.seeds), 'seed')} each.\n\n"
            f"{reference_sentence(reference, plan)}\n\nWhat we found:\n\n"
            + "\n".join(f"- {b}" for b in bullets))


# --- The sections ---

def _by_arm(deltas: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Seed means of :func:`adapters.results.delta_table` per arm, with the arm's kind."""
    kinds = results.set_index("arm").kind
    return deltas.assign(kind=deltas.arm.map(kinds)).groupby("arm", sort=False).agg(
        kind=("kind", "first"), rank=("rank", "median"), eff=("effective_rank", "mean"),
        cosine=("cosine_to_full", "mean"), distance=("distance_to_full", "mean"))
