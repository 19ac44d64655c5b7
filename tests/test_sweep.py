"""The sweep on Dask: a 2-worker local cluster gives the records a serial sweep gives, file locks hold across
workers, a failed task is reported while the others finish, and a killed worker loses no finished run."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import kron_report as kr
import kron_utils as ku

TINY = ku.TrainSettings(epochs=2, batch_size=64, dataset="synthetic")
NUMBERS = ["train_loss", "test_loss", "test_accuracy"]


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of two single-threaded worker processes (they inherit KRON_EAGER=1)."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local, \
            Client(local) as client:
        yield local, client


def records(folder) -> pd.DataFrame:
    return kr.load_results(folder, TINY).sort_values(["variant", "seed", "epoch"], ignore_index=True)


def test_a_two_worker_sweep_writes_the_records_a_serial_sweep_writes(tmp_path, cluster):
    local, _ = cluster
    variants = ["two_kron", "width10", "one_kron_out_kron", "lowrank2"]
    parallel = kr.run_sweep(variants, [1, 2], TINY, results_dir=tmp_path / "parallel", scheduler=local.scheduler_address)
    serial = kr.run_sweep(variants, [1, 2], TINY, results_dir=tmp_path / "serial", scheduler="serial")
    assert parallel.trained.tolist() == serial.trained.tolist() == [[1, 2]] * 4
    a, b = records(tmp_path / "parallel"), records(tmp_path / "serial")
    assert len(a) == 16 and (a.drop(columns=NUMBERS + ["seconds"]) == b.drop(columns=NUMBERS + ["seconds"])).all().all()
    # one torch thread on a worker, the process's threads here: the same runs up to the last float digits
    pd.testing.assert_frame_equal(a[NUMBERS], b[NUMBERS], rtol=1e-4, atol=1e-5)
    again = kr.run_sweep(variants, [1, 2], TINY, results_dir=tmp_path / "parallel", scheduler=local.scheduler_address)
    assert again.trained.tolist() == [[]] * 4 and again.reused.tolist() == [[1, 2]] * 4


def test_the_file_lock_holds_across_workers(tmp_path, cluster):
    _, client = cluster
    task = dict(variant="width10", seeds=[1, 2], settings=TINY, results_dir=str(tmp_path), sources=[str(tmp_path)],
                data_dir="data", device="cpu", threads=1)
    workers = list(client.scheduler_info()["workers"])
    futures = [client.submit(kr.train_variant, **task, pure=False, workers=[w]) for w in workers]
    outcomes = sorted((f.result() for f in futures), key=lambda o: len(o["trained"]))
    assert [o["trained"] for o in outcomes] == [[], [1, 2]] and outcomes[0]["reused"] == [1, 2]


def test_a_failed_task_is_named_after_the_others_finish_and_a_rerun_trains_only_it(tmp_path, cluster):
    local, _ = cluster
    blocked = kr.settings_folder(tmp_path, TINY) / ".locks" / "width10-seed-1.lock"
    blocked.mkdir(parents=True)  # a folder where width10's lock file must go: its task fails, on whichever worker
    with pytest.raises(RuntimeError, match=r"1 of 3 training tasks failed.*\n  width10: IsADirectoryError"):
        kr.run_sweep(["two_kron", "width10", "lowrank1"], [1], TINY, results_dir=tmp_path,
                     scheduler=local.scheduler_address)
    assert kr.run_is_done(tmp_path, "two_kron", 1, TINY) and kr.run_is_done(tmp_path, "lowrank1", 1, TINY)
    blocked.rmdir()
    rerun = kr.run_sweep(["two_kron", "width10", "lowrank1"], [1], TINY, results_dir=tmp_path,
                         scheduler=local.scheduler_address)
    assert rerun.trained.tolist() == [[], [1], []]


def test_a_killed_worker_loses_no_finished_run(tmp_path, cluster):
    local, client = cluster
    variants = ["two_kron", "width10", "lowrank1", "lowrank2", "one_kron", "width12"]
    code = (f"import kron_report as kr, kron_utils as ku; kr.run_sweep({variants!r}, [1, 2], ku.TrainSettings(epochs=6, "
            f"batch_size=32, dataset='synthetic'), results_dir={str(tmp_path)!r}, scheduler={local.scheduler_address!r})")
    sweep = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.rglob("seed-*.csv")) and time.time() < deadline:
        time.sleep(0.05)
    finished = {p: p.read_bytes() for p in tmp_path.rglob("seed-*.csv")}
    assert finished, "no run finished within two minutes"
    victim = list(client.scheduler_info()["workers"])[0]
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)  # its nanny starts a new one
    output, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, output[-2000:]
    settings = ku.TrainSettings(epochs=6, batch_size=32, dataset="synthetic")
    assert all(kr.run_is_done(tmp_path, v, s, settings) for v in variants for s in (1, 2))
    assert all(p.read_bytes() == data for p, data in finished.items())  # nothing finished was rewritten or lost


def test_a_sweep_with_nothing_to_train_starts_no_cluster(tmp_path, monkeypatch):
    import distributed
    kr.run_sweep(["width10"], [1], TINY, results_dir=tmp_path, scheduler="serial")
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: pytest.fail("started a cluster"))
    assert kr.run_sweep(["width10"], [1], TINY, results_dir=tmp_path).reused.tolist() == [[1]]


def test_split_tasks_cuts_seeds_so_the_workers_finish_together_costliest_first():
    tasks = [dict(variant=v, seeds=list(range(1, 11)), force=False) for v in ("width10", "two_kron", "kron2_r4")]
    two = kr.split_tasks(tasks, 2)          # 3 tasks for 2 workers: each variant in ceil(4 * 2 / 3) = 3 chunks
    assert len(two) == 9
    for v in ("width10", "two_kron", "kron2_r4"):
        chunks = [t["seeds"] for t in two if t["variant"] == v]
        assert sorted(s for c in chunks for s in c) == list(range(1, 11)) and sorted(map(len, chunks)) == [3, 3, 4]
    costs = [kr.task_cost(t) for t in two]
    assert costs == sorted(costs, reverse=True) and two[0]["variant"] == "kron2_r4" and two[-1]["variant"] == "width10"
    # the costs are FLOPs per image by hand: width10 2*(784*10 + 10*10) forward, backward twice that less fc1's input
    assert ku.training_flops("width10") == 2 * (784 * 10 + 10 * 10) + 2 * (784 * 10 + 10 * 10) + 2 * 10 * 10
    assert kr.split_tasks(tasks, 1) == sorted(tasks, key=kr.task_cost, reverse=True)   # one worker: nothing cut
    many = [dict(variant="width10", seeds=[1, 2, 3]) for _ in range(8)]
    assert all(t["seeds"] == [1, 2, 3] for t in kr.split_tasks(many, 2))               # enough tasks: nothing cut
    assert [t["seeds"] for t in kr.split_tasks([dict(variant="width10", seeds=[4])], 2)] == [[4]]


def test_the_local_scheduler_starts_a_cluster_only_where_it_has_two_workers(tmp_path, monkeypatch):
    import distributed
    from kron_report import sweep
    real = distributed.LocalCluster
    started = []
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: started.append(k) or real(*a, **k))
    monkeypatch.setattr(os, "cpu_count", lambda: 3)   # one worker of 2 threads: trained here, no cluster
    assert sweep.local_workers() == 1
    one = kr.run_sweep(["width10", "original"], [1, 2], TINY, results_dir=tmp_path / "one")
    assert started == [] and one.trained.tolist() == [[1, 2]] * 2
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sweep, "THREADS_PER_WORKER", 1)  # two one-thread workers on 2 cores
    two = kr.run_sweep(["width10", "two_kron", "original"], [1, 2], TINY, results_dir=tmp_path / "two")
    assert [(k["n_workers"], k["threads_per_worker"]) for k in started] == [(2, 1)]
    assert two.trained.tolist() == [[1, 2]] * 3
    a, b = records(tmp_path / "one"), records(tmp_path / "two")
    pd.testing.assert_frame_equal(a[NUMBERS], b[b.variant != "two_kron"].reset_index(drop=True)[NUMBERS],
                                  rtol=1e-4, atol=1e-5)
