"""Every figure of the write-up, and how one is saved and shown with its caption and alt text.
"""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch

from .experiments import PARETO_ZOOM, T3F_TUTORIAL
from .paths import project_path
from .stats import final_epochs, half_interval, mean_interval, pareto_front, variant_family


METRIC_LABELS = {"test_accuracy": "test accuracy (%)", "test_loss": "test loss (mean NLL)",
                 "train_loss": "training loss (mean NLL)", "seconds": "seconds per epoch"}


#: Figures are drawn at most this wide (inches) with no text under MIN_FONT_PT points: shown at a phone's
#: 366 px column that keeps text at 7 px or more, and at the laptop column at 9 px or more.
FIGURE_WIDTH = 6.4
MIN_FONT_PT = 9.5
#: One colour and marker per kind of layer, on both pages: dense black squares, Kronecker blue, low-rank
#: orange, tensor train green (markers tell the Kronecker families apart).
KIND_STYLE = {"dense": ("black", "s"), "Kronecker, 2 factors": ("tab:blue", "o"),
              "Kronecker, 2 tied": ("tab:blue", "D"), "Kronecker, 4": ("tab:blue", "v"),
              "Kronecker input": ("tab:blue", "X"), "low-rank": ("tab:orange", "^"), "tensor train": ("tab:green", "P")}


def family_style(family: str) -> tuple[str, str]:
    """(colour, marker) of a family label of :func:`stats.variant_family`, by the first key it starts with."""
    return next((style for key, style in KIND_STYLE.items() if family.startswith(key)), ("0.4", "o"))


def set_style() -> None:
    """The write-up's matplotlib style: seaborn's whitegrid, every font at least :data:`MIN_FONT_PT`."""
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="notebook", rc={
        "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": MIN_FONT_PT,
        "ytick.labelsize": MIN_FONT_PT, "legend.fontsize": MIN_FONT_PT, "legend.title_fontsize": 10,
        "figure.titlesize": 11, "figure.figsize": (FIGURE_WIDTH, 4)})


def styled(table: pd.DataFrame, hide_index: bool = True, **formats):
    """``table.style`` for display, its HTML id derived from the content (stable across rebuilds);
    ``formats`` go to Styler.format (e.g. precision=2, na_rep="–")."""
    uid = hashlib.sha256(table.to_csv().encode()).hexdigest()[:8]
    style = table.style.set_uuid(uid).format(**formats)
    return style.hide(axis="index") if hide_index else style


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


def legend_below(fig, ax, ncols: int = 2):
    """Move ``ax``'s legend under the whole figure, outside every axes, so that it never sits on data; the saved
    image (``bbox_inches="tight"``) grows to hold it. Call after the layout is done. Returns ``fig``."""
    legend = ax.get_legend()
    if legend is not None:  # seaborn's handles carry the styles set on them (the dashed baseline)
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        legend.remove()
    else:
        handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=ncols, frameon=False)
    return fig


PNG_DPI = 150


def save_figure(fig, name: str, figures_dir: str | Path = "figures") -> list[Path]:
    """Save ``fig`` as <figures_dir>/<name>.png and .svg (no dates, fixed ids: reruns give identical files)."""
    import matplotlib
    folder = project_path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "svg")]
    matplotlib.rcParams["svg.hashsalt"] = "kron-report"
    for path in paths:
        fig.savefig(path, dpi=PNG_DPI if path.suffix == ".png" else None, bbox_inches="tight",
                    metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths


_figure_numbers = itertools.count(1)  # one notebook kernel shows one page part; render_html renumbers the page


def show_figure(fig, name: str, figures_dir: str | Path, text: tuple[str, str]):
    """Save ``fig`` (:func:`save_figure`) and display it as a numbered, captioned figure with alt text.

    ``text`` is (caption, alt text), as the functions of :mod:`prose` return them. Figures are numbered in
    the order they are shown (:func:`render.render_html` numbers them again across a merged page). Returns an
    IPython HTML object: the PNG inline as a data URI inside <figure>, with the alt text for readers who
    cannot see it and the caption after "Figure <number>.".
    """
    import base64
    import html
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    caption, alt = text
    number = next(_figure_numbers)
    png = save_figure(fig, name, figures_dir)[0]
    smallest = min_font_pt(fig)
    plt.close(fig)
    width_in = int.from_bytes(png.read_bytes()[16:20], "big") / PNG_DPI  # the IHDR width of the saved PNG
    data = base64.b64encode(png.read_bytes()).decode()
    return HTML(f'<figure class="article-figure" id="figure-{number}"><img src="data:image/png;base64,{data}" '
                f'data-min-font-pt="{smallest:g}" data-width-in="{width_in:.3f}" '
                f'alt="{html.escape(alt, quote=True)}"><figcaption><b>Figure {number}.</b> {caption}</figcaption>'
                "</figure>")


def min_font_pt(fig) -> float:
    """The smallest font size (points) of any visible, non-empty text of ``fig``."""
    from matplotlib.text import Text
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=MIN_FONT_PT)


def _dot_rows(ax, nets: Sequence[str], means, errors, labels: Sequence[str]) -> None:
    """One row per net, bottom to top: its mean as a dot in its family's colour and marker, ± ``errors`` as a bar,
    and ``labels`` as the row names (tick labels, so they never overprint)."""
    for i, (net, mean, error) in enumerate(zip(nets, means, errors)):
        color, marker = family_style(variant_family(net))
        ax.errorbar([mean], [i], xerr=[error], fmt=marker, color=color, ecolor="0.3", capsize=3, ms=6)
    ax.set_yticks(range(len(nets)), labels)


def headline_figure(rows: pd.DataFrame):
    """Final accuracy of each net as a dot with its 95% t-interval over seeds, nets sorted by accuracy."""
    import matplotlib.pyplot as plt
    from scipy import stats
    final = final_epochs(rows).groupby("variant")
    table = pd.DataFrame({"mean": final.test_accuracy.mean(), "sem": final.test_accuracy.sem(),
                          "n": final.seed.nunique(), "weights": final.weights.first()}).sort_values("mean")
    half = stats.t.ppf(0.975, table.n - 1) * table["sem"]
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 0.45 * len(table) + 1.2))
    _dot_rows(ax, table.index, table["mean"], half, [f"{v} ({w:,} weights)" for v, w in zip(table.index, table.weights)])
    ax.set_xlabel(f"final test accuracy (%): mean, 95% CI over {table.n.min()} seeds")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Black squares: dense; blue: with Kronecker layers")
    fig.tight_layout()
    return fig


def accuracy_curves_figure(rows: pd.DataFrame):
    """Test accuracy by epoch of every variant, and below it a zoom on the top three (stacked for phones)."""
    import matplotlib.pyplot as plt
    fig, (full, zoom) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 8))
    plot_curves(rows, "test_accuracy", ax=full, title="Test accuracy by epoch (mean over seeds, band: 95% CI)")
    plot_curves(rows, "test_accuracy", ax=zoom, title="Zoom: the top of the plot above")
    final = final_epochs(rows).groupby("variant").test_accuracy.mean().sort_values()
    top = final.iloc[-min(3, len(final)):]
    zoom.set_ylim(top.min() - 1.2, final.max() + 0.4)
    zoom.set_xlim(max(1, rows.epoch.max() // 7), rows.epoch.max())
    zoom.get_legend().remove()
    fig.tight_layout()
    return legend_below(fig, full)


def loss_curves_figure(rows: pd.DataFrame):
    """Test loss by epoch of every variant, log scale."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 4.5))
    plot_curves(rows, "test_loss", ax=ax, title="Test loss by epoch (mean over seeds, band: 95% CI)")
    ax.set_yscale("log")
    fig.tight_layout()
    return legend_below(fig, ax)


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
    _dot_rows(ax, top_points.index, top_points["mean"], top_points["half"].fillna(0),
              [f"{v} ({w:,})" for v, w in zip(top_points.index, top_points.weights)])
    ax.set_xlabel("test accuracy (%), mean and 95% CI over seeds")
    ax.set_title(f"Nets up to {PARETO_ZOOM['weights']:,} weights within {PARETO_ZOOM['points']:g} points of the best")
    ax.grid(axis="y", alpha=0.2)
    fig.tight_layout()
    return legend_below(fig, axes[0], ncols=1)


def projection_figure(gaps: pd.DataFrame):
    """Per Kronecker rank: the projected and fine-tuned nets minus the same structure trained from scratch, for
    as many epochs and for the full run, with 95% Welch intervals (from :func:`experiments.projection_gaps`)."""
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
        _dot_rows(ax, sub.index, sub["mean"], sub["half_interval"].fillna(0), sub.index)
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


def growth_figure(big: torch.Tensor, factors: int):
    """The self-similar pattern of a repeated Kronecker power."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(big, cmap="Greys", interpolation="nearest")
    ax.set_title(f"G ⊗ G ⊗ ... ⊗ G ({factors} factors):\n{big.shape[0]} × {big.shape[1]} from "
                 f"{big.numel() ** (1 / factors):.0f} numbers")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    return fig


def receptive_fields_figure(fields: torch.Tensor, epochs: int, step: int = 5):
    """A grid of receptive fields (25, 25, 28, 28) of a trained Kronecker layer, every ``step``-th unit, on one shared
    colour scale with its colour bar (so fields can be compared with each other)."""
    import matplotlib.pyplot as plt
    picks = range(0, fields.shape[0], step)
    shown = fields[list(picks)][:, list(picks)]
    limit = float(shown.abs().max())
    fig, axes = plt.subplots(len(picks), len(picks), figsize=(FIGURE_WIDTH, FIGURE_WIDTH + 1.3))
    for ax, (a, b) in zip(axes.flat, [(a, b) for a in picks for b in picks]):
        image = ax.imshow(fields[a, b], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"unit ({a}, {b})", fontsize=MIN_FONT_PT)
        ax.axis("off")
    fig.suptitle(f"{len(picks) ** 2} hidden units of two_kron after {epochs} epoch{'s' if epochs != 1 else ''}:\n"
                 "each is U[a, :]ᵀ · V[b, :], a rank-1 filter (red +, blue −)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    bar = fig.colorbar(image, ax=list(axes.flat), orientation="horizontal", fraction=0.04, pad=0.02, aspect=40)
    bar.set_label("weight, one scale for all units")
    return fig


def tied_symmetry_figure(image: torch.Tensor, hidden: torch.Tensor, hidden_of_transposed: torch.Tensor):
    """A digit, its transpose, the two 25x25 hidden maps of a tied layer, and below them two differences on one
    symmetric colour scale: the map of Xᵀ minus the map of X (far from zero: transposing changes the map) and minus
    the map of X transposed (zero up to float rounding: the equivariance)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 2, figsize=(FIGURE_WIDTH * 0.8, FIGURE_WIDTH * 1.3), layout="constrained")
    for ax, img, title in zip(axes[:2].flat, [image, image.T, hidden, hidden_of_transposed],
                              ["digit X", "transposed digit Xᵀ", "hidden map H(X) = U·X·Uᵀ", "H(Xᵀ)"]):
        ax.imshow(img, cmap="viridis")
        ax.set_title(title)
        ax.axis("off")
    differences = [hidden_of_transposed - hidden, hidden_of_transposed - hidden.T]
    scale = float(max(d.abs().max() for d in differences)) or 1.0
    for ax, d, title in zip(axes[2], differences, ["H(Xᵀ) − H(X)", "H(Xᵀ) − H(X)ᵀ"]):
        shown = ax.imshow(d, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_title(f"{title}\nlargest |·| {float(d.abs().max()):.2g}")
        ax.axis("off")
    fig.colorbar(shown, ax=axes[2].tolist(), orientation="horizontal", fraction=0.08,
                 label="difference (one scale for both)")
    fig.suptitle("Tied factors (U = V): transposing the input\ntransposes the 25×25 hidden map")
    return fig


def loss_panels_figure(rows: pd.DataFrame):
    """Training loss (top) and test loss (bottom) by epoch of every variant, log scale, stacked for phones: where
    the two part, a net fits its training set better than it generalises."""
    import matplotlib.pyplot as plt
    fig, (train, test) = plt.subplots(2, 1, figsize=(FIGURE_WIDTH, 8.4), sharex=True)
    plot_curves(rows, "train_loss", ax=train, title="Training loss by epoch (mean over seeds, band: 95% CI)")
    plot_curves(rows, "test_loss", ax=test, title="Test loss by epoch")
    for ax in (train, test):
        ax.set_yscale("log")
    test.get_legend().remove()
    fig.tight_layout()
    return legend_below(fig, train)


def permutation_figure(effects: pd.DataFrame):
    """Each net's change in final test accuracy from MNIST to permuted MNIST, with its 95% Welch interval, one
    row per net (from :func:`why.permutation_effects`); dense nets are the control, expected at zero."""
    import matplotlib.pyplot as plt
    table = effects.sort_values("change")
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 0.45 * len(table) + 1.4))
    _dot_rows(ax, table.variant, table.change, table.high - table.change,
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
    own scale (stacked), the chosen recipe filled (from :func:`why.validation_scores` and :func:`why.select_recipes`)."""
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


#: Part 4's arms: one colour and marker per kind of adapter; the references as horizontal lines.
ADAPTER_STYLE = {"lora": ("tab:orange", "^", "LoRA (peft)"), "lokr": ("tab:green", "s", "LoKr (peft)"),
                 "kronsum": ("tab:blue", "o", "Kronecker sum (ours)")}
REFERENCE_STYLE = {"full": ("black", "-", "full fine-tuning of fc1"), "scratch": ("0.45", "--", "from scratch"),
                   "head": ("tab:red", ":", "head only (linear probe)")}


def budget_figure(results: pd.DataFrame):
    """Final test accuracy against the adapter's trainable weights (log scale), one line per adapter kind with
    95% t-intervals, and the references (head only, full fine-tuning, scratch) as horizontal lines with their
    interval as a band; the legend sits below the axes, off the data (from :func:`adapters.arm_results`)."""
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
                             "Fashion-MNIST test accuracy (%)", "Mean and 95% CI over seeds, each arm at its own "
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
    sum of each rank (lines, mean over seeds, from :func:`adapters.best_fit_errors`), and what each trained
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
