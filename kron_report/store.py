"""Results on disk: one CSV per run under a hash of its settings, written atomically; a small cache.

A run's rows are one CSV: <results_dir>/<dataset>/<key>/<variant>/seed-<k>.csv, where <key> is a
short hash of the settings, described by <results_dir>/<dataset>/<key>/settings.json. Runs made
with other settings live in another folder and can never overwrite these. Every file is written
to a unique temporary name in its folder and renamed into place, so it appears whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

import kron_utils as ku

from .paths import project_path



TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 600  # a temporary file this old belongs to a killed writer


def atomic_write(path: str | Path, data: bytes | Callable[[Path], None]) -> Path:
    """Write ``path`` whole or not at all: to a unique temporary file in the same folder, then os.replace.
    ``data`` is the bytes to write, or a function that writes the temporary file it is given."""
    path = Path(path)
    write = data if callable(data) else (lambda target: target.write_bytes(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temp_files(folder: str | Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary files left under ``folder`` by writers that were killed; return them."""
    now, removed = time.time(), []
    for path in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass  # another process cleaned it first
    return removed


def settings_key(settings: ku.TrainSettings) -> str:
    """A short, stable hash of the settings: the name of their results folder."""
    text = json.dumps(settings.record(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def settings_folder(results_dir: str | Path, settings: ku.TrainSettings) -> Path:
    """<results_dir>/<dataset>/<settings key>: the runs made with exactly ``settings``."""
    return Path(results_dir) / settings.dataset / settings_key(settings)


def run_file(results_dir: str | Path, settings: ku.TrainSettings, variant: str, seed: int) -> Path:
    """The CSV that holds one run's rows."""
    return settings_folder(results_dir, settings) / variant / f"seed-{seed}.csv"


def save_runs(rows: pd.DataFrame, settings: ku.TrainSettings, results_dir: str | Path) -> list[Path]:
    """Write each seed's rows as one CSV under the settings' folder (atomically); return the paths."""
    folder = settings_folder(results_dir, settings)
    describe = folder / "settings.json"
    if not describe.exists():  # same content from every writer: the key is a hash of it
        atomic_write(describe, json.dumps(settings.record(), indent=1).encode())
    paths = []
    for (variant, seed), run in rows.groupby(["variant", "seed"], sort=False):
        path = run_file(results_dir, settings, variant, int(seed))
        paths.append(atomic_write(path, run[ku.RESULT_COLUMNS].to_csv(index=False).encode()))
    return paths


def run_is_done(results_dir: str | Path, variant: str, seed: int, settings: ku.TrainSettings) -> bool:
    """True if this run's CSV exists under the folder of ``settings`` and is complete."""
    folder = settings_folder(results_dir, settings)
    try:
        if json.loads((folder / "settings.json").read_text()) != settings.record():
            return False
        rows = pd.read_csv(run_file(results_dir, settings, variant, seed))
    except (OSError, ValueError):
        return False
    if list(rows.columns) != ku.RESULT_COLUMNS or rows.empty:
        return False
    finished = len(rows) == settings.epochs or rows["status"].iloc[-1] == "diverged"
    return bool(finished) and set(rows.variant) == {variant} and set(rows.seed) == {seed}


def load_results(results_dirs: str | Path | Sequence[str | Path], settings: ku.TrainSettings | None = None,
                 variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Saved rows as one tidy table (one row per run x epoch).

    ``results_dirs`` is one folder or several: a run found in more than one is taken from the first
    (so an exploratory run reads its own runs, then the committed ones). With ``settings``, only the
    runs made with exactly those settings; otherwise all of them. ``variants`` both filters and orders
    the table (the order becomes the legend order).
    """
    pattern = f"{settings.dataset}/{settings_key(settings)}/*/seed-*.csv" if settings else "*/*/*/seed-*.csv"
    found = {}
    for folder in _as_list(results_dirs):
        for path in sorted(Path(folder).glob(pattern)):
            found.setdefault(path.relative_to(folder), path)
    frames = [pd.read_csv(path) for path in found.values()]
    if not frames:
        return pd.DataFrame(columns=ku.RESULT_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    if seeds is not None:
        rows = rows[rows.seed.isin(list(seeds))]
    if variants is not None:
        rows = rows[rows.variant.isin(list(variants))]
        rows = rows.sort_values("variant", key=lambda v: v.map(list(variants).index), kind="stable")
    return rows.reset_index(drop=True)


def _as_list(folders) -> list[Path]:
    return [Path(f) for f in ([folders] if isinstance(folders, (str, Path)) else folders)]


def require_runs(rows: pd.DataFrame, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """``rows`` unchanged if every (variant, seed) run is in it; else one error listing the missing ones."""
    missing = sorted({(v, s) for v in variants for s in seeds} - set(zip(rows.variant, rows.seed)))
    if missing:
        raise ValueError(f"runs without results: {missing}")
    return rows


def cached(path: str | Path, key: dict, compute: Callable[[], object], *,
           save: Callable[[object, Path], None], load: Callable[[Path], object]):
    """``compute()``'s value, stored at ``path`` beside ``<path>.key.json``; reused while the key matches.

    The one cache of the project (tables and model weights alike); both files are written atomically,
    the key last, so a cache entry is complete whenever its key matches.
    """
    path = project_path(path)
    marker = path.with_name(path.name + ".key.json")
    try:
        if json.loads(marker.read_text()) == json.loads(json.dumps(key)):
            return load(path)
    except (OSError, ValueError, RuntimeError, KeyError, EOFError):
        pass
    value = compute()
    atomic_write(path, lambda tmp: save(value, tmp))
    atomic_write(marker, json.dumps(key, indent=1).encode())
    return value


def cached_table(path: str | Path, key: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """A tidy table through :func:`cached`, stored as CSV."""
    return cached(path, key, compute, save=lambda t, p: t.to_csv(p, index=False), load=pd.read_csv)
