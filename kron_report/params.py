"""Notebook parameters, read and checked before any work; every page's plan builds on these checks.

Papermill passes ``-p`` values as strings: :func:`parse_list` reads '[1, 2]' and '1,2' alike. Each check raises
one ValueError naming the parameter.
"""
from __future__ import annotations

import json

import kron_utils as ku
import numpy as np
import pandas as pd

__all__ = ["parse_list", "check_variants", "check_seeds", "check_positive_ints", "check_tolerance", "check_sweep",
           "divergence_lines"]


def parse_list(value):
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


def check_variants(variants) -> list[str]:
    """A non-empty list of distinct variant names that all build (papermill strings are read too)."""
    variants = parse_list(variants)
    if not isinstance(variants, list) or not variants:
        raise ValueError(f"variants must be a non-empty list of names, got {variants!r}")
    unknown = []
    for name in variants:
        try:
            ku.build_model(name)
        except ValueError:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; valid names: {', '.join(ku.VARIANTS)} "
                         "or a family member such as width32, lowrank2, kron2_r4, tiedkron2_r1, tt4_r4")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must be distinct, got {variants}")
    return variants


def check_seeds(seeds, minimum: int = 1) -> list[int]:
    """:func:`kron_utils.check_seeds` of a list or a papermill string, with at least ``minimum`` seeds."""
    seeds = ku.check_seeds(parse_list(seeds))
    if len(seeds) < minimum:
        raise ValueError(f"seeds: this notebook reports 95% intervals over seeds, so it needs at least {minimum} "
                         f"seeds, got {seeds}; give e.g. [1, 2, 3]")
    return seeds


def check_positive_ints(values, name: str, allow_empty: bool = False) -> list[int]:
    """A list of positive integers (papermill strings such as '[1, 2]' are read too); non-empty unless allowed."""
    values = parse_list(values)
    if not isinstance(values, list) or not (values or allow_empty):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}list of positive integers, "
                         f"got {values!r}")
    return [ku.check_positive_int(v, f"each of {name}") for v in values]


def check_tolerance(value) -> float:
    """``tolerance_pp``: a finite number >= 0 (percentage points)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"tolerance_pp must be a number of percentage points >= 0, got {value!r}")
    return float(value)


def check_sweep(variants, seeds, minimum_seeds: int = 1) -> tuple[list[str], list[int]]:
    """Validate a whole sweep up front: every variant name and the seeds (settings validate themselves)."""
    return check_variants(variants), check_seeds(seeds, minimum_seeds)


def divergence_lines(rows: pd.DataFrame) -> list[str]:
    """One 'WARNING: ... diverged' line per run whose training loss became non-finite."""
    diverged = rows[rows.status == "diverged"]
    return [f"WARNING: {r.dataset} {r.variant} seed {r.seed} diverged in epoch {r.epoch} "
            f"(training loss {r.train_loss}); its run stopped there" for r in diverged.itertuples()]
