"""Part 4: adapters on the frozen input layer of a pre-trained MNIST net, at matched budgets, in a setting where
pre-training helps (:mod:`adapters.plan` measures the candidates and chooses on validation).

The base is the post's dense 784-625-10 net trained on the source task with the post's recipe (seed 1). Every arm
gets a new 625 -> 10 head, trained with it and counted apart from the adapter's budget:

- ``head``           the head alone on frozen features (a linear probe);
- ``lora_r<r>``      peft's LoRA on fc1 (``LoraConfig``), r (784 + 625) weights;
- ``lokr_…``         peft's LoKr on fc1 (``LoKrConfig``) at a stated ``decompose_factor`` and r;
- ``kronsum_r<r>``   this project's :class:`kron_utils.KronAdapter`, ΔW = Σ_r A_r ⊗ B_r on the image grid
                     (28×28 -> 25×25), r · 1,400 weights; ``kronsum_<o>x<i>_r<r>`` with A of shape o × i;
- ``full_fc1``       all of fc1 fine-tuned; ``scratch``: the whole net trained from a fresh draw.

Tasks are a dataset, some of its classes ('mnist:5-9') and a domain shift ('mnist+noise0.5'). Learning rates are
chosen per arm on a held-out validation split (the mean over the first seeds), then every seed trains at the chosen
rate; the test set only reports. What each arm learned, ΔW, is summarised by its rank, effective rank and distance
to full fine-tuning's ΔW.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd
import torch
from torch import nn

from ..recipes import VALIDATION_IMAGES

__all__ = ["SOURCE", "TARGET", "BASE_VARIANT", "BASE_SEED", "ADAPTER_SEEDS", "ADAPTER_EPOCHS", "ADAPTER_BATCH",
           "ADAPTER_RATES", "BUDGET_RANKS", "LOKR_CONFIGS", "HEAD_PARAMS", "BUDGET_TOLERANCE", "KINDS",
           "ADAPTER_KINDS", "KIND_TEXT", "Arm", "ARM_NAME", "parse_arm", "budget_arms", "lokr_shapes",
           "adapter_weights", "factorisation_text", "BALANCED", "kron_shapes", "shape_text", "term_weights", "shape_arms",
           "task_parts", "task_domain", "task_text", "task_slug", "SHAPE_RANKS", "FACTOR_SHAPES", "CHOICE_SEEDS", "level_members", "check_budgets", "adapter_settings",
           "base_settings", "adapted_net", "delta_weight", "epoch_seconds", "step_seconds"]


SOURCE, TARGET = "mnist", "fashion-mnist"


BASE_VARIANT, BASE_SEED = "original", 1         # the post's dense net, seed 1, the post's recipe on MNIST


ADAPTER_SEEDS = (1, 2, 3, 4, 5)


CHOICE_SEEDS = 2                                 # each arm's rate: the mean validation accuracy of the first two


#: The factor-shape comparison: two budgets (in balanced Kronecker-sum terms: 11,200 and 44,800 weights) and the
#: shapes of A (out × in) tried at each, where they match within BUDGET_TOLERANCE: a LoRA written as a Kronecker
#: sum (1×784), the balanced grid (25×28), 16×49 grids both ways, and unbalanced splits.
SHAPE_RANKS = (8, 32)
FACTOR_SHAPES = ((1, 784), (25, 28), (5, 49), (125, 16), (25, 4), (5, 196), (125, 4))


ADAPTER_EPOCHS = 10


ADAPTER_BATCH = 64


ADAPTER_RATES = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # Adam; each arm's rate is chosen on validation


#: The budget levels: ranks of LoRA and of the Kronecker-sum adapter (≈ 1,400 r weights each).
BUDGET_RANKS = (1, 4, 8, 16, 32)


#: peft LoKr (decompose_factor, r) at each budget level; -1 is peft's default factorisation (784 = 28·28,
#: 625 = 25·25), where LoKr cannot exceed 1,400 weights. Others split 625 = 5·125 (or 1·625) and 784 = f·(784/f).
LOKR_CONFIGS = ((-1, 14), (16, 32), (5, 35), (5, 70), (4, 55))


HEAD_PARAMS = ku.HIDDEN_SIZE * ku.NUM_CLASSES + ku.NUM_CLASSES  # the new head: 6,250 weights and 10 biases


BUDGET_TOLERANCE = 0.01                          # adapters at one level differ by at most 1%


KINDS = ("head", "lora", "lokr", "kronsum", "full", "scratch")


ADAPTER_KINDS = ("lora", "lokr", "kronsum")


KIND_TEXT = {"head": "head only (linear probe)", "lora": "LoRA (peft)", "lokr": "LoKr (peft)",
             "kronsum": "Kronecker sum (KronAdapter)", "full": "full fine-tuning of fc1", "scratch": "from scratch"}


#: The Kronecker-sum adapter's default factor shape: A is 25×28 (out × in), so B is 25×28 too (the image grid).
BALANCED = (ku.HIDDEN_FACTORS[0], ku.IMAGE_FACTORS[0])


@dataclass(frozen=True)
class Arm:
    """One way to adapt the base: its kind, rank r, (LoKr) decompose_factor and (Kronecker sum) the shape of A,
    (out, in); B takes the rest of fc1's 625 × 784."""
    kind: str
    rank: int | None = None
    factor: int | None = None
    shape: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """The run's label: head, full_fc1, scratch, lora_r4, kronsum_r4 (A 25×28), kronsum_5x49_r5 (A 5×49),
        lokr_r14 (default factors), lokr_f5_r35."""
        if self.kind == "kronsum" and self.shape not in (None, BALANCED):
            return f"kronsum_{self.shape[0]}x{self.shape[1]}_r{self.rank}"
        if self.kind in ("lora", "kronsum"):
            return f"{self.kind}_r{self.rank}"
        if self.kind == "lokr":
            return f"lokr_r{self.rank}" if self.factor == -1 else f"lokr_f{self.factor}_r{self.rank}"
        return {"full": "full_fc1"}.get(self.kind, self.kind)


ARM_NAME = re.compile(r"(?:(?P<kind>lora|kronsum)(?:_(?P<out>\d+)x(?P<in>\d+))?_r(?P<rank>\d+)"
                      r"|lokr(?:_f(?P<factor>\d+))?_r(?P<lrank>\d+)|(?P<plain>head|full_fc1|scratch))")


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` a label names (the inverse of ``Arm.name``); one ValueError for anything else."""
    match = ARM_NAME.fullmatch(str(name))
    if not match or any(v is not None and int(v) < 1 for v in (match["rank"], match["lrank"], match["factor"])):
        raise ValueError(f"unknown adapter arm {name!r}: use head, full_fc1, scratch, lora_r<r>, kronsum_r<r>, "
                         "kronsum_<out>x<in>_r<r>, lokr_r<r> or lokr_f<decompose_factor>_r<r>")
    if match["plain"]:
        return Arm({"full_fc1": "full"}.get(match["plain"], match["plain"]))
    if match["out"] is not None:
        shape = int(match["out"]), int(match["in"])
        if match["kind"] != "kronsum" or min(shape) < 1 or ku.HIDDEN_SIZE % shape[0] or ku.IMAGE_SIZE % shape[1]:
            raise ValueError(f"unknown adapter arm {name!r}: a Kronecker sum's A must be <out>x<in> with out dividing "
                             f"{ku.HIDDEN_SIZE} and in dividing {ku.IMAGE_SIZE}, as in kronsum_5x49_r5")
        return Arm("kronsum", int(match["rank"]), shape=None if shape == BALANCED else shape)
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


def lokr_factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """peft's LoKr split of ``dimension`` into m <= n with m * n = dimension (``peft.tuners.lokr.layer.factorization``,
    from LyCORIS): m = ``factor`` when it divides; otherwise the divisor pair nearest the square root with m at most
    ``factor``. Restated here so that reading a plan does not import peft and transformers (4 s); the tests check
    it against peft's own for every dimension up to 1,000 and factor."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    factor = dimension if factor == -1 else factor
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = next(d for d in range(m + 1, dimension + 1) if dimension % d == 0)
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    return (n, m) if m > n else (m, n)


def lokr_shapes(factor: int, size_in: int = ku.IMAGE_SIZE, size_out: int = ku.HIDDEN_SIZE) -> tuple:
    """peft's LoKr factors of a Linear(size_in, size_out) at ``decompose_factor``: ((out_l, out_k), (in_m, in_n)),
    w1 (out_l × in_m) ⊗ w2 (out_k × in_n), from :func:`lokr_factorization`."""
    return lokr_factorization(size_out, factor), lokr_factorization(size_in, factor)


def adapter_weights(arm: Arm) -> int:
    """The adapter's trainable weights on fc1, by hand (the head not counted): LoRA r (784 + 625); the Kronecker
    sum r · 2 · 25 · 28; LoKr w1 (full) plus w2, full when r ≥ half its larger side, else r (out_k + in_n), as
    peft's ``LoKrLayer.update_layer`` decides; fc1's 490,625 for full fine-tuning and scratch; 0 for the head."""
    if arm.kind == "lora":
        return arm.rank * (ku.IMAGE_SIZE + ku.HIDDEN_SIZE)
    if arm.kind == "kronsum":
        return arm.rank * term_weights(arm.shape or BALANCED)
    if arm.kind == "lokr":
        (out_l, out_k), (in_m, in_n) = lokr_shapes(arm.factor)
        full = arm.rank >= max(out_k, in_n) / 2
        return out_l * in_m + (out_k * in_n if full else arm.rank * (out_k + in_n))
    return 0 if arm.kind == "head" else ku.IMAGE_SIZE * ku.HIDDEN_SIZE + ku.HIDDEN_SIZE


def kron_shapes(shape: tuple[int, int] | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """The Kronecker sum's (A, B) shapes, each (out, in), for A of ``shape`` (None: :data:`BALANCED`)."""
    o1, i1 = shape or BALANCED
    return (o1, i1), (ku.HIDDEN_SIZE // o1, ku.IMAGE_SIZE // i1)


def shape_text(arm: str) -> str:
    """A Kronecker-sum arm's shape in words: '5×49 ⊗ 125×16 (five terms)'."""
    from ..words import count
    parsed = parse_arm(arm)
    (o1, i1), (o2, i2) = kron_shapes(parsed.shape)
    return f"{o1}×{i1} ⊗ {o2}×{i2} ({count(parsed.rank, 'term')})"


def term_weights(shape: tuple[int, int] | None) -> int:
    """One Kronecker term's weights, A's plus B's entries, for A of ``shape``."""
    return sum(o * i for o, i in kron_shapes(shape))


def shape_arms(budget_rank: int, shapes: Sequence[tuple[int, int]], tolerance: float | None = None) -> list[Arm]:
    """The Kronecker sums of each A ``shape`` whose weights match the balanced sum of ``budget_rank`` terms within
    ``tolerance`` (:data:`BUDGET_TOLERANCE`), with as many terms as that takes; shapes that cannot match are left
    out. A 1×784 A (B 625×1) makes each term an outer product: that Kronecker sum is a LoRA of the same rank."""
    tolerance = BUDGET_TOLERANCE if tolerance is None else tolerance
    budget, arms = adapter_weights(Arm("kronsum", budget_rank)), []
    for shape in shapes:
        terms = max(1, round(budget / term_weights(shape)))
        if abs(terms * term_weights(shape) - budget) <= tolerance * budget:
            arms.append(Arm("kronsum", terms, shape=None if tuple(shape) == BALANCED else tuple(shape)))
    return arms


def factorisation_text(arm: Arm) -> str:
    """How the arm writes ΔW, in words for the page's table."""
    if arm.kind == "lora":
        return f"B (625×{arm.rank}) · A ({arm.rank}×784)"
    if arm.kind == "kronsum":
        (o1, i1), (o2, i2) = kron_shapes(arm.shape)
        return f"Σ of {arm.rank} × A ({o1}×{i1}) ⊗ B ({o2}×{i2})"
    if arm.kind == "lokr":
        (out_l, out_k), (in_m, in_n) = lokr_shapes(arm.factor)
        full = arm.rank >= max(out_k, in_n) / 2
        w2 = f"{out_k}×{in_n}" + ("" if full else f" of rank {arm.rank}")
        return f"w1 ({out_l}×{in_m}) ⊗ w2 ({w2})"
    return {"head": "none (ΔW = 0)", "full": "dense 625×784", "scratch": "all weights, fresh draw"}[arm.kind]


def level_members(arms: Sequence[Arm], level: int) -> list[Arm]:
    """The adapters at budget level ``level`` (0-based): the level-th LoRA, LoKr and Kronecker-sum arm."""
    return [[a for a in arms if a.kind == kind and a.shape is None][level] for kind in ADAPTER_KINDS]


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


def task_domain(task: str) -> str | None:
    """A task's domain shift (:func:`kron_utils.parse_domain`): 'mnist+noise0.5' -> 'noise0.5'; None without one."""
    domain = str(task).partition("+")[2] or None
    ku.parse_domain(domain)
    return domain


def task_parts(task: str) -> tuple[str, str | None]:
    """A task's dataset and class filter: 'mnist' -> ('mnist', None), 'mnist:5-9' -> ('mnist', '5-9'); a task may
    end in a domain shift, 'mnist+rotate30' (:func:`task_domain`). One ValueError for an unknown dataset, a bad
    range or a bad shift."""
    head = str(task).partition("+")[0]
    dataset, _, classes = head.partition(":")
    if dataset != ku.SYNTHETIC:
        ku.dataset_info(dataset)
    ku.parse_classes(classes or None)
    task_domain(task)
    return dataset, classes or None


def task_text(task: str) -> str:
    """A task in words: 'MNIST', 'Fashion-MNIST', 'MNIST digits 5–9', 'noisy MNIST (σ = 0.5)', 'MNIST rotated 30°'."""
    dataset, classes = task_parts(task)
    name = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(dataset, dataset)
    if classes is not None:
        low, high = classes.split("-")
        name = f"{name} {'classes' if dataset != 'mnist' else 'digits'} {low}–{high}"
    shift = ku.parse_domain(task_domain(task))
    if shift is None:
        return name
    kind, amount = shift
    return f"noisy {name} (σ = {amount:g})" if kind == "noise" else f"{name} rotated {amount:g}°"


def task_slug(task: str) -> str:
    """A task as a folder name: 'mnist:0-4' -> 'mnist-0-4', 'mnist+noise0.5' -> 'mnist-noise0.5'."""
    dataset, classes = task_parts(task)
    domain = task_domain(task)
    return "-".join(p for p in (dataset, classes, domain) if p)


def adapter_settings(lr: float, epochs: int = ADAPTER_EPOCHS, target: str = TARGET,
                     validation: int = VALIDATION_IMAGES, images: int | None = None) -> ku.TrainSettings:
    """The fine-tuning recipe: Adam at ``lr``, batches of 64, on the ``target`` task (a dataset, or 'mnist:5-9' for
    some of its classes), the last ``validation`` of its training images held out, and of the rest the first
    ``images`` (None: all) trained on."""
    dataset, classes = task_parts(target)
    return ku.TrainSettings(epochs=epochs, lr=lr, batch_size=ADAPTER_BATCH, dataset=dataset, optimizer="adam",
                            validation=validation, train_limit=images, classes=classes, domain=task_domain(target))


def base_settings(source: str = SOURCE) -> ku.TrainSettings:
    """How the base net was trained: the post's recipe (SGD 0.01, momentum 0.5, 35 epochs) on the ``source`` task."""
    dataset, classes = task_parts(source)
    return ku.TrainSettings(dataset=dataset, classes=classes, domain=task_domain(source))


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
        (o1, i1), (o2, i2) = kron_shapes(arm.shape)
        net.fc1 = ku.KronAdapter(net.fc1, (i1, i2), (o1, o2), rank=arm.rank)
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


def epoch_seconds(arms: Sequence[Arm], base: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 100,
                  rounds: int = 3, batch_size: int = ADAPTER_BATCH, warmup: int = 5) -> pd.DataFrame:
    """Seconds per training epoch of each arm, measured side by side in this process (:func:`step_seconds`),
    scaled to one epoch of ``len(x)`` images. One row per (arm, round); the page reports the median."""
    nets = {arm.name: adapted_net(arm, base, 1) for arm in arms}
    table = step_seconds(nets, x, y, steps=steps, rounds=rounds, batch_size=batch_size, warmup=warmup)
    kinds = {arm.name: arm.kind for arm in arms}
    per_epoch = math.ceil(len(x) / batch_size)
    return pd.DataFrame(dict(arm=table.net, kind=table.net.map(kinds), round=table["round"],
                             seconds_per_epoch=table.seconds_per_step * per_epoch,
                             ms_per_step=1e3 * table.seconds_per_step, threads=table.threads))


def step_seconds(nets: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor, *, steps: int = 100,
                 rounds: int = 3, batch_size: int = ADAPTER_BATCH, warmup: int = 5) -> pd.DataFrame:
    """Seconds per Adam step of each net (its trainable parameters), side by side: ``rounds`` rounds, each timing
    ``steps`` steps of every net in turn on batches of ``x`` (after ``warmup`` untimed ones). One row per
    (net, round)."""
    import time
    rows = []
    for round_ in range(rounds):
        for name, net in nets.items():
            optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(round_))
            for i in range(warmup + steps):
                if i == warmup:
                    start = time.perf_counter()
                first = (i * batch_size) % max(1, len(x) - batch_size)
                batch = order[first:first + batch_size]
                optimizer.zero_grad()
                torch.nn.functional.nll_loss(net(x[batch]), y[batch]).backward()
                optimizer.step()
            rows.append(dict(net=name, round=round_ + 1, seconds_per_step=(time.perf_counter() - start) / steps,
                             threads=torch.get_num_threads()))
    return pd.DataFrame(rows)
