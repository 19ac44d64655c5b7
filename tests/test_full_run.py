"""The one rule for where a report notebook's run may write: only its full, default configuration writes to
results/ and figures/; any other run writes to runs/ and still reads the committed runs."""
import papermill
import pytest

import kron_report as kr
import kron_utils as ku
from kron_report import paths

#: A value other than the default, for every parameter that changes what a page shows.
OTHER_VALUES = dict(dataset="fashion-mnist", epochs=34, variants=["two_kron", "original"], seeds=[1, 2],
                    tolerance_pp=1.0, train_epochs=2, seed=2, harder_dataset="", kron_variants=["two_kron"],
                    dense_widths=[10, 625], low_ranks=[1], tt_ranks=[4], t3f_epochs=2, projection_ranks=[1, 2, 4],
                    finetune_epochs=2, compression_epochs=1, compression_tt_rank=4, compression_finetune_epochs=1,
                    permutation_seed=5, permuted_variants=["original", "two_kron", "width10"],
                    off_grid_variants=["kron_25x49_25x16"], tuning_variants=["original", "two_kron"], tuning_seeds=[1, 2],
                    sgd_learning_rates=[0.01], adam_learning_rates=[0.003], cosine=False, structured=False, validation_images=5000, fields_seed=2,
                    learning_rates=[0.001], budget_ranks=[1], lokr_configs=[[-1, 14]],
                    candidates=[["synthetic:0-4", "synthetic:5-9", 100, 1]], choice_seeds=1, shape_ranks=[],
                    factor_shapes=[[5, 49]])


@pytest.mark.parametrize("notebook", list(kr.NOTEBOOK_PARAMETERS))
def test_the_declared_parameters_are_the_notebooks_own(notebook):
    cell = papermill.inspect_notebook(str(kr.ROOT / "notebooks" / f"{notebook}.ipynb"))
    declared = {name: eval(p["default"]) for name, p in cell.items()}  # noqa: S307 - the notebook's own literals
    assert declared == kr.NOTEBOOK_PARAMETERS[notebook]


def changed_parameters():
    for notebook, defaults in kr.NOTEBOOK_PARAMETERS.items():
        for name in defaults:
            if name not in kr.NEUTRAL_PARAMETERS:
                yield notebook, name


@pytest.mark.parametrize("notebook,name", list(changed_parameters()))
def test_changing_any_parameter_that_shows_makes_the_run_exploratory(notebook, name, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    defaults = kr.NOTEBOOK_PARAMETERS[notebook]
    assert kr.is_full_run(notebook, defaults)
    assert OTHER_VALUES[name] != defaults[name]
    parameters = {**defaults, name: OTHER_VALUES[name]}
    assert not kr.is_full_run(notebook, parameters)
    results, figures, full = kr.output_dirs(notebook, parameters)
    assert not full and figures == tmp_path / "runs" / "figures"
    assert results in (None, tmp_path / "runs" / "results")
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()


@pytest.mark.parametrize("notebook", list(kr.NOTEBOOK_PARAMETERS))
def test_the_default_run_writes_to_the_committed_folders_and_neutral_parameters_keep_it_full(notebook, tmp_path,
                                                                                             monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    defaults = kr.NOTEBOOK_PARAMETERS[notebook]
    results, figures, full = kr.output_dirs(notebook, defaults)
    assert full and figures == tmp_path / "figures" and results in (None, tmp_path / "results")
    neutral = dict(force=True, device="cpu", data_dir="elsewhere", runs_dir="scratch")
    assert kr.is_full_run(notebook, {**defaults, **{k: v for k, v in neutral.items() if k in defaults}})


def test_an_exploratory_run_may_not_be_pointed_at_the_committed_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    exploratory = {**kr.NOTEBOOK_PARAMETERS["04_beyond"], "projection_ranks": [1, 2]}
    for name, folder in (("results_dir", "results"), ("figures_dir", str(tmp_path / "figures"))):
        with pytest.raises(ValueError, match=f"{name} .* holds the committed"):
            kr.output_dirs("04_beyond", {**exploratory, name: folder})
    assert kr.output_dirs("04_beyond", {**exploratory, "results_dir": "mine"})[0] == tmp_path / "mine"
    with pytest.raises(ValueError, match="unknown notebook"):
        kr.is_full_run("05_nothing", {})


def beyond_parameters(**changes):
    return {**kr.NOTEBOOK_PARAMETERS["04_beyond"], **changes}


def test_the_part_3_plan_follows_the_rule_for_every_parameter(tmp_path, monkeypatch):
    """The bug this replaces: other projection ranks, fine-tuning epochs or a harder dataset still counted as
    the full run and rewrote results/ and figures/."""
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    for name in ("projection_ranks", "finetune_epochs", "harder_dataset", "t3f_epochs", "tolerance_pp", "tt_ranks"):
        plan = kr.BeyondPlan.from_parameters(beyond_parameters(**{name: OTHER_VALUES[name]}))
        assert not plan.full, name
        assert (plan.results_dir, plan.figures_dir) == (tmp_path / "runs" / "results", tmp_path / "runs" / "figures")
        assert plan.reads == [tmp_path / "runs" / "results", tmp_path / "results"], name  # committed runs still read
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()
    full = kr.BeyondPlan.from_parameters(beyond_parameters())
    assert full.full and full.results_dir == tmp_path / "results" and full.reads == [tmp_path / "results"]
    assert full.t3f == ku.TrainSettings(epochs=3, lr=0.01, batch_size=64, optimizer="adam")


def test_the_part_2_plan_checks_seeds_and_tolerance(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    defaults = kr.NOTEBOOK_PARAMETERS["03_report"]
    plan = kr.ReportPlan.from_parameters("03_report", defaults)
    assert plan.full and plan.seeds == list(range(1, 11)) and len(plan.variants) == 10 and plan.tolerance == 0.5
    for bad, message in ((dict(seeds=[1]), "at least 2 seeds"), (dict(tolerance_pp=-0.5), "tolerance_pp"),
                         (dict(tolerance_pp=True), "tolerance_pp"), (dict(variants=["nope"]), "unknown variant")):
        with pytest.raises(ValueError, match=message):
            kr.ReportPlan.from_parameters("03_report", {**defaults, **bad})


def test_an_exploratory_sweep_reads_committed_runs_without_writing_there(tmp_path):
    settings = ku.TrainSettings(epochs=1, dataset="synthetic")
    committed, scratch = tmp_path / "committed", tmp_path / "scratch"
    kr.run_sweep(["width10"], [1, 2], settings, results_dir=committed, scheduler="serial")
    before = {p: p.read_bytes() for p in committed.rglob("seed-*.csv")}
    sweep = kr.run_sweep(["width10", "two_kron"], [1, 2], settings, results_dir=scratch, reuse_dirs=[committed],
                         scheduler="serial")
    assert sweep.trained.tolist() == [[], [1, 2]] and sweep.reused.tolist() == [[1, 2], []]
    assert {p: p.read_bytes() for p in committed.rglob("seed-*.csv")} == before
    assert not list(scratch.rglob("width10/seed-*.csv")) and len(list(scratch.rglob("two_kron/seed-*.csv"))) == 2
    rows = kr.load_results([scratch, committed], settings, ["width10", "two_kron"])
    assert rows.groupby("variant").seed.nunique().to_dict() == {"width10": 2, "two_kron": 2}
