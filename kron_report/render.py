"""Executing the notebooks with papermill and rendering them as one self-contained HTML article.
"""
from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

from .paths import NOTEBOOK_PARAMETERS, NOTEBOOKS, ROOT, is_full_run, project_path
from .store import atomic_write

__all__ = ["execute_notebook", "normalize_notebook", "ARTICLE_TEMPLATE", "FIGURE_NUMBER", "number_figures",
           "render_html", "PAGES", "render_page"]


def execute_notebook(notebook: str | Path, parameters: Mapping | None = None, output: str | Path | None = None) -> Path:
    """Run a notebook with papermill in place (or to ``output``), its cell output streamed to our stdout,
    then :func:`normalize_notebook` it.

    Used by the Makefile instead of ``papermill --stdout-file /dev/stdout``, which truncates a
    redirected log file.
    """
    import papermill
    notebook = project_path(notebook)
    output = project_path(output) if output else notebook
    parameters = dict(parameters or {})
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(ROOT), stdout_file=sys.stdout, stderr_file=sys.stderr)
    full = notebook.stem in NOTEBOOK_PARAMETERS and is_full_run(notebook.stem, parameters)
    return normalize_notebook(output, drop_parameters=full)


def normalize_notebook(path: str | Path, drop_parameters: bool = False) -> Path:
    """Strip what changes from one run, folder or machine to the next, so that rebuilding an unchanged tree
    in any folder changes no file: papermill's metadata (absolute input and output paths, timestamps,
    parameters, its version), the Python version, execution metadata, random cell ids (numbered instead),
    and progress-bar redraws in stream outputs (only the last state of each line is kept).
    ``drop_parameters`` also removes papermill's injected-parameters cell (for a run of the defaults)."""
    import nbformat
    path = project_path(path)
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    if drop_parameters:
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "outputs" in cell:
            cell.outputs = _merged_streams(cell.outputs)
    nbformat.write(nb, str(path))
    return path


def _merged_streams(outputs: list) -> list:
    """Consecutive stream outputs of one name joined, each line reduced to its text after the last \\r."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("name") == out["name"]:
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = "\n".join(line.rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
        elif "text/plain" in out.get("data", {}):  # reprs such as '<Styler at 0x7f...>' carry an address
            out["data"]["text/plain"] = re.sub(r" at 0x[0-9a-f]+>", ">", out["data"]["text/plain"])
    return merged


ARTICLE_TEMPLATE = ROOT / "report" / "article.html.j2"


FIGURE_NUMBER = re.compile(r'(<figure class="article-figure" id="figure-)\d+(">.*?<figcaption><b>Figure )\d+(\.</b>)',
                           re.DOTALL)


def number_figures(cells: list) -> int:
    """Number the figures of merged notebooks 1, 2, ... in the order they appear (ids and captions alike);
    return how many there are."""
    numbers = itertools.count(1)

    def renumber(match: re.Match) -> str:
        number = next(numbers)
        return f"{match[1]}{number}{match[2]}{number}{match[3]}"
    for cell in cells:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html")
            if html is not None:
                out["data"]["text/html"] = FIGURE_NUMBER.sub(renumber, "".join(html))
    return next(numbers) - 1


def render_html(notebooks: Sequence[str | Path], output: str | Path, title: str, description: str = "") -> Path:
    """One self-contained HTML page from executed notebooks, as an article.

    The page loads nothing from the network (no MathJax, require.js or widget scripts: it shows no
    math), images are inline, code of cells tagged ``hide-input`` is hidden, code of cells tagged ``show-input``
    is shown (the few cells whose code makes the point), and every other code cell is folded into a "Show code" block, cells tagged ``parameters``, ``remove-cell`` or papermill's
    ``injected-parameters`` are dropped, and both pages share a navigation bar.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor, TagRemovePreprocessor

    merged = nbformat.v4.new_notebook(metadata=nbformat.read(str(project_path(notebooks[0])), as_version=4).metadata)
    for path in notebooks:
        merged.cells.extend(nbformat.read(str(project_path(path)), as_version=4).cells)
    for number, cell in enumerate(merged.cells):
        cell.id = f"cell-{number}"  # unique across the merged notebooks, and the same on every rebuild
    number_figures(merged.cells)
    output = project_path(output)
    merged.metadata.update(title=title, description=description, page=output.name)
    exporter = HTMLExporter(template_name="lab", template_file=str(ARTICLE_TEMPLATE), exclude_input_prompt=True,
                            exclude_output_prompt=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    exporter.register_preprocessor(TagRemovePreprocessor(
        remove_cell_tags={"injected-parameters", "parameters", "remove-cell"}), enabled=True)
    body, _ = exporter.from_notebook_node(merged)
    return atomic_write(output, body.encode())


#: The article's pages: each page's notebooks in reading order, and its title.
PAGES = {"kronecker_report": (("00_article",), "Shrinking an MLP with Kronecker products"),
         "kronecker": (("01_kronecker_product",), "The Kronecker layer, step by step"),
         "retest": (("03_report",), "The 2018 experiment, retested: every verdict"),
         "beyond": (("04_beyond",), "How far can Kronecker layers go?"),
         "why": (("05_why",), "Why does a Kronecker layer work?"),
         "adapters": (("06_adapters",), "Kronecker adapters against LoRA, where pre-training helps")}


def render_page(page: str, notebooks_dir: str | Path = NOTEBOOKS, output_dir: str | Path = "report") -> Path:
    """Render ``page`` of :data:`PAGES` from its executed notebooks in ``notebooks_dir`` to <output_dir>/<page>.html."""
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; the pages are {', '.join(PAGES)}")
    names, title = PAGES[page]
    return render_html([Path(notebooks_dir) / f"{name}.ipynb" for name in names],
                       project_path(output_dir) / f"{page}.html", title)
