"""Part 3's figures: the Pareto plane, the projection, and the t3f curves.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ..stats import half_interval, variant_family
from ..style import FIGURE_WIDTH, family_style, legend_below
from .budgets import pareto_front
from .compression import T3F_TUTORIAL

__all__ = ['PARETO_SPAN', 'pareto_figure', 'projection_figure', 't3f_figure']

#: How many points below the best net the accuracy-weights plane shows.
PARETO_SPAN = 6.0


def pareto_figure(points: pd.DataFrame, epochs: int, dataset: str, axes_x: Sequence[str] = ("weights",)):
    """All nets on the accuracy-weights plane by family, each family's Pareto frontier as a line, one panel per entry
    of ``axes_x`` ('weights', or 'flops' with points from :func:`beyond.budgets.flops_points`), stacked, sharing the
    accuracy axis, one legend below. The axis spans the nets within :data:`PARETO_SPAN` points of the best, so that the
    close ones do not crowd into one strip; nets below it are named in the title. Hollow markers leave the intervals
    visible."""
    import matplotlib.pyplot as plt
    labels = {"weights": "weights (log scale, biases excluded)", "flops": "forward FLOPs per image (log scale)"}
    fig, axes = plt.subplots(len(axes_x), 1, figsize=(FIGURE_WIDTH, 2.6 * len(axes_x) + 0.4), sharey=True,
                             squeeze=False)
    best = points["mean"].max()
    floor = max(points["mean"].min() - 0.3, best - PARETO_SPAN)
    shown = points[points["mean"] >= floor]
    for ax, x in zip(axes[:, 0], axes_x):
        for family, members in points.groupby("family", sort=False):
            color, marker = family_style(family)
            visible = members[members["mean"] >= floor]
            ax.errorbar(visible[x], visible["mean"], yerr=visible["half"].fillna(0), fmt=marker, ms=5, mfc="white",
                        mew=1.3, capsize=2, elinewidth=1.1, color=color, label=family)
            front = pareto_front(members, x=x)
            ax.plot(front[x], front["mean"], "-", color=color, alpha=0.45, lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(labels[x])
        ax.set_ylabel(f"test accuracy (%), epoch {epochs}")
        ax.set_ylim(floor, (shown["mean"] + shown["half"].fillna(0)).max() + 0.2)
        ax.grid(alpha=0.25)
    below = points[points["mean"] < floor].sort_values("mean")
    axes[0, 0].set_title(f"{len(points)} nets by family; lines: Pareto frontiers"
                         + (f"\nbelow {floor:.0f}%, off the axis: {', '.join(below.index)}" if len(below) else ""),
                         fontsize=10)
    fig.tight_layout()
    return legend_below(fig, axes[-1, 0], ncols=2)


def projection_figure(gaps: pd.DataFrame):
    """Per Kronecker rank: the projected and fine-tuned nets minus the same structure trained from scratch, for
    as many epochs and for the full run, with 95% Welch intervals (from :func:`beyond.compression.projection_gaps`)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 2.9))
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


def t3f_figure(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL):
    """Test accuracy per epoch of the tutorial's TT net and two_kron under both recipes on one set of axes
    (mean over seeds, band: its 95% t-interval; log epoch axis so that the 3 Adam epochs are visible), and the
    tutorial's point."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 2.9))
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
