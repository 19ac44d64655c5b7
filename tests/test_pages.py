"""The pages' words are bound to their data.

- Every report notebook, run with non-default parameters on synthetic data, says nothing that only the
  committed run makes true, numbers its figures in order, and leaves results/ and figures/ untouched.
- The generated sentences of both pages, computed from the committed runs, match a reviewed golden snapshot
  (tests/golden/*.md; regenerate with UPDATE_GOLDEN=1 and review the diff).
- A clone in any folder renders a page from the committed results and stays clean.
"""
import hashlib
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

import kron_report as kr
import kron_utils as ku

GOLDEN = kr.ROOT / "tests" / "golden"
#: Phrases that only the committed configuration makes true, and signs of a sentence built from missing data.
FORBIDDEN = ("35 epochs", "ten seeds", "five seeds", "..", "`")  # a backtick: Markdown left raw in HTML


class _VisibleText(HTMLParser):
    """The text a reader sees: no scripts, styles or attribute values; with ``prose_only``, no highlighted source code
    either (a <pre> in a div.highlight: code cells and listings), while printed output stays in."""

    def __init__(self, prose_only: bool = False):
        super().__init__()
        self.parts, self._hidden, self._divs, self._prose_only = [], 0, [], prose_only

    def _skips(self, tag, attrs=None) -> bool:
        if tag == "pre":
            return self._prose_only and bool(self._divs) and self._divs[-1]
        return tag in ("script", "style")

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            self._divs.append("highlight" in (dict(attrs).get("class") or "").split())
        self._hidden += self._skips(tag)

    def handle_endtag(self, tag):
        self._hidden -= self._skips(tag)
        if tag == "div" and self._divs:
            self._divs.pop()

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str, prose_only: bool = False) -> str:
    """The page's visible text; ``prose_only`` leaves out code blocks (<pre>), whose backticks and ellipses are code."""
    parser = _VisibleText(prose_only)
    parser.feed(html)
    return " ".join(parser.parts)


def page_problems(text: str) -> list[str]:
    """What is wrong with a page's visible text: forbidden phrases, 'nan', figure numbers out of order."""
    problems = [f"says {phrase!r}" for phrase in FORBIDDEN if phrase in text]
    problems += [f"says {m!r}" for m in re.findall(r"\bnan\b", text, flags=re.IGNORECASE)]
    numbers = [int(n) for n in re.findall(r"Figure (\d+)\.", text)]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"figures numbered {numbers}")
    return problems


def test_the_page_checker_can_fail():
    assert page_problems("Figure 1. a. Figure 2. b.") == []
    assert page_problems("after 35 epochs on ten seeds") == ["says '35 epochs'", "says 'ten seeds'"]
    assert page_problems("accuracy nan ± NaN") == ["says 'nan'", "says 'NaN'"]
    assert page_problems("Figure 1. a. Figure 3. b.") == ["figures numbered [1, 3]"]
    assert page_problems("Figure 2. a.") == ["figures numbered [2]"] and page_problems("the end..") == ["says '..'"]
    assert page_problems("seeds for `two_kron`") == ["says '`'"]
    code = ('<p>prose</p><div class="highlight"><pre>def f(x):  # ``x`` (..., 784)</pre></div><p>more `raw`</p>'
            '<div class="output"><pre>printed after 35 epochs</pre></div>')
    assert "(..., 784)" in visible_text(code) and "(..., 784)" not in visible_text(code, prose_only=True)
    assert page_problems(visible_text(code, prose_only=True)) == ["says '35 epochs'", "says '`'"]


def tree_digest(*folders) -> str:
    """One hash of every file's path, size and modification time under ``folders``."""
    entries = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in f.rglob("*")
                     if p.is_file())
    return hashlib.sha256(repr(entries).encode()).hexdigest()


@pytest.fixture(scope="module")
def exploratory_pages(tmp_path_factory):
    """Every page rendered from runs of every report notebook with non-default parameters (2 epochs, 2 seeds,
    a subset of the nets, an empty tensor-train grid, synthetic data)."""
    out = tmp_path_factory.mktemp("exploratory")
    committed = tree_digest(kr.ROOT / "results", kr.ROOT / "figures")
    folders = dict(results_dir=str(out / "results"), figures_dir=str(out / "figures"))
    small = dict(dataset="synthetic", epochs=2, seeds=[1, 2], **folders)
    # Part 2 trains a third seed of its nets; Part 3 (two seeds) must show those nets with all three
    post = dict(variants=["original", "two_kron", "one_kron", "width10"], tolerance_pp=0.3, **{**small, "seeds": [1, 2, 3]})
    notebooks = {"03_report": post, "00_article": post,
                 "01_kronecker_product": dict(dataset="synthetic", train_epochs=2, seed=3, figures_dir=folders["figures_dir"]),
                 "04_beyond": dict(harder_dataset="", kron_variants=["two_kron"], dense_widths=[10], low_ranks=[1],
                                   tt_ranks=[], t3f_epochs=1, projection_ranks=[1, 2], finetune_epochs=1,
                                   compression_epochs=1, compression_tt_rank=4, compression_finetune_epochs=1,
                                   runs_dir=str(out / "runs"), **small),
                 "05_why": dict(permuted_variants=["original", "two_kron", "width10"], off_grid_variants=["kron_25x16_25x49"],
                                tuning_variants=["original", "two_kron"], tuning_seeds=[1, 2], sgd_learning_rates=[0.01, 0.1],
                                validation_images=100, fields_seed=2, permutation_seed=3, **small),
                 # Part 4 on two of its three seeds: it reads the committed runs and ΔW tables, trains nothing
                 "06_adapters": dict(seeds=[1, 2], **folders)}
    executed = out / "notebooks"
    executed.mkdir()
    for name, parameters in notebooks.items():
        kr.execute_notebook(kr.ROOT / "notebooks" / f"{name}.ipynb", parameters, executed / f"{name}.ipynb")
    second_sweep = kr.execute_notebook(kr.ROOT / "notebooks" / "03_report.ipynb", notebooks["03_report"],
                                       out / "again.ipynb")
    pages = {page: kr.render_page(page, executed, out) for page in kr.PAGES}
    return dict(out=out, pages=pages, committed_before=committed, second_sweep=second_sweep,
                committed_after=tree_digest(kr.ROOT / "results", kr.ROOT / "figures"))


def test_exploratory_pages_state_only_what_their_runs_support(exploratory_pages):
    for page, path in exploratory_pages["pages"].items():
        html = path.read_text()
        text = visible_text(html, prose_only=True)
        if page == "adapters":  # the base net's own recipe, read from its record, stays the post's at any parameters
            assert kr.recipe(kr.base_settings()) in text
            text = text.replace(kr.recipe(kr.base_settings()), "")
        assert page_problems(text) == [], page
        assert "data:image/png;base64" in html and 'id="references"' in html and 'aria-current="page"' in html
        for plumbing in ("injected-parameters", "TrainSettings(", "sweep of", "tidy rows", "<script src", "Warning"):
            assert plumbing not in html, (page, plumbing)
    report = visible_text(exploratory_pages["pages"]["kronecker_report"].read_text())
    assert "2 epochs" in report and "three seeds (1 to 3)" in report and "0.3 percentage points" in report
    assert "In 2018 Kento Nozawa" in report and "Effect: " in report and "Verdict: " in report and "synthetic" in report
    assert "Related work" in report and "784-625-10 MLP on synthetic" in report and "three seeds per net" in report
    beyond = visible_text(exploratory_pages["pages"]["beyond"].read_text())
    assert "three seeds (1 to 3) for two_kron, width10 and original; two seeds (1 and 2) for" in beyond
    assert "tt4_r5-4-5" in beyond and "abd4f77" in beyond and "tt4_r4" in beyond   # the TT partner, t3f's commit
    adapters = visible_text(exploratory_pages["pages"]["adapters"].read_text())
    assert "two seeds (1 and 2)" in adapters and "three seeds" not in adapters and "2 and 2 seeds" in adapters
    assert "leaves out the harder dataset" in beyond and "6. Conclusion" in beyond
    assert "the tuned comparison" in report and "has not been run for these settings" in report
    why = visible_text(exploratory_pages["pages"]["why"].read_text())
    assert "two seeds (1 and 2)" in why and "from seed 3" in why and "holds out the last 100 training images" in why
    assert "three recipes for 2 epochs" in why and "kron_25x16_25x49" in why and "5. Conclusion" in why
    assert "seed 2, 2 epochs" in why   # the receptive fields' caption follows fields_seed and epochs


def test_both_pages_show_each_shared_net_with_one_number(exploratory_pages):
    """Part 2 trained three seeds of two_kron and width10, Part 3 asked for two: both pages must show the mean ± sd
    over all three, computed here by pandas from the records, and never the two-seed one."""
    rows = kr.load_results(exploratory_pages["out"] / "results", ku.TrainSettings(epochs=2, dataset="synthetic"))
    final = rows[rows.epoch == 2]
    pages = {page: visible_text(path.read_text()) for page, path in exploratory_pages["pages"].items()
             if page != "adapters"}  # Part 4 shows none of the post's nets
    for net in ("two_kron", "width10"):
        accuracy = final[final.variant == net].set_index("seed").test_accuracy
        assert sorted(accuracy.index) == [1, 2, 3]
        every = f"{accuracy.mean():.2f} ± {accuracy.std():.2f}"
        two = f"{accuracy[[1, 2]].mean():.2f} ± {accuracy[[1, 2]].std():.2f}"
        for page, text in pages.items():
            assert every in text, (page, net, every)
            assert two == every or two not in text, (page, net, two)


def test_exploratory_runs_write_where_they_are_told_and_never_to_the_committed_folders(exploratory_pages):
    out = exploratory_pages["out"]
    assert exploratory_pages["committed_after"] == exploratory_pages["committed_before"]
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"synthetic_headline.png", "kron_growth.png", "receptive_fields.svg", "synthetic_pareto.png",
            "synthetic_t3f.png", "synthetic_projection.png", "synthetic_accuracy_curves.png"} <= figures
    settings = ku.TrainSettings(epochs=2, dataset="synthetic")
    projection = pd.read_csv(kr.settings_folder(out / "results", settings) / "projection.csv")
    assert set(projection.epoch) == {0, 1} and set(projection.seed) == {1, 2}
    compression = pd.read_csv(kr.settings_folder(out / "results", kr.t3f_compression_settings("synthetic", 1))
                              / "compression.csv")
    assert set(compression.variant) == {"original", "compressed-tt4_r4", "compressed-kron2_r1"}
    t3f = kr.load_results(out / "results", kr.t3f_settings(1, "synthetic"))
    assert set(t3f.variant) == {"tt4_r4", "two_kron"} and set(t3f.epoch) == {1}
    import nbformat
    again = nbformat.read(str(exploratory_pages["second_sweep"]), as_version=4)
    printed = "".join(o.get("text", "") for c in again.cells if c.cell_type == "code" for o in c.outputs)
    assert "0 runs trained now, 12 reused" in printed  # 4 nets x 3 seeds, all from the first run


# --- the golden snapshot of the generated sentences ----------------------------------------------------

def report_sentences() -> str:
    """Every generated sentence of the first page, from the committed runs, in page order."""
    plan = kr.ReportPlan.from_parameters("03_report", kr.NOTEBOOK_PARAMETERS["03_report"])
    rows = plan.load()
    post = rows[rows.variant.isin(ku.VARIANTS)]
    verdicts, by_init = kr.post_verdicts(rows, plan.tolerance), kr.verdicts_by_init(rows, plan.tolerance)
    parts = [kr.article_title(kr.part2_finding(post)), kr.lede(kr.post_verdicts(post, plan.tolerance), post),
             kr.article_dek(kr.part2_finding(post), kr.page_results(plan.settings.dataset), plan.settings.dataset),
             kr.key_findings_markdown(kr.part2_finding(post), kr.page_results(plan.settings.dataset)),
             *kr.headline_caption(post),
             kr.part2_method(plan.settings, plan.seeds), kr.runs_sentence(rows), kr.summary_note(plan.variants),
             *kr.curves_caption(post), *kr.loss_caption(post),
             kr.tolerance_sentence(plan.tolerance), kr.verdict_markdown(verdicts), kr.init_intro(by_init, plan.seeds),
             kr.init_markdown(by_init), kr.conclusion(verdicts, by_init),
             kr.fit_summary([kr.fit_diagnosis(rows, net) for net in ("two_kron", "one_kron")]),
             kr.tuned_gap_sentence(kr.compare_final(rows, "two_kron", "original"),
                                   kr.tuned_comparison(plan.reads, plan.settings.epochs, plan.settings.dataset),
                                   settings=plan.settings),
             kr.limitations(rows, plan.settings, len(kr.recipe_grid()), kr.sweep_device(plan.results_dir, plan.settings))]
    return "\n\n".join(parts) + "\n"


def why_sentences() -> str:
    """Every generated sentence of the why page, from the committed runs, in page order."""
    plan = kr.WhyPlan.from_parameters(kr.NOTEBOOK_PARAMETERS["05_why"])
    mnist, permuted = plan.load(plan.settings, plan.mnist_variants), plan.load(plan.permuted, plan.permuted_variants)
    effects = kr.permutation_effects(mnist, permuted, plan.permuted_variants)
    control, lead = kr.control_verdict(effects, plan.tolerance), kr.lead_over_dense(mnist, permuted)
    off_grid = kr.off_grid_comparison(mnist, kr.ALIGNED_NET, plan.off_grid_variants)
    tuning = plan.tuning_runs()
    scores, chosen = kr.validation_scores(tuning), kr.select_recipes(tuning)
    tuned = kr.tuned_results(tuning, chosen, default_recipe=kr.recipe_name(plan.settings))
    answer = kr.why_answer(effects, lead, off_grid, control)
    parts = [kr.why_lede(answer, tuned),
             kr.why_method(plan.settings, plan.permuted, plan.recipes, plan.seeds, plan.tuning_seeds),
             kr.control_sentence(control), kr.permutation_note(mnist, permuted, plan.permuted_variants),
             *kr.permutation_caption(effects), kr.permutation_summary(effects, lead),
             *kr.fields_caption(kr.FIELD_UNITS, plan.settings.epochs, plan.fields_seed), kr.off_grid_summary(off_grid),
             kr.fit_summary([kr.fit_diagnosis(mnist, net) for net in ("two_kron", "one_kron")]),
             kr.recipe_intro(plan.recipes, plan.tuning_seeds), *kr.recipe_caption(scores, chosen),
             kr.recipe_summary(tuned, default_recipe=kr.recipe_name(plan.settings)),
             kr.why_conclusion(answer, tuned)]
    return "\n\n".join(parts) + "\n"


def beyond_sentences() -> str:
    """Every generated sentence of Part 3, from the committed runs, in page order."""
    plan = kr.BeyondPlan.from_parameters(kr.NOTEBOOK_PARAMETERS["04_beyond"])
    rows, t3f_rows = plan.load(), plan.load(plan.t3f, kr.T3F_VARIANTS)
    points = kr.net_points(rows)
    comparisons = kr.equal_budget_comparisons(rows, plan.kron_variants)
    tt = kr.tt_comparisons(rows, plan.kron_variants)
    best = kr.best_by_budget(points, [7_000, 10_000, 20_000, 50_000, 100_000, 500_000])
    lead, leaders = kr.kronecker_margins(best), kr.budget_leaders(rows, points, best)
    t3f = kr.t3f_comparison(rows[rows.variant.isin(kr.T3F_VARIANTS)], t3f_rows)
    ranks = kr.rank_table(points, [v for v in ["lowrank1", "lowrank8", "one_kron", "two_kron", "kron2_r4", "kron4_r1",
                                               "kron4_r4", *plan.tt_variants] if v in points.index])
    tie_pairs = [("one_kron", "two_kron")] + [(f"tiedkron2_r{r}", f"kron2_r{r}") for r in (2, 4, 8)]
    def committed(settings, name, key):
        return kr.cached_table(kr.settings_folder(plan.results_dir, settings) / name, key,
                               lambda: pytest.fail(f"the committed {name} does not match its key"))
    projected = committed(plan.settings, "projection.csv", dict(source=plan.settings.record(), seeds=plan.seeds,
                                                                 ranks=plan.projection_ranks, finetune=plan.finetune.record()))
    compressed = committed(plan.compression, "compression.csv", dict(
        source=plan.compression.record(), seeds=plan.seeds, tt_rank=plan.compression_rank,
        finetune=plan.compression_finetune.record()))
    scratch = kr.load_results(plan.reads, plan.settings, [kr.scratch_name(r) for r in plan.projection_ranks])
    findings = kr.projection_findings(projected, scratch, plan.finetune.epochs, plan.settings.epochs)
    gaps = kr.projection_gaps(projected, scratch, plan.finetune.epochs, plan.settings.epochs)
    compression = kr.compression_findings(compressed)
    by_dataset = {s.dataset: plan.load(s, ku.VARIANTS) for s in (plan.settings, plan.harder)}
    finals = kr.final_epochs(pd.concat(by_dataset.values()))
    harder = kr.harder_dataset(*by_dataset.values(), plan.tolerance)
    parts = [kr.beyond_method(plan.settings, plan.t3f, rows),
             kr.beyond_lede(comparisons, lead, tt, t3f, compression, kr.T3F_COMPRESSION),
             kr.equal_budget_summary(comparisons), *kr.pareto_caption(points, rows), kr.seeds_note(rows),
             "\n".join(kr.budget_lines(leaders)), kr.kronecker_lead(lead),
             kr.tied_vs_untied(kr.tied_untied_gaps(rows, tie_pairs)), kr.tt_rank_summary(kr.rank_contrast(ranks)),
             kr.tt_summary(tt), kr.t3f_intro(plan.t3f, plan.seeds, kr.T3F_TUTORIAL), *kr.t3f_caption(t3f),
             kr.t3f_summary(t3f), kr.dense_before_projection(rows), *kr.projection_caption(findings, gaps),
             kr.projection_summary(findings, points.loc["original", "mean"]),
             kr.compression_intro(plan.compression, plan.compression_finetune, plan.seeds, kr.T3F_COMPRESSION,
                                  kr.T3F_COMMIT),
             kr.compression_summary(compression, kr.T3F_COMPRESSION), kr.compression_story(findings, compression),
             *kr.datasets_caption(finals, list(by_dataset), ku.VARIANTS), kr.seeds_note(pd.concat(by_dataset.values())),
             kr.harder_dataset_summary(harder, *by_dataset),
             kr.beyond_conclusion(comparisons, leaders, lead, tt, t3f, compression, kr.T3F_COMPRESSION, harder,
                                  list(by_dataset))]
    return "\n\n".join(parts) + "\n"


def adapters_sentences() -> str:
    """Every generated sentence of Part 4, from the committed runs, in page order."""
    plan = kr.AdaptersPlan.from_parameters(kr.NOTEBOOK_PARAMETERS["06_adapters"])
    chosen = plan.chosen()
    runs = plan.final_runs(chosen)
    results = kr.arm_results(runs, plan.arms)
    winners = kr.level_winners(runs, plan.arms, plan.ranks)
    kron_gaps = kr.kind_gaps(results, runs, plan.arms, "kronsum", "lora", plan.ranks)
    lokr_gaps = kr.kind_gaps(results, runs, plan.arms, "lokr", "lora", plan.ranks)
    twin, reference = kr.twin_comparison(runs), kr.compare_final(runs, "full_fc1", "scratch")
    deltas, fits = kr.delta_tables(plan, chosen)
    timing = kr.timing_table(plan)
    parts = [kr.adapters_lede(results, kron_gaps, lokr_gaps, twin, deltas, reference, plan.arms, plan.source,
                              plan.target),
             kr.adapters_method(plan.source, plan.target, plan.settings(plan.rates[0]), plan.rates, plan.seeds,
                                kr.base_record(plan)),
             *kr.budget_caption(results), kr.winners_summary(winners), kr.twin_check_sentence(kr.twin_check()),
             kr.twin_sentence(twin), *kr.fits_caption(fits), kr.delta_summary(deltas, fits, results),
             kr.timing_summary(timing, results, kron_gaps),
             kr.lokr_advice(kron_gaps, lokr_gaps, twin, plan.arms, plan.source, plan.target, plan.seeds, timing)]
    return "\n\n".join(parts) + "\n"


@pytest.mark.parametrize("page,sentences", [("kronecker_report", report_sentences), ("beyond", beyond_sentences),
                                            ("why", why_sentences), ("adapters", adapters_sentences)])
def test_generated_sentences_match_the_reviewed_snapshot(page, sentences):
    text, path = sentences(), GOLDEN / f"{page}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"the wording changed: rerun with UPDATE_GOLDEN=1 and review git diff {path}"
    assert not re.search(r"\bnan\b|\.\.", text, flags=re.IGNORECASE)


# --- idempotent in any folder ------------------------------------------------------------------------------

def test_a_clone_in_another_folder_renders_a_page_and_stays_clean(tmp_path):
    clone = tmp_path / "elsewhere" / "kron"
    subprocess.run(["git", "clone", "--quiet", str(kr.ROOT), str(clone)], check=True)
    code = ("import kron_report as kr; assert kr.ROOT == __import__('pathlib').Path.cwd(), kr.ROOT; "
            "kr.execute_notebook('notebooks/00_article.ipynb', {}); kr.render_page('kronecker_report')")
    env = {**os.environ, "PYTHONPATH": str(clone)}
    result = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", status
    assert "input_path" not in (clone / "notebooks" / "00_article.ipynb").read_text()


def test_committed_notebooks_show_no_path_of_the_machine_that_ran_them():
    import nbformat
    for path in sorted((kr.ROOT / "notebooks").glob("*.ipynb")):
        outputs = [o for c in nbformat.read(str(path), as_version=4).cells for o in c.get("outputs", [])]
        text = repr(outputs)
        assert "PosixPath(" not in text and str(kr.ROOT) not in text and "/work/" not in text, path.name


def test_source_listing_reads_the_code_as_it_is_now():
    def layer(x):
        return x + 1
    before = kr.source_listing(layer)

    def layer(x):  # noqa: F811 - the same function, edited
        return x + 2
    assert before.startswith("```python\n") and "return x + 1" in before and "return x + 2" in kr.source_listing(layer)


def test_the_first_page_shows_the_layers_code_as_it_is_in_the_module():
    """The committed page carries the module's current forward contraction and init scaling, token for token."""
    import inspect
    squeeze = lambda text: "".join(text.split())  # noqa: E731 - highlighting splits tokens by whitespace only
    page = squeeze(visible_text((kr.ROOT / "report" / "kronecker_report.html").read_text()))
    for function in (ku._kron_sum_linear, ku._init_like_linear):
        assert squeeze(inspect.getsource(function)) in page, function.__name__
