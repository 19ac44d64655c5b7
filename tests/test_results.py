"""Results are never lost or mislabelled: settings-keyed storage, atomic records, early path checks, locks."""
import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

import kron_report as kr
import kron_utils as ku

TINY = ku.TrainSettings(epochs=2, dataset="synthetic")


@pytest.fixture(scope="module")
def tiny_rows():
    rows, _ = ku.train("width10", [1, 2], TINY, progress=False)
    return rows


def test_a_run_with_other_settings_never_overwrites_another(tmp_path, tiny_rows):
    first = kr.save_runs(tiny_rows, TINY, tmp_path)
    before = {p: p.read_bytes() for p in first}
    other = ku.TrainSettings(epochs=2, lr=0.05, dataset="synthetic")
    changed = tiny_rows.assign(test_accuracy=1.0)
    second = kr.save_runs(changed, other, tmp_path)
    assert set(first).isdisjoint(second)
    assert {p: p.read_bytes() for p in first} == before
    by_run = ["seed", "epoch"]
    pd.testing.assert_frame_equal(kr.load_results(tmp_path, TINY).sort_values(by_run, ignore_index=True),
                                  tiny_rows.sort_values(by_run, ignore_index=True), check_dtype=False)
    assert (kr.load_results(tmp_path, other).test_accuracy == 1.0).all()
    assert kr.run_is_done(tmp_path, "width10", 1, TINY) and kr.run_is_done(tmp_path, "width10", 1, other)
    assert len(kr.load_results(tmp_path)) == 2 * len(tiny_rows)


def test_settings_key_is_stable_and_distinguishes_every_field():
    assert kr.settings_key(ku.TrainSettings()) == kr.settings_key(ku.TrainSettings())
    keys = {kr.settings_key(ku.TrainSettings(**change)) for change in
            ({}, {"epochs": 34}, {"lr": 0.02}, {"momentum": 0.9}, {"batch_size": 32}, {"test_batch_size": 500},
             {"train_limit": 100}, {"dataset": "fashion-mnist"})}
    assert len(keys) == 8


def test_a_write_killed_before_the_rename_leaves_the_old_record_and_no_temp_file(tmp_path, tiny_rows, monkeypatch):
    path = kr.save_runs(tiny_rows, TINY, tmp_path)[0]
    before = path.read_bytes()
    real_replace = os.replace

    def killed(src, dst):
        raise KeyboardInterrupt  # Ctrl-C between writing the temp file and renaming it
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        kr.save_runs(tiny_rows.assign(test_accuracy=0.0), TINY, tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_bytes() == before and kr.run_is_done(tmp_path, "width10", 1, TINY)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_leftover_temp_files_of_a_killed_writer_are_ignored_and_cleaned_up(tmp_path, tiny_rows):
    path = kr.save_runs(tiny_rows, TINY, tmp_path)[0]
    stale = path.with_name(f".{path.name}.x1y2z3.tmp")   # what a SIGKILLed writer leaves
    stale.write_text("dataset,variant\nsynth")
    fresh = path.with_name(f".{path.name}.a1b2c3.tmp")   # a writer still at work
    fresh.write_text("partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert len(kr.load_results(tmp_path, TINY)) == len(tiny_rows)
    assert kr.remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists()


def test_a_truncated_record_is_not_done_but_bad(tmp_path, tiny_rows):
    path = kr.save_runs(tiny_rows, TINY, tmp_path)[0]
    path.write_text(path.read_text().splitlines()[0] + "\n")  # header only
    with pytest.raises(kr.BadRecord, match="has no rows"):
        kr.run_is_done(tmp_path, "width10", 1, TINY)
    assert not kr.run_is_done(tmp_path, "width10", 7, TINY)  # no record at all: simply not done


def test_concurrent_writers_never_crash_and_a_reader_never_sees_a_partial_record(tmp_path, tiny_rows):
    tiny_rows.to_csv(tmp_path / "rows.csv", index=False)
    writer = textwrap.dedent(f"""
        import pandas as pd, kron_report as kr, kron_utils as ku
        rows = pd.read_csv({str(tmp_path / 'rows.csv')!r})
        for _ in range(60):
            kr.save_runs(rows, ku.TrainSettings(epochs=2, dataset="synthetic"), {str(tmp_path / 'results')!r})
    """)
    writers = [subprocess.Popen([sys.executable, "-c", writer]) for _ in range(2)]
    path, reads = kr.run_file(tmp_path / "results", TINY, "width10", 1), 0
    while any(w.poll() is None for w in writers):
        if path.exists():
            seen = pd.read_csv(path)
            assert len(seen) == 2 and list(seen.columns) == ku.RESULT_COLUMNS
            reads += 1
    assert [w.returncode for w in writers] == [0, 0] and reads > 0
    assert not list((tmp_path / "results").rglob("*.tmp"))


def test_check_dir_rejects_bad_folders_with_one_message(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    for path, message in (("", "must name a folder"), ("  ", "must name a folder"), (None, "must name a folder"),
                          (tmp_path / "a-file", "is a file"), (tmp_path / "a-file" / "sub", "cannot be written")):
        with pytest.raises(ValueError, match=f"results_dir.*{message}|{message}"):
            kr.check_dir(path, "results_dir")
    import tempfile

    def read_only(*args, **kwargs):  # what a read-only folder does for a non-root user
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(ValueError, match="results_dir .* cannot be written: Permission denied"):
        kr.check_dir(tmp_path / "ro", "results_dir")


def test_the_sweep_checks_its_folders_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setattr(ku, "train", lambda *a, **k: pytest.fail("trained before checking"))
    (tmp_path / "a-file").write_text("x")
    for kwargs, message in ((dict(results_dir=tmp_path / "a-file"), "results_dir"), (dict(results_dir=""), "results_dir"),
                            (dict(scheduler="tcp-host"), "scheduler must be")):
        with pytest.raises(ValueError, match=message):
            kr.run_sweep(["width10"], [1], TINY, **{"results_dir": tmp_path / "r", "scheduler": "serial", **kwargs})
    with pytest.raises(FileNotFoundError, match="make data DATASET=mnist"):
        kr.run_sweep(["width10"], [1], ku.TrainSettings(epochs=1), results_dir=tmp_path / "r", scheduler="serial",
                     data_dir=tmp_path / "no-data")





def sweep_in_subprocess(tmp_path, name):
    code = textwrap.dedent(f"""
        import kron_report as kr, kron_utils as ku
        s = kr.run_sweep(["width10"], [1, 2], ku.TrainSettings(epochs=1, dataset="synthetic"),
                         results_dir={str(tmp_path / 'results')!r}, scheduler="serial")
        print("TRAINED", sum(map(len, s.trained)))
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_two_concurrent_sweeps_train_each_run_once(tmp_path):
    sweeps = [sweep_in_subprocess(tmp_path, f"runs{i}") for i in range(2)]
    outputs = [s.communicate(timeout=300)[0] for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0]
    trained = sorted(int(out.rsplit("TRAINED", 1)[1]) for out in outputs)
    assert trained == [0, 2]  # one sweep trained both seeds, the other waited and reused them
    assert len(kr.load_results(tmp_path / "results")) == 2


def test_divergence_is_printed_by_the_sweep_and_no_wall_time_is_recorded(tmp_path, capsys):
    wild = ku.TrainSettings(epochs=2, lr=1e6, momentum=0.9, dataset="synthetic")
    kr.run_sweep(["original"], [1], wild, results_dir=tmp_path / "results", scheduler="serial")
    out = capsys.readouterr().out
    assert "WARNING: synthetic original seed 1 diverged in epoch" in out
    assert kr.divergence_lines(kr.load_results(tmp_path / "results", wild))[0].startswith("WARNING: synthetic original")
    assert not list((tmp_path / "results").rglob("sweep.json"))  # only the full-setting sweep records its time


@pytest.mark.parametrize("force,ok", [("0", True), ("1", True), ("TRUE", True), ("false", True), ("yes", False),
                                      ("on", False), ("y", False)])
def test_make_validates_force(force, ok):
    result = subprocess.run(["make", "-n", "report", f"FORCE={force}"], cwd=kr.ROOT, capture_output=True, text=True)
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert "FORCE must be 0, 1, true or false" in result.stderr


def test_make_report_rejects_another_dataset():
    result = subprocess.run(["make", "-n", "report", "DATASET=fashion-mnist"], cwd=kr.ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "make report covers MNIST" in result.stderr
