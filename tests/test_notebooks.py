"""The train notebook under papermill: tidy rows where its settings say, and one early error for bad input."""
import pandas as pd
import papermill
import pytest

import kron_report as kr
import kron_utils as ku
from conftest import execute


def test_train_notebook_runs_and_writes_tidy_rows(tmp_path):
    execute("02_train_variant.ipynb", tmp_path, variant="two_kron_out_kron", epochs=2, seeds=[1, 2],
            dataset="synthetic", results_dir=str(tmp_path / "results"), progress=False)
    settings = ku.TrainSettings(epochs=2, dataset="synthetic")
    for seed in (1, 2):
        rows = pd.read_csv(kr.run_file(tmp_path / "results", settings, "two_kron_out_kron", seed))
        assert list(rows.columns) == ku.RESULT_COLUMNS and rows.epoch.tolist() == [1, 2]
        assert (rows.seed == seed).all() and (rows.weights == 1575).all()
    assert (kr.settings_folder(tmp_path / "results", settings) / "settings.json").exists()


def test_train_notebook_prints_divergence(tmp_path):
    nb = execute("02_train_variant.ipynb", tmp_path, variant="original", epochs=2, lr=1e6, momentum=0.9,
                 dataset="synthetic", results_dir=str(tmp_path / "results"), progress=False)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "WARNING: synthetic original seed 1 diverged in epoch" in printed


TRAIN_DEFAULTS = dict(variant="two_kron", epochs=2, seeds=[1], lr=0.01, momentum=0.5, batch_size=64,
                      test_batch_size=1000, train_limit=None, dataset="synthetic", optimizer="sgd", data_dir="data",
                      device="cpu")


@pytest.mark.parametrize("parameters,message", [
    (dict(variant="three_kron"), "unknown variant"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(optimizer="adamw"), "optimizer must be one of sgd, adam"),
    (dict(seeds="[1, 1]"), "seeds must be distinct"),
    (dict(train_limit=600), "train_limit 600 exceeds the 512"),
    (dict(results_dir=""), "results_dir must name a folder"),
    (dict(data_dir=""), "data_dir must name a folder"),
    (dict(dataset="mnist", data_dir="/nonexistent-data"), "make data DATASET=mnist"),
    (dict(device="tpu"), "unknown device"),
])
def test_train_request_rejects_bad_parameters(tmp_path, parameters, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        kr.TrainRequest.from_parameters({**TRAIN_DEFAULTS, "results_dir": str(tmp_path / "results"), **parameters})
    assert not list(tmp_path.rglob("*.csv"))


def test_train_notebook_rejects_bad_parameters_in_its_first_cell(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(papermill.PapermillExecutionError, match="results_dir .*a-file is a file") as info:
        execute("02_train_variant.ipynb", tmp_path, dataset="synthetic", results_dir=str(tmp_path / "a-file"))
    assert "TrainRequest.from_parameters" in str(info.value)
