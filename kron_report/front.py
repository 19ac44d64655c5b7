"""The first page's front matter, the only code that reads every page: the title, the line under it and the
key-findings box, one computed number from each page, each linked to its section.

Each finder returns a dict of numbers, or None when that page's runs are missing (an exploratory run on other
data, or a page not yet run); the wording functions word them and compute nothing.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from .adapters.plan import AdaptersPlan
from .adapters.prose import DATASET_TEXT, gap_story
from .adapters.results import arm_results, kind_gaps
from .beyond.plan import BeyondPlan
from .nets import input_weights
from .paths import NOTEBOOK_PARAMETERS
from .stats import compare_final, error_change, final_epochs, outcome, variant_family
from .store import MissingRuns
from .why.analysis import control_verdict, lead_over_dense, off_grid_comparison, permutation_effects, why_answer
from .why.plan import ALIGNED_NET, WhyPlan
from .words import interval, mistakes_phrase, signed

__all__ = ["key_findings_markdown", "PLAIN_TITLE", "article_title", "article_dek", "part2_finding", "compact_findings",
           "page_results"]


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


def part2_finding(rows: pd.DataFrame, net: str = "two_kron", reference: str = "original",
                  baseline: str = "width10") -> dict | None:
    """The Kronecker input layer against the dense net (with its error rates) and against the dense net of its
    budget, from Part 2's runs; None without them."""
    if not {net, reference, baseline} <= set(rows.variant):
        return None
    c, lead = compare_final(rows, net, reference), compare_final(rows, net, baseline)
    return dict(net=net, reference=reference, baseline=baseline, loss=c, lead=lead,
                errors=error_change(c["mean_a"], c["mean_b"]), weights=input_weights(net),
                reference_weights=input_weights(reference))


def compact_findings(rows: pd.DataFrame, reference: str = "original", margin_pp: float = 1.0) -> dict | None:
    """From Part 3's nets: the Kronecker net with the fewest weights whose difference to the dense net has a 95%
    interval containing zero (no detectable loss), and the one with the fewest weights within ``margin_pp`` of it
    (mean difference). None when no Kronecker net qualifies or the runs are missing."""
    if rows.empty or reference not in set(rows.variant):
        return None
    final = final_epochs(rows)
    weights = final.groupby("variant").weights.first()
    kron = sorted((v for v in weights.index if variant_family(v).startswith("Kronecker")), key=weights.get)
    comparisons = {v: compare_final(rows, v, reference) for v in kron}
    level = next((v for v in kron if comparisons[v]["low"] <= 0 <= comparisons[v]["high"]), None)
    close = next((v for v in kron if comparisons[v]["diff"] > -margin_pp), None)
    if level is None or close is None:
        return None
    return dict(reference=reference, reference_weights=int(weights[reference]), margin=margin_pp,
                level=level, level_c=comparisons[level], level_weights=int(weights[level]),
                level_input=input_weights(level),
                close=close, close_c=comparisons[close], close_input=input_weights(close))


def page_results(dataset: str) -> dict:
    """Every finding the other pages can give for ``dataset`` (only MNIST has them all): Part 3's compact nets, the
    why page's answer and Part 4's adapters; a missing page gives None."""
    found = dict(compact=None, why=None, adapters=None)
    if dataset != "mnist":
        return found
    try:
        found["compact"] = compact_findings(BeyondPlan.from_parameters(NOTEBOOK_PARAMETERS["04_beyond"]).load())
    except MissingRuns:  # that page has not been run; a damaged record still fails the page
        pass
    try:
        plan = WhyPlan.from_parameters(NOTEBOOK_PARAMETERS["05_why"])
        mnist, permuted = plan.load(plan.settings, plan.mnist_variants), plan.load(plan.permuted, plan.permuted_variants)
        effects = permutation_effects(mnist, permuted, plan.permuted_variants)
        found["why"] = why_answer(effects, lead_over_dense(mnist, permuted),
                                      off_grid_comparison(mnist, ALIGNED_NET, plan.off_grid_variants),
                                      control_verdict(effects, plan.tolerance))
    except MissingRuns:  # that page has not been run; a damaged record still fails the page
        pass
    try:
        plan = AdaptersPlan.from_parameters(NOTEBOOK_PARAMETERS["06_adapters"])
        runs = plan.final_runs(plan.chosen())
        found["adapters"] = kind_gaps(arm_results(runs, plan.arms), runs, plan.arms, "kronsum", "lora", plan.ranks)
    except MissingRuns:  # that page has not been run; a damaged record still fails the page
        pass
    return found
