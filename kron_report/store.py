"""Results on disk: one CSV per run under a hash of its settings, written atomically, checked whenever read; the
stored pixel permutation; a small cache of computed tables; the bench record.

A run's rows are one CSV: <results_dir>/<dataset>/<key>/<variant>/seed-<k>.csv, where <key> is a
short hash of the settings, described by <results_dir>/<dataset>/<key>/settings.json. Runs made
with other settings live in another folder and can never overwrite these. Every file is written
to a unique temporary name in its folder and renamed into place, so it appears whole or not at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import kron_utils as ku
import numpy as np
import pandas as pd

from .paths import committed_results, project_path

__all__ = ["OPTIONAL_SETTINGS", "settings_record", "TEMP_SUFFIX", "STALE_TEMP_SECONDS", "atomic_write",
           "remove_stale_temp_files", "settings_key", "settings_folder", "run_file", "PERMUTATION_FILE",
           "save_runs", "stored_permutation", "BadRecord", "MissingRuns", "NUMERIC_COLUMNS", "read_record",
           "run_is_done", "quarantine", "load_results", "require_runs", "cached", "cached_table",
           "bench_file", "save_bench", "bench_record", "machine_name", "load_runs", "reading"]


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
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600: a shared results folder must be readable by every worker
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


#: Settings fields recorded only when they differ from these defaults, so that runs recorded before the field
#: existed keep their folder (the settings key is a hash of :func:`settings_record`).
OPTIONAL_SETTINGS = dict(optimizer="sgd", validation=0, permutation_seed=None, schedule="constant", parametrization="standard",
                         frozen=None, classes=None, domain=None)


def settings_record(settings: ku.TrainSettings) -> dict:
    """The settings as a dict, for results folders and cache keys; a field of :data:`OPTIONAL_SETTINGS` appears
    only when it differs from its default."""
    return {name: value for name, value in dataclasses.asdict(settings).items()
            if name not in OPTIONAL_SETTINGS or value != OPTIONAL_SETTINGS[name]}


def settings_key(settings: ku.TrainSettings) -> str:
    """A short, stable hash of the settings: the name of their results folder."""
    text = json.dumps(settings_record(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def settings_folder(results_dir: str | Path, settings: ku.TrainSettings) -> Path:
    """<results_dir>/<dataset>/<settings key>: the runs made with exactly ``settings``."""
    return Path(results_dir) / settings.dataset / settings_key(settings)


def run_file(results_dir: str | Path, settings: ku.TrainSettings, variant: str, seed: int) -> Path:
    """The CSV that holds one run's rows."""
    return settings_folder(results_dir, settings) / variant / f"seed-{seed}.csv"


#: Beside the settings.json of runs on permuted pixels: the permutation itself, as a JSON list (pixel j of a
#: permuted image is the original pixel perm[j]).
PERMUTATION_FILE = "permutation.json"


def save_runs(rows: pd.DataFrame, settings: ku.TrainSettings, results_dir: str | Path) -> list[Path]:
    """Write each seed's rows as one CSV under the settings' folder (atomically); return the paths."""
    folder = settings_folder(results_dir, settings)
    describe = folder / "settings.json"
    if not describe.exists():  # same content from every writer: the key is a hash of it
        atomic_write(describe, json.dumps(settings_record(settings), indent=1).encode())
    if settings.permutation_seed is not None and not (folder / PERMUTATION_FILE).exists():
        atomic_write(folder / PERMUTATION_FILE, json.dumps(
            ku.pixel_permutation(settings.permutation_seed).tolist()).encode())
    paths = []
    for (variant, seed), run in rows.groupby(["variant", "seed"], sort=False):
        path = run_file(results_dir, settings, variant, int(seed))
        paths.append(atomic_write(path, run[ku.result_columns(settings)].to_csv(index=False).encode()))
    return paths


def stored_permutation(results_dir: str | Path, settings: ku.TrainSettings) -> list[int]:
    """The pixel permutation stored with the runs of ``settings`` (see :data:`PERMUTATION_FILE`); one
    ValueError naming the file if it is missing or is not a permutation of the image's pixels."""
    path = settings_folder(results_dir, settings) / PERMUTATION_FILE
    try:
        perm = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the stored pixel permutation ({error})") from None
    if sorted(perm) != list(range(ku.IMAGE_SIZE)):
        raise ValueError(f"{path}: not a permutation of the {ku.IMAGE_SIZE} pixels")
    return perm


class BadRecord(ValueError):
    """A run's record that fails a check: it is never used (the sweep moves it aside and retrains it)."""

    def __init__(self, path: Path, check: str):
        super().__init__(f"{path}: {check}")
        self.path, self.check = Path(path), check


class MissingRuns(LookupError):
    """These runs do not exist for these settings (a page not yet run, or an exploratory run on other data): a
    page may say so. Never raised for a record that exists but fails a check, which is a :class:`BadRecord` and
    always fails the page."""


NUMERIC_COLUMNS = ["seed", "epoch", "weights", "params", "train_loss", "test_loss", "test_accuracy", "seconds"]


def read_record(path: str | Path, settings: ku.TrainSettings) -> pd.DataFrame:
    """The rows of the run record at ``path`` (…/<dataset>/<key>/<variant>/seed-<k>.csv) made with ``settings``,
    after every check: the columns and their types; identity (dataset, variant and seed match the file's place);
    every epoch from 1 on, once, up to ``settings.epochs`` or a last 'diverged' epoch; accuracy in [0, 100],
    losses finite unless diverged, seconds >= 0. Anything else raises one :class:`BadRecord` naming the file and
    the check it failed."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise BadRecord(path, f"cannot be read as CSV ({error})") from None
    # a page reads the same records many times (each figure and table asks for its runs): a record already checked
    # is served from memory while its file is unchanged (same inode, size and modification time)
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, json.dumps(settings_record(settings)))
    if key not in _CHECKED:
        _CHECKED[key] = _checked_record(path, settings)
    return _CHECKED[key].copy()


#: Records that passed read_record's checks, by file identity and settings (a failing one is never kept).
_CHECKED: dict[tuple, pd.DataFrame] = {}


def _checked_record(path: Path, settings: ku.TrainSettings) -> pd.DataFrame:
    """read_record's work: parse ``path`` and run every check."""
    try:
        rows = pd.read_csv(path)
    except (OSError, ValueError) as error:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise BadRecord(path, f"cannot be read as CSV ({str(error).splitlines()[0]})") from None
    columns = ku.result_columns(settings)
    if list(rows.columns) != columns:
        raise BadRecord(path, f"has the columns {list(rows.columns)}, not {columns}")
    if rows.empty:
        raise BadRecord(path, "has no rows")
    for column in NUMERIC_COLUMNS + columns[len(ku.RESULT_COLUMNS):]:
        if not pd.api.types.is_numeric_dtype(rows[column]):
            raise BadRecord(path, f"column {column} holds something other than numbers")
    seed = path.stem.removeprefix("seed-")
    for column, want in (("dataset", settings.dataset), ("variant", path.parent.name), ("seed", seed)):
        if set(rows[column].astype(str)) != {str(want)}:
            raise BadRecord(path, f"column {column} should be {want} throughout (the file's place says so)")
    status = rows.status.tolist()
    if set(status) - {"ok", "diverged"} or "diverged" in status[:-1]:
        raise BadRecord(path, "status must be 'ok', with 'diverged' only on the last epoch")
    if rows.epoch.tolist() != list(range(1, len(rows) + 1)):
        raise BadRecord(path, f"epochs are {rows.epoch.tolist()}, not 1 to {len(rows)} once each")
    if len(rows) != settings.epochs and status[-1] != "diverged":
        raise BadRecord(path, f"stops after epoch {len(rows)} of {settings.epochs} without diverging")
    ok = rows[rows.status == "ok"]
    for column in {"test_accuracy", "validation_accuracy"} & set(columns):
        if not rows[column].between(0, 100).all() or rows[column].isna().any():
            raise BadRecord(path, f"{column} must lie in [0, 100]")
    if not (np.isfinite(ok[["train_loss", "test_loss"]]).all().all() and (rows.seconds >= 0).all()):
        raise BadRecord(path, "losses must be finite (unless the run diverged) and seconds >= 0")
    return rows


def run_is_done(results_dir: str | Path, variant: str, seed: int, settings: ku.TrainSettings) -> bool:
    """True if this run's record exists under the folder of ``settings`` and passes :func:`read_record`; False if
    there is none; a record that fails raises :class:`BadRecord`."""
    path = run_file(results_dir, settings, variant, seed)
    if not path.exists():
        return False
    describe = settings_folder(results_dir, settings) / "settings.json"
    if not describe.is_file():
        raise BadRecord(path, "its folder has no settings.json to say how it was made")
    if _described(describe) != settings_record(settings):
        raise BadRecord(describe, f"does not describe the settings {settings_record(settings)}")
    read_record(path, settings)
    return True


def _described(describe: Path) -> dict:
    """The settings a folder's settings.json records; a BadRecord naming it if it cannot be read."""
    try:
        return json.loads(describe.read_text())
    except (OSError, ValueError) as error:
        raise BadRecord(describe, f"cannot be read ({error})") from None


def quarantine(record: str | Path) -> Path:
    """Move a bad record aside to <file>.bad-<timestamp> (kept for inspection, never read); return the new path."""
    record = Path(record)
    target = record.with_name(f"{record.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    os.replace(record, target)
    return target


def load_results(results_dirs: str | Path | Sequence[str | Path], settings: ku.TrainSettings | None = None,
                 variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Saved rows as one tidy table (one row per run x epoch); every record passes :func:`read_record` first, or
    this raises its :class:`BadRecord` (a damaged record never reaches a page).

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
    frames = [read_record(path, settings or _folder_settings(path)) for path in found.values()]
    if not frames:
        return pd.DataFrame(columns=ku.RESULT_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    if seeds is not None:
        rows = rows[rows.seed.isin(list(seeds))]
    if variants is not None:
        rows = rows[rows.variant.isin(list(variants))]
        rows = rows.sort_values("variant", key=lambda v: v.map(list(variants).index), kind="stable")
    return rows.reset_index(drop=True)


def _folder_settings(record: Path) -> ku.TrainSettings:
    """The settings a record's folder describes (its settings.json)."""
    describe = record.parent.parent / "settings.json"
    recorded = _described(describe)
    try:
        return ku.TrainSettings(**recorded)
    except (TypeError, ValueError) as error:
        raise BadRecord(describe, f"does not hold valid settings ({error})") from None


def _as_list(folders) -> list[Path]:
    return [Path(f) for f in ([folders] if isinstance(folders, (str, Path)) else folders)]


def require_runs(rows: pd.DataFrame, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """``rows`` unchanged if every (variant, seed) run is in it; else one :class:`MissingRuns` listing the missing
    ones."""
    missing = sorted({(v, s) for v in variants for s in seeds} - set(zip(rows.variant, rows.seed)))
    if missing:
        raise MissingRuns(f"runs without results: {missing}")
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


def bench_file(device_type: str = "cpu") -> Path:
    """Where ``make bench`` records its measurements on ``device_type`` ('cpu', 'cuda'): results/bench-<type>.json."""
    return project_path("results") / f"bench-{device_type}.json"


def save_bench(record: dict, device_type: str = "cpu") -> Path:
    """Write ``make bench``'s record (machine, threads, torch, date, one entry per measurement) atomically."""
    return atomic_write(bench_file(device_type), json.dumps(record, indent=1).encode())


def bench_record(device_type: str = "cpu") -> dict | None:
    """The committed ``make bench`` record for ``device_type``, or None if there is none."""
    path = bench_file(device_type)
    return json.loads(path.read_text()) if path.is_file() else None


def machine_name() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one, else platform's."""
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_runs(reads: Sequence[Path], settings: ku.TrainSettings, variants: Sequence[str],
              seeds: Sequence[int]) -> pd.DataFrame:
    """Every finished run of ``variants`` under ``settings`` in the folders ``reads``: each net with *all* the
    seeds it has (so a net shows one number wherever it appears), after checking that it has at least ``seeds``."""
    return require_runs(load_results(reads, settings, variants), variants, seeds)


def reading(results_dir: Path) -> list[Path]:
    """Where a run reads finished runs: its own results folder, then the committed one."""
    return list(dict.fromkeys([Path(results_dir), committed_results()]))
