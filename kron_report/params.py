"""Notebook parameters, read and checked before any work; every page's plan builds on these checks.

:func:`read_parameters` is the one checker: it takes a notebook's declared parameters (:data:`paths.NOTEBOOK_PARAMETERS`,
each of its default's type), then checks each value by its name's rule in :data:`RULES` (type and range *before*
anything is converted: 1.5 is not a whole number, True is not a number), then the rules across parameters. Every
error is one ValueError that starts with the notebook and names the parameter the user set.

Papermill passes ``-p`` values as strings: :func:`parse_list` reads '[1, 2]' and '1,2' alike, each item as JSON
where it reads as JSON ('0.01' is a number, 'fast' stays a string, for the rule to refuse).
"""
from __future__ import annotations

import json
import numbers
from typing import Callable, Mapping

import kron_utils as ku

from .paths import notebook_parameters

__all__ = ["parse_list", "check_variants", "check_seeds", "check_positive_ints", "check_tolerance",
           "check_rates", "check_whole", "check_dataset", "check_lokr_configs", "check_candidates",
           "check_factor_shapes", "check_validation_split", "MIN_TRAIN_IMAGES", "RULES",
           "read_parameters"]


def parse_list(value, name: str = "the value"):
    """A papermill-friendly list: '[1, 2]' (JSON) or '1,2' become lists (each item read as JSON where it can be),
    a scalar a 1-list; anything else is returned as it is, for the caller's rule to refuse."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"{name}: cannot read a list from {value!r}; write it like [1, 2, 3]") from None
        return [_item(t.strip()) for t in text.split(",") if t.strip()]
    if _is_whole(value):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else value


def _item(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _is_whole(value) -> bool:
    """An integer, not a bool and not a float (1.0 and 1.5 alike are refused where a whole number is asked for)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_whole(value, name: str, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (not a bool, not a float); else one ValueError naming ``name``."""
    if not _is_whole(value) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_variants(variants, name: str = "variants") -> list[str]:
    """A non-empty list of distinct variant names that all build (papermill strings are read too)."""
    variants = parse_list(variants, name)
    if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
        raise ValueError(f"{name} must be a non-empty list of names, got {variants!r}")
    unknown = []
    for variant in variants:
        try:
            ku.build_model(variant)
        except ValueError:
            unknown.append(variant)
    if unknown:
        raise ValueError(f"{name}: unknown variant(s) {unknown}; valid names: {', '.join(ku.VARIANTS)} "
                         "or a family member such as width32, lowrank2, kron2_r4, tiedkron2_r1, tt4_r4")
    if len(set(variants)) != len(variants):
        raise ValueError(f"{name} must be distinct, got {variants}")
    return variants


def check_seeds(seeds, minimum: int = 1, name: str = "seeds") -> list[int]:
    """A list of at least ``minimum`` distinct non-negative whole numbers (a papermill string is read too)."""
    try:
        values = ku.check_seeds(parse_list(seeds, name))
    except ValueError as error:  # the library's check, worded for the parameter the user set
        raise ValueError(str(error).replace("seeds", name, 1)) from None
    if len(values) < minimum:
        raise ValueError(f"{name}: this notebook reports 95% intervals over seeds, so it needs at least {minimum} "
                         f"seeds, got {values}; give e.g. [1, 2, 3]")
    return values


def check_positive_ints(values, name: str, allow_empty: bool = False) -> list[int]:
    """A list of distinct positive whole numbers (papermill strings such as '[1, 2]' are read too); non-empty unless
    allowed."""
    items = parse_list(values, name)
    if (not isinstance(items, list) or not (items or allow_empty) or not all(_is_whole(v) and v >= 1 for v in items)
            or len(set(items)) != len(items)):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}list of distinct positive whole "
                         f"numbers, got {values!r}")
    return [int(v) for v in items]


def check_rates(values, name: str, upper: float) -> list[float]:
    """A non-empty list of distinct learning rates in (0, ``upper``); numbers only (no bool, no string)."""
    items = parse_list(values, name)
    if (not isinstance(items, list) or not items or not all(_is_number(v) and 0 < v < upper for v in items)
            or len(set(items)) != len(items)):
        raise ValueError(f"{name} must be a non-empty list of distinct numbers in (0, {upper:g}), got {values!r}")
    return [float(v) for v in items]


def check_tolerance(value, name: str = "tolerance_pp") -> float:
    """A finite number >= 0 (percentage points)."""
    if not _is_number(value) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a number of percentage points >= 0, got {value!r}")
    return float(value)


def check_dataset(value, name: str, allow_empty: bool = False) -> str:
    """A dataset the project knows (mnist, fashion-mnist, or the synthetic stand-in); '' where allowed."""
    if allow_empty and value == "":
        return value
    if value != ku.SYNTHETIC and value not in ku.DATASETS:
        raise ValueError(f"{name} must be one of {', '.join([*ku.DATASETS, ku.SYNTHETIC])}"
                         f"{' or empty' if allow_empty else ''}, got {value!r}")
    return value


def check_lokr_configs(value, name: str = "lokr_configs") -> list[tuple[int, int]]:
    """[decompose_factor, r] pairs of whole numbers: the factor -1 (peft's default) or >= 1, r >= 1."""
    items = parse_list(value, name)
    good = isinstance(items, list) and items and all(
        isinstance(c, (list, tuple)) and len(c) == 2 and all(_is_whole(v) for v in c) and (c[0] == -1 or c[0] >= 1)
        and c[1] >= 1 for c in items)
    if not good:
        raise ValueError(f"{name} must list [decompose_factor, r] pairs of whole numbers (decompose_factor -1 or "
                         f">= 1, r >= 1), got {value!r}")
    return [(int(f), int(r)) for f, r in items]


def check_candidates(value, name: str = "candidates") -> list[tuple]:
    """[source, target, target_images, epochs] settings: tasks as strings ('mnist', 'mnist:0-4'), target_images a
    whole number >= 1 or None (all), epochs a whole number >= 1; each task's dataset and classes are checked by the
    plan."""
    items = parse_list(value, name)
    good = isinstance(items, list) and items and all(
        isinstance(c, (list, tuple)) and len(c) == 4 and isinstance(c[0], str) and isinstance(c[1], str)
        and (c[2] is None or (_is_whole(c[2]) and c[2] >= 1)) and _is_whole(c[3]) and c[3] >= 1 for c in items)
    if not good:
        raise ValueError(f"{name} must list [source, target, target_images, epochs] settings (tasks such as "
                         f"'mnist:0-4', target_images a whole number or null, epochs >= 1), got {value!r}")
    return [(str(s), str(t), None if n is None else int(n), int(e)) for s, t, n, e in items]


def check_factor_shapes(value, name: str = "factor_shapes") -> list[tuple[int, int]]:
    """[out, in] shapes of a Kronecker sum's first factor: out divides 625 and in divides 784."""
    items = parse_list(value, name)
    good = isinstance(items, list) and items and all(
        isinstance(c, (list, tuple)) and len(c) == 2 and all(_is_whole(v) and v >= 1 for v in c)
        and ku.HIDDEN_SIZE % c[0] == 0 and ku.IMAGE_SIZE % c[1] == 0 for c in items)
    if not good:
        raise ValueError(f"{name} must list [out, in] shapes with out dividing {ku.HIDDEN_SIZE} and in dividing "
                         f"{ku.IMAGE_SIZE}, such as [5, 49], got {value!r}")
    return [(int(o), int(i)) for o, i in items]


def check_validation_split(validation: int, size: int, what: str) -> None:
    """One ValueError unless holding out ``validation`` of ``size`` training images (of ``what``) leaves at least
    :data:`MIN_TRAIN_IMAGES` to train on, or half of them where that is fewer (the synthetic stand-in has 512)."""
    keep = min(MIN_TRAIN_IMAGES, size // 2)
    if validation > size - keep:
        raise ValueError(f"validation_images must leave at least {keep:,} of the {size:,} training images of {what} "
                         f"to train on, so at most {size - keep:,}, got {validation:,}")


#: The fewest training images a validation split may leave (half the set, where that is fewer).
MIN_TRAIN_IMAGES = 1_000

_seed = lambda v, n: check_whole(v, n, minimum=0)  # noqa: E731
_seeds = lambda v, n: check_seeds(v, 2, n)  # noqa: E731 - every page reports intervals over seeds
#: Each parameter's rule, by name (the same name means the same thing in every notebook): a function of
#: (value, name) that returns the checked value or raises one ValueError naming it. None values (take the
#: committed grid) are not checked here.
RULES: dict[str, Callable] = {
    "epochs": check_whole, "train_epochs": check_whole, "t3f_epochs": check_whole,
    "compression_epochs": check_whole, "compression_finetune_epochs": check_whole, "finetune_epochs": check_whole,
    "compression_tt_rank": check_whole, "validation_images": check_whole,
    "seed": _seed, "permutation_seed": _seed, "fields_seed": _seed,
    "seeds": _seeds, "tuning_seeds": _seeds,
    "dataset": check_dataset,
    "harder_dataset": lambda v, n: check_dataset(v, n, allow_empty=True),
    "variants": check_variants, "kron_variants": check_variants, "permuted_variants": check_variants,
    "off_grid_variants": check_variants, "tuning_variants": check_variants,
    "dense_widths": check_positive_ints, "low_ranks": check_positive_ints, "projection_ranks": check_positive_ints,
    "budget_ranks": check_positive_ints,
    "tt_ranks": lambda v, n: check_positive_ints(v, n, allow_empty=True),
    "sgd_learning_rates": lambda v, n: check_rates(v, n, 10), "learning_rates": lambda v, n: check_rates(v, n, 1),
    "adam_learning_rates": lambda v, n: check_rates(v, n, 10),
    "tolerance_pp": check_tolerance, "lokr_configs": check_lokr_configs,
    "candidates": check_candidates, "factor_shapes": check_factor_shapes, "choice_seeds": check_whole,
    "shape_ranks": lambda v, n: check_positive_ints(v, n, allow_empty=True),
}


def read_parameters(notebook: str, parameters: Mapping) -> dict:
    """The declared parameters of ``notebook``, each checked by its rule (:data:`RULES`) and the rules across them;
    one ValueError '<notebook>: <what is wrong>' naming the parameter the user set, before any work."""
    values = notebook_parameters(notebook, parameters)
    try:
        checked = {name: value if value is None or name not in RULES else RULES[name](value, name)
                   for name, value in values.items()}
        _across(notebook, checked)
    except ValueError as error:
        raise ValueError(f"{notebook}: {error}") from None
    return checked


def _across(notebook: str, p: dict) -> None:
    """The rules that tie two parameters together; each message names both."""
    if "validation_images" in p and "dataset" in p:
        check_validation_split(p["validation_images"], ku.train_size(p["dataset"]), f"{p['dataset']} (dataset)")
