"""Every notebook parameter checked once, before any work, by the one checker (params.read_parameters): bad values
fail with one message naming the notebook and the parameter the user set; the smallest grids the plans accept
render; a damaged record fails the page naming its file, while missing runs are only 'not run'."""
import shutil

import papermill
import pandas as pd
import pytest

import kron_report as kr
from conftest import execute

WHY = "05_why"
ADAPTERS = "06_adapters"


@pytest.mark.parametrize("notebook,parameters,message", [
    (WHY, dict(sgd_learning_rates=["fast"]), "05_why: sgd_learning_rates must be a non-empty list of distinct numbers"),
    (WHY, dict(sgd_learning_rates="[fast]"), "05_why: sgd_learning_rates: cannot read a list"),
    (WHY, dict(sgd_learning_rates=[True]), "05_why: sgd_learning_rates must be"),
    (WHY, dict(sgd_learning_rates=[0.01, 0.01]), "05_why: sgd_learning_rates must be a non-empty list of distinct"),
    (WHY, dict(adam_learning_rates=[20.0]), "05_why: adam_learning_rates must be"),
    (WHY, dict(tuning_seeds=[1]), "05_why: tuning_seeds: this notebook reports 95% intervals"),
    (WHY, dict(seeds=[1.5, 2]), "05_why: seeds must be a non-empty list of non-negative integers"),
    (WHY, dict(fields_seed=-1), "05_why: fields_seed must be a whole number >= 0"),
    (WHY, dict(fields_seed=9), r"05_why: fields_seed must be one of seeds \[1, 2, 3, 4, 5\]"),
    (WHY, dict(seeds=[2, 3], fields_seed=1), r"05_why: fields_seed must be one of seeds \[2, 3\]"),
    (WHY, dict(validation_images=59999), "05_why: validation_images must leave at least 1,000 of the 60,000"),
    (WHY, dict(validation_images=70000), "05_why: validation_images must leave"),
    (WHY, dict(validation_images=0), "05_why: validation_images must be a whole number >= 1"),
    (WHY, dict(permuted_variants=["two_kron", "nope"]), r"05_why: permuted_variants: unknown variant\(s\) \['nope'\]"),
    (WHY, dict(dataset="cifar"), "05_why: dataset must be one of"),
    (ADAPTERS, dict(budget_ranks=[1.5]), "06_adapters: budget_ranks must be a non-empty list of distinct positive"),
    (ADAPTERS, dict(budget_ranks=[True]), "06_adapters: budget_ranks must be"),
    (ADAPTERS, dict(budget_ranks=[1, 1]), "06_adapters: budget_ranks must be"),
    (ADAPTERS, dict(budget_ranks=[1], lokr_configs=[[-1, 14.5]]), r"06_adapters: lokr_configs must list \[decompose"),
    (ADAPTERS, dict(budget_ranks=[1], lokr_configs=[["a", 14]]), "06_adapters: lokr_configs must list"),
    (ADAPTERS, dict(budget_ranks=[1], lokr_configs="[[a, 14]]"), "06_adapters: lokr_configs: cannot read a list"),
    (ADAPTERS, dict(budget_ranks=[1, 4], lokr_configs=[[-1, 14]]), "06_adapters: lokr_configs must give one"),
    (ADAPTERS, dict(candidates=[["mnist", "cifar", None, 10]]), "06_adapters: candidates: unknown dataset 'cifar'"),
    (ADAPTERS, dict(candidates=[["fashion-mnist", "fashion-mnist", None, 10]]),
     "06_adapters: candidates: source and target must differ"),
    (ADAPTERS, dict(learning_rates=["fast"]), "06_adapters: learning_rates must be"),
    (ADAPTERS, dict(learning_rates=[True]), "06_adapters: learning_rates must be"),
    (ADAPTERS, dict(learning_rates=[2.0]), r"06_adapters: learning_rates must be .* in \(0, 1\)"),
    (ADAPTERS, dict(validation_images=29000), "06_adapters: validation_images must leave at least 1,000 of the 29,404 "
                                              "training images of mnist:5-9"),
    (ADAPTERS, dict(candidates=[["mnist", "fashion-mnist", None, 0]]), "06_adapters: candidates must list"),
])
def test_each_bad_parameter_fails_at_the_plan_naming_it(tmp_path, notebook, parameters, message):
    plan = {WHY: kr.WhyPlan.from_parameters, ADAPTERS: kr.TransferStudy.from_parameters}[notebook]
    with pytest.raises(ValueError, match=message):
        plan({**kr.NOTEBOOK_PARAMETERS[notebook], "results_dir": str(tmp_path / "results"), **parameters})
    assert not (tmp_path / "results").exists()   # refused before any work


def test_a_papermill_list_of_numbers_reads_as_numbers():
    assert kr.parse_list("0.01,0.1") == [0.01, 0.1] and kr.parse_list("1,2") == [1, 2]
    assert kr.parse_list("fast, 1") == ["fast", 1] and kr.parse_list("true") == [True]   # for the rule to refuse
    assert kr.check_rates("0.003, 0.01", "sgd_learning_rates", 10) == [0.003, 0.01]
    assert kr.read_parameters(WHY, {**kr.NOTEBOOK_PARAMETERS[WHY], "sgd_learning_rates": "[0.01, 0.1]"})[
        "sgd_learning_rates"] == [0.01, 0.1]


def test_the_notebook_refuses_a_bad_parameter_in_its_first_cell(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="05_why: sgd_learning_rates must be") as info:
        execute("05_why.ipynb", tmp_path, sgd_learning_rates=["fast"], results_dir=str(tmp_path / "results"))
    assert "WhyPlan.from_parameters" in str(info.value) and not (tmp_path / "results").exists()


SMALL = dict(epochs=1, seeds=[1, 2], scheduler="serial")


@pytest.mark.parametrize("notebook,page,parameters", [
    ("06_adapters", "adapters", dict(candidates=[["synthetic:0-4", "synthetic:5-9", 100, 1]], budget_ranks=[1],
                                     lokr_configs=[[-1, 14]], shape_ranks=[8], factor_shapes=[[25, 28], [5, 49]],
                                     learning_rates=[0.001], validation_images=50)),
    ("05_why", "why", dict(dataset="synthetic", permuted_variants=["original", "two_kron", "width10"],
                           off_grid_variants=["kron_25x16_25x49"], tuning_variants=["original"], tuning_seeds=[1, 2],
                           sgd_learning_rates=[0.01], validation_images=100, fields_seed=2)),
])
def test_the_smallest_grid_a_plan_accepts_renders(tmp_path, notebook, page, parameters):
    """One budget, one LoKr at peft's default factorisation, one learning rate; or one tuned net, one SGD rate."""
    folders = dict(results_dir=str(tmp_path / "results"), figures_dir=str(tmp_path / "figures"))
    kr.execute_notebook(kr.ROOT / "notebooks" / f"{notebook}.ipynb", {**SMALL, **parameters, **folders},
                        tmp_path / f"{notebook}.ipynb")
    html = kr.render_page(page, tmp_path, tmp_path).read_text()
    assert 'id="references"' in html and "Traceback" not in html and " nan " not in html


# --- missing is not damaged ------------------------------------------------------------------------------------

def damage(record) -> None:
    """Empty a record to its header, as an interrupted copy might leave it."""
    record.write_text(record.read_text().splitlines()[0] + "\n")


def committed_record(*parts):
    return kr.ROOT.joinpath("results", *parts)


RECIPE_RECORD = ("mnist", "0655a8bf6e", "two_kron", "seed-1.csv")     # the why page's recipe search, on page 1
PERMUTED_RECORD = ("mnist", "9aeb2e5404", "two_kron", "seed-1.csv")   # permuted pixels, in the key findings


def test_missing_runs_are_their_own_exception_and_a_damaged_record_is_not_one():
    assert not issubclass(kr.MissingRuns, ValueError) and issubclass(kr.BadRecord, ValueError)
    with pytest.raises(kr.MissingRuns):
        kr.require_runs(kr.load_results([]), ["two_kron"], [1])


def test_a_damaged_recipe_record_fails_the_first_page_naming_it(tmp_path):
    """An exploratory results folder is read first: a damaged copy there shadows the committed record."""
    overlay = tmp_path / "results"
    shutil.copytree(committed_record(*RECIPE_RECORD[:2]), overlay / RECIPE_RECORD[0] / RECIPE_RECORD[1])
    damage(overlay.joinpath(*RECIPE_RECORD))
    with pytest.raises(kr.BadRecord, match="seed-1.csv: has no rows"):
        kr.tuned_comparison([overlay, kr.committed_results()], 35, "mnist")
    with pytest.raises(papermill.PapermillExecutionError, match=r"0655a8bf6e/two_kron/seed-1.csv: has no rows"):
        execute("00_article.ipynb", tmp_path, results_dir=str(overlay), figures_dir=str(tmp_path / "figures"))
    assert kr.tuned_comparison([tmp_path / "empty"], 35, "mnist") is None   # missing: not run, says the page


@pytest.mark.parametrize("record", [PERMUTED_RECORD, "adapter"])
def test_a_damaged_record_fails_the_key_findings_naming_it(tmp_path, monkeypatch, record):
    """The post (00_article, front.post_findings) reads the committed runs of every page: here a copy of them, one
    record damaged."""
    shutil.copytree(kr.ROOT / "results", tmp_path / "results")
    if record == "adapter":
        plan = kr.TransferStudy.from_parameters({}).adapters_plan()   # the setting the adapters are compared in
        record = kr.run_file(tmp_path / "results" / plan.results_dir.relative_to(kr.committed_results()),
                             plan.settings(plan.rates[0]), "kronsum_r1", 1).relative_to(tmp_path / "results").parts
    damage(tmp_path.joinpath("results", *record))
    monkeypatch.setattr(kr.paths, "ROOT", tmp_path)
    with pytest.raises(kr.BadRecord, match="/".join(record[-3:]) + ": has no rows"):
        kr.post_findings(pd.DataFrame(columns=["variant"]), "mnist", 35)


def test_every_report_notebook_checks_its_parameters_in_the_cell_after_them():
    """The cell after the parameters hands them to the one checker (directly or through a page's plan), so a bad
    value fails there, before any data is read or run trained."""
    import json
    for notebook in kr.NOTEBOOK_PARAMETERS:
        cells = [c for c in json.loads((kr.ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
                 if c["cell_type"] == "code"]
        first = next(k for k, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
        source = "".join(cells[first + 1]["source"])
        assert "read_parameters(" in source or "from_parameters(" in source, notebook
    with pytest.raises(ValueError, match="01_kronecker_product: train_epochs must be a whole number >= 1, got 0"):
        kr.read_parameters("01_kronecker_product", {"train_epochs": 0})
