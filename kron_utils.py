"""Kronecker-factored linear layers, the 2018 blog post's MNIST nets, and the training loop.

Read top to bottom:

1. Kronecker algebra  -- kron of many factors, splitting a size into factors, the nearest Kronecker sum
                         to a matrix (Van Loan-Pitsianis), its error, and TT-ranks of a matrix.
2. The layers         -- the functional core kron_linear / tt_linear, which never build W, and the modules
                         KronLinear (W = sum_r F1[r] (x) F2[r] (x) ...), TTLinear (a tensor-train matrix) and
                         KronAdapter (a frozen layer plus a Kronecker-sum update, W0 + sum_r A_r (x) B_r).
3. Nets               -- one registry: the families of nets, the post's six nets as aliases of members.
4. Data               -- MNIST / Fashion-MNIST from IDX files, held in memory; a synthetic stand-in.
5. Training           -- the 2018 pytorch/examples recipe: one plain reference loop (train_module), and the
                         fast path (train) that trains several seeds in one compiled step.

Everything around it (fetching and verifying data, results on disk, the sweep, statistics, prose,
figures, HTML) lives in the ``kron_report`` package, which imports this module; this one never imports it.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import re
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache, partial, reduce
from pathlib import Path
from typing import Callable, Sequence

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


def kron2_forward(x: torch.Tensor, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """(U (x) V) x for a batch of rows x (n, c0*c1), never forming U (x) V: the layer's idea in three lines.

    Entry ((a, b), (i, j)) of U (x) V is U[a, i] * V[b, j], so with each row of x read as a c0 x c1 grid X,
    y[a, b] = sum_ij U[a, i] X[i, j] V[b, j]: y = U X V^T, two small products (c0*c1*r1 + r0*c0*r1 multiply-adds
    per row instead of r0*r1*c0*c1). The general layer (:func:`kron_linear`) does the same for sums and more factors.
    """
    X = x.reshape(-1, U.shape[1], V.shape[1])  # each image as its c0 x c1 grid
    return (U @ X @ V.T).flatten(1)            # U mixes the grid's rows, V its columns


def factorize(n: int, k: int = 2) -> tuple[int, ...]:
    """Split ``n`` into ``k`` integer factors that are as equal as possible: 784 -> (28, 28); 784, k=4 ->
    (7, 4, 7, 4); 625, k=4 -> (5, 5, 5, 5); 10 -> (5, 2).

    The factors minimise max/min (ties: the smallest spread of their logs). When the best choice splits into
    two identical halves (a square size such as a 28x28 image), the half is repeated, (7, 4) -> (7, 4, 7, 4),
    so that the factors follow the image's rows and columns; otherwise they descend. ``k = 1`` gives ``(n,)``;
    every factor is >= 2 when k > 1, so an n with fewer than k prime factors raises ValueError.
    """
    n, k = check_positive_int(n, "n"), check_positive_int(k, "k")
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
    """Van Loan-Pitsianis: the rank-r sum of A_r (x) B_r nearest to the (o1*o2, i1*i2) ``weight`` in Frobenius
    norm. Rearranging W so that every (o2 x i2) block becomes a row turns sum_r A_r (x) B_r into the rank-r
    matrix sum_r vec(A_r) vec(B_r)^T, so the truncated SVD gives the optimum. Returns A (rank, o1, i1), B (rank, o2, i2).
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


def relative_error(weight: torch.Tensor, rank: int, in_factors: Sequence[int] = (28, 28),
                   out_factors: Sequence[int] = (25, 25)) -> float:
    """||W - W_r|| / ||W|| for W_r the nearest rank-r Kronecker sum (:func:`nearest_kron`) of ``weight``."""
    a, b = nearest_kron(weight.detach(), in_factors, out_factors, rank)
    return float((weight - sum(torch.kron(a[r], b[r]) for r in range(len(a)))).norm() / weight.norm())


def unfolding_ranks(weight: torch.Tensor, in_factors: Sequence[int], out_factors: Sequence[int]) -> tuple[int, ...]:
    """The TT-ranks of an (out, in) matrix in the grid in_factors -> out_factors: the ranks of its k-1
    unfoldings that put the index pairs (o_1 i_1, ..., o_j i_j) against the rest. By Oseledets (2011,
    Thm 2.1) these are the smallest TT-ranks with which a TT-matrix of k cores can represent it exactly."""
    k = len(in_factors)
    if weight.shape != (math.prod(out_factors), math.prod(in_factors)) or len(out_factors) != k:
        raise ValueError(f"a {tuple(weight.shape)} matrix does not fit the grid {tuple(in_factors)} -> {tuple(out_factors)}")
    pairs = weight.reshape(*out_factors, *in_factors).permute(*[d for j in range(k) for d in (j, k + j)])
    rows, ranks = 1, []
    for o, i in list(zip(out_factors, in_factors))[:-1]:
        rows *= o * i
        ranks.append(int(torch.linalg.matrix_rank(pairs.reshape(rows, -1))))
    return tuple(ranks)


# ---------------------------------------------------------------------------
# 2. The layer
# ---------------------------------------------------------------------------


def kron_linear(x: torch.Tensor, factors: Sequence[torch.Tensor], bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ W.T + bias for W = sum_r F_1[r] (x) ... (x) F_k[r], each F_j of shape (rank, o_j, i_j), without
    building W: the first ceil(k/2) and the last factors of each term are multiplied into two small ones."""
    m = (len(factors) + 1) // 2
    return _kron_sum_linear(x, _batched_kron(factors[:m]), _batched_kron(factors[m:]), bias)


def tt_linear(x: torch.Tensor, cores: Sequence[torch.Tensor], bias: torch.Tensor | None = None, *,
              split: int | None = None) -> torch.Tensor:
    """x @ W.T + bias for W the TT-matrix of ``cores`` (r_{j-1}, o_j, i_j, r_j), without building W: the first m
    and the last cores are multiplied into L (r_m, O_L, I_L) and R (r_m, O_R, I_R), W = sum_s L[s] (x) R[s], at the
    split m that :func:`tt_split` finds cheapest for this batch (or m = ``split``)."""
    m = split or tt_split([tuple(c.shape) for c in cores], x.numel() // max(1, x.shape[-1]))
    left, right = _tt_chain(list(cores[:m]))[0].permute(2, 0, 1), _tt_chain(list(cores[m:]))[..., 0]
    return _kron_sum_linear(x, left, right, bias)


def monarch_linear(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, row_group: torch.Tensor,
                   col_group: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ W.T + bias for the Monarch matrix of :class:`MonarchLinear`, without building W: the image X (i1 x i2)
    has row a multiplied by its own block R[row_group[a]] (o2 x i2), then column b of the result by its own block
    L[col_group[b]] (o1 x i1). ``left`` (g_c, o1, i1), ``right`` (g_r, o2, i2); x (..., i1*i2) -> (..., o1*o2)."""
    (_, o1, i1), (_, o2, i2) = left.shape, right.shape
    if x.shape[-1] != i1 * i2:
        raise ValueError(f"expected last dimension {i1 * i2}, got {x.shape[-1]}")
    z = torch.einsum("nai,aoi->nao", x.reshape(-1, i1, i2), right[row_group])   # each row, its own block
    y = torch.einsum("nao,oca->nco", z, left[col_group]).reshape(*x.shape[:-1], o1 * o2)  # each column, its own
    return y if bias is None else y + bias


def tt_split(shapes: Sequence[tuple[int, int, int, int]], batch: int) -> int:
    """The split m (1 <= m < k) of k TT cores of ``shapes`` (r_{j-1}, o_j, i_j, r_j) at which :func:`tt_linear`
    needs the fewest multiply-adds for ``batch`` rows (on a tie, the most balanced): multiplying out each side's
    cores (:func:`_tt_chain`, once per call) plus the r_m-term Kronecker sum applied to the batch in
    :func:`_kron_sum_linear`'s order. For the t3f grid (7,4,7,4) -> (5,5,5,5) that is the middle, m = 2:
    tt4_r5-4-5 costs 148,400 multiply-adds an image there against 369,600 at m = 1 or 3."""
    k = len(shapes)
    if k == 1:
        return 1
    return min(range(1, k), key=lambda m: (tt_macs(shapes, m, batch), abs(2 * m - k)))


def tt_macs(shapes: Sequence[tuple[int, int, int, int]], m: int, batch: int) -> int:
    """Multiply-adds of :func:`tt_linear` split at m on ``batch`` rows: multiplying out each side's cores once,
    then the r_m-term Kronecker sum applied to every row (:func:`kron_sum_macs`)."""
    def chain(side):  # multiply-adds to multiply out these cores, and the (O, I) of the result
        cost, (a, o, i, b) = 0, side[0]
        for _, p, q, r in side[1:]:
            cost, o, i, b = cost + a * o * i * b * p * q * r, o * p, i * q, r
        return cost, o, i
    (cl, o_left, i_left), (cr, o_right, i_right) = chain(shapes[:m]), chain(shapes[m:])
    return cl + cr + batch * kron_sum_macs((shapes[m][0], o_left, i_left), (shapes[m][0], o_right, i_right))


def kron_sum_macs(left: tuple[int, int, int], right: tuple[int, int, int]) -> int:
    """Multiply-adds per row of :func:`_kron_sum_linear` for factors of shapes (r, O_L, I_L) and (r, O_R, I_R), in the
    order it chooses (the factor that shrinks its side more first)."""
    return left[0] * sum(_kron_sum_stages(left, right))


def _kron_sum_stages(left: tuple[int, int, int], right: tuple[int, int, int]) -> tuple[int, int]:
    """Multiply-adds per row and term of :func:`_kron_sum_linear`'s two contractions, in the order it chooses."""
    (_, o_left, i_left), (_, o_right, i_right) = left, right
    if o_right * i_left < o_left * i_right:
        return i_left * i_right * o_right, i_left * o_right * o_left
    return i_left * i_right * o_left, o_left * i_right * o_right


ADAPTER_PATHS = ("auto", "contract", "form")  # how KronAdapter applies its update (see adapter_step_macs)


def kron_sum_dense(left: torch.Tensor, right: torch.Tensor, *, alpha: float = 1.0,
                   plus: torch.Tensor | None = None) -> torch.Tensor:
    """alpha · sum_r left[r] (x) right[r] (+ ``plus``) as one (O_L*O_R, I_L*I_R) matrix, built with one matrix product
    over r (Van Loan's rearrangement: the sum is the (O_L I_L) x (O_R I_R) product of the flattened factors, then
    permuted): r * O * I multiply-adds. ``plus``, a matrix already in the rearranged (O_L I_L, O_R I_R) layout, is
    added inside that product (``torch.addmm``). Equals ``alpha * sum(torch.kron(left[r], right[r]))``."""
    (rank, o_left, i_left), (_, o_right, i_right) = left.shape, right.shape
    a, b = left.reshape(rank, o_left * i_left).T, right.reshape(rank, o_right * i_right)
    product = alpha * (a @ b) if plus is None else torch.addmm(plus, a, b, alpha=alpha)
    return product.reshape(o_left, i_left, o_right, i_right).permute(0, 2, 1, 3).reshape(o_left * o_right,
                                                                                           i_left * i_right)


def adapter_step_macs(left: tuple[int, int, int], right: tuple[int, int, int], batch: int, path: str,
                      grad: bool = True) -> int:
    """Multiply-adds that a Kronecker-sum update ΔW = sum_r A_r (x) B_r (A: ``left`` (r, O_L, I_L), B: ``right``)
    adds to a frozen layer's step on ``batch`` rows, beyond the frozen layer's own product x W_0^T:

    - ``contract``: x through the factors, never building ΔW (:func:`kron_sum_macs` per row: e_1 then e_2). The
      backward pass takes the factors' gradients: e_1 once more and e_2 twice (the intermediate's gradient too),
      so 2 e_1 + 3 e_2 per row and term in all.
    - ``form``: build W_0 + ΔW once (:meth:`KronAdapter.merged_weight`, r O I) and apply it in the frozen layer's
      one product. The backward pass needs ΔW's gradient g^T x (batch O I, as full fine-tuning does) and from it each
      factor's (r O I each): 3 r O I + batch O I.

    With ``grad=False`` (evaluation) only the forward parts count: batch (e_1 + e_2) against r O I."""
    if path not in ADAPTER_PATHS[1:]:
        raise ValueError(f"path must be 'contract' or 'form', got {path!r}")
    (rank, o_left, i_left), (_, o_right, i_right) = left, right
    size = o_left * o_right * i_left * i_right
    if path == "form":
        return rank * size + (2 * rank * size + batch * size if grad else 0)
    first, second = _kron_sum_stages(left, right)
    return batch * rank * ((2 * first + 3 * second) if grad else (first + second))


def adapter_path(left: tuple[int, int, int], right: tuple[int, int, int], batch: int, grad: bool = True) -> str:
    """The cheaper of 'contract' and 'form' by :func:`adapter_step_macs` (on a tie, 'contract')."""
    costs = {p: adapter_step_macs(left, right, batch, p, grad) for p in ADAPTER_PATHS[1:]}
    return min(costs, key=costs.get)


INITS = ("uniform", "gauss")  # how KronLinear can draw its factors (see its docstring)


class KronLinear(nn.Module):
    r"""A linear layer whose weight is a sum of ``rank`` Kronecker products, applied by :func:`kron_linear`.

    W = \sum_r F_1[r] (x) F_2[r] (x) ... (x) F_k[r],  F_j[r] of shape (out_factors[j], in_factors[j]),

    so W is (prod(out_factors), prod(in_factors)), laid out like ``nn.Linear.weight`` and equal to nested
    ``torch.kron``; it is never built. ``in_factors``/``out_factors`` are sequences of sizes, or plain ints
    split by :func:`factorize` into ``num_factors`` factors. ``tied=True`` uses one factor tensor at every
    position (the post's "one-kron-mat"); the factor shapes must then be identical.

    Initialisation. Let sigma = 1/sqrt(3*in_features), the std of nn.Linear's default U(-1/sqrt(in),
    1/sqrt(in)), and s = (sigma^2 / rank)^(1/(2k)), so that each entry of W (a sum of rank products of k
    independent entries of std s) has variance sigma^2.
      init='uniform' (default): factor entries from U(-sqrt(3)*s, sqrt(3)*s), then all factors scaled by one
          scalar so that the RMS of W is exactly sigma (from the factors' Gram matrices, without building W).
      init='gauss': factor entries from N(0, s^2), nothing rescaled: W has the dense std in expectation only.
    The bias is U(-1/sqrt(in), 1/sqrt(in)), as in nn.Linear.
    """

    def __init__(self, in_factors: int | Sequence[int], out_factors: int | Sequence[int], *,
                 rank: int = 1, tied: bool = False, bias: bool = True, num_factors: int = 2,
                 init: str = "uniform"):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.init = init
        self.in_factors, self.out_factors = _check_factor_lists(in_factors, out_factors, num_factors)
        self.rank = check_positive_int(rank, "rank")
        self.tied = bool(tied)
        if self.tied and len(set(zip(self.out_factors, self.in_factors))) > 1:
            raise ValueError("tied=True needs identical factor shapes, got (out, in) = "
                             f"{list(zip(self.out_factors, self.in_factors))}")
        self.in_features, self.out_features = math.prod(self.in_factors), math.prod(self.out_factors)
        shapes = list(zip(self.out_factors, self.in_factors))
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(self.rank, o, i)) for o, i in (shapes[:1] if self.tied else shapes))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters()

    def factor(self, j: int) -> torch.Tensor:
        """The (rank, out_factors[j], in_factors[j]) tensor used at position j."""
        return self.factors[0 if self.tied else j]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the factors and bias as described in the class docstring."""
        _init_like_linear(self, self.factors, len(self.in_factors), self.rank, gauss=self.init == "gauss")

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
        return kron_linear(x, [self.factor(j) for j in range(len(self.in_factors))], self.bias)

    def num_weights(self) -> int:
        """Number of factor entries (a tied factor counts once)."""
        return sum(f.numel() for f in self.factors)

    def extra_repr(self) -> str:
        return (f"in_factors={self.in_factors}, out_factors={self.out_factors}, rank={self.rank}, "
                f"tied={self.tied}, bias={self.bias is not None}, init={self.init}, weights={self.num_weights():,}")

    @classmethod
    def from_dense(cls, weight: torch.Tensor, in_factors: Sequence[int], out_factors: Sequence[int],
                   rank: int = 1, bias: torch.Tensor | None = None) -> "KronLinear":
        """The rank-r two-factor KronLinear nearest (Frobenius) to a dense (out, in) ``weight``, by
        :func:`nearest_kron`. ``bias``, if given, is copied; otherwise the layer has no bias."""
        in_factors, out_factors = _check_factor_lists(in_factors, out_factors, 2)
        if len(in_factors) != 2:
            raise ValueError("from_dense supports exactly two factors (the SVD gives the optimum "
                             f"only then), got {len(in_factors)}")
        layer = cls(in_factors, out_factors, rank=rank, bias=bias is not None)
        a, b = nearest_kron(weight.detach(), in_factors, out_factors, rank)
        with torch.no_grad():
            for factor, value in zip(layer.factors, (a, b)):
                factor.copy_(value)
            if bias is not None:
                layer.bias.copy_(bias.detach())
        return layer


class TTLinear(nn.Module):
    r"""A linear layer whose weight is a tensor-train (TT) matrix (Oseledets 2011; Novikov et al. 2015),
    applied by :func:`tt_linear` without building it:

    W[(o_1..o_k), (i_1..i_k)] = G_1[:, o_1, i_1, :] @ G_2[:, o_2, i_2, :] @ ... @ G_k[:, o_k, i_k, :],

    a product of r_{j-1} x r_j matrices with r_0 = r_k = 1: core G_j has shape (r_{j-1}, out_factors[j],
    in_factors[j], r_j) (tensorly's TT-matrix layout). Indices are row-major, as in ``nn.Linear.weight`` and
    ``torch.kron``, so all TT-ranks 1 give a one-term k-factor KronLinear, and k = 2 cores of rank r a rank-r
    two-factor KronLinear. In general r_j is at most the rank of the unfolding that puts the index pairs
    (o_1 i_1, ..., o_j i_j) against the rest; it says nothing directly about W's matrix rank. ``ranks`` is
    one int for every inner rank or a sequence of the k-1 inner ranks.

    Initialisation, as KronLinear's 'uniform': with sigma = 1/sqrt(3*in_features) and P the product of the
    inner ranks, core entries from U(-sqrt(3)*s, sqrt(3)*s), s = (sigma^2 / P)^(1/(2k)); then all cores are
    scaled by one scalar so that the RMS of W is exactly sigma. The bias is nn.Linear's.
    """

    def __init__(self, in_factors: int | Sequence[int], out_factors: int | Sequence[int],
                 ranks: int | Sequence[int] = 1, *, bias: bool = True, num_factors: int = 2):
        super().__init__()
        self.in_factors, self.out_factors = _check_factor_lists(in_factors, out_factors, num_factors)
        k = len(self.in_factors)
        if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
            inner = (check_positive_int(ranks, "ranks"),) * (k - 1)
        elif isinstance(ranks, Sequence) and not isinstance(ranks, str) and len(ranks) == k - 1:
            inner = tuple(check_positive_int(r, "each entry of ranks") for r in ranks)
        else:
            raise ValueError(f"ranks must be a positive int or {k - 1} positive ints (one per inner bond "
                             f"of {k} cores), got {ranks!r}")
        self.ranks = (1, *inner, 1)
        self.in_features, self.out_features = math.prod(self.in_factors), math.prod(self.out_factors)
        self.cores = nn.ParameterList(
            nn.Parameter(torch.empty(self.ranks[j], o, i, self.ranks[j + 1]))
            for j, (o, i) in enumerate(zip(self.out_factors, self.in_factors)))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the cores and bias as described in the class docstring."""
        _init_like_linear(self, self.cores, len(self.cores), math.prod(self.ranks))

    def weight_rms(self) -> float:
        """sqrt(mean(W**2)), from the cores' transfer matrices sum_{o,i} G[:,o,i,:] (x) G[:,o,i,:]."""
        gram = torch.ones(1, 1, dtype=self.cores[0].dtype, device=self.cores[0].device)
        for core in self.cores:
            gram = torch.einsum("ab,aoic,boid->cd", gram, core, core)
        return math.sqrt(gram.sum().clamp_min(0).item() / (self.in_features * self.out_features))

    def dense_weight(self) -> torch.Tensor:
        """The full (out_features, in_features) matrix, multiplied out core by core."""
        return _tt_chain(list(self.cores))[0, :, :, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a list, not a slice: slicing a ParameterList would re-wrap functional_call's tensors as Parameters
        return tt_linear(x, list(self.cores), self.bias)

    def num_weights(self) -> int:
        """Number of core entries."""
        return sum(core.numel() for core in self.cores)

    def extra_repr(self) -> str:
        return (f"in_factors={self.in_factors}, out_factors={self.out_factors}, ranks={self.ranks}, "
                f"bias={self.bias is not None}, weights={self.num_weights():,}")


class MonarchLinear(nn.Module):
    r"""A Monarch layer on the image grid (Dao et al., 2022), applied by :func:`monarch_linear` without building W.

    Read x as an i1 x i2 image X. Row a of X goes through its own block R_{g(a)} (o2 x i2), giving Z (i1 x o2); then
    column b of Z goes through its own block L_{h(b)} (o1 x i1), giving Y (o1 x o2) = the output, row-major:

    W[(c, b), (a, d)] = L_{h(b)}[c, a] R_{g(a)}[b, d],   i.e.   W = P_2 diag(L_{h(1)}, ..) P_1 diag(R_{g(1)}, ..),

    two block-diagonal matrices and two fixed permutations (P_1 turns Z from row-major to column-major, P_2 back).
    ``row_blocks`` = g_r distinct R blocks and ``col_blocks`` = g_c distinct L blocks, tied in contiguous groups
    (g(a) = a g_r // i1, h(b) = b g_c // o2): g_r = g_c = 1 is the Kronecker product U (x) V with U = L_1, V = R_1;
    g_r = i1, g_c = o2 unties every block. Weights: g_r o2 i2 + g_c o1 i1 (on the post's grid, 700 per block pair:
    2x2 blocks have the 2,800 of a rank-2 Kronecker sum). Its cost per image is the Kronecker layer's,
    o2 i1 i2 + o1 o2 i1 multiply-adds, whatever the tying.

    Initialisation, as KronLinear's 'uniform': each W entry is one product L[c, a] R[b, d], so blocks are drawn
    U(-sqrt(3) s, sqrt(3) s) with s = sigma^(1/2), sigma = 1/sqrt(3*in_features), then scaled by one scalar so that
    W's RMS is exactly nn.Linear's sigma; the bias is nn.Linear's. Drawn in the order L then R, so with one block
    each it starts from exactly KronLinear's U and V for the same seed.
    """

    def __init__(self, in_factors: Sequence[int] = (28, 28), out_factors: Sequence[int] = (25, 25),
                 row_blocks: int = 1, col_blocks: int = 1, *, bias: bool = True):
        super().__init__()
        (i1, i2), (o1, o2) = _check_factor_lists(in_factors, out_factors, 2)
        for name, value, most in (("row_blocks", row_blocks, i1), ("col_blocks", col_blocks, o2)):
            if check_positive_int(value, name) > most:
                raise ValueError(f"{name} must be at most {most} (one block per {'image row' if most == i1 else 'column'} "
                                 f"of the {'input' if most == i1 else 'intermediate'} grid), got {value}")
        self.in_factors, self.out_factors = (i1, i2), (o1, o2)
        self.in_features, self.out_features = i1 * i2, o1 * o2
        self.row_blocks, self.col_blocks = row_blocks, col_blocks
        self.left = nn.Parameter(torch.empty(col_blocks, o1, i1))
        self.right = nn.Parameter(torch.empty(row_blocks, o2, i2))
        self.register_buffer("row_group", torch.arange(i1) * row_blocks // i1, persistent=False)
        self.register_buffer("col_group", torch.arange(o2) * col_blocks // o2, persistent=False)
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the blocks and bias as described in the class docstring."""
        _init_like_linear(self, [self.left, self.right], 2, 1)

    def weight_rms(self) -> float:
        """sqrt(mean(W**2)) = sqrt(sum_{a,b} |L_h(b)[:, a]|^2 |R_g(a)[b, :]|^2 / (out * in)), without building W."""
        cols = self.left[self.col_group].square().sum(1)     # (o2, i1)
        rows = self.right[self.row_group].square().sum(2)    # (i1, o2)
        return math.sqrt((cols.T * rows).sum().item() / (self.in_features * self.out_features))

    def dense_weight(self) -> torch.Tensor:
        """The full (out_features, in_features) matrix W[(c, b), (a, d)] = L_h(b)[c, a] R_g(a)[b, d]."""
        (o1, o2), (i1, i2) = self.out_factors, self.in_factors
        return torch.einsum("bca,abd->cbad", self.left[self.col_group], self.right[self.row_group]).reshape(
            o1 * o2, i1 * i2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return monarch_linear(x, self.left, self.right, self.row_group, self.col_group, self.bias)

    def num_weights(self) -> int:
        """Number of block entries (tied blocks count once)."""
        return self.left.numel() + self.right.numel()

    def extra_repr(self) -> str:
        return (f"in_factors={self.in_factors}, out_factors={self.out_factors}, row_blocks={self.row_blocks}, "
                f"col_blocks={self.col_blocks}, bias={self.bias is not None}, weights={self.num_weights():,}")


class KronAdapter(nn.Module):
    r"""A frozen linear layer plus a trainable Kronecker-sum update (a Kronecker adapter, as LoKr and KronA):

    y = x (W_0 + ΔW)^T + b_0,   ΔW = scale · \sum_r A_r (x) B_r,   A_r (out_factors[0], in_factors[0]),
    B_r (out_factors[1], in_factors[1]),

    applied as ``base(x) + scale * kron_linear(x, [A, B])`` without building ΔW (``path='contract'``), or as
    ``F.linear(x, W_0 + ΔW, b_0)`` with ΔW built once per call (``path='form'``); 'auto' (the default) takes the
    cheaper for the batch by the cost model :func:`adapter_step_macs`. ``base`` is frozen in place (its
    weight and bias stop requiring gradients). As in peft's ``LoKrConfig`` with its default init, A starts at zero,
    so ΔW = 0 and training starts from the base net, and each B_r is drawn with ``kaiming_uniform_(a=sqrt(5))``.
    With rank 1 and scale = alpha / r this is peft's LoKr on a Linear layer without rank decomposition
    (``lokr_w1`` = A, ``lokr_w2`` = B)."""

    def __init__(self, base: nn.Linear, in_factors: Sequence[int] = (28, 28), out_factors: Sequence[int] = (25, 25), *,
                 rank: int = 1, scale: float = 1.0, path: str = "auto"):
        super().__init__()
        if path not in ADAPTER_PATHS:
            raise ValueError(f"path must be one of {', '.join(ADAPTER_PATHS)}, got {path!r}")
        self.path = path
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base must be an nn.Linear, got {type(base).__name__}")
        self.base = base.requires_grad_(False)
        self.delta = KronLinear(in_factors, out_factors, rank=rank, bias=False)
        if (self.delta.in_features, self.delta.out_features) != (base.in_features, base.out_features):
            raise ValueError(f"factors {tuple(in_factors)} -> {tuple(out_factors)} make a {self.delta.in_features} -> "
                             f"{self.delta.out_features} update for a {base.in_features} -> {base.out_features} layer")
        self.scale = float(scale)
        with torch.no_grad():
            self.delta.factors[0].zero_()
            for b in self.delta.factors[1]:
                nn.init.kaiming_uniform_(b, a=math.sqrt(5))

    def step_path(self, batch: int, grad: bool = True) -> str:
        """How :meth:`forward` applies the update to ``batch`` rows: ``self.path``, or with 'auto' the cheaper by
        :func:`adapter_path`."""
        if self.path != "auto":
            return self.path
        return adapter_path(tuple(self.delta.factor(0).shape), tuple(self.delta.factor(1).shape), batch, grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.delta.factors)
        if self.step_path(x.numel() // max(1, x.shape[-1]), grad) == "form":
            return F.linear(x, self.merged_weight(), self.base.bias)
        return self.base(x) + self.scale * self.delta(x)

    def merged_weight(self) -> torch.Tensor:
        """W_0 + ΔW, differentiable in the factors, in one matrix product: Van Loan's rearrangement of W_0 (cached
        until the base's weight changes) plus scale · Aᵀ B over the terms (``torch.addmm``), permuted back once."""
        a, b = self.delta.factor(0), self.delta.factor(1)
        (_, o_a, i_a), (_, o_b, i_b) = a.shape, b.shape
        weight = self.base.weight
        key = (weight.data_ptr(), weight._version, weight.dtype)
        if getattr(self, "_rearranged_key", None) != key:
            self._rearranged = (weight.detach().reshape(o_a, o_b, i_a, i_b).permute(0, 2, 1, 3)
                                .reshape(o_a * i_a, o_b * i_b).contiguous())
            self._rearranged_key = key
        return kron_sum_dense(a, b, alpha=self.scale, plus=self._rearranged)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scale · Σ_r A_r (x) B_r, built by :func:`kron_sum_dense` (differentiable)."""
        return kron_sum_dense(self.delta.factor(0), self.delta.factor(1), alpha=self.scale)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing the same function: weight W_0 + ΔW, the base's bias."""
        layer = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            layer.weight.copy_(self.merged_weight())
            if self.base.bias is not None:
                layer.bias.copy_(self.base.bias)
        return layer

    def num_trainable(self) -> int:
        """The adapter's trainable weights: the factor entries (the frozen base not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@torch.no_grad()
def _init_like_linear(layer: nn.Module, tensors, k: int, terms: int, gauss: bool = False) -> None:
    """Draw the ``tensors`` that ``layer`` multiplies k at a time, ``terms`` products summed per entry of W,
    so that W's entries have nn.Linear's std sigma = 1/sqrt(3*in): entries from N(0, s^2) (``gauss``) or
    U(-sqrt(3)*s, sqrt(3)*s) with s = (sigma^2 / terms)^(1/(2k)), the uniform ones then scaled by one scalar
    so that W's RMS (``layer.weight_rms()``) is exactly sigma; then the bias as nn.Linear draws it."""
    sigma = 1.0 / math.sqrt(3 * layer.in_features)
    s = (sigma ** 2 / terms) ** (1 / (2 * k))
    for t in tensors:
        t.normal_(0.0, s) if gauss else t.uniform_(-math.sqrt(3) * s, math.sqrt(3) * s)
    if not gauss:
        scale = (sigma / layer.weight_rms()) ** (1 / k)
        for t in tensors:
            t.mul_(scale)
    if layer.bias is not None:
        layer.bias.uniform_(-1 / math.sqrt(layer.in_features), 1 / math.sqrt(layer.in_features))


def _tt_chain(cores: list[torch.Tensor]) -> torch.Tensor:
    """The product of consecutive TT cores, (r_a, o, i, r_b) each, as one core (r_a, prod o, prod i, r_b);
    the empty product is ones(1, 1, 1, 1)."""
    if not cores:
        return torch.ones(1, 1, 1, 1)
    w = cores[0]
    for core in cores[1:]:
        a, o, i, _ = w.shape
        _, p, q, r = core.shape
        w = torch.einsum("aoib,bpqr->aopiqr", w, core).reshape(a, o * p, i * q, r)
    return w


def check_positive_int(value, name: str) -> int:
    """``value`` as an int if it is an integer >= 1 (not a bool); else one ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _factor_sizes(factors, name: str, k: int) -> tuple[int, ...]:
    """A tuple of factor sizes; a plain int is split into k factors with factorize."""
    if isinstance(factors, (int, np.integer)) and not isinstance(factors, bool):
        return factorize(check_positive_int(factors, name), k)
    if not isinstance(factors, Sequence) or isinstance(factors, str) or len(factors) == 0:
        raise ValueError(f"{name} must be a positive int or a non-empty sequence of them, got {factors!r}")
    return tuple(check_positive_int(f, f"each entry of {name}") for f in factors)


def _check_factor_lists(in_factors, out_factors, num_factors: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate (or, for plain ints, derive with factorize) two equally long factor lists."""
    given = [f for f in (in_factors, out_factors) if isinstance(f, Sequence) and not isinstance(f, str) and f]
    k = len(given[0]) if given else check_positive_int(num_factors, "num_factors")
    ins, outs = _factor_sizes(in_factors, "in_factors", k), _factor_sizes(out_factors, "out_factors", k)
    if len(ins) != len(outs):
        raise ValueError(f"in_factors {ins} and out_factors {outs} must have the same length")
    return ins, outs


def _batched_kron(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Term-wise Kronecker product of (rank, o_j, i_j) factors: (rank, prod o, prod i); [] gives ones."""
    if not factors:
        return torch.ones(1, 1, 1)
    w = factors[0]
    for f in factors[1:]:
        w = torch.einsum("rab,rcd->racbd", w, f).reshape(w.shape[0], w.shape[1] * f.shape[1], w.shape[2] * f.shape[2])
    return w


def _kron_sum_linear(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, bias: torch.Tensor | None):
    """x @ (sum_r left[r] (x) right[r]).T + bias, never building the product: left (r, O_L, I_L), right
    (r, O_R, I_R), x (..., I_L*I_R) -> (..., O_L*O_R). The factor that shrinks its side more is contracted
    first (the cheaper order; on a tie, the left one)."""
    (_, o_left, i_left), (_, o_right, i_right) = left.shape, right.shape
    if x.shape[-1] != i_left * i_right:
        raise ValueError(f"expected last dimension {i_left * i_right}, got {x.shape[-1]}")
    z = x.reshape(-1, i_left, i_right)
    if o_right * i_left < o_left * i_right:
        y = torch.einsum("nraB,rAa->nAB", torch.einsum("nab,rBb->nraB", z, right), left)
    else:
        y = torch.einsum("nrAb,rBb->nAB", torch.einsum("nab,rAa->nrAb", z, left), right)
    y = y.reshape(*x.shape[:-1], o_left * o_right)
    return y if bias is None else y + bias


# ---------------------------------------------------------------------------
# 3. Nets
# ---------------------------------------------------------------------------

IMAGE_FACTORS = (28, 28)   # a 784-pixel MNIST image, row-major
HIDDEN_FACTORS = (25, 25)  # the post's 625 hidden units
OUTPUT_FACTORS = (5, 2)    # 10 classes; sqrt(10) is not an integer
IMAGE_SIZE, HIDDEN_SIZE, NUM_CLASSES = math.prod(IMAGE_FACTORS), math.prod(HIDDEN_FACTORS), math.prod(OUTPUT_FACTORS)


def mlp(fc1: nn.Module, fc2: nn.Module) -> nn.Sequential:
    """fc1 -> ReLU -> fc2 -> log_softmax, the post's network shape."""
    return nn.Sequential(OrderedDict(fc1=fc1, relu=nn.ReLU(), fc2=fc2, log_softmax=nn.LogSoftmax(dim=-1)))


def dense_net(h: int) -> nn.Sequential:
    """784 -> h -> 10, both layers dense."""
    return mlp(nn.Linear(IMAGE_SIZE, h), nn.Linear(h, NUM_CLASSES))


def low_rank_net(r: int) -> nn.Sequential:
    """784 -> 625 through a rank-r product P . Q (nn.Linear defaults; the bias sits on P), then dense 625 -> 10."""
    fc1 = nn.Sequential(nn.Linear(IMAGE_SIZE, r, bias=False), nn.Linear(r, HIDDEN_SIZE))
    return mlp(fc1, nn.Linear(HIDDEN_SIZE, NUM_CLASSES))


def kron_net(k: int, r: int, *, tied: bool = False, kron_output: bool = False, init: str = "uniform") -> nn.Sequential:
    """784 -> 625 as a rank-r sum of k-factor Kronecker products (factors from :func:`factorize`),
    then 625 -> 10 dense, or as (5x25)(x)(2x25) with ``kron_output``; ``init`` for every KronLinear."""
    fc1 = KronLinear(IMAGE_SIZE, HIDDEN_SIZE, num_factors=k, rank=r, tied=tied, init=init)
    fc2 = (KronLinear(HIDDEN_FACTORS, OUTPUT_FACTORS, init=init) if kron_output
           else nn.Linear(HIDDEN_SIZE, NUM_CLASSES))
    return mlp(fc1, fc2)


def tt_net(k: int, r: int | tuple[int, ...]) -> nn.Sequential:
    """784 -> 625 as a TT-matrix of k cores (factors from :func:`factorize`) with every inner TT-rank r (or the
    k-1 inner TT-ranks r, named ``tt4_r2-3-2``), then 625 -> 10 dense. ``tt_net(4, 4)`` is the t3f tutorial's
    net: (7,4,7,4) -> (5,5,5,5), 7,985 parameters."""
    return mlp(TTLinear(factorize(IMAGE_SIZE, k), factorize(HIDDEN_SIZE, k), r), nn.Linear(HIDDEN_SIZE, NUM_CLASSES))


def monarch_net(gr: int, gc: int) -> nn.Sequential:
    """784 -> 625 as a Monarch layer on the 28 x 28 image with ``gr`` distinct row blocks and ``gc`` distinct column
    blocks (:class:`MonarchLinear`; ``monarch1x1`` is two_kron's U (x) V, ``monarch28x25`` unties every block),
    then 625 -> 10 dense."""
    return mlp(MonarchLinear(IMAGE_FACTORS, HIDDEN_FACTORS, gr, gc), nn.Linear(HIDDEN_SIZE, NUM_CLASSES))


def kron_shape_net(o1: int, i1: int, o2: int, i2: int) -> nn.Sequential:
    """784 -> 625 as one Kronecker product U (o1 x i1) (x) V (o2 x i2) of explicitly given factor shapes, then
    625 -> 10 dense: ``kron_25x28_25x28`` is two_kron, whose factors follow the image's rows and columns;
    ``kron_25x16_25x49`` splits the 784 row-major pixels into 16 blocks of 49 (1.75 image rows), off the grid."""
    if i1 * i2 != IMAGE_SIZE or o1 * o2 != HIDDEN_SIZE:
        raise ValueError(f"kron_{o1}x{i1}_{o2}x{i2}: the factors must map {IMAGE_SIZE} = i1*i2 inputs to "
                         f"{HIDDEN_SIZE} = o1*o2 hidden units, got {i1}*{i2} = {i1 * i2} -> {o1}*{o2} = {o1 * o2}")
    return mlp(KronLinear((i1, i2), (o1, o2)), nn.Linear(HIDDEN_SIZE, NUM_CLASSES))


@dataclass(frozen=True)
class Family:
    """A parametric family of nets: a name matching ``pattern`` (integers >= 1) is ``build(**integers)``; the
    ``inits`` it admits beyond 'uniform' are name suffixes (``two_kron_gauss``, ``kron2_r4_gauss``)."""
    name: str
    pattern: str
    build: Callable[..., nn.Module]
    inits: tuple[str, ...] = ("uniform",)


#: The one registry of nets: every variant is a member of one of these families.
FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("width", r"width(?P<h>\d+)", dense_net),
    Family("lowrank", r"lowrank(?P<r>\d+)", low_rank_net),
    Family("kron", r"kron(?P<k>\d+)_r(?P<r>\d+)", kron_net, INITS),
    Family("tiedkron", r"tiedkron(?P<k>\d+)_r(?P<r>\d+)", partial(kron_net, tied=True), INITS),
    Family("kron_outkron", r"kron(?P<k>\d+)_r(?P<r>\d+)_outkron", partial(kron_net, kron_output=True), INITS),
    Family("tiedkron_outkron", r"tiedkron(?P<k>\d+)_r(?P<r>\d+)_outkron", partial(kron_net, tied=True, kron_output=True),
           INITS),
    Family("tt", r"tt(?P<k>\d+)_r(?P<r>\d+(?:-\d+)+|\d+)", tt_net),
    Family("kronshape", r"kron_(?P<o1>\d+)x(?P<i1>\d+)_(?P<o2>\d+)x(?P<i2>\d+)", kron_shape_net),
    Family("monarch", r"monarch(?P<gr>\d+)x(?P<gc>\d+)", monarch_net),
]}

#: The post's six nets, in its order: our name -> (its name in the post, the family member it is).
POST_NETS: dict[str, tuple[str | None, str]] = {
    "original": ("Original", "width625"),
    "one_kron": ("one-kron-mat", "tiedkron2_r1"),
    "two_kron": ("two-kron-mat", "kron2_r1"),
    "one_kron_out_kron": ("one-kron-mat out-kron", "tiedkron2_r1_outkron"),
    "two_kron_out_kron": ("two-kron-mat out-kron", "kron2_r1_outkron"),
    "width10": (None, "width10"),  # not in the post: the dense net with as many weights as the Kronecker nets
}
VARIANTS: tuple[str, ...] = tuple(POST_NETS)


def parse_variant(variant: str) -> tuple[Family, dict[str, int | tuple[int, ...]], str]:
    """The family of ``variant``, its integers (a tuple for ``2-3-2``) and its factor init ('uniform', or
    'gauss' for a name ending in ``_gauss``); post names resolve through :data:`POST_NETS`."""
    name, init = str(variant), "uniform"
    for other in INITS[1:]:
        if name.endswith(f"_{other}"):
            name, init = name[:-len(other) - 1], other
    name = POST_NETS[name][1] if name in POST_NETS else name
    for family in FAMILIES.values():
        match = re.fullmatch(family.pattern, name)
        args = {k: tuple(map(int, g.split("-"))) if "-" in g else int(g) for k, g in (match.groupdict() if match else {}).items()}
        if match and min(np.min(a) for a in args.values()) >= 1 and init in family.inits:
            return family, args, init
    raise ValueError(f"unknown variant {variant!r}; valid names: {', '.join(VARIANTS)}, or a member of the families "
                     "width<h>, lowrank<r>, kron<k>_r<r>, tiedkron<k>_r<r> (optionally with _outkron), tt<k>_r<r> or "
                     "tt<k>_r<r1>-<r2>-..., kron_<o1>x<i1>_<o2>x<i2>, monarch<gr>x<gc> (integers >= 1), e.g. width32, "
                     "lowrank2, kron2_r4, tt4_r4, tt4_r2-3-2, kron_25x16_25x49, monarch2x2; a net with Kronecker "
                     "layers may end in _gauss for Gaussian factors")


def build_model(variant: str) -> nn.Module:
    """The net called ``variant`` (fc1 -> ReLU -> fc2 -> LogSoftmax): a name of :data:`VARIANTS` or a family
    member such as ``width32``, ``lowrank4``, ``kron2_r4`` ((28,28)->(25,25), rank 4), ``kron4_r1``
    ((7,4,7,4)->(5,5,5,5)), ``tt4_r4`` (the t3f tutorial's net), optionally ending in ``_gauss``."""
    family, args, init = parse_variant(variant)
    return family.build(**args, **({} if init == "uniform" else {"init": init}))


@lru_cache(maxsize=None)
def training_flops(variant: str, batch: int = 1) -> int:
    """FLOPs of one training step of ``variant`` (forward, NLL loss, backward) on ``batch`` images, as
    ``torch.utils.flop_counter.FlopCounterMode`` counts them (matrix products only)."""
    from torch.utils.flop_counter import FlopCounterMode
    model = build_model(variant)
    x, y = torch.zeros(batch, IMAGE_SIZE), torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        F.nll_loss(model(x), y).backward()
    return counter.get_total_flops()


def layer_macs(layer: nn.Module, batch: int = 1) -> int:
    """Multiply-adds of one forward pass of ``layer`` on ``batch`` rows, from its shapes, in the order its forward
    computes them (nn.Linear; a Sequential's children; KronLinear's and TTLinear's Kronecker sum, :func:`kron_sum_macs`
    and :func:`tt_macs`, forming each side's product once; MonarchLinear's two block products). Elementwise layers
    cost 0; a layer with parameters that this function does not know raises."""
    if isinstance(layer, nn.Linear):
        return batch * layer.in_features * layer.out_features
    if isinstance(layer, KronLinear):
        k, m = len(layer.in_factors), (len(layer.in_factors) + 1) // 2
        sides = [(layer.rank, math.prod(layer.out_factors[part]), math.prod(layer.in_factors[part]))
                 for part in (slice(0, m), slice(m, k))]
        return batch * kron_sum_macs(*sides)
    if isinstance(layer, TTLinear):
        shapes = [tuple(c.shape) for c in layer.cores]
        return tt_macs(shapes, tt_split(shapes, batch), batch)
    if isinstance(layer, MonarchLinear):
        (i1, i2), (o1, o2) = layer.in_factors, layer.out_factors
        return batch * (i1 * i2 * o2 + o2 * o1 * i1)
    if isinstance(layer, nn.Sequential):
        return sum(layer_macs(child, batch) for child in layer)
    if any(True for _ in layer.parameters(recurse=False)):
        raise ValueError(f"layer_macs does not know {type(layer).__name__}")
    return 0


def forward_flops(variant: str, batch: int = 1) -> int:
    """FLOPs (two per multiply-add) of one forward pass of ``variant`` on ``batch`` images, from its layers' shapes
    (:func:`layer_macs`); the count ``torch.utils.flop_counter.FlopCounterMode`` makes of the built net (tested)."""
    return 2 * layer_macs(build_model(variant), batch)


def count_weights(model: nn.Module) -> int:
    """Weights only, as the post counts them: every parameter except biases (shared ones once)."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.endswith("bias"))


def count_params(model: nn.Module) -> int:
    """All parameters, biases included (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------
# 4. Data
# ---------------------------------------------------------------------------

#: Each dataset's folder under data_dir (torchvision's), training-set mean/std used to normalise, and
#: training-set size; the four IDX files are :data:`IDX_FILES` (kron_report.fetch verifies their SHA-256).
DATASETS: dict[str, dict] = {
    "mnist": dict(folder="MNIST", mean=0.1307, std=0.3081, train_size=60_000,  # the pytorch/examples constants
                  class_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)),
    "fashion-mnist": dict(folder="FashionMNIST", mean=0.2860, std=0.3530, train_size=60_000,  # its own statistics
                          class_counts=(6000,) * 10),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: In-memory stand-in for smoke runs and tests: 10 noisy class prototypes, no files.
SYNTHETIC = "synthetic"
SYNTHETIC_SIZES = {"train": 512, "test": 256}


def dataset_info(dataset: str) -> dict:
    """The :data:`DATASETS` entry of ``dataset`` (ValueError naming the valid ones otherwise)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join([*DATASETS, SYNTHETIC])}")
    return DATASETS[dataset]


def parse_classes(classes: str | None) -> tuple[int, ...] | None:
    """The labels a class filter keeps: 'a-b' (a <= b, digits 0-9) -> (a, ..., b); None -> None (all ten)."""
    if classes is None:
        return None
    match = re.fullmatch(r"(\d)-(\d)", classes) if isinstance(classes, str) else None
    if not match or int(match[1]) > int(match[2]):
        raise ValueError(f"classes must be None or a range of labels 'a-b' with 0 <= a <= b <= 9 (e.g. '0-4'), "
                         f"got {classes!r}")
    return tuple(range(int(match[1]), int(match[2]) + 1))


#: A domain shift of every image: 'rotate<degrees>' (counter-clockwise about the centre, bilinear, zeros outside) or
#: 'noise<std>' (fixed Gaussian noise of that std on the [0, 1] grey levels, then clipped to [0, 1]).
DOMAIN = re.compile(r"(?P<kind>rotate|noise)(?P<amount>\d+(?:\.\d+)?)")


def parse_domain(domain: str | None) -> tuple[str, float] | None:
    """('rotate', 30.0) for 'rotate30', ('noise', 0.5) for 'noise0.5'; None -> None (the images as they are)."""
    if domain is None:
        return None
    match = DOMAIN.fullmatch(domain) if isinstance(domain, str) else None
    if not match or (match["kind"] == "noise" and float(match["amount"]) <= 0):
        raise ValueError(f"domain must be None, 'rotate<degrees>' or 'noise<std>' with std > 0 (e.g. 'rotate30', "
                         f"'noise0.5'), got {domain!r}")
    return match["kind"], float(match["amount"])


def shift_domain(x: torch.Tensor, domain: str | None, dataset: str, split: str) -> torch.Tensor:
    """Images (N, 784) of ``dataset``, normalised, moved to another domain of the same classes (:func:`parse_domain`):
    back to grey levels in [0, 1], rotated or noised, normalised again. The noise is drawn once per split from a
    generator seeded by the split's name, so every run sees the same noisy images."""
    parsed = parse_domain(domain)
    if parsed is None:
        return x
    info = DATASETS.get(dataset, dict(mean=0.0, std=1.0))
    side = math.isqrt(x.shape[1])
    images = (x * info["std"] + info["mean"]).reshape(-1, 1, side, side)
    kind, amount = parsed
    if kind == "rotate":
        angle = math.radians(amount)
        theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]],
                             dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    else:
        generator = torch.Generator().manual_seed({"train": 1, "test": 2}[split])
        noise = torch.randn(images.shape, generator=generator).to(x.device)
        images = (images + amount * noise).clamp(0.0, 1.0)
    return ((images.reshape(len(x), -1) - info["mean"]) / info["std"]).to(x.dtype)


def train_size(dataset: str, classes: str | None = None) -> int:
    """Number of training images of ``dataset`` (those with a label in ``classes``, :func:`parse_classes`)."""
    kept = parse_classes(classes)
    if dataset == SYNTHETIC:
        labels = synthetic_data("train")[1]
        return len(labels) if kept is None else int(sum((labels == c).sum() for c in kept))
    info = dataset_info(dataset)
    return info["train_size"] if kept is None else sum(info["class_counts"][c] for c in kept)


def raw_dir(data_dir: str | Path, dataset: str = "mnist") -> Path:
    """Where the four IDX files of ``dataset`` live: <data_dir>/<MNIST|FashionMNIST>/raw."""
    return Path(data_dir) / dataset_info(dataset)["folder"] / "raw"


def idx_folder(data_dir: str | Path, dataset: str = "mnist") -> Path:
    """:func:`raw_dir` if it holds all four IDX files; else one FileNotFoundError naming the missing ones
    (nothing is ever downloaded here)."""
    folder = raw_dir(data_dir, dataset)
    missing = [name for name in IDX_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{dataset} is not in {folder}/: missing {', '.join(missing)}. "
                                "Put the four uncompressed IDX files there; nothing is downloaded here.")
    return folder


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an uncompressed IDX file (uint8 labels or images), checking header and length."""
    data = Path(path).read_bytes()
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 0x08 or data[3] not in (1, 3):
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad header); "
                         "delete it and fetch it again")
    offset = 4 + 4 * data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * d: 8 + 4 * d], "big") for d in range(data[3]))
    if len(data) != offset + math.prod(shape):
        raise ValueError(f"{path}: truncated or corrupt: the header promises shape {shape} "
                         f"({offset + math.prod(shape)} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_dataset(data_dir: str | Path = "data", split: str = "train", device: str | torch.device = "cpu",
                 dataset: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 784) float32, normalised with the dataset's mean/std, and labels (N,) int64, of ``split``
    ('train' or 'test') of 'mnist', 'fashion-mnist' or 'synthetic'. The files' structure is checked here,
    their SHA-256 by ``kron_report.verify_dataset`` before a report run trains."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if dataset == SYNTHETIC:
        images, labels = synthetic_data(split)
        return images.to(device), labels.to(device)
    info, folder = dataset_info(dataset), idx_folder(data_dir, dataset)
    prefix = "train" if split == "train" else "t10k"
    image_path, label_path = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} and {label_path} do not match: shapes {images.shape} and {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path}: labels must be 0..9, found {labels.max()}")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    x = (x - info["mean"]) / info["std"]
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


def synthetic_data(split: str = "train", n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny learnable 10-class problem in MNIST's shape: fixed prototypes plus noise."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(NUM_CLASSES, IMAGE_SIZE, generator=generator)
    n = n or SYNTHETIC_SIZES[split]
    generator.manual_seed(seed + (1 if split == "train" else 2))
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    images = prototypes[labels] + 1.5 * torch.randn(n, IMAGE_SIZE, generator=generator)
    return images, labels


# ---------------------------------------------------------------------------
# 5. Training
# ---------------------------------------------------------------------------


OPTIMIZERS = ("sgd", "adam")  # the update rules of torch.optim.SGD with momentum and torch.optim.Adam
SCHEDULES = ("constant", "cosine")  # the learning rate over training: fixed, or cosine-annealed to zero per step
PARAMETRIZATIONS = ("standard", "structured")  # one learning rate for all, or per-tensor rates (structured_rates)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def _check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a run's numbers besides variant and seed. Defaults: the 2018 pytorch/examples
    MNIST recipe (SGD lr 0.01, momentum 0.5, batches of 64, test batches of 1000, reshuffled every epoch) with
    the post's 35 epochs. ``train_limit`` keeps the first N training images (None: all). ``optimizer='adam'``
    is torch.optim.Adam's update (betas 0.9, 0.999, eps 1e-8) at ``lr``; ``momentum`` is then unused.

    ``validation = N`` holds out the *last* N training images as a validation split (never trained on, scored
    every epoch beside the test set); ``train_limit`` then counts among the others. ``permutation_seed = s``
    feeds every image (train, validation and test alike) through one fixed pixel permutation,
    :func:`pixel_permutation` (s).

    ``schedule='cosine'`` anneals the learning rate at every step t of T: lr * (1 + cos(pi t / T)) / 2, as
    torch.optim.lr_scheduler.CosineAnnealingLR with T_max = T and eta_min = 0. ``parametrization='structured'``
    gives each tensor of a structured layer its own learning rate, :func:`structured_rates`, measured on the
    first batch of training images at initialisation. ``frozen='fc1'`` keeps that layer (weights and bias) at its
    initialisation and trains the rest: with a random input layer, a random-feature model. ``classes='5-9'`` keeps
    only the images of those labels, in every split, before the validation split and ``train_limit`` are taken
    (labels keep their values; the net keeps its ten outputs). ``domain='noise0.5'`` or ``'rotate30'`` moves every
    image to another domain of the same classes (:func:`shift_domain`)."""
    epochs: int = 35
    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    test_batch_size: int = 1000
    train_limit: int | None = None
    dataset: str = "mnist"
    optimizer: str = "sgd"
    validation: int = 0
    permutation_seed: int | None = None
    schedule: str = "constant"
    parametrization: str = "standard"
    frozen: str | None = None
    classes: str | None = None
    domain: str | None = None

    def __post_init__(self):
        parse_classes(self.classes)
        parse_domain(self.domain)
        _check_optimizer(self.optimizer)
        for name, valid in (("schedule", SCHEDULES), ("parametrization", PARAMETRIZATIONS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, got {getattr(self, name)!r}")
        if self.frozen is not None and (not isinstance(self.frozen, str) or not re.fullmatch(r"\w+", self.frozen)):
            raise ValueError(f"frozen must be None or the name of one of the net's layers (e.g. 'fc1'), "
                             f"got {self.frozen!r}")
        for name in ("epochs", "batch_size", "test_batch_size"):
            check_positive_int(getattr(self, name), name)
        if self.dataset != SYNTHETIC:
            dataset_info(self.dataset)
        if isinstance(self.validation, bool) or not isinstance(self.validation, (int, np.integer)) or not (
                0 <= self.validation < train_size(self.dataset, self.classes)):
            raise ValueError(f"validation must be a whole number of training images in [0, "
                             f"{train_size(self.dataset, self.classes):,}), got {self.validation!r}")
        if self.permutation_seed is not None and (isinstance(self.permutation_seed, bool) or not isinstance(
                self.permutation_seed, (int, np.integer)) or self.permutation_seed < 0):
            raise ValueError(f"permutation_seed must be None or a non-negative integer, got {self.permutation_seed!r}")
        if self.train_limit is not None:
            check_positive_int(self.train_limit, "train_limit")
            available = train_size(self.dataset, self.classes) - self.validation
            if self.train_limit > available:
                raise ValueError(f"train_limit {self.train_limit} exceeds the {available:,} training images of "
                                 f"{self.dataset}" + (" left beside the validation split" if self.validation else "")
                                 + "; use None for all of them")
        for name, valid, what in (("lr", lambda v: 0 < v < math.inf, "a positive number"),
                                  ("momentum", lambda v: 0 <= v < 1, "a number in [0, 1)")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
                raise ValueError(f"{name} must be {what}, got {value!r}")


RESULT_COLUMNS = ["dataset", "variant", "seed", "epoch", "weights", "params",
                  "train_loss", "test_loss", "test_accuracy", "seconds", "status"]
#: Columns a run with a validation split records too, after RESULT_COLUMNS.
VALIDATION_COLUMNS = ["validation_loss", "validation_accuracy"]


def result_columns(settings: TrainSettings) -> list[str]:
    """The columns of a run's rows under ``settings``: :data:`RESULT_COLUMNS`, plus :data:`VALIDATION_COLUMNS`
    when it holds out a validation split."""
    return RESULT_COLUMNS + (VALIDATION_COLUMNS if settings.validation else [])


def pixel_permutation(seed: int, size: int = IMAGE_SIZE) -> torch.Tensor:
    """One fixed permutation of the ``size`` pixels: torch.randperm from a generator seeded with ``seed``.
    A permuted image is ``x[:, perm]``: its pixel j is the original pixel perm[j]."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(int(seed)))


def data_splits(settings: TrainSettings, data_dir: str | Path = "data",
                device: str | torch.device = "cpu") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The (images, labels) a run under ``settings`` uses: 'train', 'test' and, with ``settings.validation``,
    'validation' (the last N training images, held out). ``domain`` first moves every image (:func:`shift_domain`),
    ``classes`` keeps the images of those labels, ``train_limit`` the first images of the rest;
    ``permutation_seed`` permutes the pixels of every split with the same :func:`pixel_permutation`."""
    device = resolve_device(device)
    x_train, y_train = _cached_data(str(data_dir), settings.dataset, "train", device, settings.domain)
    splits = {"test": _cached_data(str(data_dir), settings.dataset, "test", device, settings.domain)}
    kept = parse_classes(settings.classes)
    if kept is not None:
        def keep(x, y):
            mask = torch.isin(y, torch.tensor(kept, device=device))
            return x[mask], y[mask]
        (x_train, y_train), splits["test"] = keep(x_train, y_train), keep(*splits["test"])
    if settings.validation:
        cut = len(x_train) - settings.validation
        splits["validation"] = x_train[cut:], y_train[cut:]
        x_train, y_train = x_train[:cut], y_train[:cut]
    if settings.train_limit:
        x_train, y_train = x_train[:settings.train_limit], y_train[:settings.train_limit]
    splits["train"] = x_train, y_train
    if settings.permutation_seed is not None:
        perm = pixel_permutation(settings.permutation_seed, x_train.shape[1]).to(device)
        splits = {name: (x[:, perm], y) for name, (x, y) in splits.items()}
    return splits


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device."""
    try:
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if str(device) == "auto" else device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def check_seeds(seeds) -> list[int]:
    """A non-empty list of distinct non-negative integer seeds."""
    if not isinstance(seeds, (list, tuple)) or not seeds or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return [int(s) for s in seeds]


def structured_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers of ``model`` whose weight is a product of several trainable tensors, by name: every KronLinear,
    TTLinear and MonarchLinear, and the low-rank P . Q (an nn.Sequential of nn.Linear layers)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (KronLinear, TTLinear, MonarchLinear))
            or (isinstance(m, nn.Sequential) and len(m) > 1 and all(isinstance(c, nn.Linear) for c in m))}


def layer_weight(layer: nn.Module) -> torch.Tensor:
    """The (out, in) matrix a layer applies: an nn.Linear's weight, a structured layer's ``dense_weight()``, or the
    product of a Sequential's nn.Linear weights, last first."""
    if isinstance(layer, nn.Linear):
        return layer.weight
    if hasattr(layer, "dense_weight"):
        return layer.dense_weight()
    return reduce(lambda w, linear: linear.weight @ w, list(layer)[1:], layer[0].weight)


class _WeightOf(nn.Module):
    """forward() -> layer_weight(layer): lets torch.func swap one tensor of the layer (see structured_rates)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self) -> torch.Tensor:
        return layer_weight(self.layer)


def structured_rates(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: str = "sgd") -> dict[str, float]:
    r"""Per-tensor learning-rate multipliers that give a structured layer the update of a dense layer.

    Derivation. Let W = f(F_1, ..., F_k) be a structured layer's matrix, multilinear in its tensors (factors, cores,
    P and Q), and G = dL/dW the gradient a dense layer holding the same W would get (from the layer's input u and
    output gradient d: G = d^T u, summed over the batch). The dense layer's first step moves W by -lr D, with
    D = G for SGD (with or without momentum) and D = sign(G) for Adam (its first step is g/|g|). Tensor F_j, with
    learning rate lr m_j, moves W to first order by -lr m_j T_j, where T_j = J_j(g_j) is the Jacobian of f in F_j
    applied to F_j's own first step g_j (dL/dF_j = J_j^T G, or its sign for Adam). So the product's update is
    -lr sum_j m_j T_j, linear in the multipliers. Choosing m_j = c / ||T_j||_2 makes every tensor move W by the
    same spectral norm, and c = ||D||_2 / ||sum_j T_j / ||T_j||_2||_2 makes the whole first step's spectral norm
    equal to the dense layer's. (With every m_j = 1, standard parametrisation, a Kronecker layer on MNIST moves W by
    a fifth of the dense step: its factors see only the part of G that has their structure.)

    This is the μP idea of Qiu et al. (2024), that a structured layer needs its own per-tensor learning rates to
    take feature-learning steps like a dense one, with the constants measured on a probe batch (``x``, ``y``: the
    first batch of training images) at initialisation instead of taken from asymptotic width scaling: at these
    small, unequal factor sizes the asymptotic constants are far off. The multipliers are fixed for the whole run.
    Tensors outside structured layers (:func:`structured_layers`) and biases keep 1. The initialisation is
    unchanged: W already has nn.Linear's entry std. Returns {parameter name: multiplier} for the tensors that
    differ from 1."""
    _check_optimizer(optimizer)
    layers = structured_layers(model)
    if not layers:
        return {}
    captured = {}

    def keep(name):
        def hook(module, inputs, output):
            captured[name] = [inputs[0].detach()]
            output.register_hook(lambda g: captured[name].append(g.detach()))
        return hook
    handles = [layer.register_forward_hook(keep(name)) for name, layer in layers.items()]
    try:
        tensors = {name: [(n, p) for n, p in layer.named_parameters() if p.requires_grad and not n.endswith("bias")]
                   for name, layer in layers.items()}
        wanted = [p for ps in tensors.values() for _, p in ps]
        if not wanted:
            return {}
        grads = torch.autograd.grad(F.nll_loss(model(x), y), wanted)
    finally:
        for h in handles:
            h.remove()
    step = (lambda g: g) if optimizer == "sgd" else torch.sign
    grads, rates = iter(grads), {}
    for name, layer in layers.items():
        u, d = captured[name]
        dense = torch.linalg.matrix_norm(step(d.reshape(-1, d.shape[-1]).T @ u.reshape(-1, u.shape[-1])), 2)
        view, terms = _WeightOf(layer), {}
        for n, p in tensors[name]:
            g = next(grads)
            _, terms[n] = torch.func.jvp(lambda t: torch.func.functional_call(view, {f"layer.{n}": t}, ()),
                                         (p.detach(),), (step(g).detach(),))
            terms[n] = terms[n].detach()
        norms = {n: torch.linalg.matrix_norm(t, 2) for n, t in terms.items()}
        c = dense / torch.linalg.matrix_norm(sum(t / norms[n] for n, t in terms.items()), 2)
        rates.update({f"{name}.{n}" if name else n: float(c / norms[n]) for n in terms})
    return rates


def cosine_scale(steps: int) -> torch.Tensor:
    """The cosine schedule's factor at each of ``steps`` steps: (1 + cos(pi t / steps)) / 2, t = 0 .. steps-1."""
    return (1 + torch.cos(math.pi * torch.arange(steps, dtype=torch.float64) / steps)) / 2


def frozen_names(model: nn.Module, frozen: str | None) -> list[str]:
    """The parameter names under the layer ``frozen`` (None: none); a ValueError if the net has no such layer."""
    if frozen is None:
        return []
    names = [n for n, _ in model.named_parameters() if n.split(".")[0] == frozen]
    if not names:
        layers = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise ValueError(f"frozen={frozen!r}: the net has no such layer; its layers with parameters are "
                         f"{', '.join(layers)}")
    return names


def seeded_model(variant: str, seed: int) -> nn.Module:
    """build_model(variant) with its initialisation drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return build_model(variant)


def train(variant: str, seeds: Sequence[int] = (1,), settings: TrainSettings = TrainSettings(), *,
          data_dir: str | Path = "data", device: str | torch.device = "auto", progress: bool = True,
          compiled: bool | None = None,
          initial_models: Sequence[nn.Module] | None = None) -> tuple[pd.DataFrame, list[nn.Module]]:
    """Train ``variant`` once per seed; return tidy rows (one per seed x epoch) and the models.

    Run k follows :func:`reference_train` for seed k (initialisation from torch.manual_seed(k), one randperm
    per epoch from its own generator), but all seeds are stacked with torch.func and take each step together
    (:func:`training_step`; nets above :data:`STACK_WEIGHT_LIMIT` weights one seed at a time), compiled unless
    ``compiled`` is False (None: compiled unless KRON_EAGER=1; compile time counts in epoch 1's seconds).
    ``initial_models`` (one per seed) start from given nets (fine-tuning); ``variant`` is then only the label
    in the rows. A run whose training loss becomes non-finite stops there with status 'diverged' (and a
    warning); the others go on.
    """
    seeds, device = check_seeds(seeds), resolve_device(device)
    if initial_models is None:
        build_model(variant)  # fail on an unknown name before loading anything
    elif len(initial_models) != len(seeds):
        raise ValueError(f"initial_models has {len(initial_models)} nets for {len(seeds)} seeds")
    splits = data_splits(settings, data_dir, device)

    models = ([copy.deepcopy(m).to(device) for m in initial_models] if initial_models is not None
              else [seeded_model(variant, s).to(device) for s in seeds])
    frozen_names(models[0], settings.frozen)  # a layer the net lacks fails here, before any training
    compiled = os.environ.get("KRON_EAGER") != "1" if compiled is None else compiled
    group = len(seeds) if count_weights(models[0]) <= STACK_WEIGHT_LIMIT else 1
    frames = []
    for first in range(0, len(seeds), group):
        members = slice(first, first + group)
        frames.append(_train_runs(variant, seeds[members], models[members], settings, splits, compiled=compiled,
                                  progress=progress))
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return rows.sort_values("epoch", kind="stable", ignore_index=True), models


def reference_train(variant: str, seed: int, settings: TrainSettings, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    """The plain loop that :func:`train` is tested against: :func:`train_module` of a fresh net,
    :func:`seeded_model` (variant, seed), on the training tensors (x, y) alone."""
    model = seeded_model(variant, seed)
    train_module(model, seed, settings, {"train": (x, y)}, label=variant)
    return model


def count_trainable(model: nn.Module) -> int:
    """Parameters that training updates (``requires_grad``), biases included: what peft's
    ``get_nb_trainable_parameters`` counts."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_module(model: nn.Module, seed: int, settings: TrainSettings, splits: dict, *, label: str = "module",
                 progress: bool = False) -> pd.DataFrame:
    """The plain reference loop: train ``model`` in place, eagerly, on ``splits`` (:func:`data_splits`; 'test' and
    'validation' are scored after each epoch when present). One randperm per epoch from a generator seeded with
    ``seed``, torch.optim.SGD with momentum (or Adam), over the parameters that require grad only, so frozen
    weights stay as they are: the stacked :func:`train` is tested against it, and it trains the nets that
    :func:`train` cannot take (adapters on a frozen layer, peft models). ``settings.frozen`` switches that layer's
    requires_grad off; the structured parametrisation and the cosine schedule are torch.optim parameter groups and
    torch.optim.lr_scheduler.CosineAnnealingLR. Returns tidy rows as :func:`train` does, with ``weights`` = the
    trainable parameters (:func:`count_trainable`), ``params`` = all of them, and a run whose training loss becomes
    non-finite stopped with status 'diverged'."""
    for name in frozen_names(model, settings.frozen):  # settings.frozen: kept at its initialisation
        model.get_parameter(name).requires_grad_(False)
    (x, y), shuffle = splits["train"], torch.Generator().manual_seed(seed)
    rates = (structured_rates(model, x[:settings.batch_size], y[:settings.batch_size], settings.optimizer)
             if settings.parametrization == "structured" else {})
    groups = [dict(params=[p], lr=settings.lr * rates.get(name, 1.0))
              for name, p in model.named_parameters() if p.requires_grad]
    if not groups:
        raise ValueError(f"{label}: the model has no trainable parameters")
    optimizer = (torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum)
                 if settings.optimizer == "sgd" else torch.optim.Adam(groups, lr=settings.lr))
    steps = settings.epochs * math.ceil(len(x) / settings.batch_size)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
                if settings.schedule == "cosine" else None)
    counts = dict(weights=count_trainable(model), params=count_params(model))
    rows = []
    for epoch in tqdm(range(1, settings.epochs + 1), desc=f"{label} seed={seed}", unit="epoch",
                      disable=not progress, file=sys.stdout, dynamic_ncols=True):
        start, total = time.perf_counter(), 0.0
        model.train()
        order = torch.randperm(len(x), generator=shuffle).to(x.device)
        for first in range(0, len(x), settings.batch_size):
            batch = order[first:first + settings.batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total += loss.item() * len(batch)
        train_loss = total / len(x)
        test_loss, test_accuracy = (score_module(model, *splits["test"], settings.test_batch_size)
                                    if "test" in splits else (math.nan, math.nan))
        row = dict(dataset=settings.dataset, variant=label, seed=seed, epoch=epoch, **counts, train_loss=train_loss,
                   test_loss=test_loss, test_accuracy=test_accuracy, seconds=time.perf_counter() - start,
                   status="ok" if math.isfinite(train_loss) else "diverged")
        if "validation" in splits:
            row["validation_loss"], row["validation_accuracy"] = score_module(model, *splits["validation"],
                                                                             settings.test_batch_size)
        rows.append(row)
        if row["status"] == "diverged":
            break
    return pd.DataFrame(rows, columns=result_columns(settings))


@torch.no_grad()
def score_module(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean NLL, accuracy in %) of one net on (x, y), in batches, as :func:`evaluate` scores them."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for first in range(0, len(x), batch_size):
        log_probs = model(x[first:first + batch_size])
        loss_sum += F.nll_loss(log_probs, y[first:first + batch_size], reduction="sum").item()
        correct += int((log_probs.argmax(-1) == y[first:first + batch_size]).sum())
    return loss_sum / len(x), 100.0 * correct / len(x)


#: How many net shapes one process may compile the training step for (dynamo's own default is 8).
RECOMPILE_LIMIT = 256

#: Nets with more weights than this are compute-bound: their seeds take steps one at a time, since
#: stacking them makes each step slower than the separate steps together (measured on 2 cores).
STACK_WEIGHT_LIMIT = 100_000


def _train_runs(variant, seeds, models, settings, splits, *, compiled, progress) -> pd.DataFrame:
    """Train ``models`` (one per seed, stacked into one functional step) for settings.epochs on ``splits``
    (:func:`data_splits`); tidy rows."""
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    rates = run_rates(models, settings, splits)
    state = stack_models(models, settings.optimizer, frozen=frozen_names(models[0], settings.frozen))
    step = training_step(models[0], settings.lr, settings.momentum, compiled=compiled, optimizer=settings.optimizer,
                         rates={name: rate.to(x_train.device) for name, rate in rates.items()})
    steps = math.ceil(len(x_train) / settings.batch_size)  # per epoch
    scales = (cosine_scale(settings.epochs * steps).float().to(x_train.device).reshape(settings.epochs, steps)
              if settings.schedule == "cosine" else None)  # the schedule's factor for each epoch's steps
    shufflers = [torch.Generator().manual_seed(s) for s in seeds]
    weights, params = count_weights(models[0]), count_params(models[0])
    rows, alive = [], list(range(len(seeds)))
    bar = tqdm(range(1, settings.epochs + 1), desc=f"{variant} seeds={seeds}", unit="epoch",
               disable=not progress, file=sys.stdout, dynamic_ncols=True, mininterval=1.0)
    for epoch in bar:
        start = time.perf_counter()
        train_loss = _train_epoch(step, state, x_train, y_train, shufflers, settings.batch_size,
                                  None if scales is None else scales[epoch - 1])
        test_loss, test_accuracy = _evaluate(models[0], state, x_test, y_test, settings.test_batch_size)
        held_out = (_evaluate(models[0], state, *splits["validation"], settings.test_batch_size)
                    if "validation" in splits else None)
        seconds = (time.perf_counter() - start) / len(seeds)
        for k in list(alive):
            status = "ok" if math.isfinite(train_loss[k]) else "diverged"
            rows.append(dict(dataset=settings.dataset, variant=variant, seed=seeds[k], epoch=epoch,
                             weights=weights, params=params, train_loss=train_loss[k],
                             test_loss=test_loss[k], test_accuracy=test_accuracy[k],
                             seconds=seconds, status=status))
            if held_out is not None:
                rows[-1].update(validation_loss=held_out[0][k], validation_accuracy=held_out[1][k])
            if status == "diverged":
                alive.remove(k)
                warnings.warn(f"{variant} seed {seeds[k]} diverged in epoch {epoch} (training loss "
                              f"{train_loss[k]}); its run stops here, the others go on", stacklevel=3)
        bar.set_postfix(acc=" ".join(f"{test_accuracy[k]:.2f}" for k in alive) or "-")
        if not alive:
            break
    bar.close()
    unstack_models(state, models)
    return pd.DataFrame(rows, columns=result_columns(settings))


def run_rates(models: Sequence[nn.Module], settings: TrainSettings, splits: dict) -> dict[str, torch.Tensor]:
    """Each net's :func:`structured_rates` under ``settings`` (none unless parametrization='structured'), measured on
    the first batch of its training images, stacked as {name: (S, 1, ..) tensor} (1 where a net has none)."""
    if settings.parametrization != "structured":
        return {}
    x, y = (t[:settings.batch_size] for t in splits["train"])
    found = [structured_rates(m, x, y, settings.optimizer) for m in models]
    shapes = dict(models[0].named_parameters())
    return {name: torch.tensor([r.get(name, 1.0) for r in found]).reshape(-1, *[1] * shapes[name].dim())
            for name in dict.fromkeys(n for r in found for n in r)}


def stack_models(models: Sequence[nn.Module], optimizer: str = "sgd", frozen: Sequence[str] = ()) -> dict:
    """The training state of S nets of one shape: parameters and buffers stacked on a leading seed axis, and the
    optimizer's state, initially zero: SGD's momentum buffers, or Adam's two moment estimates and step count.
    Parameters named in ``frozen`` go with the buffers: the step never computes their gradient or moves them."""
    from torch.func import stack_module_state
    _check_optimizer(optimizer)
    params, buffers = stack_module_state(list(models))
    buffers.update({name: params.pop(name).detach() for name in frozen})
    params = {name: p.detach() for name, p in params.items()}
    zeros = {name: torch.zeros_like(p) for name, p in params.items()}
    moments = (dict(m=zeros) if optimizer == "sgd" else
               dict(m=zeros, v={name: torch.zeros_like(p) for name, p in params.items()}, t=torch.zeros(())))
    return dict(params=params, buffers=buffers, moments=moments)


def unstack_models(state: dict, models: Sequence[nn.Module]) -> list[nn.Module]:
    """Copy member k of the stacked ``state`` back into ``models[k]``; return the models."""
    for k, model in enumerate(models):
        model.load_state_dict({name: t[k] for name, t in {**state["params"], **state["buffers"]}.items()},
                              strict=False)
    return list(models)


def training_step(base: nn.Module, lr: float, momentum: float, *, compiled: bool = True, optimizer: str = "sgd",
                  rates: dict[str, torch.Tensor] | None = None):
    """One optimizer step of S stacked copies of ``base`` as one functional step, ``(params, buffers, moments,
    x (N,784), y (N,), index (S,B)[, scale]) -> (params, moments, losses (S,))``: member s trains on x[index[s]]
    (the gather runs inside the compiled step, where it fuses with the first layer; it was 13% of a small net's
    epoch). Parameter p's learning rate is lr * rates[p] (an (S, 1, ..) tensor, one multiplier per member; 1 for a
    name not in ``rates``), times ``scale`` (a 0-d tensor: the schedule's factor at this step) when given.

    'sgd' is torch.optim.SGD's update (no dampening, no Nesterov): m <- momentum*m + g, p <- p - lr*m, m
    starting at zero. 'adam' is torch.optim.Adam's (no weight decay): m <- b1*m + (1-b1)*g, v <- b2*v +
    (1-b2)*g^2, p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). ``compiled=True`` wraps it in
    torch.compile (once per shape, with static shapes: dynamo's default would compile every net after the first
    one in a process with symbolic sizes, which made a tensor train's epoch 1.9x slower after a two_kron, measured);
    if compiling fails (no C++ compiler), it warns once and runs eagerly.
    """
    from torch.func import functional_call, grad_and_value, vmap
    _check_optimizer(optimizer)

    def member_loss(p, b, x, y):
        return F.nll_loss(functional_call(base, (p, b), (x,)), y)
    gradients = vmap(grad_and_value(member_loss))

    rates = dict(rates or {})

    def rate(name, scale):  # a plain float unless this tensor has its own rate or a schedule runs
        r = lr * rates[name] if name in rates else lr
        return r if scale is None else r * scale

    def sgd(params, buffers, moments, x, y, index, scale=None):
        grads, losses = gradients(params, buffers, x[index], y[index])
        m = {name: momentum * moments["m"][name] + grads[name] for name in params}
        return {name: params[name] - rate(name, scale) * m[name] for name in params}, dict(m=m), losses

    def adam(params, buffers, moments, x, y, index, scale=None):
        (b1, b2), t = ADAM_BETAS, moments["t"] + 1
        grads, losses = gradients(params, buffers, x[index], y[index])
        m = {name: b1 * moments["m"][name] + (1 - b1) * grads[name] for name in params}
        v = {name: b2 * moments["v"][name] + (1 - b2) * grads[name] ** 2 for name in params}
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = {name: params[name] - rate(name, scale) * (m[name] / c1) / ((v[name] / c2).sqrt() + ADAM_EPS)
                  for name in params}
        return params, dict(m=m, v=v, t=t), losses
    step = sgd if optimizer == "sgd" else adam
    if not compiled:
        return step
    _configure_compiler()
    fast = torch.compile(step, dynamic=False)  # static shapes: see the docstring

    def compiled_or_eager(*args):
        nonlocal fast
        if fast is not step:
            try:
                return fast(*args)
            except Exception as error:  # noqa: BLE001 - any compiler failure: fall back, say so once
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                              "training eagerly instead (same numbers up to float rounding, slower)", stacklevel=2)
                fast = step
        return step(*args)
    return compiled_or_eager


def _configure_compiler() -> None:
    """Compiler settings, applied at every compiled step's creation: silence inductor's "No CUDA runtime is found"
    (noise in the notebooks on CPU-only machines), and let dynamo compile :data:`RECOMPILE_LIMIT` shapes (each net
    shape is one more compile: a notebook of dozens must not fall back to eager after 8). Dynamo's config is
    thread-local, and a Dask worker may run each task on a new thread, so this is set in the calling thread
    every time, not once per process."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)


def evaluate(models: Sequence[nn.Module], dataset: str = "mnist", data_dir: str | Path = "data",
             device: str | torch.device = "auto", batch_size: int = 1000) -> tuple[list[float], list[float]]:
    """Test loss (mean NLL) and accuracy (%) of each net, measured as the trainer measures them."""
    device = resolve_device(device)
    x, y = _cached_data(str(data_dir), dataset, "test", device)
    results = [_evaluate(m, stack_models([m.to(device)]), x, y, batch_size) for m in models]
    return [r[0][0] for r in results], [r[1][0] for r in results]


def _train_epoch(step, state: dict, x, y, shufflers, batch_size: int, scales: torch.Tensor | None = None) -> list[float]:
    """One pass over the shuffled data; each run draws its own permutation. Mean loss per run. ``scales``: the
    schedule's factor for each of this epoch's steps (None: constant rate)."""
    n = len(x)
    order = torch.stack([torch.randperm(n, generator=g) for g in shufflers]).to(x.device)  # (S, n)
    total = torch.zeros(len(shufflers), device=x.device)
    for k, start in enumerate(range(0, n, batch_size)):
        index = order[:, start:start + batch_size]                     # (S, B): each run's own batch
        extra = () if scales is None else (scales[k],)
        state["params"], state["moments"], losses = step(state["params"], state["buffers"], state["moments"], x, y,
                                                         index, *extra)
        total += losses * index.shape[1]
    return (total / n).tolist()


@torch.no_grad()
def _evaluate(base: nn.Module, state: dict, x, y, batch_size: int) -> tuple[list[float], list[float]]:
    """Test loss (summed nll / N, as pytorch/examples) and accuracy in percent, per run."""
    from torch.func import functional_call, vmap
    forward = vmap(lambda p, b, batch: functional_call(base, (p, b), (batch,)), in_dims=(0, 0, None))
    loss_sum = correct = 0
    for start in range(0, len(x), batch_size):
        log_probs = forward(state["params"], state["buffers"], x[start:start + batch_size])  # (S, B, 10)
        target = y[start:start + batch_size].expand(log_probs.shape[:2])
        loss_sum = loss_sum + F.nll_loss(log_probs.transpose(1, 2), target, reduction="none").sum(1)
        correct = correct + (log_probs.argmax(-1) == target).sum(1)
    return (loss_sum / len(x)).tolist(), (100.0 * correct / len(x)).tolist()


@lru_cache(maxsize=None)
def _cached_data(data_dir: str, dataset: str, split: str, device: torch.device, domain: str | None = None):
    """load_dataset (moved to ``domain`` by :func:`shift_domain`), memoised per process (notebooks train many
    variants on the same data)."""
    x, y = load_dataset(data_dir, split, device=device, dataset=dataset)
    return shift_domain(x, domain, dataset, split), y
