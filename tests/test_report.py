"""The resumable sweep, atomic results, and the explainer and report notebooks on synthetic data."""
import os

import pandas as pd
import papermill
import pytest
from scipy import stats

import kron_utils as ku
from test_notebooks import execute

TINY = ku.TrainSettings(epochs=2, batch_size=64, dataset="synthetic")


def sweep(tmp_path, variants, **kwargs):
    return ku.run_sweep(variants, [1, 2], TINY, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs", **kwargs)


def mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("seed-*.*"))}


def test_sweep_reuses_finished_runs_and_force_retrains(tmp_path):
    first = sweep(tmp_path, ["width10"])
    assert first.trained.tolist() == [[1, 2]]
    before = mtimes(tmp_path / "results")
    assert len(before) == 4  # two seeds x (csv, json)
    again = sweep(tmp_path, ["width10"])
    assert again.trained.tolist() == [[]] and again.reused.tolist() == [[1, 2]]
    assert mtimes(tmp_path / "results") == before
    rows = ku.load_results(tmp_path / "results", TINY)
    assert len(rows) == 4 and set(rows.seed) == {1, 2}
    # other settings are another run: not reused, and not mixed into load_results(settings)
    other = ku.TrainSettings(epochs=3, dataset="synthetic")
    assert not ku.run_is_done(tmp_path / "results", "width10", 1, other)
    assert sweep(tmp_path, ["width10"], force=True).trained.tolist() == [[1, 2]]
    assert all(before[p] < t for p, t in mtimes(tmp_path / "results").items())


def test_interrupted_sweep_keeps_finished_runs_and_resumes(tmp_path, monkeypatch):
    real = papermill.execute_notebook
    calls = []

    def interrupted_after_first(*args, **kwargs):
        calls.append(kwargs["parameters"]["variant"])
        if len(calls) > 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C while the second variant trained
        return real(*args, **kwargs)
    monkeypatch.setattr(papermill, "execute_notebook", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path, ["width10", "two_kron"])
    finished = pd.read_csv(ku.run_files(tmp_path / "results", "synthetic", "width10", 1)[0])
    assert len(finished) == 2 and not (tmp_path / "results" / "synthetic" / "two_kron").exists()

    monkeypatch.setattr(papermill, "execute_notebook", real)
    resumed = sweep(tmp_path, ["width10", "two_kron"])
    assert resumed.trained.tolist() == [[], [1, 2]]
    pd.testing.assert_frame_equal(pd.read_csv(ku.run_files(tmp_path / "results", "synthetic", "width10", 1)[0]),
                                  finished)


def test_a_write_killed_halfway_leaves_no_result(tmp_path, monkeypatch):
    rows, _ = ku.train("width10", [1], TINY, progress=False)
    real_replace = os.replace

    def dies_on_the_marker(src, dst):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", dies_on_the_marker)
    with pytest.raises(KeyboardInterrupt):
        ku.save_runs(rows, TINY, tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not ku.run_is_done(tmp_path, "width10", 1, TINY)
    assert ku.load_results(tmp_path).empty
    assert not list(tmp_path.rglob("seed-1.json"))


def test_truncated_result_file_is_not_done(tmp_path):
    rows, _ = ku.train("width10", [1], TINY, progress=False)
    csv_path = ku.save_runs(rows, TINY, tmp_path)[0]
    csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")  # header only
    assert not ku.run_is_done(tmp_path, "width10", 1, TINY)


def test_bad_sweep_input_fails_before_any_work(tmp_path):
    for variants, message in ((["two_kron", "four_kron"], "unknown variant"), ([], "non-empty"),
                              (["width10", "width10"], "distinct")):
        with pytest.raises(ValueError, match=message):
            sweep(tmp_path, variants)
    assert not (tmp_path / "results").exists()


def test_summary_and_comparison_against_hand_computed_numbers():
    rows = pd.DataFrame([dict(dataset="d", variant=v, seed=s, epoch=e, weights=w, params=w + 1, train_loss=0.1,
                              test_loss=0.1, test_accuracy=acc, seconds=1.0, status="ok")
                         for v, w, accs in (("original", 1000, [[90, 95], [91, 97], [92, 96]]),
                                            ("two_kron", 10, [[80, 85], [81, 84], [82, 89]]))
                         for s, acc_by_epoch in zip((1, 2, 3), accs) for e, acc in zip((1, 2), acc_by_epoch)])
    table = ku.summary_table(rows).set_index("variant")
    assert table.loc["original", "final test acc. (%)"] == "96.00 ± 1.00"
    assert table.loc["two_kron", "compression"] == "100x"
    c = ku.compare_final(rows, "two_kron", "original")
    assert c["diff"] == pytest.approx(86 - 96) and c["std_a"] == pytest.approx(7 ** 0.5)
    reference = stats.ttest_ind([85, 84, 89], [95, 97, 96], equal_var=False)  # Welch, by scipy
    interval = reference.confidence_interval(0.95)
    assert (c["low"], c["high"]) == pytest.approx((interval.low, interval.high))
    assert c["p"] == pytest.approx(reference.pvalue)


def test_explainer_notebook_runs(tmp_path):
    execute("01_kronecker_product.ipynb", tmp_path, dataset="synthetic", figures_dir=str(tmp_path / "figures"))
    assert {p.name for p in (tmp_path / "figures").iterdir()} >= {"kron_growth.png", "receptive_fields.svg",
                                                                  "tied_symmetry.png"}


def test_report_notebook_runs_then_reuses(tmp_path):
    params = dict(variants=["width10", "two_kron"], seeds=[1, 2], epochs=2, dataset="synthetic",
                  results_dir=str(tmp_path / "results"), runs_dir=str(tmp_path / "runs"),
                  figures_dir=str(tmp_path / "figures"))
    execute("03_report.ipynb", tmp_path, **params)
    assert (tmp_path / "figures" / "synthetic_accuracy_curves.png").exists()
    assert (tmp_path / "runs" / "synthetic" / "two_kron.ipynb").exists()
    before = mtimes(tmp_path / "results")
    execute("03_report.ipynb", tmp_path, **params)
    assert mtimes(tmp_path / "results") == before
    html = ku.render_html([tmp_path / "out-03_report.ipynb"], tmp_path / "report.html", "test")
    text = html.read_text()
    assert "data:image/png;base64" in text and "Our verdict" in text and "injected-parameters" not in text


@pytest.mark.parametrize("params,message", [(dict(variants=["two_kron", "nope"]), "unknown variant"),
                                            (dict(seeds=[1, 1]), "distinct"), (dict(epochs=-1), "epochs")])
def test_report_notebook_rejects_bad_parameters_before_the_sweep(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        execute("03_report.ipynb", tmp_path, dataset="synthetic", results_dir=str(tmp_path / "results"),
                runs_dir=str(tmp_path / "runs"), figures_dir=str(tmp_path / "figures"), **params)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()
