"""The sweep: every (variant, seeds) task of a grid, trained on Dask, each run written atomically where it belongs;
and the one-variant request of notebook 02 (:class:`TrainRequest`, :func:`train_and_save`), and the warning lines of
runs that diverged (:func:`divergence_lines`).

A task is one variant's missing seeds, trained together by ``kron_utils.train`` and saved by
:func:`store.save_runs` under its runs' file locks (one per run). Where the tasks run is ``scheduler``:

- ``"local"`` (the default): nets above :data:`kron_utils.STACK_WEIGHT_LIMIT` weights first, one at a time in
  this process with every core; then the small nets on a ``distributed.LocalCluster`` of :func:`local_workers`
  worker processes of :data:`THREADS_PER_WORKER` threads each, or in this process where that makes one worker
  (a machine of 2 or 3 cores: there a second worker cannot beat a second thread, measured, and its start-up and
  its own compiles would only cost).
- an address such as ``"tcp://host:8786"``: any running Dask cluster (SSH, SLURM or PBS through
  dask-jobqueue, Kubernetes). Its workers must see ``results_dir`` and ``data_dir`` at the same paths
  (shared storage), and have this repository installed.
- ``"serial"``: one task after another in this process, no Dask (for debugging).

A run's numbers do not depend on where it ran or what ran beside it; the number of threads may change the
last float digits (tested: a 2-worker sweep against a serial one).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import kron_utils as ku
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .fetch import verify_dataset
from .params import check_seeds, check_variants
from .paths import check_dir, project_path
from .store import BadRecord, atomic_write, quarantine, remove_stale_temp_files, run_is_done, save_runs, settings_folder

__all__ = ["divergence_lines", "split_tasks", "task_cost", "local_workers", "TrainRequest", "train_and_record", "train_and_save", "SCHEDULERS", "sweep_record_path",
           "sweep_device", "check_scheduler", "missing_seeds", "train_variant", "is_big", "run_sweep",
           "worker_environ"]


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
        settings = ku.TrainSettings(**{name: parameters[name] for name in fields if name in parameters})
        variant = check_variants([parameters["variant"]])[0]
        seeds = check_seeds(parameters["seeds"])
        device = ku.resolve_device(parameters["device"])
        if not str(parameters["data_dir"] or "").strip():
            raise ValueError(f"data_dir must name a folder, got {parameters['data_dir']!r}")
        data_dir = project_path(parameters["data_dir"])
        if settings.dataset != ku.SYNTHETIC:
            verify_dataset(data_dir, settings.dataset)
        return cls(variant, seeds, settings, data_dir, check_dir(parameters["results_dir"], "results_dir"), device)


def train_and_record(variant: str, seeds, settings: ku.TrainSettings, data_dir: str | Path, results_dir: str | Path,
                     device: str | torch.device = "auto", progress: bool = False):
    """Train ``variant`` on ``seeds``, save each run atomically; return the rows, the models and one warning line
    per run that diverged (the trainer's own warning is replaced by it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".* diverged in epoch", UserWarning)
        rows, models = ku.train(variant, seeds, settings, data_dir=data_dir, device=device, progress=progress)
    save_runs(rows, settings, results_dir)
    return rows, models, divergence_lines(rows)


def train_and_save(request: TrainRequest, progress: bool = True) -> tuple[pd.DataFrame, list[nn.Module]]:
    """Train what ``request`` asks, save each run, and print a warning naming any diverged run."""
    rows, models, lines = train_and_record(request.variant, request.seeds, request.settings, request.data_dir,
                                           request.results_dir, request.device, progress)
    for line in lines:
        print(line, flush=True)
    return rows, models


SCHEDULERS = ("local", "serial")  # or a Dask scheduler address


def sweep_record_path(results_dir: str | Path, settings: ku.TrainSettings) -> Path:
    """Where the wall time of the full-setting sweep of the post's nets is recorded."""
    return settings_folder(project_path(results_dir), settings) / "sweep.json"


def sweep_device(results_dir: str | Path, settings: ku.TrainSettings) -> str | None:
    """The device the full sweep of ``settings`` recorded in its sweep.json ('cpu', 'cuda'), or None without one."""
    record = sweep_record_path(results_dir, settings)
    return json.loads(record.read_text()).get("device") if record.is_file() else None


def check_scheduler(scheduler) -> str:
    """'local', 'serial' or a Dask scheduler address ('tcp://host:8786', 'tls://...'); else one ValueError."""
    if scheduler in SCHEDULERS or (isinstance(scheduler, str) and "://" in scheduler):
        return scheduler
    raise ValueError(f"scheduler must be 'local', 'serial' or a Dask scheduler address such as "
                     f"'tcp://host:8786', got {scheduler!r}")


def missing_seeds(variant: str, seeds, settings: ku.TrainSettings, sources, force: bool = False,
                  notes: list | None = None) -> list[int]:
    """The seeds of ``variant`` that no folder of ``sources`` holds a sound record of (all of them with ``force``).
    A record that fails :func:`store.read_record` is never used: in the first folder (the sweep's own) it is moved
    aside with :func:`store.quarantine`, elsewhere (committed runs an exploratory sweep only reads) it is left
    alone; either way it is retrained, and one line in ``notes`` names the file, the check and what was done."""
    return [s for s in seeds if force or not any(_done(Path(d), variant, s, settings, d == sources[0], notes)
                                                 for d in sources)]


def _done(folder: Path, variant: str, seed: int, settings: ku.TrainSettings, own: bool, notes) -> bool:
    try:
        return run_is_done(folder, variant, seed, settings)
    except BadRecord as bad:
        action = f"moved to {quarantine(bad.path).name} and retrained" if own else "left alone and retrained here"
        if notes is not None:
            notes.append(f"WARNING: bad record {bad.path} ({bad.check}): {action}")
        return False


def train_variant(variant: str, seeds, settings: ku.TrainSettings, results_dir: str, sources, data_dir: str,
                  device: str = "auto", force: bool = False, threads: int | None = None) -> dict:
    """One task of a sweep: under the file locks of its runs (one per variant and seed, taken in order), train its
    seeds that are still missing (on ``threads`` torch threads; 0: every core of the machine it runs on; None: as
    the process is) and save each run atomically. Returns what it trained, what it reused, its seconds and its
    warning lines (bad records moved aside, runs that diverged). Runs in this process or on any Dask worker."""
    from filelock import FileLock
    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads or os.cpu_count() or 1)
    locks = check_dir(settings_folder(results_dir, settings) / ".locks", "results_dir")
    with ExitStack() as held:
        for seed in sorted(seeds):
            held.enter_context(FileLock(locks / f"{variant}-seed-{seed}.lock"))
        lines = []  # asked again under the locks: another sweep on this folder may have trained them meanwhile
        todo = missing_seeds(variant, seeds, settings, sources, force, notes=lines)
        if todo:
            lines += train_and_record(variant, todo, settings, data_dir, results_dir, device)[2]
    return dict(variant=variant, trained=todo, reused=[s for s in seeds if s not in todo],
                seconds=round(time.perf_counter() - start, 1), warnings=lines)


def is_big(variant: str) -> bool:
    """Nets above kron_utils.STACK_WEIGHT_LIMIT weights are compute-bound: they get every core, one at a time."""
    return ku.count_weights(ku.build_model(variant)) > ku.STACK_WEIGHT_LIMIT


def run_sweep(variants, seeds, settings: ku.TrainSettings, *, results_dir: str | Path = "results",
              data_dir: str | Path = "data", device: str = "auto", force: bool = False, reuse_dirs=(),
              record_wall_time: bool = False, scheduler: str = "local") -> pd.DataFrame:
    """Train every (variant, seed) run not yet done, on ``scheduler`` (see the module docstring).

    ``variants`` and ``seeds`` come from a notebook's plan, which checked them (:func:`params.read_parameters`); the
    folders and the scheduler are checked here before any work, and the data too when anything is to be trained
    (a sweep whose runs all exist needs no data and starts no cluster). A run counts as done when
    :func:`store.run_is_done` finds it in ``results_dir`` or in one of ``reuse_dirs`` (e.g. the committed
    results, read but never written); ``force`` retrains everything into ``results_dir``. Each task holds its
    variant's file lock while it trains, so two sweeps on one folder never train a run twice. A failed task is
    reported with its variant and error after the others finish; finished runs are never lost, and a rerun
    trains only what is missing. ``record_wall_time`` writes sweep.json when every run was trained now.
    Returns one row per variant: seeds trained, reused, seconds.
    """
    variants, seeds = list(variants), list(seeds)
    assert variants and seeds and len(set(seeds)) == len(seeds), "run_sweep takes a plan's checked grid"
    scheduler = check_scheduler(scheduler)
    results_dir = check_dir(results_dir, "results_dir")
    sources = [results_dir, *(Path(d) for d in reuse_dirs if Path(d) != results_dir)]
    data_dir = project_path(data_dir)
    notes = []
    todo = {v: missing_seeds(v, seeds, settings, sources, force, notes) for v in variants}
    for line in notes:
        print(line, flush=True)
    if settings.dataset != ku.SYNTHETIC and any(todo.values()):
        verify_dataset(data_dir, settings.dataset)  # missing data fails before the first run
    remove_stale_temp_files(settings_folder(results_dir, settings))
    start = time.perf_counter()
    pending = [dict(variant=v, seeds=todo[v], settings=settings, results_dir=str(results_dir),
                    sources=[str(d) for d in sources], data_dir=str(data_dir), device=device, force=force)
               for v in variants if todo[v]]
    results = {v: dict(variant=v, trained=[], reused=[s for s in seeds if s not in todo[v]], seconds=0.0, warnings=[])
               for v in variants}
    bar = tqdm(total=sum(len(t["seeds"]) for t in pending), desc=f"sweep of {len(variants)} variants x "
               f"{len(seeds)} seeds", unit="run", file=sys.stdout, dynamic_ncols=True, disable=not pending)
    failures, finished = [], 0
    for task, outcome in _execute(pending, scheduler):
        finished += 1
        if isinstance(outcome, BaseException):
            name = task["variant"] + ("" if task["seeds"] == todo[task["variant"]] else
                                      f" (seeds {', '.join(map(str, task['seeds']))})")
            failures.append(f"{name}: {type(outcome).__name__}: {outcome}")
            continue
        merged = results[task["variant"]]  # a variant's seeds may come back in several tasks
        merged["trained"] = sorted(merged["trained"] + outcome["trained"])
        merged["reused"] = sorted(merged["reused"] + outcome["reused"])
        merged["seconds"] = round(merged["seconds"] + outcome["seconds"], 1)
        bar.update(len(outcome["trained"]))
        for line in outcome["warnings"]:
            tqdm.write(line, file=sys.stdout)
    bar.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {finished} training tasks failed (the others finished and are "
                           "saved; rerun the sweep to train only what is missing):\n  " + "\n  ".join(failures))
    summary = pd.DataFrame([results[v] for v in variants]).drop(columns="warnings")
    if record_wall_time and all(len(t) == len(seeds) for t in summary.trained):
        record = dict(wall_seconds=round(time.perf_counter() - start, 1), runs=len(variants) * len(seeds),
                      variants=variants, seeds=seeds, epochs=settings.epochs, date=time.strftime("%Y-%m-%d"),
                      seconds_by_variant=dict(zip(summary.variant, summary.seconds)), scheduler=scheduler,
                      device=str(ku.resolve_device(device)), cores=os.cpu_count(), torch=torch.__version__,
                      compiled=os.environ.get("KRON_EAGER") != "1")
        atomic_write(sweep_record_path(results_dir, settings), json.dumps(record, indent=1).encode())
    return summary


#: Torch threads per worker of the local cluster. On 2 cores of an Intel Xeon (torch 2.14.1, compiled steps, 10
#: seeds stacked, 2026-12-06) one process with 2 threads trained two_kron at 0.23 s per seed-epoch and width10 at
#: 0.08 s; two one-thread workers side by side at 0.44 and 0.15 s each: the same throughput, so a worker gains
#: nothing over a thread there, and the cluster's start-up and duplicated compiles make it slower.
THREADS_PER_WORKER = 2


def local_workers() -> int:
    """Workers of the local cluster: one per :data:`THREADS_PER_WORKER` cores of this machine (at least one)."""
    return max(1, (os.cpu_count() or 1) // THREADS_PER_WORKER)


def _in_process(scheduler: str) -> bool:
    """Whether ``scheduler`` trains in this process: 'serial', or 'local' where the cluster would be one worker."""
    return scheduler == "serial" or (scheduler == "local" and local_workers() == 1)


def _threads(scheduler: str) -> int:
    """Torch threads per task on the cluster of ``scheduler``: the local cluster's per worker, else one."""
    return THREADS_PER_WORKER if scheduler == "local" else 1


def _execute(tasks: list[dict], scheduler: str):
    """Yield (task, result or exception) as each task finishes: big nets first, one at a time with every core
    (in this process for 'local'), then the small nets, spread over the workers with their seeds split so that
    the workers finish together (:func:`split_tasks`), the costliest submitted first."""
    big = [t for t in tasks if is_big(t["variant"])]
    small = [t for t in tasks if t not in big]
    if _in_process(scheduler):
        yield from _execute_calls(train_variant, big + small, "serial")
        return
    if scheduler == "local":  # the big nets here, with every core; the cluster only for the small ones
        yield from _execute_calls(train_variant, big, "serial")
        big = []
    if not big and not small:
        return
    with _client(scheduler) as client:
        if client.dashboard_link and _has_dashboard():
            tqdm.write(f"Dask dashboard: {client.dashboard_link}", file=sys.stdout)
        for task in big:  # one at a time, so each gets the whole machine
            future = client.submit(train_variant, **task, threads=0, pure=False)
            yield task, _outcome(future.result)
        threads = _threads(scheduler)
        workers = sum(client.nthreads().values()) // threads
        yield from _as_finished(client, train_variant, split_tasks(small, workers), threads)


#: split_tasks aims at this many tasks per worker, so that the last ones to finish are short.
TASKS_PER_WORKER = 4


def task_cost(task: dict) -> float:
    """A task's estimated cost: its FLOPs per training image (:func:`kron_utils.training_flops`) times its seeds."""
    return ku.training_flops(task["variant"]) * len(task["seeds"])


def split_tasks(tasks: list[dict], workers: int) -> list[dict]:
    """``tasks`` for ``workers`` workers, costliest first: each variant's seeds cut into as many
    contiguous chunks as give about :data:`TASKS_PER_WORKER` tasks per worker (at most one chunk per seed), so
    that five nets on two workers do not leave one worker idle while the other trains the fifth. Stacking five
    seeds on one thread trains as fast per seed as stacking ten (two_kron: 0.41 against 0.45 s per seed-epoch,
    measured), so the cut costs little."""
    chunks = math.ceil(TASKS_PER_WORKER * workers / len(tasks)) if workers > 1 and tasks else 1
    out = []
    for task in tasks:
        seeds = list(task["seeds"])
        parts = min(chunks, len(seeds))
        bounds = [round(k * len(seeds) / parts) for k in range(parts + 1)]
        out += [dict(task, seeds=seeds[a:b]) for a, b in zip(bounds, bounds[1:])]
    return sorted(out, key=task_cost, reverse=True)


def _execute_calls(function, calls: list[dict], scheduler: str):
    """Yield (kwargs, result or exception) as each ``function(**kwargs, threads=...)`` finishes: one after another
    in this process ('serial', or 'local' where that makes one worker; threads left as they are), on the local
    cluster with :data:`THREADS_PER_WORKER` threads each, or on the Dask cluster at ``scheduler``, one thread each."""
    if _in_process(scheduler):
        for call in calls:
            yield call, _outcome(lambda: function(**call))
        return
    with _client(scheduler) as client:
        yield from _as_finished(client, function, calls, _threads(scheduler))


def _as_finished(client, function, calls: list[dict], threads: int = 1):
    """Submit ``function(**call, threads=threads)`` for every call to ``client``; yield (call, result or exception)
    in the order they finish."""
    from distributed import as_completed
    futures = {client.submit(function, **call, threads=threads, pure=False, priority=-k): call  # in the order given
               for k, call in enumerate(calls)}
    for future in as_completed(futures):
        yield futures[future], _outcome(future.result)


@contextmanager
def _client(scheduler: str):
    """A client of the cluster at ``scheduler``, or of a new local cluster (closed with it)."""
    import dask
    from distributed import Client, LocalCluster
    if scheduler != "local":
        with Client(scheduler) as client:
            yield client
        return
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
        cluster = LocalCluster(n_workers=local_workers(), threads_per_worker=THREADS_PER_WORKER, processes=True,
                               dashboard_address=":0" if _has_dashboard() else None)
    with cluster, Client(cluster) as client:
        yield client


def worker_environ() -> dict:
    """Dask's environment for new worker processes, less MALLOC_TRIM_THRESHOLD_. Setting it at all turns off
    glibc's adaptive mmap threshold, so every tensor above 128 KiB is a fresh mmap: that made the compiled
    step of a small net 2.3x slower on a worker (0.90 against 0.39 ms for two_kron, one thread, measured)."""
    import dask
    return {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
            if k != "MALLOC_TRIM_THRESHOLD_"}


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401 - Dask's dashboard needs it
        return True
    except ImportError:
        return False


def _outcome(call):
    """``call()``'s result, or the exception it raised: a failed task is reported with its variant while the
    other tasks go on."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the sweep
        return error


def divergence_lines(rows: pd.DataFrame) -> list[str]:
    """One 'WARNING: ... diverged' line per run whose training loss became non-finite."""
    diverged = rows[rows.status == "diverged"]
    return [f"WARNING: {r.dataset} {r.variant} seed {r.seed} diverged in epoch {r.epoch} "
            f"(training loss {r.train_loss}); its run stopped there" for r in diverged.itertuples()]
