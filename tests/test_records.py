"""Every parameter and every stored record is checked: a damaged record is named, moved aside and retrained by a
sweep, and never reaches a page; a string where a boolean belongs fails before any work."""
import json
import stat
import subprocess

import papermill
import pytest

import kron_report as kr
import kron_utils as ku
from conftest import execute

TINY = ku.TrainSettings(epochs=2, dataset="synthetic")


def damage(text: str, kind: str) -> str:
    """A damaged copy of a sound two-epoch record's CSV text, as found in the wild."""
    lines = text.splitlines()
    header, rows = lines[0], lines[1:]
    cells = [r.split(",") for r in rows]
    column = {name: i for i, name in enumerate(header.split(","))}

    def with_cell(name, value, row=0):
        changed = [list(c) for c in cells]
        changed[row][column[name]] = value
        return "\n".join([header] + [",".join(c) for c in changed]) + "\n"
    return {"cut mid-row": "\n".join([header, rows[0], rows[1][:len(rows[1]) // 2]]) + "\n",
            "accuracy 150": with_cell("test_accuracy", "150.0"),
            "text for a number": with_cell("train_loss", "abc"),
            "header only": header + "\n",
            "renamed column": text.replace("test_accuracy", "accuracy", 1),
            "empty file": "",
            "an epoch missing": "\n".join([header, rows[1]]) + "\n",
            "another seed inside": with_cell("seed", "9", row=1),
            "NaN accuracy": with_cell("test_accuracy", "nan", row=1)}[kind]


CHECKS = {"cut mid-row": "status must be .ok.",  # the cut row has no status
          "accuracy 150": r"test_accuracy must lie in \[0, 100\]",
          "text for a number": "column train_loss holds something other than numbers",
          "header only": "has no rows", "renamed column": "has the columns", "empty file": "cannot be read as CSV",
          "an epoch missing": r"epochs are \[2\]", "another seed inside": "column seed should be 1 throughout",
          "NaN accuracy": r"test_accuracy must lie in \[0, 100\]"}


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sound")
    kr.run_sweep(["width10"], [1], TINY, results_dir=folder, scheduler="serial")
    return kr.run_file(folder, TINY, "width10", 1).read_text()


@pytest.mark.parametrize("kind", list(CHECKS))
def test_a_sweep_names_a_damaged_record_moves_it_aside_and_retrains_it(kind, sound, tmp_path, capsys):
    path = kr.run_file(tmp_path, TINY, "width10", 1)
    path.parent.mkdir(parents=True)
    (path.parent.parent / "settings.json").write_text(json.dumps(kr.settings_record(TINY)))
    path.write_text(damage(sound, kind))
    with pytest.raises(kr.BadRecord, match=CHECKS[kind]):
        kr.load_results(tmp_path, TINY)  # a page never gets it: loading fails, naming the file
    with pytest.raises(kr.BadRecord, match=str(path)):
        kr.load_results(tmp_path)
    sweep = kr.run_sweep(["width10"], [1], TINY, results_dir=tmp_path, scheduler="serial")
    printed = capsys.readouterr().out
    assert f"WARNING: bad record {path}" in printed and "moved to seed-1.csv.bad-" in printed
    assert sweep.trained.tolist() == [[1]]
    (aside,) = path.parent.glob("seed-1.csv.bad-*")
    assert aside.read_text() == damage(sound, kind)  # kept for inspection, never read again
    rows = kr.load_results(tmp_path, TINY)
    assert rows.epoch.tolist() == [1, 2] and rows.test_accuracy.between(0, 100).all()


def test_an_exploratory_sweep_leaves_a_damaged_committed_record_alone(sound, tmp_path, capsys):
    committed = tmp_path / "committed"
    path = kr.run_file(committed, TINY, "width10", 1)
    path.parent.mkdir(parents=True)
    (path.parent.parent / "settings.json").write_text(json.dumps(kr.settings_record(TINY)))
    path.write_text(damage(sound, "accuracy 150"))
    kr.run_sweep(["width10"], [1], TINY, results_dir=tmp_path / "scratch", reuse_dirs=[committed], scheduler="serial")
    assert "left alone and retrained here" in capsys.readouterr().out
    assert path.read_text() == damage(sound, "accuracy 150") and kr.run_is_done(tmp_path / "scratch", "width10", 1, TINY)


def test_a_damaged_record_never_reaches_a_page(tmp_path):
    nets = ["original", "two_kron", "one_kron", "width10"]
    kr.run_sweep(nets, [1, 2], TINY, results_dir=tmp_path / "r", scheduler="serial")
    bad = kr.run_file(tmp_path / "r", TINY, "two_kron", 2)
    bad.write_text(damage(bad.read_text(), "accuracy 150"))
    with pytest.raises(papermill.PapermillExecutionError, match=r"two_kron/seed-2.csv: test_accuracy must lie"):
        execute("00_article.ipynb", tmp_path, dataset="synthetic", epochs=2, seeds=[1, 2], variants=nets,
                results_dir=str(tmp_path / "r"), figures_dir=str(tmp_path / "figures"))
    assert not (tmp_path / "figures").exists() or not list((tmp_path / "figures").iterdir())


def test_records_are_readable_by_everyone(tmp_path):
    kr.run_sweep(["width10"], [1], TINY, results_dir=tmp_path, scheduler="serial")
    for path in (kr.run_file(tmp_path, TINY, "width10", 1), kr.settings_folder(tmp_path, TINY) / "settings.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("notebook,plan", [("03_report", lambda p: kr.ReportPlan.from_parameters("03_report", p)),
                                           ("04_beyond", kr.BeyondPlan.from_parameters)])
@pytest.mark.parametrize("name,value,message", [("force", "false", "force must be True or False"),
                                                ("force", "yes", "force must be True or False"),
                                                ("tolerance_pp", -1.0, "tolerance_pp"),
                                                ("seeds", [1], "at least 2 seeds"), ("seeds", [1, 1], "distinct"),
                                                ("epochs", 2.5, "epochs must be a whole number")])
def test_report_parameters_fail_with_one_message_naming_them(notebook, plan, name, value, message, tmp_path):
    parameters = {**kr.NOTEBOOK_PARAMETERS[notebook], "dataset": "synthetic", "results_dir": str(tmp_path / "r"),
                  "figures_dir": str(tmp_path / "f"), name: value}
    with pytest.raises(ValueError, match=message):
        plan(parameters)
    assert not (tmp_path / "r").exists()


def test_a_string_for_force_fails_in_the_first_cell_before_any_training(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="force must be True or False, got 'false'"):
        execute("03_report.ipynb", tmp_path, dataset="synthetic", force="false", results_dir=str(tmp_path / "r"),
                figures_dir=str(tmp_path / "f"))
    assert not list(tmp_path.rglob("seed-*.csv"))


def test_make_data_names_what_it_can_fetch_and_a_data_dir_that_is_a_file(tmp_path):
    result = subprocess.run(["make", "data", "DATASET=synthetic"], cwd=kr.ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "make data fetches mnist or fashion-mnist, got 'synthetic'" in result.stderr
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="data_dir .*a-file is a file, not a folder"):
        kr.verify_dataset(tmp_path / "a-file", "mnist")
    with pytest.raises(ValueError, match="data_dir .*a-file is a file"):
        kr.TrainRequest.from_parameters(dict(variant="two_kron", epochs=1, seeds=[1], lr=0.01, momentum=0.5,
                                             batch_size=64, test_batch_size=1000, train_limit=None, dataset="mnist",
                                             optimizer="sgd", data_dir=str(tmp_path / "a-file"),
                                             results_dir=str(tmp_path / "r"), device="cpu"))
