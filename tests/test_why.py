"""The 'why' page's experiments on hand-made run tables: every number checked against one computed by hand
(means, differences, scipy's Welch test), and the recipe choice shown never to read a test column."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import kron_report as kr
import kron_utils as ku


def runs(table: dict, metric: str = "test_accuracy", **extra) -> pd.DataFrame:
    """Tidy one-epoch rows from {variant: [value per seed]} (seeds 1, 2, ...)."""
    rows = [dict(dataset="mnist", variant=v, seed=s, epoch=1, weights=100, params=110, train_loss=0.1,
                 test_loss=0.2, test_accuracy=90.0, seconds=1.0, status="ok", **extra) | {metric: value}
            for v, values in table.items() for s, value in enumerate(values, start=1)]
    return pd.DataFrame(rows)


def welch(x, y):
    """Welch 95% interval of mean(x) - mean(y), by scipy directly."""
    result = stats.ttest_ind(x, y, equal_var=False)
    low, high = result.confidence_interval(0.95)
    return np.mean(x) - np.mean(y), low, high


def test_permutation_effects_are_permuted_minus_mnist_with_welch_intervals():
    mnist = runs({"original": [98.1, 98.2, 98.15], "two_kron": [97.8, 97.7, 97.75, 97.9]})
    permuted = runs({"original": [98.0, 98.2, 98.1], "two_kron": [96.1, 96.3, 96.2]})
    effects = kr.permutation_effects(mnist, permuted, ["original", "two_kron"]).set_index("variant")
    # like for like: two_kron's fourth MNIST seed has no permuted run, so only seeds 1 to 3 are compared
    diff, low, high = welch([96.1, 96.3, 96.2], [97.8, 97.7, 97.75])
    assert effects.loc["two_kron", "change"] == pytest.approx(diff)
    assert (effects.loc["two_kron", "low"], effects.loc["two_kron", "high"]) == pytest.approx((low, high))
    assert effects.loc["two_kron", "outcome"] == "loss" and effects.loc["two_kron", "n"] == 3
    assert effects.loc["original", "control"] and not effects.loc["two_kron", "control"]
    assert effects.loc["original", "mnist"] == pytest.approx(98.15)
    assert effects.loc["two_kron", "permuted_sd"] == pytest.approx(np.std([96.1, 96.3, 96.2], ddof=1))
    shown = kr.permutation_table(effects.reset_index()).set_index("net")
    assert shown.loc["two_kron", "permuted (%)"] == "96.20 ± 0.10" and shown.loc["two_kron", "seeds"] == "3"
    assert shown.loc["two_kron", "change (pp, 95% CI)"] == f"{diff:+.2f} ({low:+.2f} to {high:+.2f})"


def test_matched_seeds_keeps_the_pairs_both_tables_have():
    a = runs({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0]})
    b = runs({"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]})
    kept = kr.matched_seeds(a, b)
    assert sorted(zip(kept.variant, kept.seed)) == [("x", 1), ("x", 2), ("y", 1), ("y", 2)]


@pytest.mark.parametrize("permuted_original,verdict", [
    ([98.1, 98.2, 98.15], "holds"),                  # identical: interval around zero, well inside ±0.5
    ([96.0, 96.1, 96.05], "fails"),                  # two points lower: wholly outside ±0.5
    ([97.0, 99.0, 98.2], "not settled")])            # noisy: straddles the tolerance
def test_the_permutation_control(permuted_original, verdict):
    mnist = runs({"original": [98.1, 98.2, 98.15], "width10": [93.9, 94.0, 93.95]})
    permuted = runs({"original": permuted_original, "width10": [93.9, 94.0, 93.95]})
    control = kr.control_verdict(kr.permutation_effects(mnist, permuted, ["original", "width10"]), 0.5)
    assert control["verdict"] == verdict
    sentence = kr.control_sentence(control)
    assert {"holds": "The control holds", "fails": "The control fails",
            "not settled": "not settled"}[verdict] in sentence
    assert "`original` and `width10`" in sentence and "±0.5 points" in sentence and kr.numbers_in(sentence) <= 2


def test_the_control_needs_a_dense_net():
    mnist = runs({"two_kron": [97.8, 97.7]})
    with pytest.raises(ValueError, match="needs a net whose input layer absorbs"):
        kr.control_verdict(kr.permutation_effects(mnist, mnist, ["two_kron"]), 0.5)


@pytest.mark.parametrize("variant,absorbs", [("original", True), ("width10", True), ("lowrank8", True),
                                             ("two_kron", False), ("kron2_r2", False), ("tt4_r4", False),
                                             ("kron_25x16_25x49", False)])
def test_which_nets_absorb_a_permutation(variant, absorbs):
    """Checked directly: a net absorbs a permutation when some weights on permuted pixels compute its function."""
    assert kr.absorbs_permutation(variant) == absorbs
    torch.manual_seed(0)
    model, perm = ku.build_model(variant), ku.pixel_permutation(9)
    first = model.fc1[0] if isinstance(model.fc1, torch.nn.Sequential) else model.fc1
    if absorbs:  # permuting the dense input matrix's columns gives the same function on permuted pixels
        x = torch.randn(4, 784)
        before = model(x)
        with torch.no_grad():
            first.weight.copy_(first.weight[:, perm])
        torch.testing.assert_close(model(x[:, perm]), before)


def why_case(kron_permuted, off_grid=None, tuned_gap=(-0.69, -0.81, -0.57)):
    """(why_answer, tuned results) from hand-made runs: two_kron on permuted pixels as given."""
    mnist = runs({"original": [98.1, 98.2, 98.15], "two_kron": [97.8, 97.7, 97.75], "width10": [93.9, 94.0, 93.95]})
    permuted = runs({"original": [98.1, 98.2, 98.15], "two_kron": kron_permuted, "width10": [93.9, 94.0, 93.95]})
    effects = kr.permutation_effects(mnist, permuted, ["original", "two_kron", "width10"])
    lead = kr.lead_over_dense(mnist, permuted)
    off_grid = pd.DataFrame(columns=["variant", "diff", "outcome"]) if off_grid is None else off_grid
    w = kr.why_answer(effects, lead, off_grid, kr.control_verdict(effects, 0.5))
    gap, low, high = tuned_gap
    tuned = pd.DataFrame([dict(variant="original", gap=np.nan, low=np.nan, high=np.nan, outcome=np.nan),
                          dict(variant="two_kron", gap=gap, low=low, high=high,
                               outcome="loss" if high < 0 else "win" if low > 0 else "tie")])
    return w, tuned


@pytest.mark.parametrize("kron_permuted,answer", [([96.5, 96.6, 96.55], "both"), ([94.0, 94.1, 94.05], "grid"),
                                                  ([97.8, 97.7, 97.75], "rank")])
def test_why_answer(kron_permuted, answer):
    w, tuned = why_case(kron_permuted)
    assert w["answer"] == answer
    assert w["drop"].change == pytest.approx(np.mean(kron_permuted) - 97.75) and w["weights"] == 1400
    assert w["lead"]["permuted"]["diff"] == pytest.approx(np.mean(kron_permuted) - 93.95)
    assert w["ranks"] == (625, 10)  # rank(U (x) V) = 25 x 25; a width-10 layer has rank 10
    assert w["hidden"] == (625, 10)  # and the same hidden widths: the lead confounds structure with width
    lede = kr.why_lede(w, tuned)
    assert {"both": "Partly the fit to the image", "grid": "The fit to the image:",
            "rank": "Not the fit to the image"}[answer] in lede
    assert "cost nothing measurable" in lede  # no off-grid net loses here
    assert "No. With each net's recipe (learning rate, schedule" in lede and "by 0.69 points (95% CI 0.57 to 0.81)" in lede
    conclusion = kr.why_conclusion(w, tuned)
    assert all(kr.numbers_in(s) == 0 for s in kr.sentences(conclusion))  # it concludes; the numbers are above
    assert ("random-feature control cannot settle" in conclusion) == (answer in ("both", "rank"))
    assert "is not the recipe" in conclusion and "capacity" not in conclusion  # no fit diagnosis given


def test_the_lede_and_conclusion_follow_the_tuned_gap():
    w, level = why_case([96.5, 96.6, 96.55], tuned_gap=(-0.2, -0.5, 0.1))
    assert "Perhaps." in kr.why_lede(w, level) and "may be the recipe" in kr.why_conclusion(w, level)
    w, ahead = why_case([96.5, 96.6, 96.55], tuned_gap=(0.3, 0.1, 0.5))
    assert "comes out ahead" in kr.why_lede(w, ahead) and "was the recipe" in kr.why_conclusion(w, ahead)
    w, behind = why_case([96.5, 96.6, 96.55])
    fits = [dict(net="two_kron", reference="original", kind="underfits")]
    assert "capacity is the next suspect" in kr.why_conclusion(w, behind, fits)


def test_the_lead_survives_only_when_its_interval_stays_above_zero():
    mnist = runs({"two_kron": [97.8, 97.7, 97.75, 97.9], "width10": [93.9, 94.0, 93.95]})
    kept = kr.lead_over_dense(mnist, runs({"two_kron": [95.0, 95.2, 95.1], "width10": [93.9, 94.0, 93.95]}))
    lost = kr.lead_over_dense(mnist, runs({"two_kron": [93.0, 95.2, 94.1], "width10": [93.9, 94.0, 93.95]}))
    assert kept["survives"] and not lost["survives"]
    assert kept["permuted"]["diff"] == pytest.approx(95.1 - 93.95)
    assert kept["mnist"]["diff"] == pytest.approx(97.75 - 93.95)  # the same seeds (1 to 3) as on permuted pixels
    assert kept["mnist"]["seeds"] == kept["permuted"]["seeds"] == ((1, 2, 3), (1, 2, 3))
    shown = kr.lead_table(kept)
    assert shown["lead (pp, 95% CI)"].iloc[1].startswith("+1.15 (") and shown["seeds"].tolist() == ["3", "3"]
    unlike = dict(kept, mnist=dict(kept["mnist"], seeds=((1, 2, 3, 4), (1, 2, 3))))
    with pytest.raises(ValueError, match="not measured alike"):
        kr.lead_table(unlike)
    w = dict(lead=kept, hidden=(625, 10), ranks=(625, 10))
    assert "from 1.05 points up" in kr.lead_summary(dict(w, lead=dict(kept, permuted=dict(kept["permuted"], low=1.05))))
    survived = kr.lead_summary(w)
    assert "625 hidden units with 10" in survived and "could be width alone; section 2 separates" in survived
    assert "rank cannot be told apart from width" in survived
    assert "ranks of 700 against 10" in kr.lead_summary(dict(w, ranks=(700, 10)))
    gone = kr.lead_summary(dict(w, lead=lost))
    assert "no longer ahead" in gone and "random-feature" not in gone


def test_permutation_summary_states_the_weakest_loss_not_a_count():
    effects = pd.DataFrame([dict(variant="original", change=0.0, low=-0.1, high=0.1, outcome="tie", control=True),
                            dict(variant="a", change=-1.8, low=-2.1, high=-1.5, outcome="loss", control=False),
                            dict(variant="b", change=-1.2, low=-1.4, high=-0.9, outcome="loss", control=False)])
    text = kr.permutation_summary(effects)
    assert text.startswith("Every net whose input layer follows") and "`b`'s, is still at least 0.90 points" in text
    assert " of " not in text.split(":")[0]  # no 'two of two'
    mixed = kr.permutation_summary(pd.concat([effects, pd.DataFrame([dict(
        variant="c", change=-0.1, low=-0.4, high=0.2, outcome="tie", control=False)])]))
    assert "`a` and `b` lose" in mixed and "For `c` the change is within the seed noise." in mixed
    assert "nothing measurable" in kr.permutation_summary(effects[effects.control])


def test_off_grid_comparison_against_the_aligned_net():
    rows = runs({"two_kron": [97.8, 97.7, 97.75], "kron_25x16_25x49": [96.0, 96.2, 96.1],
                 "kron_25x49_25x16": [97.3, 97.4, 97.35]})
    table = kr.off_grid_comparison(rows, "two_kron", ["kron_25x16_25x49", "kron_25x49_25x16"])
    r = table.iloc[0]
    assert r["diff"] == pytest.approx(96.1 - 97.75) and r.outcome == "loss" and r.weights == 1625 and r.aligned_weights == 1400
    _, _, high = welch([97.3, 97.4, 97.35], [97.8, 97.7, 97.75])
    text = kr.off_grid_summary(table)
    assert text.startswith("Misaligned factors lose even with more weights: every off-grid layer")
    assert f"the closest, `kron_25x49_25x16`, is behind by at least {-high:.2f} points" in text  # the weakest margin
    one = table.assign(outcome=["loss", "tie"])
    assert "Some misaligned factors lose" in kr.off_grid_summary(one) and "For `kron_25x49_25x16`" in kr.off_grid_summary(one)
    assert "cost nothing measurable" in kr.off_grid_summary(table.assign(outcome="tie"))
    shown = kr.off_grid_table(table)
    assert shown["net"].tolist() == ["two_kron", "kron_25x16_25x49", "kron_25x49_25x16"]
    assert shown["input weights"].tolist() == ["1,400", "1,625", "1,625"]
    assert shown["factors"].tolist() == ["25×28 ⊗ 25×28", "25×16 ⊗ 25×49", "25×49 ⊗ 25×16"]
    assert shown["seeds"].tolist() == ["3", "3", "3"]


#: What the page says of each diagnosis, written out by hand.


@pytest.mark.parametrize("net_loss,net_accuracy,kind", [
    ([0.04, 0.041, 0.039], [97.7, 97.8, 97.75], "underfits"),
    ([0.012, 0.013, 0.011], [97.7, 97.8, 97.75], "generalises worse"),
    ([0.04, 0.041, 0.039], [98.1, 98.2, 98.15], "no gap")])
def test_fit_diagnosis(net_loss, net_accuracy, kind):
    accuracy = runs({"original": [98.1, 98.2, 98.15], "two_kron": net_accuracy})
    loss = runs({"original": [0.012, 0.011, 0.013], "two_kron": net_loss}, metric="train_loss")
    rows = accuracy.assign(train_loss=loss.train_loss)
    d = kr.fit_diagnosis(rows, "two_kron")
    assert d["kind"] == kind
    assert d["train_loss"]["diff"] == pytest.approx(np.mean(net_loss) - 0.012)
    shown = kr.fit_table([d]).set_index("net")
    assert shown.loc["two_kron", "training loss"] == f"{np.mean(net_loss):.3f}" and shown.loc["original", "training loss"] == "0.012"
    assert shown.loc["two_kron", "test vs original, pp (95% CI)"].startswith(kr.signed(np.mean(net_accuracy) - 98.15) + " (")
    with pytest.raises(ValueError, match="one reference net"):
        kr.fit_table([d, dict(d, reference="width10")])
    words = kr.underfit_sentence([d, dict(d, net="one_kron")])
    assert words.startswith("By the table, `two_kron` and `one_kron` ")
    assert ("section 5 tries the recipe" in words) == (kind == "underfits")


def tuning_table(test_values: str = "plain") -> pd.DataFrame:
    """Two nets x two recipes x three seeds; validation accuracies chosen so that 'a' picks SGD 0.1 and 'original'
    picks Adam. ``test_values`` 'adversarial' makes the test set favour the other recipe everywhere."""
    val = {("original", "SGD, lr 0.1"): [97.0, 97.1, 97.2], ("original", "Adam, lr 0.001"): [98.0, 98.1, 98.2],
           ("a", "SGD, lr 0.1"): [97.5, 97.6, 97.7], ("a", "Adam, lr 0.001"): [97.2, 97.3, 97.4]}
    rows = []
    for (v, recipe), values in val.items():
        for seed, value in enumerate(values, start=1):
            test = value - 0.3
            if test_values == "adversarial":
                test = 99.9 if (v, recipe) in {("original", "SGD, lr 0.1"), ("a", "Adam, lr 0.001")} else 50.0
            rows.append(dict(dataset="mnist", variant=v, seed=seed, epoch=1, weights=1, params=1, train_loss=0.1,
                             test_loss=0.2, test_accuracy=test, seconds=1.0, status="ok", validation_loss=0.1,
                             validation_accuracy=value, recipe=recipe))
    return pd.DataFrame(rows)


def test_each_net_keeps_its_best_validation_recipe():
    chosen = kr.select_recipes(tuning_table())
    assert chosen.to_dict() == {"original": "Adam, lr 0.001", "a": "SGD, lr 0.1"}
    scores = kr.validation_scores(tuning_table()).set_index(["variant", "recipe"])
    assert scores.loc[("a", "SGD, lr 0.1"), "mean"] == pytest.approx(97.6) and scores["seeds"].eq(3).all()
    # the bars of the recipe figure: sd 0.1 over three seeds, t(0.975, 2) = 4.3027: 4.3027 * 0.1 / sqrt(3) = 0.2484
    assert scores["half"].tolist() == pytest.approx([0.2484] * 4, abs=1e-4)
    import matplotlib
    matplotlib.use("Agg")
    named = tuning_table().replace({"variant": {"a": "two_kron"}})  # the figure styles nets by family
    fig = kr.recipe_figure(kr.validation_scores(named), kr.select_recipes(named))
    bars = [abs(seg[1][1] - seg[0][1]) / 2 for ax in fig.axes for c in ax.containers
            for seg in c.lines[2][0].get_segments()]
    assert bars == pytest.approx([0.2484] * 4, abs=1e-4)


def test_the_recipe_choice_never_reads_the_test_set():
    plain, adversarial = tuning_table(), tuning_table("adversarial")
    assert kr.select_recipes(adversarial).equals(kr.select_recipes(plain))
    without_test = plain.drop(columns=["test_accuracy", "test_loss"])
    assert kr.select_recipes(without_test).equals(kr.select_recipes(plain))


def test_tuned_gap_uses_each_nets_own_recipe():
    table = tuning_table()
    tuned = kr.tuned_results(table, kr.select_recipes(table), default_recipe="SGD, lr 0.1").set_index("variant")
    # a on SGD 0.1 (test 97.3 mean) against original on Adam (test 97.8 mean), by hand
    mine = [97.2, 97.3, 97.4]
    theirs = [97.7, 97.8, 97.9]
    diff, low, high = welch(mine, theirs)
    assert tuned.loc["a", "gap"] == pytest.approx(diff) and tuned.loc["a", "low"] == pytest.approx(low)
    assert tuned.loc["a", "default_gap"] == pytest.approx(97.3 - (97.1 - 0.3))
    assert tuned.loc["original", "recipe"] == "Adam, lr 0.001" and np.isnan(tuned.loc["original", "gap"])
    assert tuned.loc["original", "gain"] == pytest.approx(97.8 - 96.8)  # Adam's test mean minus SGD 0.1's, by hand
    assert tuned.loc["a", "gain"] == pytest.approx(0.0)  # a keeps the default recipe
    shown = kr.tuned_table(tuned.reset_index(), default_recipe="SGD, lr 0.1").set_index("net")
    assert shown.loc["a", "vs original, own recipes (95% CI)"] == f"{diff:+.2f} ({low:+.2f} to {high:+.2f})"
    assert shown.loc["original", "both on SGD, lr 0.1 (95% CI)"] == "–"
    assert "both on SGD, lr 0.1 (95% CI)" not in kr.tuned_table(tuned.reset_index())
    summary = kr.recipe_summary(tuned.reset_index(), net="a", default_recipe="SGD, lr 0.1")
    assert f"`a` stays behind `original` (on its own recipe) beyond the seed noise, by at least {-high:.2f} points" in summary
    assert "does not come from the recipe" not in summary  # on SGD 0.1 in the same runs, a is ahead of original
    behind = tuned.reset_index().assign(default_gap=-0.3, default_low=-0.5, default_high=-0.1)
    assert "the gap does not come from the recipe" in kr.recipe_summary(behind, net="a", default_recipe="SGD, lr 0.1")
    sentence = kr.tuned_gap_sentence(dict(diff=-0.4, low=-0.47, high=-0.33, n_a=10, n_b=10),
                                     tuned.reset_index(), net="a")
    assert "-0.40 pp, 95% CI -0.47 to -0.33, 10 and 10 seeds" in sentence and "SGD, lr 0.1* for" in sentence
    assert "has not been run" in kr.tuned_gap_sentence(dict(diff=-0.4, low=-0.47, high=-0.33, n_a=10, n_b=10), None)
    assert "10 and 10 seeds under the post's recipe, and" in sentence
    short = kr.tuned_gap_sentence(dict(diff=-0.4, low=-0.47, high=-0.33, n_a=2, n_b=2), None,
                                  settings=ku.TrainSettings(epochs=2, dataset="synthetic"))
    assert "2 and 2 seeds under this recipe;" in short and "post's" not in short


def test_only_the_posts_recipe_is_called_the_posts():
    assert kr.is_post_recipe(ku.TrainSettings()) and kr.is_post_recipe(ku.TrainSettings(dataset="fashion-mnist"))
    assert kr.is_post_recipe(ku.TrainSettings(validation=10_000))  # the same recipe on fewer training images
    for other in (dict(epochs=2), dict(lr=0.1), dict(optimizer="adam"), dict(momentum=0.9), dict(batch_size=128)):
        assert not kr.is_post_recipe(ku.TrainSettings(**other)), other
    assert kr.recipe_name_of(ku.TrainSettings(epochs=2)) == "this recipe"


def test_recipe_grid_and_names():
    grid = kr.recipe_grid(epochs=3, sgd_rates=(0.003, 0.1), adam_rates=(1e-3,), validation=500, cosine=False,
                          structured=False)
    assert [kr.recipe_name(s) for s in grid] == ["SGD, lr 0.003", "SGD, lr 0.1", "Adam, lr 0.001"]
    assert all(s.validation == 500 and s.epochs == 3 and s.momentum == 0.5 for s in grid)
    assert grid[-1].optimizer == "adam" and grid[0].optimizer == "sgd"


def test_receptive_fields_on_permuted_pixels_are_put_back_on_the_image_grid():
    torch.manual_seed(0)
    u, v, perm = torch.randn(25, 28), torch.randn(25, 28), ku.pixel_permutation(4)
    # the net sees pixel perm[j] at input j, through the rank-1 map kron(U[a], V[b]) on its own (permuted) grid
    fields = kr.receptive_fields(u, v, perm)
    torch.testing.assert_close(fields[3, 7].flatten()[perm], torch.kron(u[3], v[7]))
    torch.testing.assert_close(kr.receptive_fields(u, v)[3, 7], torch.outer(u[3], v[7]))


def test_trained_factors_are_the_sweeps_run_and_are_cached(tmp_path):
    settings = ku.TrainSettings(epochs=2, batch_size=50, test_batch_size=100, dataset="synthetic", permutation_seed=1)
    u, v = kr.trained_factors(settings, 3, tmp_path)
    _, (model,) = ku.train("two_kron", [3], settings, progress=False)
    torch.testing.assert_close(u, model.fc1.factors[0][0].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v, model.fc1.factors[1][0].detach(), rtol=1e-5, atol=1e-6)
    path = kr.settings_folder(tmp_path, settings) / "two_kron" / "factors-seed-3.json"
    stored = json.loads(path.read_text())
    stored[0][0][0] = 0.125
    path.write_text(json.dumps(stored))  # tampered: a second call reads the cache, it does not retrain
    tampered, _ = kr.trained_factors(settings, 3, tmp_path)
    assert tampered[0, 0] == 0.125


def test_why_plan_defaults_and_errors(tmp_path):
    plan = kr.WhyPlan.from_parameters({})
    assert plan.full and plan.permuted.permutation_seed == 0 and list(plan.recipes)[:4] == [
        "SGD, lr 0.003", "SGD, lr 0.01", "SGD, lr 0.03", "SGD, lr 0.1"]
    assert list(plan.recipes)[-3:] == ["Adam, lr 0.0003", "Adam, lr 0.001", "Adam, lr 0.003"]
    assert plan.seeds == [1, 2, 3, 4, 5] and plan.tuning_seeds == [1, 2, 3]
    # plain and permuted MNIST, the two random-feature nets on both, then 5 nets x (4 SGD + 4 cosine + 3 Adam) recipes
    # and the 3 structured nets x 4 per-tensor recipes, 3 seeds each
    assert sum(len(v) * len(s) for v, s, _ in plan.sweeps()) == 9 * 5 + 7 * 5 + 2 * 2 * 5 + (5 * 11 + 3 * 4) * 3
    assert len(plan.recipes) == 15 and all(not s.frozen for s in plan.recipes.values())
    assert (plan.frozen.frozen, plan.frozen_permuted.frozen, plan.frozen_permuted.permutation_seed) == ('fc1', 'fc1', 0)
    lean = kr.WhyPlan.from_parameters(dict(cosine=False, structured=False, adam_learning_rates=[0.001]))
    assert list(lean.recipes) == ['SGD, lr 0.003', 'SGD, lr 0.01', 'SGD, lr 0.03', 'SGD, lr 0.1', 'Adam, lr 0.001']
    explore = kr.WhyPlan.from_parameters(dict(epochs=2))
    assert not explore.full and explore.results_dir == kr.ROOT / "runs" / "results"
    for change, message in [(dict(permutation_seed=-1), "permutation_seed"),
                            (dict(tuning_variants=["two_kron", "width10"]), "tuning_variants must include original"),
                            (dict(sgd_learning_rates=[0.01, 0.01]), "distinct"),
                            (dict(sgd_learning_rates=[0.0]), "05_why: sgd_learning_rates must be"),
                            (dict(adam_learning_rates=[-1.0]), "05_why: adam_learning_rates must be"),
                            (dict(cosine="yes"), "cosine must be True or False"),
                            (dict(permuted_variants=["original", "two_kron"]), "two_kron and width10"),
                            (dict(off_grid_variants=["kron_25x16_25x48"]), "unknown variant"),
                            (dict(validation_images=0), "validation_images"),
                            (dict(tuning_seeds=[1]), "at least 2")]:
        with pytest.raises(ValueError, match=message):
            kr.WhyPlan.from_parameters(change)


def test_the_first_pages_tuned_comparison_is_none_without_its_runs(tmp_path):
    assert kr.tuned_comparison([tmp_path], 35, "mnist") is None          # no runs in this folder
    assert kr.tuned_comparison([tmp_path], 2, "synthetic") is None       # too small for a 10,000-image split


def test_the_why_pages_declared_defaults_are_the_modules_constants():
    """Page 1 reads the why page's recipe search through kron_report.recipes' constants (tuned_comparison): the
    notebook's declared defaults must be the same grid, or page 1 would look for runs that were never made."""
    declared = kr.NOTEBOOK_PARAMETERS["05_why"]
    assert declared["sgd_learning_rates"] == list(kr.recipes.SGD_RATES) and declared["adam_learning_rates"] == list(kr.recipes.ADAM_RATES)
    assert declared["cosine"] and declared["structured"]  # tuned_comparison reads the whole default grid
    assert declared["validation_images"] == kr.recipes.VALIDATION_IMAGES
    assert declared["permutation_seed"] == kr.why.plan.PERMUTATION_SEED
    plan = kr.WhyPlan.from_parameters({})
    assert plan.tuning_variants == list(kr.recipes.TUNED_NETS) and plan.tuning_seeds == list(kr.recipes.TUNING_SEEDS)


def test_the_method_and_recipe_sentences_stay_readable():
    plan = kr.WhyPlan.from_parameters({})
    intro = kr.recipe_intro(plan.recipes, plan.tuning_seeds)
    assert intro.startswith("Each net tries 11 recipes, a net with a structured layer 15: SGD with the post's momentum 0.5 at a constant rate, the same "
                            "annealed to zero along a cosine, the same with per-tensor rates (structured nets only; "
                            "below) and Adam (its defaults otherwise) at each learning rate of the figure.")
    assert "first 50,000 training images" in intro and "last 10,000" in intro
    method = kr.why_method(plan.settings, plan.permuted, plan.seeds)
    assert "five seeds (1 to 5)" in method and "seed 0" in method and "Section 4" not in method
    shown = (intro + " " + method).replace("*", "")  # as rendered: no Markdown emphasis
    assert max(kr.numbers_in(s) for s in kr.sentences(shown)) <= 8


def random_feature_case(frozen_dense_permuted, kron_permuted=(96.5, 96.6, 96.55)):
    """random_feature_effects from hand-made runs: the frozen dense net on permuted pixels as given."""
    mnist = runs({"two_kron": [97.8, 97.7, 97.75], "width10": [93.9, 94.0, 93.95]})
    permuted = runs({"two_kron": list(kron_permuted), "width10": [93.9, 94.0, 93.95]})
    frozen = {"MNIST": runs({"original": [95.0, 95.1, 95.2], "two_kron": [92.0, 92.1, 92.2]}),
              "permuted MNIST": runs({"original": list(frozen_dense_permuted), "two_kron": [90.0, 90.1, 90.2]})}
    return kr.random_feature_effects({"MNIST": mnist, "permuted MNIST": permuted}, frozen)


@pytest.mark.parametrize("frozen_dense,answer", [([96.6, 96.7, 96.65], "width"), ([95.0, 95.1, 95.2], "factors"),
                                                 ([93.0, 95.5, 94.0], "unsettled")])
def test_the_random_feature_control_separates_width_from_the_learned_factors(frozen_dense, answer):
    rf = random_feature_case(frozen_dense)
    assert rf["answer"] == answer and rf["datasets"] == ["MNIST", "permuted MNIST"]
    c = rf["comparisons"].set_index(["dataset", "what"])
    width = c.loc[("permuted MNIST", kr.why.analysis.RANDOM_FEATURE_COMPARISONS[0][2])]
    assert width["diff"] == pytest.approx(np.mean(frozen_dense) - 93.95)  # 625 random units minus width10
    learned = c.loc[("permuted MNIST", kr.why.analysis.RANDOM_FEATURE_COMPARISONS[1][2])]
    assert learned["diff"] == pytest.approx(96.55 - np.mean(frozen_dense))  # the trained factors minus random units
    table = kr.random_feature_table(rf)
    assert table["hidden units"].tolist() == [625, 625, 625, 10]
    assert table["permuted MNIST (%)"].iloc[2] == f"{np.mean(frozen_dense):.2f}" and table.seeds.tolist() == ["3/3"] * 4
    assert kr.random_feature_comparison_table(rf).shape == (3, 4)
    summary = kr.random_feature_summary(rf)
    assert {"width": "Width explains it", "factors": "More than width", "unsettled": "Not settled"}[answer] in summary
    w, tuned = why_case([96.5, 96.6, 96.55])
    conclusion = kr.why_conclusion(dict(w, random_features=answer), tuned)
    assert all(kr.numbers_in(s) == 0 for s in kr.sentences(conclusion))
    assert {"width": "That part is hidden width", "factors": "more than hidden width: the learned factors beat",
            "unsettled": "cannot settle"}[answer] in conclusion
    assert kr.why_answer(*why_inputs(), rf)["random_features"] == answer


def why_inputs():
    mnist = runs({"original": [98.1, 98.2, 98.15], "two_kron": [97.8, 97.7, 97.75], "width10": [93.9, 94.0, 93.95]})
    effects = kr.permutation_effects(mnist, mnist, ["original", "two_kron", "width10"])
    return effects, kr.lead_over_dense(mnist, mnist), pd.DataFrame(columns=["variant", "diff", "outcome"]), \
        kr.control_verdict(effects, 0.5)


def test_recipe_grid_families_and_which_nets_take_them():
    grid = kr.recipe_grid(35, "mnist")
    names = [kr.recipe_name(s) for s in grid]
    assert names[:5] == ["SGD, lr 0.003", "SGD, lr 0.01", "SGD, lr 0.03", "SGD, lr 0.1", "SGD, cosine, lr 0.003"]
    assert names[-3:] == ["Adam, lr 0.0003", "Adam, lr 0.001", "Adam, lr 0.003"] and len(set(names)) == 15
    assert kr.split_recipe("SGD, per-tensor rates, lr 0.03") == ("SGD, per-tensor rates", 0.03)
    structured = next(s for s in grid if s.parametrization == "structured")
    assert kr.recipe_applies(structured, "two_kron") and kr.recipe_applies(structured, "lowrank8")
    assert not kr.recipe_applies(structured, "original") and kr.recipe_applies(grid[0], "original")
    # the committed recipe names of the first search are unchanged: its runs keep their folders and names
    assert kr.recipe_name(grid[1]) == "SGD, lr 0.01" and kr.settings_record(grid[1]) == kr.settings_record(
        ku.TrainSettings(validation=10_000))


def test_family_bests_and_the_per_tensor_effect_read_validation_only():
    rows = []
    for recipe, values in {"SGD, lr 0.01": [97.0, 97.1, 97.2], "SGD, lr 0.1": [96.0, 96.1, 96.2],
                           "SGD, per-tensor rates, lr 0.01": [97.8, 97.9, 98.0]}.items():
        for seed, v in enumerate(values, 1):
            rows.append(dict(dataset="mnist", variant="two_kron", recipe=recipe, seed=seed, epoch=2,
                             validation_accuracy=v, test_accuracy=float("nan")))
    runs_ = pd.DataFrame(rows)
    scores = kr.validation_scores(runs_)
    bests = kr.family_bests(scores)
    assert bests.set_index("family").lr.to_dict() == {"SGD": 0.01, "SGD, per-tensor rates": 0.01}
    effect = kr.family_effect(runs_, scores, "SGD, per-tensor rates").iloc[0]
    assert effect["diff"] == pytest.approx(0.8) and effect.outcome == "win"  # NaN test accuracies never read
    table = kr.family_table(bests)
    assert table.columns.tolist() == ["net", "SGD", "SGD, per-tensor rates"] and table.SGD[0] == "97.10 (0.01)"
    assert "Per-tensor rates help `two_kron`" in kr.parametrization_summary(kr.family_effect(runs_, scores,
                                                                                            "SGD, per-tensor rates"))
    # with the effect: its Welch interval as a last column (each group sd 0.1, three seeds: half-width t(4) * 0.0816)
    with_effect = kr.family_table(bests, kr.family_effect(runs_, scores, "SGD, per-tensor rates"))
    assert with_effect["per-tensor − SGD, pp (95% CI)"][0] == "+0.80 (+0.57 to +1.03)"
