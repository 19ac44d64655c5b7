"""Every figure of the write-up, and how one is saved and shown with its caption and alt text.
"""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch

from .experiments import PARETO_ZOOM, T3F_TUTORIAL, T3F_VARIANTS, projection_rank
from .paths import project_path
from .stats import DENSE, final_epochs, pareto_front, variant_family


METRIC_LABELS = {"test_accuracy": "test accuracy (%)", "test_loss": "test loss (mean NLL)",
                 "train_loss": "training loss (mean NLL)", "seconds": "seconds per epoch"}


def styled(table: pd.DataFrame, hide_index: bool = True, **formats):
    """``table.style`` for display, its HTML id derived from the content (stable across rebuilds);
    ``formats`` go to Styler.format (e.g. precision=2, na_rep="–")."""
    uid = hashlib.sha256(table.to_csv().encode()).hexdigest()[:8]
    style = table.style.set_uuid(uid).format(**formats)
    return style.hide(axis="index") if hide_index else style


def plot_curves(rows: pd.DataFrame, metric: str = "test_accuracy", ax=None, hue: str = "variant",
                baseline: str | None = "width10", title: str | None = None):
    """``metric`` against epoch, one line per ``hue`` value: the seed mean with a min-max band.

    The ``baseline`` variant, if present, is drawn black and dashed so it stands out.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    order = list(dict.fromkeys(rows[hue]))
    palette = dict(zip(order, sns.color_palette("tab10", len(order))))
    if baseline in palette:
        palette[baseline] = (0, 0, 0)
    sns.lineplot(rows, x="epoch", y=metric, hue=hue, hue_order=order, palette=palette,
                 errorbar=("pi", 100), estimator="mean", ax=ax)
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
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} by epoch (line: seed mean, band: min-max over seeds)")
    ax.grid(alpha=0.3)
    return ax


def save_figure(fig, name: str, figures_dir: str | Path = "figures") -> list[Path]:
    """Save ``fig`` as <figures_dir>/<name>.png and .svg (no dates, fixed ids: reruns give identical files)."""
    import matplotlib
    folder = project_path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "svg")]
    matplotlib.rcParams["svg.hashsalt"] = "kron-report"
    for path in paths:
        fig.savefig(path, dpi=150 if path.suffix == ".png" else None, bbox_inches="tight",
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
    plt.close(fig)
    data = base64.b64encode(png.read_bytes()).decode()
    return HTML(f'<figure class="article-figure" id="figure-{number}"><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(alt, quote=True)}"><figcaption><b>Figure {number}.</b> {caption}</figcaption>'
                "</figure>")


def _label_points(ax, points: pd.DataFrame, x: str, y: str, **text) -> None:
    """Name every point next to it, moved by adjustText so that no label overprints another or a point."""
    from adjustText import adjust_text
    labels = [ax.text(p[x], p[y], name, **text) for name, p in points.iterrows()]
    if labels:
        adjust_text(labels, x=points[x].to_numpy(float), y=points[y].to_numpy(float), ax=ax, iter_lim=300,
                    expand=(1.4, 1.8), force_text=(0.3, 0.6), force_static=(0.3, 0.6),
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5))  # a fixed count, not its 1 s default:


def headline_figure(rows: pd.DataFrame):
    """Final accuracy of each net as a dot with its 95% t-interval over seeds, nets sorted by accuracy."""
    import matplotlib.pyplot as plt
    from scipy import stats
    final = final_epochs(rows).groupby("variant")
    table = pd.DataFrame({"mean": final.test_accuracy.mean(), "sem": final.test_accuracy.sem(),
                          "n": final.seed.nunique(), "weights": final.weights.first()}).sort_values("mean")
    half = stats.t.ppf(0.975, table.n - 1) * table["sem"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    dense = [variant_family(v) == DENSE for v in table.index]
    ax.errorbar(table["mean"], range(len(table)), xerr=half, fmt="none", ecolor="0.3", capsize=3)
    ax.scatter(table["mean"], range(len(table)), c=["black" if d else "tab:blue" for d in dense],
               marker="s", zorder=3)
    ax.set_yticks(range(len(table)), [f"{v} ({w:,} weights)" for v, w in zip(table.index, table.weights)])
    ax.set_xlabel(f"final test accuracy (%), mean and 95% CI over {table.n.min()} seeds")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Squares: black dense, blue with Kronecker layers", fontsize=10)
    fig.tight_layout()
    return fig


def accuracy_curves_figure(rows: pd.DataFrame):
    """Test accuracy by epoch of every variant, and a zoom on the top three."""
    import matplotlib.pyplot as plt
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(15, 5))
    plot_curves(rows, "test_accuracy", ax=full, title="Test accuracy by epoch")
    plot_curves(rows, "test_accuracy", ax=zoom, title="Zoom: the top of the accuracy plot")
    final = final_epochs(rows).groupby("variant").test_accuracy.mean().sort_values()
    top = final.iloc[-min(3, len(final)):]
    zoom.set_ylim(top.min() - 1.2, final.max() + 0.4)
    zoom.set_xlim(max(1, rows.epoch.max() // 7), rows.epoch.max())
    zoom.get_legend().remove()
    fig.suptitle("MNIST, 2018 pytorch/examples recipe: accuracy of the post's nets (mean over seeds, band = min-max)")
    fig.tight_layout()
    return fig


def loss_curves_figure(rows: pd.DataFrame):
    """Test loss by epoch of every variant, log scale."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5))
    plot_curves(rows, "test_loss", ax=ax, title="Test loss by epoch (mean over seeds, band = min-max)")
    ax.set_yscale("log")
    fig.tight_layout()
    return fig


def accuracy_vs_weights_figure(points: pd.DataFrame, epochs: int):
    """Final accuracy (± sd) against weight count, dense nets as squares and Kronecker nets as circles."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, p in points.iterrows():
        dense = p.family == DENSE
        ax.errorbar(p.weights, p["mean"], yerr=p["std"], fmt="s" if dense else "o", ms=8, capsize=4,
                    color="black" if dense else "tab:blue")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    _label_points(ax, points, "weights", "mean", fontsize=10)
    ax.set_xlabel("weights (log scale; biases excluded, as in the post)")
    ax.set_ylabel(f"final test accuracy (%), epoch {epochs}")
    ax.set_title("Accuracy against weight count (squares: dense nets, circles: Kronecker nets)")
    fig.tight_layout()
    return fig


def pareto_figure(points: pd.DataFrame, epochs: int, dataset: str):
    """All nets on the accuracy-weights plane by family with each family's Pareto frontier, and a zoom."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    families = list(dict.fromkeys(points.family))
    palette = dict(zip(families, sns.color_palette("tab10", len(families))))
    markers = dict(zip(families, "sDo^vP*X"))
    floor = max(points["mean"].min() - 1, 80)
    small = points[points.weights <= PARETO_ZOOM["weights"]]
    top_points = small[small["mean"] >= points["mean"].max() - PARETO_ZOOM["points"]]
    if top_points.empty:  # every small net is far behind the best: zoom on the best small ones instead
        top_points = small[small["mean"] >= small["mean"].max() - PARETO_ZOOM["points"]]
    fig, axes = plt.subplots(1, 2, figsize=(16, 6.5))
    for ax, shown in zip(axes, [points, top_points]):
        for family, members in shown.groupby("family", sort=False):
            ax.errorbar(members.weights, members["mean"], yerr=members["std"], fmt=markers[family], ms=7,
                        capsize=3, color=palette[family], label=family)
            front = pareto_front(points[points.family == family])
            ax.plot(front.weights, front["mean"], "-", color=palette[family], alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("weights (log scale, biases excluded)")
        ax.set_ylabel(f"final test accuracy (%), epoch {epochs}")
    below = points[points["mean"] < floor]
    shown = points[points["mean"] >= floor]
    axes[0].set_ylim(floor, (shown["mean"] + shown["std"]).max() + 0.3)
    axes[0].set_title("All nets" + (f" ({', '.join(below.index)} below {floor:.0f}%, off the axis)" if len(below) else ""))
    axes[1].set_xlim(top_points.weights.min() / 1.3, top_points.weights.max() * 1.5)
    axes[1].set_ylim((top_points["mean"] - top_points["std"]).min() - 0.15,
                     (top_points["mean"] + top_points["std"]).max() + 0.15)  # every error bar whole
    _label_points(axes[1], top_points, "weights", "mean", fontsize=8)
    _label_points(axes[0], shown.drop(top_points.index), "weights", "mean", fontsize=8)
    axes[1].set_title(f"Zoom: nets up to {PARETO_ZOOM['weights']:,} weights within {PARETO_ZOOM['points']:g} points "
                      "of the best")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{dataset}: accuracy against weight count, by family (mean ± sd over seeds; lines: Pareto frontiers)")
    fig.tight_layout()
    return fig


def projection_figure(projected: pd.DataFrame, scratch: pd.DataFrame, finetune_epochs: int):
    """Accuracy by epoch of the projected nets while fine-tuned, against the same structures from scratch."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator
    curves = pd.concat([projected.assign(start="projected from the trained dense net"),
                        scratch[scratch.epoch <= finetune_epochs].assign(start="from scratch")])
    curves["rank"] = curves.variant.map(lambda v: f"rank {projection_rank(v)}")
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(curves, x="epoch", y="test_accuracy", hue="rank", style="start", markers=True,
                 errorbar=("pi", 100), ax=ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Nearest Kronecker sum of a trained layer, fine-tuned, against training from scratch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlabel("epoch (0 = right after projection)")
    fig.tight_layout()
    return fig


def dataset_comparison_figure(finals: pd.DataFrame, datasets: Sequence[str], variants: Sequence[str]):
    """Final accuracy of each net on each dataset as dots with ± 1 sd bars (no truncated bars)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5), squeeze=False)
    for ax, name in zip(axes[0], datasets):
        sub = finals[finals.dataset == name]
        sns.pointplot(sub, y="variant", x="test_accuracy", order=list(variants), errorbar="sd", linestyle="none",
                      capsize=0.3, ax=ax, color="tab:blue")
        ax.set_title(f"{name}: final test accuracy (dots: mean, bars: ± 1 sd over seeds)")
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def t3f_figure(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL):
    """Test accuracy per epoch of the tutorial's TT net and two_kron under both recipes on one set of axes
    (mean over seeds, band ± 1 sd; log epoch axis so that the 3 Adam epochs are visible), and the tutorial's point."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import FixedLocator, NullLocator
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = dict(zip(T3F_VARIANTS, sns.color_palette("tab10", len(T3F_VARIANTS))))
    for rows, recipe, style in [(sgd_rows, "SGD (post)", "-"), (adam_rows, "Adam (t3f)", "--")]:
        for v, run in rows.groupby("variant", sort=False):
            curve = run.groupby("epoch").test_accuracy.agg(["mean", "std"]).fillna(0)
            ax.plot(curve.index, curve["mean"], style, marker="o" if recipe.startswith("Adam") else None, ms=5,
                    color=colors.get(v, "0.3"), label=f"{v}, {recipe}, {len(set(run.seed))} seeds")
            ax.fill_between(curve.index, curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                            color=colors.get(v, "0.3"), alpha=0.15, lw=0)
    ax.plot([tutorial["epochs"]], [tutorial["accuracy"]], "*", ms=15, color="black",
            label=f"{tutorial['variant']} in the t3f tutorial (Keras, one run), as reported")
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
    ax.set_title("The t3f tutorial's tensor-train net beside the post's two_kron, two recipes")
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def growth_figure(big: torch.Tensor, factors: int):
    """The self-similar pattern of a repeated Kronecker power."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(big, cmap="Greys", interpolation="nearest")
    ax.set_title(f"G ⊗ G ⊗ ... ⊗ G ({factors} factors): {big.shape[0]} × {big.shape[1]} from {big.numel() ** (1 / factors):.0f} numbers")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    return fig


def receptive_fields_figure(fields: torch.Tensor, epochs: int, step: int = 5):
    """A grid of receptive fields (25, 25, 28, 28) of a trained Kronecker layer, every ``step``-th unit."""
    import matplotlib.pyplot as plt
    picks = range(0, fields.shape[0], step)
    fig, axes = plt.subplots(len(picks), len(picks), figsize=(8, 8))
    for ax, (a, b) in zip(axes.flat, [(a, b) for a in picks for b in picks]):
        field = fields[a, b]
        ax.imshow(field, cmap="RdBu_r", vmin=-field.abs().max(), vmax=field.abs().max())
        ax.set_title(f"unit ({a}, {b})", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Receptive fields of {len(picks) ** 2} hidden units of two_kron after {epochs} "
                 f"epoch{'s' if epochs != 1 else ''}\n"
                 "each is U[a, :]ᵀ · V[b, :]: a separable, rank-1 filter (red +, blue −)")
    fig.tight_layout()
    return fig


def tied_symmetry_figure(image: torch.Tensor, hidden: torch.Tensor, hidden_of_transposed: torch.Tensor):
    """A digit, its transpose, and the two 25x25 hidden maps of a tied layer."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
    for ax, img, title in zip(axes, [image, image.T, hidden, hidden_of_transposed],
                              ["digit X", "transposed digit Xᵀ", "hidden map U·X·Uᵀ", "hidden map of Xᵀ = its transpose"]):
        ax.imshow(img, cmap="viridis")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle("Tied factors (U = V): transposing the input transposes the 25×25 hidden map")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
