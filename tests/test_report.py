"""The resumable sweep, and the explainer and report notebooks on synthetic data."""
import pandas as pd
import papermill
import pytest

import kron_report as kr
import kron_utils as ku
from conftest import execute

TINY = ku.TrainSettings(epochs=2, batch_size=64, dataset="synthetic")


def sweep(tmp_path, variants, **kwargs):
    return kr.run_sweep(variants, [1, 2], TINY, results_dir=tmp_path / "results", scheduler="serial", **kwargs)


def mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("seed-*.csv"))}


def test_sweep_reuses_finished_runs_and_force_retrains(tmp_path):
    first = sweep(tmp_path, ["width10"])
    assert first.trained.tolist() == [[1, 2]]
    before = mtimes(tmp_path / "results")
    assert len(before) == 2
    again = sweep(tmp_path, ["width10"])
    assert again.trained.tolist() == [[]] and again.reused.tolist() == [[1, 2]]
    assert mtimes(tmp_path / "results") == before
    rows = kr.load_results(tmp_path / "results", TINY)
    assert len(rows) == 4 and set(rows.seed) == {1, 2}
    other = ku.TrainSettings(epochs=3, dataset="synthetic")
    assert not kr.run_is_done(tmp_path / "results", "width10", 1, other)
    assert sweep(tmp_path, ["width10"], force=True).trained.tolist() == [[1, 2]]
    assert all(before[p] < t for p, t in mtimes(tmp_path / "results").items())


def test_interrupted_sweep_keeps_finished_runs_and_resumes(tmp_path, monkeypatch):
    real = kr.sweep.train_variant
    calls = []

    def interrupted_after_first(**task):
        calls.append(task["variant"])
        if len(calls) > 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C while the second variant trained
        return real(**task)
    monkeypatch.setattr(kr.sweep, "train_variant", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, ["width10", "two_kron"])
    path = kr.run_file(tmp_path / "results", TINY, "width10", 1)
    finished = pd.read_csv(path)
    assert len(finished) == 2 and not kr.run_is_done(tmp_path / "results", "two_kron", 1, TINY)

    monkeypatch.setattr(kr.sweep, "train_variant", real)
    resumed = sweep(tmp_path, ["width10", "two_kron"])
    assert resumed.trained.tolist() == [[], [1, 2]]
    pd.testing.assert_frame_equal(pd.read_csv(path), finished)


def test_the_plan_refuses_a_bad_grid_and_the_sweep_trusts_it(tmp_path):
    """Validated once, at the plan: a bad grid fails there, before any folder is made; run_sweep takes a checked
    grid (an empty one is a programming error, not a user's)."""
    for variants, message in ((["two_kron", "four_kron"], "unknown variant"), ([], "non-empty"),
                              (["width10", "width10"], "distinct")):
        with pytest.raises(ValueError, match=message):
            kr.ReportPlan.from_parameters("03_report", dict(variants=variants, dataset="synthetic", epochs=2,
                                                            results_dir=str(tmp_path / "results")))
    assert not (tmp_path / "results").exists()
    with pytest.raises(AssertionError):
        sweep(tmp_path, [])


def test_report_notebook_rejects_bad_parameters_before_the_sweep(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="unknown variant"):
        execute("03_report.ipynb", tmp_path, dataset="synthetic", variants=["two_kron", "nope"],
                results_dir=str(tmp_path / "results"),
                figures_dir=str(tmp_path / "figures"))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_normalize_notebook_strips_what_changes_between_runs(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    cell = new_code_cell("run()", outputs=[
        new_output("stream", name="stdout", text="sweep: 0/2\rsweep: 1/2"),
        new_output("stream", name="stdout", text="\rsweep: 2/2 done\nnext line\n"),
        new_output("execute_result", data={"text/plain": "<pandas.io.formats.style.Styler at 0x7f3a2b>",
                                           "text/html": "<table/>"}, execution_count=1)])
    cell.metadata.update(execution={"iopub.status.busy": "2026-11-28T10:00:00"}, papermill={"duration": 1.5})
    nb = new_notebook(cells=[cell], metadata={"papermill": {"start_time": "x", "end_time": "y", "duration": 3.0,
                                                            "parameters": {"force": False}}})
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    kr.normalize_notebook(path)
    once = path.read_bytes()
    got = nbformat.read(str(path), as_version=4)
    assert "papermill" not in got.metadata  # absolute input/output paths, parameters and times: all machine-specific
    (out_cell,) = got.cells
    assert out_cell.id == "cell-0" and "execution" not in out_cell.metadata and "papermill" not in out_cell.metadata
    assert [o.output_type for o in out_cell.outputs] == ["stream", "execute_result"]
    assert out_cell.outputs[0].text == "sweep: 2/2 done\nnext line\n"
    assert out_cell.outputs[1].data["text/plain"] == "<pandas.io.formats.style.Styler>"
    kr.normalize_notebook(path)
    assert path.read_bytes() == once
