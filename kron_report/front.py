"""The post (page 1): its findings from every page, and its prose, one authored Jinja template per section filled
with those findings. This is the only code that reads every page.

Each finder returns a dict (or a small table) of numbers, or None when that page's runs are missing (an exploratory
run on other data, or a page not yet run). The templates in ``templates/post/`` compute nothing: they word the
findings, and branch only where the data can flip a claim. The rules that size a claim live in :mod:`claims`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from .adapters.transfer import TransferStudy
from .adapters.results import arm_results, choose_transfer, head_against_best, kind_gaps, shape_comparisons
from .beyond.budgets import equal_budget_baselines, monarch_comparisons
from .beyond.plan import TEN_SEEDS, BeyondPlan
from .claims import closeness, verdict_heading, within
from .nets import input_weights
from .paths import NOTEBOOK_PARAMETERS
from .recipes import (TUNED_NETS, TUNING_SEEDS, VALIDATION_IMAGES, family_effect, load_tuning_runs, recipe_grid,
                      recipe_name, select_recipes, split_recipe, tuned_results, validation_scores)

#: The recipe family with per-tensor learning rates (:func:`kron_utils.structured_rates`).
PER_TENSOR = "SGD, per-tensor rates"
from .stats import compare_final, error_change, final_epochs, gap_change, outcome, variant_family
from .store import MissingRuns, load_results
from .why.analysis import lead_over_dense, permutation_effects, random_feature_effects
from .why.plan import RANDOM_FEATURE_NETS, WhyPlan
from .words import ci_cell, number_word, signed

__all__ = ["PLAIN_TITLE", "HEADLINE_SEEDS", "net_name", "part2_finding", "reach_findings", "why_findings",
           "recipe_findings", "adapter_findings", "same_budget_findings", "closest_net", "hidden_units", "retest_values", "datasets_phrase", "level_net", "post_findings", "article_title", "post_section",
           "SHORT_NAMES", "retest_table", "reach_table", "why_table", "recipe_table", "adapter_table"]

#: The first page's title without runs to state a finding in it.
PLAIN_TITLE = "Shrinking an MLP with Kronecker products"

#: A net named in the title, the lede or a headline has this many seeds under each initialisation, as the post's do.
HEADLINE_SEEDS = len(TEN_SEEDS)

TEMPLATES = Path(__file__).parent / "templates"


def net_name(variant: str, prose: bool = False) -> str:
    """A net in words, for a reader who has not met the code names: 'U⊗V (the post's)' in a table, "the post's U⊗V"
    in a sentence (``prose``), 'sum of 2 tied Kronecker products'."""
    named = {"original": "dense (the post's original)", "two_kron": "U⊗V (the post's)",
             "one_kron": "U⊗U, tied (the post's)", "two_kron_out_kron": "U⊗V, Kronecker output layer",
             "one_kron_out_kron": "U⊗U, Kronecker output layer"}
    in_prose = {"original": "the post's dense net", "two_kron": "the post's U⊗V", "one_kron": "the post's tied U⊗U"}
    base = variant.removesuffix("_gauss")
    if prose and base in in_prose:
        return in_prose[base]
    if base in named:
        return named[base]
    if m := re.fullmatch(r"width(\d+)", base):
        return f"dense, {m[1]} hidden units"
    if m := re.fullmatch(r"(tied)?kron(\d)_r(\d+)", base):
        tied, factors, terms = m[1], int(m[2]), int(m[3])
        kind = "tied " if tied else "" if factors == 2 else f"{number_word(factors)}-factor "
        return f"{'a ' if prose else ''}sum of {terms} {kind}Kronecker products"
    if m := re.fullmatch(r"lowrank(\d+)", base):
        return f"low rank {m[1]}"
    return variant_family(base)


# ---------------------------------------------------------------------------------------------------------------
# Findings, one finder per section
# ---------------------------------------------------------------------------------------------------------------

def part2_finding(rows: pd.DataFrame, net: str = "two_kron", reference: str = "original",
                  baseline: str = "width10") -> dict | None:
    """The Kronecker input layer against the dense net (with its error rates) and against the dense net of its
    budget, from Part 2's runs; None without them."""
    if not {net, reference, baseline} <= set(rows.variant):
        return None
    c, lead = compare_final(rows, net, reference), compare_final(rows, net, baseline)
    return dict(net=net, reference=reference, baseline=baseline, loss=c, lead=lead,
                errors=error_change(c["mean_a"], c["mean_b"]), weights=input_weights(net),
                reference_weights=input_weights(reference), fewer=input_weights(reference) / input_weights(net),
                seeds=min(c["n_a"], c["n_b"]))


def reach_findings(rows: pd.DataFrame, reference: str = "original", min_seeds: int = HEADLINE_SEEDS) -> pd.DataFrame | None:
    """Every Kronecker input layer (dense output) with ``min_seeds`` seeds under both initialisations (uniform factors
    and ``_gauss``), fewest input weights first, against the dense net under each: the comparisons, ``level`` (the
    interval contains zero under both) and ``words`` (:func:`claims.closeness` of the weaker of the two). None without such a net."""
    if rows.empty or reference not in set(rows.variant):
        return None
    seeds = final_epochs(rows).groupby("variant").seed.nunique()
    nets = sorted((v for v in seeds.index if variant_family(v).startswith("Kronecker") and not v.endswith("_gauss")
                   and "out_kron" not in v and seeds[v] >= min_seeds and seeds.get(f"{v}_gauss", 0) >= min_seeds), key=input_weights)
    out = []
    for v in nets:
        uniform, gauss = compare_final(rows, v, reference), compare_final(rows, f"{v}_gauss", reference)
        weaker = min((uniform, gauss), key=lambda c: c["low"])   # the interval reaching furthest below zero
        out.append(dict(net=v, input_weights=input_weights(v), weights=int(final_epochs(rows[rows.variant == v]).weights.iloc[0]),
                        uniform=uniform, gauss=gauss, seeds=int(min(seeds[v], seeds[f"{v}_gauss"])),
                        level=all(c["low"] <= 0 <= c["high"] for c in (uniform, gauss)), words=closeness(weaker)))
    return pd.DataFrame(out) if out else None


def hidden_units(variant: str) -> int:
    """The hidden width of a net: 10 for width10, 625 for every net with the post's hidden layer."""
    m = re.fullmatch(r"width(\d+)", variant.removesuffix("_gauss"))
    return int(m[1]) if m else ku.HIDDEN_SIZE


def closest_net(reach: pd.DataFrame | None):
    """Of :func:`reach_findings`, the net whose weaker initialisation comes closest to the dense net (the larger of
    its two differences' lesser one), with ``all_behind``: every net is behind under both initialisations."""
    if reach is None:
        return None
    weaker = reach.apply(lambda r: min(r.uniform["diff"], r.gauss["diff"]), axis=1)
    behind = reach.apply(lambda r: outcome(r.uniform) == outcome(r.gauss) == "loss", axis=1)
    return dict(reach.loc[weaker.idxmax()].to_dict(), all_behind=bool(behind.all()))


def same_budget_findings(rows: pd.DataFrame, reach: pd.DataFrame | None, post: str = "two_kron") -> dict | None:
    """The Kronecker net of :func:`reach_findings` with the post's input-weight budget that is not the post's net,
    against the post's net under each initialisation (uniform, and ``_gauss`` against ``<post>_gauss``), ``ahead``
    when it is ahead beyond the seed noise under both, and the low-rank layer of the post's budget as the contrast.
    None without such a net or without the post's net under both initialisations."""
    if reach is None or not {post, f"{post}_gauss"} <= set(rows.variant):
        return None
    same = reach[(reach.input_weights == input_weights(post)) & (reach.net != post)]
    if same.empty:
        return None
    r = same.iloc[0]
    uniform, gauss = compare_final(rows, r.net, post), compare_final(rows, f"{r.net}_gauss", f"{post}_gauss")
    low_rank = equal_budget_baselines(post)[0]
    contrast = final_epochs(rows[rows.variant == low_rank]).test_accuracy
    return dict(net=r.net, post=post, input_weights=int(r.input_weights), uniform=uniform, gauss=gauss,
                low_rank=low_rank, low_rank_rank=int(ku.parse_variant(low_rank)[1]["r"]),
                low_rank_accuracy=float(contrast.mean()) if len(contrast) else None,
                to_dense=dict(uniform=r.uniform, gauss=r.gauss), ahead=outcome(uniform) == outcome(gauss) == "win")


def why_findings(mnist: pd.DataFrame, permuted: pd.DataFrame, frozen: Mapping[str, pd.DataFrame] | None = None) -> dict:
    """U⊗V's lead over the dense net of its budget on MNIST and on shuffled pixels (:func:`why.lead_over_dense`),
    with both nets' hidden widths (the lead compares them too), ``drops``: whether shuffling the pixels costs U⊗V
    accuracy beyond the seed noise, and ``width``: the random-feature control's answer
    (:func:`why.random_feature_effects` on ``frozen``, the nets with a frozen input layer on 'MNIST' and 'permuted
    MNIST'; None without them)."""
    lead = lead_over_dense(mnist, permuted)
    drop = permutation_effects(mnist, permuted, [lead["kron"]]).iloc[0]
    rf = (random_feature_effects({"MNIST": mnist, "permuted MNIST": permuted}, frozen)["answer"]
          if frozen is not None else None)
    return dict(lead, hidden_kron=hidden_units(lead["kron"]), hidden_dense=hidden_units(lead["dense"]),
                drops=drop.outcome == "loss", width=rf)


def retest_values(by_init: pd.DataFrame, seeds: Sequence[int], tolerance: float) -> dict:
    """What the retest section's template needs: the observations, the ones that do not simply hold under both
    initialisations (with their verdicts, and whether the two agree), and every verdict for the heading rule."""
    from .post.prose import compared_nets, verdict_clause
    weak = []
    for number, group in by_init.groupby("observation", sort=True):
        if set(group.verdict) != {"holds"}:
            uniform = group[group.init == "uniform"]
            weak.append(dict(claim=group.claim.iloc[0].rstrip("."), agree=group.groupby("init").verdict.agg(tuple).nunique() == 1,
                             heading=verdict_heading(group.verdict),
                             verdict="; ".join(f"for {net_name(n, prose=True)}, {verdict_clause(v, tolerance)}"
                                               for v, n in zip(uniform.verdict, compared_nets(uniform)))))
    return dict(observations=int(by_init.observation.nunique()), weak=weak, verdicts=list(by_init.verdict),
                seeds=len(seeds), tolerance=f"{tolerance:g}")


def datasets_phrase(dataset: str) -> str:
    """The data the article covers, for its limits."""
    return "MNIST, with Fashion-MNIST on two of the evidence pages" if dataset == "mnist" else dataset


def recipe_findings(reads: Sequence[Path], epochs: int, dataset: str, net: str = "two_kron",
                    reference: str = "original") -> dict | None:
    """The gap net - reference on the why page's validation split, like for like: both nets under the post's recipe,
    and each under its own recipe chosen on validation accuracy (same split, same seeds). None without the runs."""
    if ku.train_size(dataset) <= VALIDATION_IMAGES:
        return None
    recipes = {recipe_name(s): s for s in recipe_grid(epochs, dataset)}
    post = recipe_name(ku.TrainSettings(epochs=epochs, dataset=dataset))
    if post not in recipes:
        return None
    try:
        runs = load_tuning_runs(reads, recipes, TUNED_NETS, TUNING_SEEDS)
    except MissingRuns:
        return None
    chosen = select_recipes(runs)
    tuned = tuned_results(runs, chosen, reference, default_recipe=post).set_index("variant")
    if net not in tuned.index:
        return None
    t = tuned.loc[net]
    n = int(t.seeds)   # both gaps come from the same validation-split runs and seeds (recipes.tuned_results)
    default = dict(diff=t.default_gap, low=t.default_low, high=t.default_high)
    own = dict(diff=t.gap, low=t.low, high=t.high)
    per_tensor = family_effect(runs, validation_scores(runs), PER_TENSOR).set_index("variant")
    change = gap_change(*(final_epochs(runs[(runs.variant == v) & (runs.recipe == r)]).test_accuracy
                          for v, r in ((net, chosen[net]), (reference, chosen[reference]), (net, post), (reference, post))))
    apart = (change["high"] < 0, change["low"] > 0)          # the gap moves down, or up, beyond the seed noise
    behind = default["diff"] < 0                             # a gap below zero widens as it moves down
    return dict(net=net, reference=reference, post_recipe=post, default=default, own=own, seeds=n, change=change,
                per_tensor=per_tensor.outcome.get(net), per_tensor_chosen=split_recipe(chosen[net])[0] == PER_TENSOR,
                net_keeps_post=chosen[net] == post, train_images=ku.train_size(dataset) - VALIDATION_IMAGES,
                recipe_net=chosen[net], recipe_reference=chosen[reference],
                widens=apart[0] if behind else apart[1], narrows=apart[1] if behind else apart[0])


def adapter_findings(runs: pd.DataFrame, plan, transfer: pd.DataFrame, chosen: int) -> dict:
    """Part 4 for the post: the setting the adapters are compared in and its pre-training gain (full fine-tuning minus
    scratch), the settings without one (the no-transfer contrast), the Kronecker sum minus LoRA at each budget, and
    whether any factor shape differs from the balanced one."""
    main = [a for a in plan.arms if a.shape is None]
    results = arm_results(runs, main)
    gaps = kind_gaps(results, runs, main, "kronsum", "lora", plan.ranks)
    gain = compare_final(runs, "full_fc1", "scratch")
    shapes = shape_comparisons(runs, plan.arms, plan.shape_ranks)
    kron = shapes[shapes.kind == "kronsum"]
    contrast = [dict(setting=r.setting, diff=r.gain, low=r.low, high=r.high, all_images=pd.isna(r.images))
                for i, r in enumerate(transfer.itertuples()) if i != chosen and r.low <= 0]
    contrast.sort(key=lambda c: not c["all_images"])  # the earlier setting, all of the target's labels, first
    others = [dict(setting=r.setting, diff=r.gain, low=r.low, high=r.high)       # a gain too, but not the chosen one
              for i, r in enumerate(transfer.itertuples()) if i != chosen and r.low > 0]
    head = head_against_best(runs, results)
    return dict(setting=transfer.setting.iloc[chosen], transfer=gain, helps=outcome(gain) == "win", gaps=gaps,
                head_first=bool(head["low"] > 0),
                ahead=int((gaps.outcome == "ahead").sum()), behind=int((gaps.outcome == "behind").sum()),
                budgets=len(gaps), seeds=len(plan.seeds), contrast=contrast, others=others, candidates=len(transfer),
                shapes_moved=bool(kron.outcome.isin(["ahead", "behind"]).any()), shape_budgets=int(shapes.budget.nunique()))


def post_findings(post_rows: pd.DataFrame, dataset: str, epochs: int, reads: Sequence[Path] | None = None) -> dict:
    """Every finding the post states, from every page (only MNIST has them all; a missing page gives None). The
    recipe search is read from ``reads`` (the post's own folders, the committed results last) when given."""
    found = dict(part2=part2_finding(post_rows), reach=None, same=None, why=None, recipe=None, adapters=None,
                 monarch=None)
    if dataset != "mnist":
        return found
    try:
        plan = BeyondPlan.from_parameters(NOTEBOOK_PARAMETERS["04_beyond"])
        rows = load_results(plan.reads, plan.settings)
        found["reach"] = reach_findings(rows)
        found["same"] = same_budget_findings(rows, found["reach"])
        monarch = monarch_comparisons(rows, plan.kron_variants)
        found["monarch"] = None if monarch.empty else dict(helps=bool((monarch.outcome == "loss").all()),
                                                           hurts=bool((monarch.outcome == "win").all()),
                                                           helps_any=bool((monarch.outcome == "loss").any()))
    except MissingRuns:  # that page has not been run; a damaged record still fails the page
        pass
    try:
        plan = WhyPlan.from_parameters(NOTEBOOK_PARAMETERS["05_why"])
        found["why"] = why_findings(plan.load(plan.settings, plan.mnist_variants),
                                    plan.load(plan.permuted, plan.permuted_variants),
                                    {"MNIST": plan.load(plan.frozen, RANDOM_FEATURE_NETS),
                                     "permuted MNIST": plan.load(plan.frozen_permuted, RANDOM_FEATURE_NETS)})
        found["recipe"] = recipe_findings(reads if reads is not None else plan.reads, epochs, dataset)
    except MissingRuns:
        pass
    try:
        study = TransferStudy.from_parameters(NOTEBOOK_PARAMETERS["06_adapters"])
        transfer = study.table()
        chosen = choose_transfer(transfer)
        plan = study.adapters_plan(transfer)
        found["adapters"] = adapter_findings(plan.final_runs(plan.chosen()), plan, transfer, chosen)
    except MissingRuns:
        pass
    return found


# ---------------------------------------------------------------------------------------------------------------
# Words: the title, and one template per section
# ---------------------------------------------------------------------------------------------------------------

def article_title(part2: Mapping | None, reach: pd.DataFrame | None = None) -> str:
    """The title states what was measured: how many times fewer *input* weights U⊗V has and what that costs, and
    (when a Kronecker sum with ten seeds under both initialisations is level with the dense net) that net."""
    if not part2:
        return PLAIN_TITLE
    c = part2["loss"]
    effect = {"loss": f"cost {abs(c['diff']):.1f} points of accuracy", "tie": "cost nothing measurable",
              "win": f"gain {c['diff']:.1f} points of accuracy"}[outcome(c)]
    title = f"{part2['fewer']:,.0f}× fewer input weights {effect}"
    level = level_net(reach)
    if outcome(c) == "loss" and level is not None:
        title += f"; a {net_name(level['net'])} costs none measurable"
    return f"{PLAIN_TITLE}: {title}"


def level_net(reach: pd.DataFrame | None):
    """The net with the fewest input weights that is level with the dense net under both initialisations; None
    without one."""
    if reach is None or not reach.level.any():
        return None
    return reach[reach.level].iloc[0]


def _environment():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters.update(pp=lambda x: signed(x), size=lambda x: f"{abs(x):.2f}", n=lambda x: f"{int(x):,}",
                       ci=lambda c: f"{signed(c['low'])} to {signed(c['high'])}", name=net_name,
                       prose=lambda v: net_name(v, prose=True),
                       side=lambda c: {"win": "ahead", "loss": "behind", "tie": "level"}[outcome(c)],
                       word=number_word, within=within, closeness=closeness, outcome=outcome,
                       level=lambda c: c["low"] <= 0 <= c["high"])
    env.globals.update(verdict_heading=verdict_heading)
    return env


def post_section(name: str, **values) -> str:
    """The post's section ``name`` (``templates/post/<name>.md.j2``) filled with ``values``, as Markdown."""
    text = _environment().get_template(f"post/{name}.md.j2").render(**values)
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", text)).strip() + "\n"


# ---------------------------------------------------------------------------------------------------------------
# The post's small tables: flat headers, short cells, nets in words
# ---------------------------------------------------------------------------------------------------------------

SHORT_NAMES = {"original": "dense", "two_kron": "U⊗V", "one_kron": "U⊗U", "width10": "dense, width 10",
               "two_kron_out_kron": "U⊗V, Kron. output", "one_kron_out_kron": "U⊗U, Kron. output"}


def retest_table(by_init: pd.DataFrame) -> pd.DataFrame:
    """The post's four observations, one row per comparison (each claim named once): the difference (95% interval)
    under uniform and under Gaussian factors, and the verdict ('the same under both', or each)."""
    from .post.prose import verdict_words
    uniform, gauss = (by_init[by_init.init == k].reset_index(drop=True) for k in ("uniform", "gauss"))
    rows = []
    for i, r in uniform.iterrows():
        g = gauss.iloc[i] if i < len(gauss) else None
        first = i == 0 or uniform.observation.iloc[i - 1] != r.observation
        words = verdict_words(r.verdict, r.tolerance)
        if g is not None and g.verdict != r.verdict:
            words = f"uniform: {words}; Gaussian: {verdict_words(g.verdict, g.tolerance)}"
        rows.append({"the post's claim": r.claim.rstrip(".") if first else "",
                     "compared": f"{SHORT_NAMES.get(r.a, r.a)} vs {SHORT_NAMES.get(r.b, r.b)}",
                     "uniform factors, points": ci_cell(r) if r.verdict != "not tested" else "",
                     "Gaussian factors, points": ci_cell(g) if g is not None and g.verdict != "not tested" else "",
                     "verdict": words})
    return pd.DataFrame(rows)


def reach_table(reach: pd.DataFrame) -> pd.DataFrame:
    """How few input weights keep the dense net's accuracy: each Kronecker net with ten seeds under both inits."""
    return pd.DataFrame({"input layer": reach.net.map(net_name), "net": reach.net,
                         "input weights": reach.input_weights.map("{:,}".format),
                         "weights, whole net": reach.weights.map("{:,}".format),
                         "vs dense, uniform factors": reach.uniform.map(ci_cell),
                         "vs dense, Gaussian factors": reach.gauss.map(ci_cell), "reading": reach.words})


def why_table(lead: Mapping) -> pd.DataFrame:
    """U⊗V and the dense net of its budget, on MNIST and on shuffled pixels."""
    rows = []
    for key, data in (("mnist", "MNIST"), ("permuted", "pixels shuffled")):
        c = lead[key]
        rows.append({"pixels": data, net_name(lead["kron"]): f"{c['mean_a']:.2f}%",
                     net_name(lead["dense"]): f"{c['mean_b']:.2f}%", "lead, points (95% CI)": ci_cell(c),
                     "seeds": f"{c['n_a']} and {c['n_b']}"})
    return pd.DataFrame(rows)


def recipe_table(recipe: Mapping) -> pd.DataFrame:
    """The gap under the post's recipe and under each net's own, like for like (validation split, same seeds), and
    how far it moved (:func:`stats.gap_change`)."""
    short = SHORT_NAMES.get(recipe["net"], recipe["net"])
    return pd.DataFrame([
        {"recipe": "the post's, for both", "gap, points (95% CI)": ci_cell(recipe["default"]), "seeds": recipe["seeds"]},
        {"recipe": f"each its own: {short} {recipe['recipe_net']}; dense {recipe['recipe_reference']}",
         "gap, points (95% CI)": ci_cell(recipe["own"]), "seeds": recipe["seeds"]},
        {"recipe": "change: own recipes − the post's", "gap, points (95% CI)": ci_cell(recipe["change"]), "seeds": ""}])


def adapter_table(adapters: Mapping) -> pd.DataFrame:
    """The Kronecker sum minus LoRA at each budget, and full fine-tuning minus scratch."""
    g = adapters["gaps"]
    rows = [{"comparison": f"Kronecker sum − LoRA, {int(w):,} weights", "difference, points (95% CI)": ci_cell(r)}
            for w, (_, r) in zip(g.a_weights, g.iterrows())]
    rows.append({"comparison": "full fine-tuning − training from scratch",
                 "difference, points (95% CI)": ci_cell(adapters["transfer"])})
    return pd.DataFrame(rows)
