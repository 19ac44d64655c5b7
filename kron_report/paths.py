"""Where the project lives, folder checks that fail before any work, and the one rule that decides
whether a notebook run is the committed configuration, and so may write to results/ and figures/.

The rule: a report notebook's run is *full* when every parameter that changes what the page shows has
its default, as declared in :data:`NOTEBOOK_PARAMETERS` (which a test keeps equal to each notebook's
parameters cell). Only a full run writes to results/ and figures/; any other run writes to the
git-ignored runs/ and still reads the committed runs whose settings match.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

__all__ = ["ROOT", "NOTEBOOKS", "SCRATCH", "COMMITTED", "NOTEBOOK_PARAMETERS", "NEUTRAL_PARAMETERS", "project_path",
           "check_dir", "notebook_parameters", "is_full_run", "output_dirs", "committed_results"]


ROOT = Path(__file__).resolve().parent.parent


NOTEBOOKS = ROOT / "notebooks"


SCRATCH = Path("runs")               # git-ignored: exploratory results, figures and executed notebooks


COMMITTED = ("results", "figures")   # what only a full run may write, relative to the root


#: Each report notebook's parameters with their defaults: its committed configuration.
NOTEBOOK_PARAMETERS: dict[str, dict] = {
    "00_article": dict(dataset="mnist", epochs=35, variants=None, seeds=None, results_dir=None, figures_dir=None,
                       tolerance_pp=0.5),
    "01_kronecker_product": dict(dataset="mnist", data_dir="data", train_epochs=1, seed=1, figures_dir=None),
    "03_report": dict(variants=None, seeds=None, epochs=35, dataset="mnist", data_dir="data", results_dir=None,
                      figures_dir=None, force=False, device="auto", scheduler="local", tolerance_pp=0.5),
    "04_beyond": dict(dataset="mnist", harder_dataset="fashion-mnist", seeds=None, epochs=35, kron_variants=None,
                      dense_widths=None, low_ranks=None, tt_ranks=None, t3f_epochs=3, compression_epochs=5,
                      compression_tt_rank=16, compression_finetune_epochs=2, projection_ranks=[1, 2, 4, 8],
                      finetune_epochs=3, data_dir="data", results_dir=None, runs_dir="runs", figures_dir=None,
                      force=False, device="auto", scheduler="local", tolerance_pp=0.5),
    "05_why": dict(dataset="mnist", epochs=35, seeds=None, permutation_seed=0, permuted_variants=None,
                   off_grid_variants=None, tuning_variants=None, tuning_seeds=None,
                   sgd_learning_rates=[0.003, 0.01, 0.03, 0.1], adam_learning_rates=[0.0003, 0.001, 0.003],
                   cosine=True, structured=True, validation_images=10000,
                   fields_seed=1, data_dir="data", results_dir=None, figures_dir=None, force=False, device="auto",
                   scheduler="local", tolerance_pp=0.5),
    "06_adapters": dict(candidates=None, seeds=None, choice_seeds=2,
                        learning_rates=[0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01], budget_ranks=None, lokr_configs=None,
                        shape_ranks=None, factor_shapes=None, validation_images=10000, data_dir="data", results_dir=None, figures_dir=None, force=False,
                        device="auto", scheduler="local"),
}


#: Parameters that say where to read and write or how to run, not what the page shows.
NEUTRAL_PARAMETERS = frozenset({"data_dir", "results_dir", "runs_dir", "figures_dir", "force", "device", "scheduler"})


def project_path(path: str | Path) -> Path:
    """Relative paths in the notebooks are taken from the repository root, wherever they run."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def check_dir(path: str | Path | None, name: str) -> Path:
    """Resolve ``path``, create it if needed and make sure a file can be written there.

    Raises one ValueError naming the parameter: for an empty path, a file in the way, or a
    folder that cannot be created or written.
    """
    if path is None or not str(path).strip():
        raise ValueError(f"{name} must name a folder, got {path!r}")
    folder = project_path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{name} {folder} cannot be written: {error.strerror or error}") from None
    return folder


def notebook_parameters(notebook: str, parameters: Mapping) -> dict:
    """The declared parameters of ``notebook`` (a name such as '03_report'), valued from ``parameters``
    (a notebook's ``globals()``, or a dict); a missing one takes its default. Each value must have its default's
    type (an int where a float is declared is fine; None-defaults take anything the notebook's plan checks):
    else one ValueError naming it, such as the string "false" given for ``force``."""
    if notebook not in NOTEBOOK_PARAMETERS:
        raise ValueError(f"unknown notebook {notebook!r}; report notebooks are {', '.join(NOTEBOOK_PARAMETERS)}")
    values = {name: parameters.get(name, default) for name, default in NOTEBOOK_PARAMETERS[notebook].items()}
    for name, default in NOTEBOOK_PARAMETERS[notebook].items():
        kind = _kind(default)
        if kind is None:
            continue
        (types, what), value = kind, values[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            hint = f" (with papermill: -p {name} True, or -y '{name}: false')" if types == (bool,) else ""
            raise ValueError(f"{name} must be {what}, got {value!r}{hint}")
    return values


def _kind(default) -> tuple[tuple[type, ...], str] | None:
    """The types a parameter may take, from its declared default, and their name in an error message."""
    if isinstance(default, bool):
        return (bool,), "True or False"
    if isinstance(default, int):
        return (int,), "a whole number"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, str):
        return (str,), "a string"
    if isinstance(default, list):
        return (list, str), "a list (or a papermill string such as '[1, 2]')"
    return None


def is_full_run(notebook: str, parameters: Mapping) -> bool:
    """True when every parameter of ``notebook`` that changes what its page shows has its default:
    the committed configuration, the only one that writes to results/ and figures/."""
    values = notebook_parameters(notebook, parameters)
    return all(_same(values[name], default) for name, default in NOTEBOOK_PARAMETERS[notebook].items()
               if name not in NEUTRAL_PARAMETERS)


def _same(value, default) -> bool:
    return type(value) is type(default) and value == default


def output_dirs(notebook: str, parameters: Mapping) -> tuple[Path | None, Path | None, bool]:
    """(results folder, figures folder, full) for a report notebook's run, each checked (None where the
    notebook has no such parameter).

    A full run (:func:`is_full_run`) writes to results/ and figures/; any other run to runs/results and
    runs/figures unless ``results_dir`` / ``figures_dir`` name other folders, which may never be the
    committed ones (one ValueError naming the parameter)."""
    values, full = notebook_parameters(notebook, parameters), is_full_run(notebook, parameters)
    folders = []
    for kind in COMMITTED:
        name, given = f"{kind}_dir", values.get(f"{kind}_dir")
        if name not in values:
            folders.append(None)
            continue
        if given is None:
            given = kind if full else SCRATCH / kind
        if not full and project_path(given).resolve() == (ROOT / kind).resolve():
            raise ValueError(f"{name} {project_path(given)} holds the committed {kind}: only the notebook's "
                             f"default configuration writes there; leave {name} unset to write to {SCRATCH / kind}")
        folders.append(check_dir(given, name))
    return folders[0], folders[1], full


def committed_results() -> Path:
    """The committed results folder, which every run reads for runs whose settings match."""
    return ROOT / COMMITTED[0]
