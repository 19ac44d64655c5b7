"""The first page's key findings: one computed number from each page, read from the committed runs of every page.

Each finder returns a dict of numbers, or None when that page's runs are missing (an exploratory run on other
data, or a page not yet run); :func:`prose_findings.key_findings_markdown` words them and links each to its section.
"""
from __future__ import annotations

import pandas as pd

from . import why
from .adapter_runs import AdaptersPlan
from .adapters import arm_results, kind_gaps
from .experiments import input_weights
from .paths import NOTEBOOK_PARAMETERS
from .runs import BeyondPlan, WhyPlan
from .stats import compare_final, error_change, final_epochs, variant_family


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
    except ValueError:
        pass
    try:
        plan = WhyPlan.from_parameters(NOTEBOOK_PARAMETERS["05_why"])
        mnist, permuted = plan.load(plan.settings, plan.mnist_variants), plan.load(plan.permuted, plan.permuted_variants)
        effects = why.permutation_effects(mnist, permuted, plan.permuted_variants)
        found["why"] = why.why_answer(effects, why.lead_over_dense(mnist, permuted),
                                      why.off_grid_comparison(mnist, why.ALIGNED_NET, plan.off_grid_variants),
                                      why.control_verdict(effects, plan.tolerance))
    except ValueError:
        pass
    try:
        plan = AdaptersPlan.from_parameters(NOTEBOOK_PARAMETERS["06_adapters"])
        runs = plan.final_runs(plan.chosen())
        found["adapters"] = kind_gaps(arm_results(runs, plan.arms), runs, plan.arms, "kronsum", "lora", plan.ranks)
    except ValueError:
        pass
    return found
