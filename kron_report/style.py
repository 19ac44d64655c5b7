"""The figure style every page shares: sizes, fonts, colours per family, the legend placement, and how a figure is
saved and shown with its caption and alt text. Each page's ``figures`` draws its own plots with it.
"""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Sequence

import pandas as pd

from .paths import project_path
from .stats import variant_family

__all__ = ["METRIC_LABELS", "FIGURE_WIDTH", "MIN_FONT_PT", "KIND_STYLE", "family_style", "set_style", "styled",
           "legend_below", "legend_beside", "PNG_DPI", "save_figure", "show_figure", "min_font_pt", "dot_rows"]


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
              "Kronecker input": ("tab:blue", "X"), "low-rank": ("tab:orange", "^"), "tensor train": ("tab:green", "P"),
              "Monarch": ("tab:purple", "h")}


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


def legend_beside(fig, ax):
    """Move ``ax``'s legend to the right of ``ax``, outside it and level with its top: beside the first panel of a
    stacked figure, where the reader looks first, and never on the data. The axes shrink to make room, so the figure
    keeps its width (and its text its size on a phone). Call after the layout is done. Returns ``fig``."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        legend = ax.get_legend()
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        legend.remove()
    legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False, borderaxespad=0)
    fig.canvas.draw()
    share = (legend.get_window_extent().width + 0.2 * fig.dpi) / fig.bbox.width
    fig.tight_layout(rect=(0, 0, 1 - share, 1))
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

    ``text`` is (caption, alt text), as each page's ``prose`` functions return them. Figures are numbered in
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


def dot_rows(ax, nets: Sequence[str], means, errors, labels: Sequence[str]) -> None:
    """One row per net, bottom to top: its mean as a dot in its family's colour and marker, ± ``errors`` as a bar,
    and ``labels`` as the row names (tick labels, so they never overprint)."""
    for i, (net, mean, error) in enumerate(zip(nets, means, errors)):
        color, marker = family_style(variant_family(net))
        ax.errorbar([mean], [i], xerr=[error], fmt=marker, color=color, ecolor="0.3", capsize=3, ms=6)
    ax.set_yticks(range(len(nets)), labels)
