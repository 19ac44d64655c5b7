"""The 'why' page's figures: the effect of permuted pixels, the permuted nets' receptive fields, the recipes.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import pandas as pd
import torch

from ..recipes import split_recipe
from ..style import FIGURE_WIDTH, MIN_FONT_PT, dot_rows

__all__ = ['permutation_figure', 'permuted_fields_figure', 'recipe_figure']


def permutation_figure(effects: pd.DataFrame):
    """Each net's change in final test accuracy from MNIST to permuted MNIST, with its 95% Welch interval, one
    row per net (from :func:`why.analysis.permutation_effects`); dense nets are the control, expected at zero."""
    import matplotlib.pyplot as plt
    table = effects.sort_values("change")
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 0.45 * len(table) + 1.4))
    dot_rows(ax, table.variant, table.change, table.high - table.change,
              [f"{v} ({w:,} weights)" for v, w in zip(table.variant, table.weights)])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("permuted minus MNIST, final test accuracy (pp), 95% CI")
    ax.set_title("What a fixed pixel permutation costs each net")
    ax.grid(axis="y", alpha=0.2)
    fig.tight_layout()
    return fig


def permuted_fields_figure(mnist_fields: torch.Tensor, permuted_fields: torch.Tensor, units: Sequence[tuple[int, int]]):
    """Receptive fields (a, b, 28, 28) of the same hidden ``units`` of two_kron trained on MNIST (top rows) and on
    permuted MNIST, put back on the image grid (bottom rows); four units a row."""
    import matplotlib.pyplot as plt
    columns = 4
    rows = -(-len(units) // columns)
    fig = plt.figure(figsize=(FIGURE_WIDTH, 2 * rows * FIGURE_WIDTH / columns + 1.0))
    for sub, fields, title in zip(fig.subfigures(2, 1), (mnist_fields, permuted_fields),
                                  ("trained on MNIST", "trained on permuted MNIST, shown un-permuted")):
        axes = sub.subplots(rows, columns, squeeze=False)
        for ax, (a, b) in itertools.zip_longest(axes.flat, units):
            ax.axis("off")
            if a is None:
                continue
            field = fields[a, b]
            ax.imshow(field, cmap="RdBu_r", vmin=-field.abs().max(), vmax=field.abs().max())
            ax.set_title(f"unit ({a}, {b})", fontsize=MIN_FONT_PT)
        sub.suptitle(f"two_kron {title}")
    return fig


def recipe_figure(scores: pd.DataFrame, chosen: pd.Series, below: float = 2.5):
    """Learning-rate sensitivity: each net's final validation accuracy (mean and 95% t-interval over seeds) against
    the learning rate, one line per recipe family (:func:`recipes.split_recipe`), one panel per net with its own
    scale, the chosen recipe ringed (from :func:`recipes.validation_scores` and :func:`recipes.select_recipes`).
    A point more than ``below`` points under the net's best sits on the panel's floor as a down-pointing triangle."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    parts = scores.assign(**dict(zip(("family", "lr"), zip(*scores.recipe.map(split_recipe)))))
    nets, families = list(dict.fromkeys(parts.variant)), list(dict.fromkeys(parts.family))
    colors = dict(zip(families, sns.color_palette("colorblind", len(families))))
    markers = dict(zip(families, "osD^v<>p"))
    fig, axes = plt.subplots(len(nets), 1, figsize=(FIGURE_WIDTH, 1.45 * len(nets) + 1.5), sharex=True, squeeze=False)
    for ax, net in zip(axes[:, 0], nets):
        part = parts[parts.variant == net]
        floor = part["mean"].max() - below
        for family, rows in part.groupby("family", sort=False):
            rows = rows.sort_values("lr")
            shown = rows["mean"].clip(lower=floor)
            ax.plot(rows.lr, shown, color=colors[family], lw=1.2, label=family)
            for r, y in zip(rows.itertuples(), shown):
                off = r.mean < floor
                ax.errorbar([r.lr], [y], yerr=[0 if off or pd.isna(r.half) else r.half], capsize=2,
                            fmt="v" if off else markers[family], ms=6, color=colors[family])
        best = part[part.recipe == chosen[net]].iloc[0]
        ax.plot([best.lr], [best["mean"]], "o", ms=14, mfc="none", mec="black", mew=1.2)
        tops = (part["mean"] + part.half.fillna(0))[part["mean"] >= floor]  # the bars of the points shown
        ax.set_ylim(floor - 0.15, min(100.0, max(part["mean"].max() + 0.3, tops.max() + 0.1)))
        ax.set_xscale("log")
        ax.set_ylabel(net, rotation=0, ha="right", va="center")
        ax.grid(alpha=0.2)
    rates = sorted(parts.lr.unique())
    axes[-1, 0].set_xticks(rates, [f"{r:g}" for r in rates])
    axes[-1, 0].minorticks_off()
    axes[-1, 0].set_xlabel("learning rate")
    handles = {label: h for ax in axes[:, 0] for h, label in zip(*ax.get_legend_handles_labels())}
    height = fig.get_figheight()
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.0),
               title="validation accuracy (%); ringed: the recipe kept")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.85 / height))
    return fig
