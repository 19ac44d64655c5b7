"""Each notebook executes under papermill with tiny parameters on synthetic data."""
import pandas as pd
import papermill
import pytest

import kron_utils as ku

NOTEBOOKS = ku.ROOT / "notebooks"


def execute(name, tmp_path, **parameters):
    return papermill.execute_notebook(str(NOTEBOOKS / name), str(tmp_path / f"out-{name}"), parameters=parameters,
                                      kernel_name="python3", progress_bar=False, cwd=str(ku.ROOT))


def test_train_notebook_runs_and_writes_tidy_rows(tmp_path):
    execute("02_train_variant.ipynb", tmp_path, variant="two_kron_out_kron", epochs=2, seeds=[1, 2],
            dataset="synthetic", results_dir=str(tmp_path / "results"), progress=False)
    for seed in (1, 2):
        csv_path, json_path = ku.run_files(tmp_path / "results", "synthetic", "two_kron_out_kron", seed)
        rows = pd.read_csv(csv_path)
        assert list(rows.columns) == ku.RESULT_COLUMNS and rows.epoch.tolist() == [1, 2]
        assert (rows.seed == seed).all() and (rows.weights == 1575).all() and json_path.exists()


@pytest.mark.parametrize("parameters,message", [
    (dict(variant="three_kron"), "unknown variant"),
    (dict(variant="two_kron", epochs=0), "epochs must be a positive integer"),
    (dict(variant="two_kron", seeds="[1, 1]"), "seeds must be distinct"),
])
def test_train_notebook_rejects_bad_parameters_before_training(tmp_path, parameters, message):
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        execute("02_train_variant.ipynb", tmp_path, dataset="synthetic", results_dir=str(tmp_path / "results"),
                **parameters)
    assert not (tmp_path / "results").exists()
