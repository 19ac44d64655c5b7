"""Part 4: adapters on the frozen input layer of an MNIST net, fine-tuned to Fashion-MNIST at matched budgets.

The base is the post's dense 784-625-10 net trained on MNIST with the post's recipe (seed 1). Every arm gets a
new 625 -> 10 head (new classes), trained with it and counted apart from the adapter's budget:

- ``head``           the head alone on frozen features (a linear probe);
- ``lora_r<r>``      peft's LoRA on fc1 (``LoraConfig``), r (784 + 625) weights;
- ``lokr_…``         peft's LoKr on fc1 (``LoKrConfig``) at a stated ``decompose_factor`` and r;
- ``kronsum_r<r>``   this project's :class:`kron_utils.KronAdapter`, ΔW = Σ_r A_r ⊗ B_r on the image grid
                     (28×28 -> 25×25), r · 1,400 weights;
- ``full_fc1``       all of fc1 fine-tuned; ``scratch``: the whole net trained from a fresh draw.

Learning rates are chosen per arm on a held-out validation split (seed 1), then every seed trains at the chosen
rate; the test set only reports. What each arm learned, ΔW, is summarised by its rank, effective rank and distance
to full fine-tuning's ΔW.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

import kron_utils as ku

from .stats import compare_final, final_epochs, half_interval

SOURCE, TARGET = "mnist", "fashion-mnist"
BASE_VARIANT, BASE_SEED = "original", 1         # the post's dense net, seed 1, the post's recipe on MNIST
ADAPTER_SEEDS = (1, 2, 3)
ADAPTER_EPOCHS = 10
ADAPTER_BATCH = 64
ADAPTER_RATES = (3e-4, 1e-3, 3e-3, 1e-2)        # Adam; each arm's rate is chosen on validation (seed 1)
VALIDATION_IMAGES = 10_000
#: The budget levels: ranks of LoRA and of the Kronecker-sum adapter (≈ 1,400 r weights each).
BUDGET_RANKS = (1, 4, 8, 16, 32)
#: peft LoKr (decompose_factor, r) at each budget level; -1 is peft's default factorisation (784 = 28·28,
#: 625 = 25·25), where LoKr cannot exceed 1,400 weights. Others split 625 = 5·125 (or 1·625) and 784 = f·(784/f).
LOKR_CONFIGS = ((-1, 14), (16, 32), (5, 35), (5, 70), (4, 55))
HEAD_PARAMS = ku.HIDDEN_SIZE * ku.NUM_CLASSES + ku.NUM_CLASSES  # the new head: 6,250 weights and 10 biases
BUDGET_TOLERANCE = 0.10                          # adapters at one level differ by at most 10%
KINDS = ("head", "lora", "lokr", "kronsum", "full", "scratch")
ADAPTER_KINDS = ("lora", "lokr", "kronsum")
KIND_TEXT = {"head": "head only (linear probe)", "lora": "LoRA (peft)", "lokr": "LoKr (peft)",
             "kronsum": "Kronecker sum (KronAdapter)", "full": "full fine-tuning of fc1", "scratch": "from scratch"}


@dataclass(frozen=True)
class Arm:
    """One way to adapt the base: its kind, rank r and (LoKr) decompose_factor."""
    kind: str
    rank: int | None = None
    factor: int | None = None

    @property
    def name(self) -> str:
        """The run's label: head, full_fc1, scratch, lora_r4, kronsum_r4, lokr_r14 (default factors), lokr_f5_r35."""
        if self.kind in ("lora", "kronsum"):
            return f"{self.kind}_r{self.rank}"
        if self.kind == "lokr":
            return f"lokr_r{self.rank}" if self.factor == -1 else f"lokr_f{self.factor}_r{self.rank}"
        return {"full": "full_fc1"}.get(self.kind, self.kind)


ARM_NAME = re.compile(r"(?:(?P<kind>lora|kronsum)_r(?P<rank>\d+)|lokr(?:_f(?P<factor>\d+))?_r(?P<lrank>\d+)"
                      r"|(?P<plain>head|full_fc1|scratch))")


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` a label names (the inverse of ``Arm.name``); one ValueError for anything else."""
    match = ARM_NAME.fullmatch(str(name))
    if not match or any(v is not None and int(v) < 1 for v in (match["rank"], match["lrank"], match["factor"])):
        raise ValueError(f"unknown adapter arm {name!r}: use head, full_fc1, scratch, lora_r<r>, kronsum_r<r>, "
                         "lokr_r<r> or lokr_f<decompose_factor>_r<r>")
    if match["plain"]:
        return Arm({"full_fc1": "full"}.get(match["plain"], match["plain"]))
    if match["kind"]:
        return Arm(match["kind"], int(match["rank"]))
    return Arm("lokr", int(match["lrank"]), int(match["factor"]) if match["factor"] else -1)


def budget_arms(ranks: Sequence[int] = BUDGET_RANKS, lokr: Sequence[Sequence[int]] = LOKR_CONFIGS) -> list[Arm]:
    """Every arm of the page: head only, then LoRA, LoKr and the Kronecker sum at each budget level, then full
    fine-tuning and training from scratch."""
    if len(lokr) != len(ranks):
        raise ValueError(f"lokr_configs must give one (decompose_factor, r) per budget rank: {len(lokr)} for "
                         f"{len(ranks)} ranks")
    return ([Arm("head")] + [Arm("lora", r) for r in ranks] + [Arm("lokr", r, f) for f, r in lokr]
            + [Arm("kronsum", r) for r in ranks] + [Arm("full"), Arm("scratch")])


def _peft():
    """The peft package, imported quietly: its first import pulls in tqdm.auto, which warns in a notebook kernel
    without ipywidgets (a warning that would print the venv's path into the executed notebook)."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import peft
        import peft.tuners.lokr.layer  # noqa: F401 - LoKr's factorization
    return peft


def lokr_shapes(factor: int, size_in: int = ku.IMAGE_SIZE, size_out: int = ku.HIDDEN_SIZE) -> tuple:
    """peft's LoKr factors of a Linear(size_in, size_out) at ``decompose_factor``: ((out_l, out_k), (in_m, in_n)),
    w1 (out_l × in_m) ⊗ w2 (out_k × in_n), from peft's own ``factorization``."""
    factorization = _peft().tuners.lokr.layer.factorization
    return factorization(size_out, factor), factorization(size_in, factor)


def adapter_weights(arm: Arm) -> int:
    """The adapter's trainable weights on fc1, by hand (the head not counted): LoRA r (784 + 625); the Kronecker
    sum r · 2 · 25 · 28; LoKr w1 (full) plus w2, full when r ≥ half its larger side, else r (out_k + in_n), as
    peft's ``LoKrLayer.update_layer`` decides; fc1's 490,625 for full fine-tuning and scratch; 0 for the head."""
    if arm.kind == "lora":
        return arm.rank * (ku.IMAGE_SIZE + ku.HIDDEN_SIZE)
    if arm.kind == "kronsum":
        return arm.rank * sum(o * i for o, i in zip(ku.HIDDEN_FACTORS, ku.IMAGE_FACTORS))
    if arm.kind == "lokr":
        (out_l, out_k), (in_m, in_n) = lokr_shapes(arm.factor)
        full = arm.rank >= max(out_k, in_n) / 2
        return out_l * in_m + (out_k * in_n if full else arm.rank * (out_k + in_n))
    return 0 if arm.kind == "head" else ku.IMAGE_SIZE * ku.HIDDEN_SIZE + ku.HIDDEN_SIZE


def factorisation_text(arm: Arm) -> str:
    """How the arm writes ΔW, in words for the page's table."""
    if arm.kind == "lora":
        return f"B (625×{arm.rank}) · A ({arm.rank}×784)"
    if arm.kind == "kronsum":
        return f"Σ of {arm.rank} × A (25×28) ⊗ B (25×28)"
    if arm.kind == "lokr":
        (out_l, out_k), (in_m, in_n) = lokr_shapes(arm.factor)
        full = arm.rank >= max(out_k, in_n) / 2
        w2 = f"{out_k}×{in_n}" + ("" if full else f" of rank {arm.rank}")
        return f"w1 ({out_l}×{in_m}) ⊗ w2 ({w2})"
    return {"head": "none (ΔW = 0)", "full": "dense 625×784", "scratch": "all weights, fresh draw"}[arm.kind]


def level_members(arms: Sequence[Arm], level: int) -> list[Arm]:
    """The adapters at budget level ``level`` (0-based): the level-th LoRA, LoKr and Kronecker-sum arm."""
    return [[a for a in arms if a.kind == kind][level] for kind in ADAPTER_KINDS]


def check_budgets(arms: Sequence[Arm], ranks: Sequence[int] = BUDGET_RANKS,
                  tolerance: float = BUDGET_TOLERANCE) -> pd.DataFrame:
    """One row per budget level: each adapter kind's weights and the spread (largest / smallest - 1); one
    ValueError naming the level when the spread exceeds ``tolerance``."""
    rows = []
    for level, rank in enumerate(ranks):
        members = level_members(arms, level)
        weights = {a.kind: adapter_weights(a) for a in members}
        spread = max(weights.values()) / min(weights.values()) - 1
        if spread > tolerance:
            raise ValueError(f"budget level {level + 1} (rank {rank}): adapter weights {weights} differ by "
                             f"{spread:.0%}, more than {tolerance:.0%}; change ranks or lokr_configs")
        rows.append(dict(level=level + 1, **{f"{k}_weights": v for k, v in weights.items()}, spread=spread,
                         arms=[a.name for a in members]))
    return pd.DataFrame(rows)


def adapter_settings(lr: float, epochs: int = ADAPTER_EPOCHS, dataset: str = TARGET,
                     validation: int = VALIDATION_IMAGES) -> ku.TrainSettings:
    """The fine-tuning recipe: Adam at ``lr``, batches of 64, the last ``validation`` training images held out."""
    return ku.TrainSettings(epochs=epochs, lr=lr, batch_size=ADAPTER_BATCH, dataset=dataset, optimizer="adam",
                            validation=validation)


def base_settings(dataset: str = SOURCE) -> ku.TrainSettings:
    """How the base net was trained: the post's recipe (SGD 0.01, momentum 0.5, 35 epochs) on ``dataset``."""
    return ku.TrainSettings(dataset=dataset)


def adapted_net(arm: Arm, base: nn.Module, seed: int) -> nn.Module:
    """The net an arm trains, drawn after ``torch.manual_seed(seed)``: a copy of the base's fc1 with a new head
    (nn.Linear's init), fc1 frozen except for full fine-tuning, and the arm's adapter on it (peft's LoRA or LoKr
    with alpha = r, so scale 1, the head trained through ``modules_to_save``; or :class:`kron_utils.KronAdapter`).
    ``scratch`` is a fresh dense net. The base is never changed."""
    torch.manual_seed(seed)
    if arm.kind == "scratch":
        return ku.build_model(BASE_VARIANT)
    net = ku.mlp(copy.deepcopy(base.fc1), nn.Linear(ku.HIDDEN_SIZE, ku.NUM_CLASSES))
    if arm.kind == "full":
        return net
    net.fc1.requires_grad_(False)
    if arm.kind == "head":
        return net
    if arm.kind == "kronsum":
        net.fc1 = ku.KronAdapter(net.fc1, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, rank=arm.rank)
        return net
    peft = _peft()
    config = (peft.LoraConfig(r=arm.rank, lora_alpha=arm.rank, target_modules=["fc1"], modules_to_save=["fc2"])
              if arm.kind == "lora" else
              peft.LoKrConfig(r=arm.rank, alpha=arm.rank, decompose_factor=arm.factor, target_modules=["fc1"],
                              modules_to_save=["fc2"]))
    return peft.get_peft_model(net, config)


def delta_weight(arm: Arm, net: nn.Module, base: nn.Module) -> torch.Tensor | None:
    """What training added to fc1's weight, ΔW (625 × 784): the adapter's update (peft's ``get_delta_weight``,
    :meth:`KronAdapter.delta_weight`), W - W₀ for full fine-tuning, zeros for the head; None for scratch."""
    with torch.no_grad():
        if arm.kind == "scratch":
            return None
        if arm.kind == "head":
            return torch.zeros_like(base.fc1.weight)
        if arm.kind == "full":
            return net.fc1.weight.detach() - base.fc1.weight
        if arm.kind == "kronsum":
            return net.fc1.delta_weight().detach()
        return net.base_model.model.fc1.get_delta_weight("default").detach()


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

def validation_choice(runs: pd.DataFrame) -> pd.DataFrame:
    """Each arm's learning rate: the highest final validation accuracy (mean over the seeds given, usually seed 1
    alone), ties to the smaller rate. ``runs`` has an ``lr`` column; the test columns are never read."""
    last = runs.groupby(["variant", "lr", "seed"]).epoch.transform("max")  # each run's last epoch (or divergence)
    final = runs[runs.epoch == last]
    scores = final.groupby(["variant", "lr"], sort=False).validation_accuracy.mean().reset_index()
    scores = scores.sort_values(["variant", "validation_accuracy", "lr"], ascending=[True, False, True])
    chosen = scores.groupby("variant", sort=False).head(1).rename(columns={"validation_accuracy": "validation"})
    return chosen.set_index("variant").reindex(list(dict.fromkeys(runs.variant))).reset_index()


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


def epoch_seconds(arms: Sequence[Arm], base: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 100,
                  rounds: int = 3, batch_size: int = ADAPTER_BATCH, warmup: int = 5) -> pd.DataFrame:
    """Seconds per training epoch of each arm, measured side by side in this process: ``rounds`` rounds, each
    timing ``steps`` Adam steps of every arm in turn (after ``warmup`` untimed ones), scaled to one epoch of
    ``len(x)`` images. One row per (arm, round); the page reports the median."""
    import time
    per_epoch = math.ceil(len(x) / batch_size)
    nets = {arm.name: adapted_net(arm, base, 1) for arm in arms}
    rows = []
    for round_ in range(rounds):
        for arm in arms:
            net = nets[arm.name]
            optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(round_))
            for i in range(warmup + steps):
                if i == warmup:
                    start = time.perf_counter()
                batch = order[(i * batch_size) % (len(x) - batch_size):][:batch_size]
                optimizer.zero_grad()
                torch.nn.functional.nll_loss(net(x[batch]), y[batch]).backward()
                optimizer.step()
            seconds = (time.perf_counter() - start) / steps * per_epoch
            rows.append(dict(arm=arm.name, kind=arm.kind, round=round_ + 1, seconds_per_epoch=seconds,
                             threads=torch.get_num_threads()))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------

def gap_closed(results: pd.DataFrame, arm: str) -> float:
    """The share of the gap between head only and full fine-tuning that ``arm`` closes (mean accuracies):
    0 at the linear probe, 1 at full fine-tuning."""
    mean = results.set_index("arm")["mean"]
    head, full = mean[results.arm[results.kind == "head"].iloc[0]], mean[results.arm[results.kind == "full"].iloc[0]]
    return float((mean[arm] - head) / (full - head))


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


def level_table(results: pd.DataFrame, kron_gaps: pd.DataFrame, lokr_gaps: pd.DataFrame) -> pd.DataFrame:
    """One row per budget level: each adapter kind's test accuracy (mean ± sd) with its weights, and the Kronecker
    sum's and LoKr's difference to LoRA with its Welch 95% interval (:func:`kind_gaps`)."""
    by_arm = results.set_index("arm")

    def cell(arm):
        r = by_arm.loc[arm]
        return f"{r['mean']:.2f} ± {r.sd:.2f} ({int(r.adapter_weights):,})"

    def gap(g):
        return f"{g['diff']:+.2f} ({g.low:+.2f} to {g.high:+.2f})"
    return pd.DataFrame([{"level": k.level, "LoRA (weights)": cell(k.b), "LoKr (weights)": cell(l.a),
                          "Kronecker sum (weights)": cell(k.a), "Kron. sum − LoRA": gap(k), "LoKr − LoRA": gap(l)}
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


def results_table(results: pd.DataFrame, deltas: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: adapter weights, test accuracy (mean ± sd), the gap to full fine-tuning it closes,
    ΔW's rank and effective rank, the cosine between it and full fine-tuning's ΔW (means over seeds), and the median
    seconds per epoch measured side by side."""
    d = deltas.groupby("arm").agg(rank=("rank", "median"), eff=("effective_rank", "mean"),
                                  cosine=("cosine_to_full", "mean"))
    seconds = timing.groupby("arm").seconds_per_epoch.median()
    rows = []
    for r in results.itertuples():
        has_delta = r.arm in d.index and r.kind not in ("head", "full")
        rows.append({"arm": r.arm, "weights": f"{r.adapter_weights:,}", "test acc. (%)": f"{r.mean:.2f} ± {r.sd:.2f}",
                     "gap closed": f"{gap_closed(results, r.arm):.0%}" if r.kind != "scratch" else "–",
                     "rank of ΔW": f"{d['rank'][r.arm]:.0f}" if has_delta or r.kind == "full" else "–",
                     "effective rank": f"{d.eff[r.arm]:.0f}" if has_delta or r.kind == "full" else "–",
                     "cosine to full ΔW": f"{d.cosine[r.arm]:.2f}" if has_delta else "–",
                     "s / epoch": f"{seconds[r.arm]:.1f}" if r.arm in seconds.index else "–"})
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
