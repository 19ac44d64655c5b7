"""Part 4's figures and their captions: accuracy at each budget, and the ΔW fits.
"""
from __future__ import annotations

import pandas as pd

from ..style import FIGURE_WIDTH, legend_below
from .arms import ADAPTER_KINDS, KIND_TEXT

__all__ = ['ADAPTER_STYLE', 'REFERENCE_STYLE', 'budget_figure', 'ADAPTER_DODGE', 'best_fit_figure', 'budget_caption',
           'fits_caption']


#: Part 4's arms: one colour and marker per kind of adapter; the references as horizontal lines.
ADAPTER_STYLE = {"lora": ("tab:orange", "^", "LoRA (peft)"), "lokr": ("tab:green", "s", "LoKr (peft)"),
                 "kronsum": ("tab:blue", "o", "Kronecker sum (ours)")}


REFERENCE_STYLE = {"full": ("black", "-", "full fine-tuning of fc1"), "scratch": ("0.45", "--", "from scratch"),
                   "head": ("tab:red", ":", "head only (linear probe)")}


def budget_figure(results: pd.DataFrame, target: str = "Fashion-MNIST"):
    """Final test accuracy against the adapter's trainable weights (log scale), one line per adapter kind with
    95% t-intervals, and the references (head only, full fine-tuning, scratch) as horizontal lines with their
    interval as a band; the legend sits below the axes, off the data (from :func:`adapters.results.arm_results`)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 5.2))
    for kind, (color, style, label) in REFERENCE_STYLE.items():
        ref = results[results.kind == kind].iloc[0]
        ax.axhline(ref["mean"], color=color, ls=style, lw=1.4, label=f"{label}: {ref['mean']:.2f}%")
        ax.axhspan(ref["mean"] - ref.half_width, ref["mean"] + ref.half_width, color=color, alpha=0.08, lw=0)
    for dodge, (kind, (color, marker, label)) in zip(ADAPTER_DODGE, ADAPTER_STYLE.items()):
        part = results[results.kind == kind].sort_values("adapter_weights")
        ax.errorbar(part.adapter_weights * dodge, part["mean"], yerr=part.half_width, color=color, marker=marker,
                    ms=6, capsize=3, lw=1.5, label=label)
    return _log_weights_axes(fig, ax, results, "trainable adapter weights on fc1 (log scale; the new head's 6,260 not counted)",
                             f"{target} test accuracy (%)", "Mean and 95% CI over seeds, each arm at its own "
                             "learning rate")


#: Each adapter kind's points are drawn this factor apart on the log axis, so that their intervals never hide
#: each other (the captions say so; the tables give the exact weights).
ADAPTER_DODGE = (0.92, 1.0, 1.08)


def _budget_ticks(ax, results: pd.DataFrame) -> None:
    """Ticks at the Kronecker sums' budgets, written '1.4k', '45k', and no minor tick labels (which overprint)."""
    from matplotlib.ticker import NullFormatter, NullLocator
    budgets = sorted(results.adapter_weights[results.kind == "kronsum"])
    ax.set_xticks(budgets, [f"{b / 1000:.1f}k" if b < 10_000 else f"{b / 1000:.0f}k" for b in budgets])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def best_fit_figure(fits: pd.DataFrame, deltas: pd.DataFrame, results: pd.DataFrame):
    """How far each structure is from full fine-tuning's ΔW, against weights: the best possible LoRA and Kronecker
    sum of each rank (lines, mean over seeds, from :func:`adapters.results.best_fit_errors`), and what each trained
    adapter actually learned (markers, its relative distance, mean over seeds)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
    best = fits.groupby(["structure", "rank"], sort=False).agg(weights=("weights", "first"), error=("error", "mean"))
    for structure, kind in (("LoRA", "lora"), ("Kronecker sum", "kronsum")):
        color, marker, _ = ADAPTER_STYLE[kind]
        part = best.loc[structure]
        ax.plot(part.weights, part.error, color=color, lw=1.5, ls="--", label=f"best possible {structure}")
    distance = deltas.groupby("arm").distance_to_full.mean()
    weights = results.set_index("arm").adapter_weights
    for kind, (color, marker, label) in ADAPTER_STYLE.items():
        arms = results.arm[results.kind == kind]
        ax.plot(weights[arms], distance[arms], color=color, marker=marker, ls="none", ms=7,
                label=f"{label}, as trained")
    return _log_weights_axes(fig, ax, results, "adapter weights (log scale)", "‖ΔW − ΔW_full‖ / ‖ΔW_full‖",
                             "Distance to full fine-tuning's update (lower is closer)")


def _log_weights_axes(fig, ax, results: pd.DataFrame, xlabel: str, ylabel: str, title: str):
    """Part 4's axes: weights on a log scale with ticks at the budgets, labels, and the legend below the axes, off
    the data."""
    ax.set_xscale("log")
    _budget_ticks(ax, results)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    return legend_below(fig, ax)


def budget_caption(results: pd.DataFrame, target: str = "Fashion-MNIST") -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.budget_figure`; ``target`` names the task in words."""
    adapters = results[results.kind.isin(ADAPTER_KINDS)]
    refs = results[results.kind.isin(["head", "full", "scratch"])]
    caption = (f"Final {target} test accuracy against the adapter's trainable weights on fc1, each arm at the "
               "learning rate its validation accuracy chose; points are seed means with 95% t-intervals. The three "
               "adapter kinds sit at matched budgets (within 1% of each other at each level; each arm's exact "
               "weights are in the arms table), drawn slightly apart so that their intervals stay visible. "
               "Horizontal lines: the head alone, full fine-tuning of fc1 and training from scratch, with their "
               "intervals as bands.")
    alt = ("Line plot of accuracy against adapter weights. " + "; ".join(
        f"{KIND_TEXT[k]}: " + ", ".join(f"{int(r.adapter_weights):,} weights {r.mean:.1f}%"
                                        for r in adapters[adapters.kind == k].itertuples())
        for k in ADAPTER_KINDS) + ". References: " + ", ".join(
        f"{KIND_TEXT[r.kind]} {r.mean:.1f}%" for r in refs.itertuples()) + ".")
    return caption, alt


def fits_caption(fits: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of :func:`figures.best_fit_figure`."""
    best = fits.groupby(["structure", "rank"], sort=False).agg(weights=("weights", "first"), error=("error", "mean"))
    caption = ("Relative distance ‖ΔW − ΔW_full‖ / ‖ΔW_full‖ to full fine-tuning's update against weights (1 is the "
               "distance of the zero update). Dashed: the best any update of that structure could do (LoRA: the "
               "truncated SVD, Eckart–Young; Kronecker sum: the nearest sum of Kronecker products, Van Loan–Pitsianis), "
               "mean over seeds. Markers: the adapters as trained, mean over seeds.")
    alt = "Line plot. Best possible relative error: " + "; ".join(
        f"{s} " + ", ".join(f"{int(r.weights):,} weights {r.error:.2f}" for r in part.reset_index().itertuples())
        for s, part in best.groupby(level=0, sort=False)) + "."
    return caption, alt
