"""Part 4's results: each arm's accuracy, the winners per budget, the twin check, and what ΔW learned (its
rank, effective rank and distance to full fine-tuning's).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd
import torch

from ..stats import compare_final, final_epochs, half_interval
from ..words import ci_cell
from .arms import (
    ADAPTER_KINDS,
    BUDGET_TOLERANCE,
    BASE_VARIANT,
    BUDGET_RANKS,
    Arm,
    adapted_net,
    adapter_weights,
    delta_weight,
    factorisation_text,
    level_members,
)

__all__ = ["effective_rank", "relative_distance", "delta_table", "best_fit_errors", "validation_choice",
           "transfer_table", "choose_transfer", "shape_comparisons", "shape_table", "head_against_best", "arm_results",
           "level_winners", "twin_comparison", "against_full", "kind_gaps", "level_table", "lokr_default_ceiling",
           "arms_table", "results_table", "twin_check"]


def effective_rank(matrix: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values (Roy and Vetterli, 2007): 1 for a rank-1 matrix,
    k for k equal singular values; 0 for the zero matrix."""
    s = torch.linalg.svdvals(matrix.double())
    if s.sum() == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def relative_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a - b‖_F / ‖b‖_F."""
    return float(torch.linalg.norm((a - b).double()) / torch.linalg.norm(b.double()))


def delta_table(deltas: Mapping[tuple[str, int], torch.Tensor], reference: str = "full_fc1") -> pd.DataFrame:
    """One row per (arm, seed): ΔW's matrix rank (at float32's tolerance: the ΔW are float32 products), effective rank, Frobenius norm, and its distance to the
    ``reference`` arm's ΔW of the same seed (:func:`relative_distance`), and the cosine between the two."""
    rows = []
    for (arm, seed), delta in deltas.items():
        target = deltas[(reference, seed)]
        norm = float(torch.linalg.norm(delta.double()))
        cosine = float((delta.double() * target.double()).sum() / (norm * torch.linalg.norm(target.double())))
        rows.append(dict(arm=arm, seed=seed, rank=int(torch.linalg.matrix_rank(delta.float())),
                         effective_rank=effective_rank(delta), norm=norm,
                         distance_to_full=relative_distance(delta, target), cosine_to_full=cosine if norm else 0.0))
    return pd.DataFrame(rows)


def best_fit_errors(delta: torch.Tensor, ranks: Sequence[int]) -> pd.DataFrame:
    """How closely the best update of each structure could match ``delta`` (full fine-tuning's ΔW): the relative
    error of its truncated SVD at rank r (the best LoRA of rank r, Eckart-Young) and of its nearest Kronecker sum
    of r terms on the image grid (the best Kronecker-sum adapter of rank r, Van Loan-Pitsianis), with each
    one's weights."""
    s = torch.linalg.svdvals(delta.double())
    total = float((s ** 2).sum())
    rows = []
    for r in ranks:
        rows.append(dict(structure="LoRA", rank=r, weights=adapter_weights(Arm("lora", r)),
                         error=math.sqrt(float((s[r:] ** 2).sum()) / total)))
        rows.append(dict(structure="Kronecker sum", rank=r, weights=adapter_weights(Arm("kronsum", r)),
                         error=float(ku.relative_error(delta, r, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS))))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Choosing on validation, then reporting on test
# ---------------------------------------------------------------------------

def validation_choice(runs: pd.DataFrame, tie: float = 0.0) -> pd.DataFrame:
    """Each arm's learning rate, from the final epoch of its runs (the seeds given: the first
    :data:`adapters.arms.CHOICE_SEEDS`): the highest mean validation accuracy. Rates whose mean is within ``tie``
    points of the best (the plan passes one validation image, 100 / N) are tied; a tie goes to the lowest mean
    validation loss, then to the smaller rate. ``runs`` has an ``lr`` column; the test columns are never read.
    Returns one row per arm: variant, lr, validation (its mean accuracy), validation_loss, tied (how many rates
    tied for the best)."""
    last = runs.groupby(["variant", "lr", "seed"]).epoch.transform("max")  # each run's last epoch (or divergence)
    final = runs[runs.epoch == last]
    scores = (final.groupby(["variant", "lr"], sort=False)[["validation_accuracy", "validation_loss"]].mean()
              .reset_index().rename(columns={"validation_accuracy": "validation"}))
    scores["validation_loss"] = scores.validation_loss.fillna(float("inf"))  # a diverged run loses every tie
    best = scores.groupby("variant").validation.transform("max")
    tied = scores[scores.validation >= best - tie - 1e-9]
    counts = tied.groupby("variant").size()
    chosen = tied.sort_values(["variant", "validation_loss", "lr"]).groupby("variant", sort=False).head(1)
    chosen = chosen.assign(tied=chosen.variant.map(counts).astype(int))
    return chosen.set_index("variant").reindex(list(dict.fromkeys(runs.variant))).reset_index()


def transfer_table(plans: Sequence) -> pd.DataFrame:
    """One row per candidate setting (an :class:`adapters.plan.AdaptersPlan` of head, full_fc1 and scratch): the
    pre-training gain, full fine-tuning minus training from scratch, on validation (what the choice reads) and on
    test (what the page reports), each with its Welch 95% interval over the seeds at each arm's chosen rate; the
    head alone minus scratch on test; and the three arms' mean test accuracies."""
    rows = []
    for plan in plans:
        runs = plan.final_runs(plan.chosen())
        val = compare_final(runs, "full_fc1", "scratch", "validation_accuracy")
        test = compare_final(runs, "full_fc1", "scratch")
        head = compare_final(runs, "head", "scratch")
        rows.append(dict(setting=plan.transfer.text, source=plan.source, target=plan.target,
                         images=plan.transfer.images, epochs=plan.epochs, seeds=test["n_a"],
                         val_gain=val["diff"], val_low=val["low"], val_high=val["high"], gain=test["diff"],
                         low=test["low"], high=test["high"], head_gain=head["diff"], head_low=head["low"],
                         head_high=head["high"], full=test["mean_a"], scratch=test["mean_b"], head=head["mean_a"]))
    return pd.DataFrame(rows)


def choose_transfer(table: pd.DataFrame) -> int:
    """The row of :func:`transfer_table` where pre-training helps most clearly, judged on validation only: the
    highest lower end of the validation gain's interval (on a tie, the first listed). Returns its position."""
    if table.empty:
        raise ValueError("no candidate transfer settings to choose from")
    return int(table.val_low.to_numpy().argmax())


def arm_results(runs: pd.DataFrame, arms: Sequence[Arm]) -> pd.DataFrame:
    """One row per arm (at its chosen rate): kind, budget level, adapter weights, final test accuracy mean, sd,
    95% t-interval half-width and seeds. ``runs`` holds only the chosen rate's runs."""
    final = final_epochs(runs)
    rows = []
    for arm in arms:
        acc = final.loc[final.variant == arm.name, "test_accuracy"].to_numpy(float)
        n = len(acc)
        half = half_interval(acc)
        rows.append(dict(arm=arm.name, kind=arm.kind, rank=arm.rank, adapter_weights=adapter_weights(arm),
                         mean=acc.mean() if n else float("nan"), sd=acc.std(ddof=1) if n > 1 else float("nan"),
                         half_width=half, seeds=n))
    return pd.DataFrame(rows)


def level_winners(runs: pd.DataFrame, arms: Sequence[Arm], ranks: Sequence[int] = BUDGET_RANKS) -> pd.DataFrame:
    """At each budget level: the adapter with the best mean test accuracy, the runner-up, and the difference with
    its Welch 95% interval (:func:`stats.compare_final`)."""
    final = final_epochs(runs).groupby("variant").test_accuracy.mean()
    rows = []
    for level in range(len(ranks)):
        ordered = sorted(level_members(arms, level), key=lambda a: -final[a.name])
        c = compare_final(runs, ordered[0].name, ordered[1].name)
        rows.append(dict(level=level + 1, budget=adapter_weights(Arm("kronsum", ranks[level])),
                         best=ordered[0].name, best_kind=ordered[0].kind, best_mean=c["mean_a"],
                         runner_up=ordered[1].name, runner_up_kind=ordered[1].kind, diff=c["diff"], low=c["low"],
                         high=c["high"], last=ordered[-1].name, last_mean=final[ordered[-1].name]))
    return pd.DataFrame(rows)


def twin_comparison(runs: pd.DataFrame, ours: str = "kronsum_r1", peft: str = "lokr_r14") -> dict:
    """The Kronecker-sum adapter of rank 1 against peft's LoKr at its default factorisation without rank
    decomposition: the same ΔW = A ⊗ B, trained with the same seeds. Welch difference (ours - peft) and whether
    its 95% interval contains zero."""
    c = compare_final(runs, ours, peft)
    return dict(c, within_noise=bool(c["low"] <= 0 <= c["high"]))


# ---------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------

def against_full(runs: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Every arm but full fine-tuning against full fine-tuning of fc1: mean test accuracy minus full's, with its Welch
    95% interval (:func:`stats.compare_final`), its kind, its weights and the outcome ('ahead', 'level', 'behind')."""
    full = results.arm[results.kind == "full"].iloc[0]
    rows = []
    for r in results[results.arm != full].itertuples():
        c = compare_final(runs, r.arm, full)
        rows.append(dict(arm=r.arm, kind=r.kind, adapter_weights=r.adapter_weights, diff=c["diff"], low=c["low"],
                         high=c["high"], outcome="ahead" if c["low"] > 0 else "behind" if c["high"] < 0 else "level"))
    return pd.DataFrame(rows)


def head_against_best(runs: pd.DataFrame, results: pd.DataFrame) -> dict:
    """The head alone minus the adapter with the best mean test accuracy (:func:`stats.compare_final`, Welch 95%
    interval; the best is picked on the same test runs, so a lead of the head is, if anything, understated)."""
    adapters = results[results.kind.isin(ADAPTER_KINDS)]
    best = adapters.loc[adapters["mean"].idxmax(), "arm"]
    return compare_final(runs, results.arm[results.kind == "head"].iloc[0], best)


def kind_gaps(results: pd.DataFrame, runs: pd.DataFrame, arms: Sequence[Arm], a: str = "kronsum",
              b: str = "lora", ranks: Sequence[int] = BUDGET_RANKS) -> pd.DataFrame:
    """At each budget level, adapter kind ``a`` minus kind ``b`` (mean test accuracy, Welch 95% interval)."""
    rows = []
    for level in range(len(ranks)):
        members = {arm.kind: arm for arm in level_members(arms, level)}
        c = compare_final(runs, members[a].name, members[b].name)
        rows.append(dict(level=level + 1, a=members[a].name, b=members[b].name, a_weights=adapter_weights(members[a]),
                         diff=c["diff"], low=c["low"], high=c["high"],
                         outcome="ahead" if c["low"] > 0 else "behind" if c["high"] < 0 else "level"))
    return pd.DataFrame(rows)


def shape_comparisons(runs: pd.DataFrame, arms: Sequence[Arm], shape_ranks: Sequence[int]) -> pd.DataFrame:
    """The factor-shape comparison: at each budget (``shape_ranks`` balanced Kronecker terms), every arm whose
    weights match it within :data:`adapters.arms.BUDGET_TOLERANCE` (Kronecker sums of every shape, peft's LoKr,
    LoRA), each minus the balanced Kronecker sum of that budget (Welch 95% interval; they share that baseline, so
    the comparisons are not independent). One row per arm, best mean first within a budget."""
    final = final_epochs(runs).groupby("variant").test_accuracy
    means, sds = final.mean(), final.std(ddof=1)
    rows = []
    for rank in shape_ranks:
        balanced = Arm("kronsum", rank)
        budget = adapter_weights(balanced)
        members = [a for a in arms if a.kind in ADAPTER_KINDS and a.name in means.index
                   and abs(adapter_weights(a) - budget) <= BUDGET_TOLERANCE * budget]
        for arm in sorted(members, key=lambda a: -means[a.name]):
            c = compare_final(runs, arm.name, balanced.name) if arm != balanced else None
            rows.append(dict(budget=budget, arm=arm.name, kind=arm.kind, update=factorisation_text(arm),
                             terms=arm.rank if arm.kind == "kronsum" else None, weights=adapter_weights(arm),
                             mean=means[arm.name], sd=sds[arm.name],
                             diff=c["diff"] if c else 0.0, low=c["low"] if c else float("nan"),
                             high=c["high"] if c else float("nan"),
                             outcome="reference" if c is None else "ahead" if c["low"] > 0 else
                             "behind" if c["high"] < 0 else "level"))
    return pd.DataFrame(rows)


def shape_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """:func:`shape_comparisons` as the page shows it: budget, the update's form, test accuracy, and the difference
    to the balanced Kronecker sum of the same budget."""
    return pd.DataFrame({
        "budget": [f"{int(b):,}" for b in comparisons.budget],
        "ΔW": comparisons["update"],
        "weights": [f"{int(w):,}" for w in comparisons.weights],
        "test acc. (%)": [f"{m:.2f} ± {s:.2f}" for m, s in zip(comparisons["mean"], comparisons.sd)],
        "− balanced (pp)": ["reference" if o == "reference" else ci_cell(r) for o, (_, r) in
                            zip(comparisons.outcome, comparisons.iterrows())]})


def level_table(results: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> pd.DataFrame:
    """One row per budget level, named by the Kronecker sum's weights (the other kinds are within 10%; each arm's
    exact weights are in :func:`arms_table`): each adapter kind's test accuracy (mean ± sd), and the Kronecker sum's
    and LoKr's difference to LoRA with its Welch 95% interval (:func:`kind_gaps`)."""
    by_arm = results.set_index("arm")

    def cell(arm):
        r = by_arm.loc[arm]
        return f"{r['mean']:.2f} ± {r.sd:.2f}"
    return pd.DataFrame([{"budget": f"≈{int(k.a_weights):,}", "LoRA": cell(k.b), "LoKr": cell(l.a),
                          "Kron. sum": cell(k.a), "Kron. sum − LoRA": ci_cell(k), "LoKr − LoRA": ci_cell(l)}
                         for (_, k), (_, l) in zip(kron_gaps.iterrows(), lokr_gaps.iterrows())])


def lokr_default_ceiling() -> int:
    """The most weights peft's LoKr can have at its default factorisation on the 784 -> 625 layer (any r)."""
    return adapter_weights(Arm("lokr", ku.IMAGE_SIZE, -1))


def arms_table(arms: Sequence[Arm], chosen: pd.DataFrame) -> pd.DataFrame:
    """The arms as the page lists them: how ΔW is written, adapter weights, the learning rate chosen on
    validation and the validation accuracy that chose it."""
    choice = chosen.set_index("variant")
    return pd.DataFrame({
        "arm": [a.name for a in arms], "ΔW": [factorisation_text(a) for a in arms], "weights": [f"{adapter_weights(a):,}" for a in arms],
        "lr (chosen)": [f"{choice.lr[a.name]:g}" for a in arms],
        "validation (%)": [f"{choice.validation[a.name]:.2f}" for a in arms]})


def results_table(results: pd.DataFrame, deltas: pd.DataFrame, timing: pd.DataFrame,
                  against: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: test accuracy (mean ± sd), its difference to full fine-tuning with the Welch 95% interval
    (:func:`against_full`), ΔW's rank and effective rank, the cosine between it and full fine-tuning's ΔW (means over
    seeds), and the median milliseconds per training step measured side by side."""
    d = deltas.groupby("arm").agg(rank=("rank", "median"), eff=("effective_rank", "mean"),
                                  cosine=("cosine_to_full", "mean"))
    seconds = timing.groupby("arm").ms_per_step.median()
    versus = against.set_index("arm")
    rows = []
    for r in results.itertuples():
        has_delta = r.arm in d.index and r.kind not in ("head", "full")
        has_rank = has_delta or (r.kind == "full" and r.arm in d.index)
        rows.append({"arm": r.arm, "test acc. (%)": f"{r.mean:.2f} ± {r.sd:.2f}",
                     "vs full fine-tuning (pp)": ci_cell(versus.loc[r.arm]) if r.arm in versus.index else "–",
                     "rank of ΔW": f"{d['rank'][r.arm]:.0f}" if has_rank else "–",
                     "effective rank": f"{d.eff[r.arm]:.0f}" if has_rank else "–",
                     "cosine to full ΔW": f"{d.cosine[r.arm]:.2f}" if has_delta else "–",
                     "ms / step": f"{seconds[r.arm]:.2f}" if r.arm in seconds.index else "–"})
    return pd.DataFrame(rows)


def twin_check(seed: int = 0) -> dict:
    """Our rank-1 Kronecker sum and peft's LoKr at its default factors, given the same two factors (drawn from
    ``seed``) on the same base: the largest differences of their ΔW and of their forward on random inputs, and
    both trainable counts (peft's own for LoKr). The page runs it; the tests check the same against torch.kron."""
    torch.manual_seed(seed)
    base = ku.build_model(BASE_VARIANT)
    ours, theirs = adapted_net(Arm("kronsum", 1), base, seed), adapted_net(Arm("lokr", 14, -1), base, seed)
    lokr = theirs.base_model.model.fc1
    with torch.no_grad():
        lokr.lokr_w1["default"].normal_(0, 0.05)  # peft starts w1 at zero: draw it so that ΔW is not trivially 0
        ours.fc1.delta.factors[0][0].copy_(lokr.lokr_w1["default"])
        ours.fc1.delta.factors[1][0].copy_(lokr.lokr_w2["default"])
        x = torch.randn(64, ku.IMAGE_SIZE)
        delta_gap = (delta_weight(Arm("kronsum", 1), ours, base) - lokr.get_delta_weight("default")).abs().max()
        forward_gap = (ours.fc1(x) - lokr(x)).abs().max()
    return dict(delta_max_diff=float(delta_gap), forward_max_diff=float(forward_gap),
                ours_trainable=ku.count_trainable(ours), peft_trainable=theirs.get_nb_trainable_parameters()[0])
