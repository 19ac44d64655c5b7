"""Part 1, the explainer: the transpose symmetry, the layer's source listing, the speed sentence, and the
growth, receptive-field and tied-symmetry figures with their captions.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import torch
from torch import nn

from ..style import FIGURE_WIDTH, MIN_FONT_PT
from ..words import count, epochs_phrase, join_words, number_word

__all__ = ["transpose_images", "transpose_permutation", "transpose_changes_prediction", "source_listing",
           "bench_sentence", "growth_caption", "receptive_fields_caption", "symmetry_caption",
           "growth_figure", "receptive_fields_figure", "tied_symmetry_figure"]


def transpose_images(x: torch.Tensor) -> torch.Tensor:
    """Each flattened 28x28 image of ``x`` (N, 784) transposed (rows become columns)."""
    side = ku.IMAGE_FACTORS
    return x.reshape(-1, *side).transpose(-1, -2).reshape(x.shape)


def transpose_permutation(factors: Sequence[int] = ku.HIDDEN_FACTORS) -> torch.Tensor:
    """The index p with h(Xᵀ) = h(X)[p] for a tied Kronecker layer without bias: unit (a, b) -> (b, a)."""
    a, b = factors
    return torch.arange(a * b).reshape(a, b).T.reshape(-1)


@torch.no_grad()
def transpose_changes_prediction(model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of the images in ``x`` whose predicted class changes when the image is transposed."""
    model.eval()
    return float((model(x).argmax(-1) != model(transpose_images(x)).argmax(-1)).float().mean())


def source_listing(*functions, docstrings: bool = True) -> str:
    """The source of ``functions``, read from their module now (``inspect.getsource``), as one Markdown code block:
    code shown on a page can never drift from the code that ran. ``docstrings=False`` leaves out each docstring (the
    page's prose says it), keeping the signature and the body."""
    import ast
    import inspect

    def listing(f) -> str:
        source = inspect.getsource(f).rstrip()
        if docstrings:
            return source
        node = ast.parse(source).body[0]
        doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(
            getattr(node.body[0], "value", None), ast.Constant) and isinstance(node.body[0].value.value, str) else None
        if doc is None:
            return source
        lines = source.splitlines()
        return "\n".join(lines[:doc.lineno - 1] + lines[doc.end_lineno:])
    return "```python\n" + "\n\n".join(listing(f) for f in functions) + "\n```"


def bench_sentence(record: Mapping | None, mac_ratio: float) -> str:
    """What ``make bench`` measured for the layer, beside the multiply-add ratio; says so when nothing is committed."""
    if record is None:
        return (f"That is {mac_ratio:.1f}× fewer multiply-adds; `make bench` measures the layer and the whole training "
                "step side by side (no measurement is committed yet).")
    got = {r["name"]: r["value"] for r in record["rows"] if r.get("name")}
    speedups = {b: got[f"layer_vs_dense_{b}"] for b in (64, 1000) if f"layer_vs_dense_{b}" in got}
    parts = [f"{v:.1f}× faster at batch {b}" for b, v in speedups.items()]
    dense = (f"One forward and backward pass of the Kronecker layer runs {join_words(parts)} than the dense layer."
             if parts else "")
    gains = (", and the clock gains less, because two small products use the processor less efficiently than one "
             "large one" if speedups and max(speedups.values()) < mac_ratio else "")
    rebuilt = (f" Rebuilding W with `torch.kron` at every step instead, as peft's LoKr does, makes the layer "
               f"{got['layer_vs_rebuilt_64']:.1f}× slower at batch 64." if "layer_vs_rebuilt_64" in got else "")
    epoch = (f" A whole training epoch of `two_kron` runs {got['epoch_vs_examples']:.0f}× faster than the "
             f"pytorch/examples pipeline it reproduces." if "epoch_vs_examples" in got else "")
    return (f"That is {mac_ratio:.1f}× fewer multiply-adds{gains}. {dense}{rebuilt}{epoch} (Measured by `make bench`: "
            f"the median of {count(record['repeats'], 'repeat')} on {record['machine']} with "
            f"{count(record['threads'], 'thread')}, torch {record['torch'].split('+')[0]}, {record['date']}.)")


def growth_caption(factor: "torch.Tensor", big: "torch.Tensor", copies: int) -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of the Kronecker-power figure."""
    rows = ", ".join(f"[{', '.join(f'{v:g}' for v in row)}]" for row in factor.tolist())
    return (f"{number_word(copies).capitalize()} copies of G = [{rows}] under the Kronecker product: a "
            f"{big.shape[0]} × {big.shape[1]} matrix (black: 1).",
            "A square black-and-white fractal of nested triangles, each a smaller copy of the whole.")


def receptive_fields_caption(fields: "torch.Tensor", epochs: int, step: int = 5) -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of :func:`receptive_fields_figure` of ``fields`` (a, b, rows, columns)."""
    side, units = len(range(0, fields.shape[0], step)), fields.shape[0] * fields.shape[1]
    return (f"Receptive fields of {side * side} of the {units} hidden units of two_kron after {epochs_phrase(epochs)} "
            "of training, on one colour scale (red positive, blue negative). Each is the outer product of a row of U "
            "and a row of V, so the structure repeats along the grid: the units in one row of it share U's row a, "
            "which sets how the field varies down the image, and those in one column share V's row b, which sets "
            "how it varies across.",
            f"A {side} by {side} grid of {fields.shape[2]} by {fields.shape[3]} pixel maps in red and blue; every "
            "map is a pattern of horizontal and vertical stripes, with no diagonal strokes.")


def symmetry_caption(hidden: "torch.Tensor", hidden_of_transposed: "torch.Tensor") -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of the tied-symmetry figure, with the two differences it shows."""
    side = f"{ku.HIDDEN_FACTORS[0]} × {ku.HIDDEN_FACTORS[1]}"
    moved = float((hidden_of_transposed - hidden).abs().max())
    return (f"A test digit, its transpose, and the {side} maps of hidden pre-activations of a tied layer (bias "
            f"removed). Bottom, on one colour scale: transposing the digit changes the map (largest change "
            f"{moved:.2f}), but the map of the transposed digit is the transpose of the digit's map (they differ by "
            f"float rounding only).",
            "Six panels: a handwritten digit, the same digit mirrored in its diagonal, two square colour maps that "
            f"are mirror images of each other in the diagonal, and two difference maps: the first with entries up to "
            f"{moved:.2f}, the second blank.")


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
