"""Part 2's figures: the headline dot plot, the accuracy curves and the loss panels (and the train notebook's
curves).
"""
from __future__ import annotations

import pandas as pd

from ..stats import final_epochs, mean_interval
from ..style import FIGURE_WIDTH, METRIC_LABELS, dot_rows, legend_beside

__all__ = ['plot_curves', 'headline_figure', 'accuracy_curves_figure', 'loss_panels_figure']


def plot_curves(rows: pd.DataFrame, metric: str = "test_accuracy", ax=None, hue: str = "variant",
                baseline: str | None = "width10", title: str | None = None):
    """``metric`` against epoch, one line per ``hue`` value: the seed mean with its 95% t-interval as a band
    (:func:`mean_interval`), the convention of every figure with intervals.

    The ``baseline`` variant, if present, is drawn black and dashed so it stands out.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator
    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.5))
    order = list(dict.fromkeys(rows[hue]))
    palette = dict(zip(order, sns.color_palette("tab10", len(order))))
    if baseline in palette:
        palette[baseline] = (0, 0, 0)
    sns.lineplot(rows, x="epoch", y=metric, hue=hue, hue_order=order, palette=palette,
                 errorbar=mean_interval, estimator="mean", ax=ax)
    for line, name in zip(ax.get_lines(), order):
        if name == baseline:
            line.set_linestyle("--")
    if ax.get_legend() is not None:
        for handle, text in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts()):
            if text.get_text() == baseline:
                handle.set_linestyle("--")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} by epoch (line: seed mean, band: 95% CI)")
    ax.grid(alpha=0.3)
    return ax


def headline_figure(rows: pd.DataFrame, name=None):
    """Final accuracy of each net as a dot with its 95% t-interval over seeds, nets sorted by accuracy; ``name`` maps
    a net's code name to the label shown (the code name itself by default)."""
    import matplotlib.pyplot as plt
    from scipy import stats
    final = final_epochs(rows).groupby("variant")
    table = pd.DataFrame({"mean": final.test_accuracy.mean(), "sem": final.test_accuracy.sem(),
                          "n": final.seed.nunique(), "weights": final.weights.first()}).sort_values("mean")
    half = stats.t.ppf(0.975, table.n - 1) * table["sem"]
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 0.55 * len(table) + 1.2))
    label = name or (lambda v: v)
    dot_rows(ax, table.index, table["mean"], half, [f"{label(v)}\n{w:,} weights" for v, w in zip(table.index, table.weights)])
    ax.set_xlabel(f"final test accuracy (%): mean, 95% CI over {table.n.min()} seeds")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Black squares: dense; blue: with Kronecker layers")
    fig.tight_layout()
    return fig


def accuracy_curves_figure(rows: pd.DataFrame):
    """Test accuracy by epoch of every variant, and below it a zoom on the top three (stacked for phones, the legend beside the first panel)."""
    import matplotlib.pyplot as plt
    fig, (full, zoom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 6.6))
    plot_curves(rows, "test_accuracy", ax=full, title="Test accuracy by epoch (mean over seeds, band: 95% CI)")
    plot_curves(rows, "test_accuracy", ax=zoom, title="Zoom: the top of the plot above")
    final = final_epochs(rows).groupby("variant").test_accuracy.mean().sort_values()
    top = final.iloc[-min(3, len(final)):]
    zoom.set_ylim(top.min() - 1.2, final.max() + 0.4)
    zoom.set_xlim(max(1, rows.epoch.max() // 7), rows.epoch.max())
    zoom.get_legend().remove()
    fig.tight_layout()
    return legend_beside(fig, full)


def loss_panels_figure(rows: pd.DataFrame):
    """Training loss (top) and test loss (bottom) by epoch of every variant, log scale, stacked for phones: where
    the two part, a net fits its training set better than it generalises."""
    import matplotlib.pyplot as plt
    fig, (train, test) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 6.6), sharex=True)
    plot_curves(rows, "train_loss", ax=train, title="Training loss by epoch (mean over seeds, band: 95% CI)")
    plot_curves(rows, "test_loss", ax=test, title="Test loss by epoch")
    for ax in (train, test):
        ax.set_yscale("log")
    test.get_legend().remove()
    fig.tight_layout()
    return legend_beside(fig, train)
