"""The first page's key-findings box: one computed bullet from each page (:mod:`findings`), each linked to its
section. As in :mod:`prose`, it words numbers it is given and computes none itself."""
from __future__ import annotations

from typing import Mapping

from .prose import mistakes_phrase
from .prose_adapters import DATASET_TEXT, gap_story
from .prose_beyond import interval
from .stats import outcome, signed


def _effect(c: Mapping, unit: str, whom: str = "") -> str:
    """'costs 0.40 pp' (or 'costs an MLP on MNIST 0.40 points'), 'gains …' when a is ahead."""
    verb = "costs" if c["diff"] < 0 else "gains"
    return f"{verb} {whom + ' ' if whom else ''}{abs(c['diff']):.2f} {unit}"


def _magnitudes(c: Mapping) -> str:
    """A Welch interval's bounds as sizes of the effect: '0.33 to 0.47' for -0.47 to -0.33."""
    low, high = sorted((abs(c["low"]), abs(c["high"])))  # only for intervals that exclude zero
    return f"{low:.2f} to {high:.2f}"


def _fewer(part2: Mapping) -> str:
    """'350×': how many times fewer input weights the Kronecker layer has than the dense one."""
    return f"{part2['reference_weights'] / part2['weights']:,.0f}×"


def key_findings_markdown(part2: Mapping | None, pages: Mapping) -> str:
    """4-6 bullets, findings first: Part 2's effect in error rates and its lead over the equal-budget net, Part 3's
    most compact nets, the why page's answer and Part 4's adapters; a page without runs gives no bullet."""
    bullets = []
    if part2:
        c, e, lead = part2["loss"], part2["errors"], part2["lead"]
        effect = (f"**A Kronecker input layer {_effect(c, 'pp')} of test accuracy** (95% CI {_magnitudes(c)})"
                  if outcome(c) != "tie" else
                  f"**A Kronecker input layer changes test accuracy by {signed(c['diff'])} pp, within the seed "
                  f"noise** ({interval(c['diff'], c['low'], c['high'])})")
        bullets.append(
            f"{effect} with {_fewer(part2)} "
            f"fewer input weights ({part2['weights']:,} against {part2['reference_weights']:,}): the test error goes "
            f"from {e['error_b']:.2f}% to {e['error_a']:.2f}%"
            + (f", {mistakes_phrase(e['relative'])}" if e["relative"] is not None else "")
            + " ([the verdicts](#verdicts)).")
        standing = {"win": f"It stays {lead['diff']:.2f} pp ahead of", "tie": "It is level with",
                    "loss": f"It falls {-lead['diff']:.2f} pp behind"}[outcome(lead)]
        bullets.append(f"**{standing} the dense net of its budget** (`{part2['baseline']}`, "
                       f"{lead['mean_b']:.2f}%; {interval(lead['diff'], lead['low'], lead['high'])}).")
    compact = pages.get("compact")
    if compact:
        c = compact["level_c"]
        bullets.append(f"**No detectable loss at {compact['reference_weights'] / compact['level_weights']:.0f}× fewer "
                       f"weights:** `{compact['level']}` ({compact['level_input']:,} input weights) reaches "
                       f"{c['mean_a']:.2f}% against the dense net's {c['mean_b']:.2f}% "
                       f"({interval(c['diff'], c['low'], c['high'])}; [Part 3](beyond.html#budgets)).")
        c = compact["close_c"]
        bullets.append(f"**{compact['close_input']:,} input weights stay within {compact['margin']:g} point:** "
                       f"`{compact['close']}` is "
                       f"{interval(c['diff'], c['low'], c['high'])} from the dense net ([Part 3](beyond.html#budgets)).")
    w = pages.get("why")
    if w and w["answer"] == "both":
        bullets.append(f"**Part of the lead is the image grid, most of it is not:** on shuffled pixels `{w['net']}` "
                       f"loses {abs(w['drop'].change):.2f} pp but keeps {w['kept']:.0%} of its lead over the dense net "
                       f"of its budget ([why it works](why.html#permuted)).")
    gaps = pages.get("adapters")
    if gaps is not None:
        bullets.append(f"**As a fine-tuning adapter,** {gap_story(gaps, 'a Kronecker sum')} "
                       f"([Part 4](adapters.html#budgets)).")
    if not bullets:
        return ""
    return "**Key findings**\n\n" + "\n".join(f"- {b}" for b in bullets)


#: The first page's title without runs to state a finding in it.
PLAIN_TITLE = "Shrinking an MLP with Kronecker products"


def article_title(part2: Mapping | None) -> str:
    """The first page's title, its finding included: how many times fewer input weights the Kronecker layer has and
    what that costs in points of test accuracy ('nothing measurable' when the interval contains zero)."""
    if not part2:
        return PLAIN_TITLE
    c = part2["loss"]
    effect = {"loss": f"for {abs(c['diff']):.1f} points of accuracy", "tie": "at no measurable cost",
              "win": f"and {c['diff']:.1f} points more accuracy"}[outcome(c)]
    return f"{PLAIN_TITLE}: {_fewer(part2)} fewer weights {effect}"


def article_dek(part2: Mapping | None, pages: Mapping, dataset: str = "mnist") -> str:
    """The line under the first page's title: Part 2's effect and Part 3's two strongest findings (the most compact
    net with no measurable loss, the fewest input weights within a point) in one sentence, or '' without runs."""
    if not part2:
        return ""
    c = part2["loss"]
    data = f"an MLP on {DATASET_TEXT.get(dataset, dataset)}"
    text = (f"A Kronecker input layer with {_fewer(part2)} fewer weights "
            + (f"{_effect(c, 'points', data)} of test accuracy" if outcome(c) != "tie" else
               f"changes the test accuracy of {data} by {signed(c['diff'])} points, within the seed noise"))
    compact = pages.get("compact")
    if compact:
        text += (f"; a sum of Kronecker products {compact['reference_weights'] / compact['level_weights']:.0f}× "
                 f"smaller than the dense net loses nothing measurable, and {compact['close_input']:,} input weights "
                 f"stay within {compact['margin']:g} point")
    return f"*{text}. A 2018 blog post, rerun with error bars.*"
