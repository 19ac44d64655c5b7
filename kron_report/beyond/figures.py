"""Part 3's figures: the Pareto plane, the projection, MNIST against Fashion-MNIST, and the t3f curves.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ..stats import final_epochs, half_interval, variant_family
from ..style import FIGURE_WIDTH, dot_rows, family_style, legend_below
from .budgets import PARETO_ZOOM, pareto_front
from .compression import T3F_TUTORIAL

__all__ = ['pareto_figure', 'projection_figure', 'dataset_comparison_figure', 't3f_figure']


def pareto_figure(points: pd.DataFrame, epochs: int, dataset: str):
    """All nets on the accuracy-weights plane by family with each family's Pareto frontier (top), and below it the
    best small nets as a ranked dot plot with their names and weights (names as tick labels never overprint)."""
    import matplotlib.pyplot as plt
    floor = max(points["mean"].min() - 1, 80)
    small = points[points.weights <= PARETO_ZOOM["weights"]]
    top_points = small[small["mean"] >= points["mean"].max() - PARETO_ZOOM["points"]]
    if top_points.empty:  # every small net is far behind the best: zoom on the best small ones instead
        top_points = small[small["mean"] >= small["mean"].max() - PARETO_ZOOM["points"]]
    top_points = top_points.sort_values("mean")
    fig, axes = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 5 + 0.32 * len(top_points)),
                             height_ratios=(4.2, 1 + 0.32 * len(top_points)))
    ax = axes[0]
    for family, members in points.groupby("family", sort=False):
        color, marker = family_style(family)
        ax.errorbar(members.weights, members["mean"], yerr=members["half"].fillna(0), fmt=marker, ms=6, capsize=2,
                    color=color, label=family)
        front = pareto_front(members)
        ax.plot(front.weights, front["mean"], "-", color=color, alpha=0.45, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("weights (log scale, biases excluded)")
    ax.set_ylabel(f"test accuracy (%), epoch {epochs}")
    below = points[points["mean"] < floor]
    shown = points[points["mean"] >= floor]
    ax.set_ylim(floor, (shown["mean"] + shown["half"].fillna(0)).max() + 0.3)
    ax.set_title(f"All {len(points)} nets, by family; lines: Pareto frontiers"
                 + (f"\n({', '.join(below.index)} below {floor:.0f}%, off the axis)" if len(below) else ""))
    ax = axes[1]
    dot_rows(ax, top_points.index, top_points["mean"], top_points["half"].fillna(0),
              [f"{v} ({w:,})" for v, w in zip(top_points.index, top_points.weights)])
    ax.set_xlabel("test accuracy (%), mean and 95% CI over seeds")
    ax.set_title(f"Nets up to {PARETO_ZOOM['weights']:,} weights within {PARETO_ZOOM['points']:g} points of the best")
    ax.grid(axis="y", alpha=0.2)
    fig.tight_layout()
    return legend_below(fig, axes[0], ncols=1)


def projection_figure(gaps: pd.DataFrame):
    """Per Kronecker rank: the projected and fine-tuned nets minus the same structure trained from scratch, for
    as many epochs and for the full run, with 95% Welch intervals (from :func:`beyond.compression.projection_gaps`)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 3.6))
    ranks = sorted(set(gaps["rank"]))
    against = sorted(set(gaps.against))
    for k, (e, color) in enumerate(zip(against, ("tab:blue", "0.35"))):
        sub = gaps[gaps.against == e].set_index("rank").reindex(ranks)
        x = [i + (k - (len(against) - 1) / 2) * 0.18 for i in range(len(ranks))]
        ax.errorbar(x, sub["diff"], yerr=[sub["diff"] - sub["low"], sub["high"] - sub["diff"]], fmt="o",
                    capsize=4, color=color, label=f"vs from scratch, {e} epoch{'s' * (e != 1)}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(ranks)), [f"Kronecker rank {r}" for r in ranks])
    ax.set_ylabel("difference (pp)")
    ax.set_title("Projected + fine-tuned minus trained from scratch (95% CI)")
    fig.tight_layout()
    return legend_below(fig, ax, ncols=1)


def dataset_comparison_figure(finals: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str]):
    """Final accuracy of each net on each dataset as dots with their 95% t-interval over seeds, dense black and
    Kronecker blue as on the first page; one panel per dataset, stacked."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(datasets), 1, figsize=(FIGURE_WIDTH, 2.6 * len(datasets)), squeeze=False)
    for ax, name in zip(axes[:, 0], datasets):
        sub = final_epochs(finals[finals.dataset == name]).groupby("variant").test_accuracy.agg(
            ["mean", half_interval])
        sub = sub.reindex([v for v in variants if v in sub.index])
        dot_rows(ax, sub.index, sub["mean"], sub["half_interval"].fillna(0), sub.index)
        ax.invert_yaxis()
        ax.set_title(f"{name}: final test accuracy (mean, 95% CI over seeds)")
        ax.set_xlabel("test accuracy (%)")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def t3f_figure(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL):
    """Test accuracy per epoch of the tutorial's TT net and two_kron under both recipes on one set of axes
    (mean over seeds, band: its 95% t-interval; log epoch axis so that the 3 Adam epochs are visible), and the
    tutorial's point."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.8))
    for rows, recipe, style in [(sgd_rows, "SGD (post)", "-"), (adam_rows, "Adam (t3f)", "--")]:
        for v, run in rows.groupby("variant", sort=False):
            color = family_style(variant_family(v))[0]
            curve = run.groupby("epoch").test_accuracy.agg(["mean", half_interval]).fillna(0)
            ax.plot(curve.index, curve["mean"], style, marker="o" if recipe.startswith("Adam") else None, ms=5,
                    color=color, label=f"{v}, {recipe}, {len(set(run.seed))} seeds")
            ax.fill_between(curve.index, curve["mean"] - curve["half_interval"], curve["mean"] + curve["half_interval"],
                            color=color, alpha=0.15, lw=0)
    ax.plot([tutorial["epochs"]], [tutorial["accuracy"]], "*", ms=14, color="black",
            label=f"{tutorial['variant']}, t3f tutorial (one run)")
    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 3, 5, 10, 20, 35) if t <= max(sgd_rows.epoch.max(), adam_rows.epoch.max())]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks])
    low = min(*(rows.groupby(["variant", "epoch"]).test_accuracy.mean().min() for rows in (sgd_rows, adam_rows)),
              tutorial["accuracy"])
    ax.set_ylim(max(low - 0.5, 80), 99)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("t3f's tensor-train net beside two_kron, two recipes")
    fig.tight_layout()
    return legend_below(fig, ax, ncols=1)
