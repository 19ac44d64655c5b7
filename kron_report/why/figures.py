"""The 'why' page's figures: the effect of permuted pixels, the permuted nets' receptive fields, the recipes.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import pandas as pd
import torch

from ..stats import variant_family
from ..style import FIGURE_WIDTH, MIN_FONT_PT, dot_rows, family_style

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


def recipe_figure(scores: pd.DataFrame, chosen: pd.Series):
    """Final validation accuracy (mean and 95% t-interval over seeds) of each net under each recipe, one panel per net with its
    own scale (stacked), the chosen recipe filled (from :func:`recipes.validation_scores` and :func:`recipes.select_recipes`)."""
    import matplotlib.pyplot as plt
    nets = list(dict.fromkeys(scores.variant))
    recipes = list(dict.fromkeys(scores.recipe))
    fig, axes = plt.subplots(len(nets), 1, figsize=(FIGURE_WIDTH, 1.25 * len(nets) + 1.3), sharex=True, squeeze=False)
    for ax, net in zip(axes[:, 0], nets):
        part = scores[scores.variant == net].set_index("recipe").reindex(recipes)
        color, marker = family_style(variant_family(net))
        for i, (recipe, r) in enumerate(part.iterrows()):
            ax.errorbar([i], [r["mean"]], yerr=[0 if pd.isna(r["half"]) else r["half"]], fmt=marker, ms=7, capsize=3,
                        color=color, mfc=color if recipe == chosen[net] else "white")
        ax.set_ylabel(net, rotation=0, ha="right", va="center")
        ax.grid(axis="x", alpha=0.2)
    axes[-1, 0].set_xticks(range(len(recipes)), [r.replace(", lr ", "\n") for r in recipes])
    axes[0, 0].set_title("Validation accuracy (%), mean and 95% CI; filled: chosen")
    fig.tight_layout()
    return fig
