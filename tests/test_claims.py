"""The rules that size a claim (kron_report.claims) and the prose checks (kron_report.readability), each on hand-made
inputs, with a companion case that shows the check can fail."""
import numpy as np
import pytest

import kron_report as kr


def c(diff, low, high, **extra):
    return dict(diff=diff, low=low, high=high, **extra)


def test_within_needs_the_whole_interval():
    assert kr.within(c(-0.82, -0.95, -0.70), 1.0)
    assert not kr.within(c(-0.82, -1.04, -0.59), 1.0)      # the mean is within 1 point, the interval is not
    assert kr.closeness(c(-0.82, -1.04, -0.59)) == "behind, but within 2 points"
    assert kr.closeness(c(-0.08, -0.18, 0.02)) == "no measurable difference, within 0.25 points"
    assert kr.closeness(c(-0.40, -0.47, -0.33)) == "behind, but within 0.5 points"
    assert kr.closeness(c(3.9, 3.6, 4.1)) == "ahead"
    assert kr.closeness(c(-1.0, -3.0, 1.0)) == "not settled"


def test_shared_baseline_reports_the_weakest_margin():
    wins = [c(53.3, 47.4, 59.1, variant="two_kron"), c(1.45, 1.31, 1.59, variant="kron2_r8"),
            c(3.9, 3.6, 4.1, variant="width10")]
    assert kr.weakest_margin(wins)["variant"] == "kron2_r8"
    losses = [c(-0.4, -0.47, -0.33, variant="a"), c(-2.9, -3.1, -2.7, variant="b")]
    assert kr.weakest_margin(losses)["variant"] == "a"     # the loss closest to zero
    with pytest.raises(ValueError, match="at least one"):
        kr.weakest_margin([])


def test_nested_budgets_count_distinct_nets():
    winners = {10_000: "kron2_r2", 20_000: "kron2_r2", 50_000: "kron2_r2", 100_000: "kron2_r2", 7_000: "one_kron"}
    assert kr.distinct_nets(winners) == ["kron2_r2", "one_kron"]
    assert len(kr.distinct_nets(["a", "a", "b"])) == 2


def test_ratio_of_estimates_comes_with_an_interval():
    x, y = np.array([2.0, 2.2, 1.8, 2.1]), np.array([1.0, 0.9, 1.1, 1.0])
    ratio, low, high = kr.ratio_interval(x, y)
    assert ratio == pytest.approx(x.mean() / y.mean())
    assert low < ratio < high and high - low > 0.05         # noisy estimates: a real interval, not a point
    assert kr.ratio_interval(x, y) == (ratio, low, high)    # fixed seed: the same interval every time
    with pytest.raises(ValueError, match="two values"):
        kr.ratio_interval([1.0], y)


def test_heading_agrees_with_the_weakest_verdict():
    assert kr.verdict_heading(["holds", "holds"]) == "Where the post was right"
    assert kr.verdict_heading(["holds", "holds, real loss"]) != "Where the post was right"
    assert kr.verdict_heading(["holds", "fails"]) == "Where the post was wrong"
    with pytest.raises(ValueError, match="verdict_heading"):
        kr.verdict_heading(["holds", "maybe"])


def test_gaps_side_by_side_must_be_like_for_like():
    a = dict(diff=-0.28, split="validation", seeds=3)
    assert kr.like_for_like(a, dict(diff=-0.69, split="validation", seeds=3))
    assert not kr.like_for_like(dict(diff=-0.40, split="full", seeds=10), dict(diff=-0.69, split="validation", seeds=3))
    assert not kr.like_for_like(dict(diff=-0.40), a)        # a gap that does not say how it was measured


# --- readability ------------------------------------------------------------------------------------------------

def test_numbers_are_counted_as_page_stats_counts_them():
    assert kr.numbers_in("It costs 0.40 pp (95% CI 0.33 to 0.47), 10 and 10 seeds.") == 6
    assert kr.numbers_in("No numbers here.") == 0
    assert kr.sentences("One. Two (three). Four!") == ["One.", "Two (three).", "Four!"]
    assert kr.number_density("a b c d 1 2") == pytest.approx(100 * 2 / 6)


def test_prose_check_passes_an_argument():
    text = ("The single product costs a little, and the cost is real. A sum of two tied products closes the gap. "
            "Both are far ahead of a dense net with as many weights.")
    assert kr.prose_problems(text) == []


def test_prose_check_fails_a_number_dump():
    text = "two_kron 97.76 ± 0.09% vs original 98.16 ± 0.06%: -0.40 pp (95% CI -0.47 to -0.33, n = 10 + 10)."
    problems = kr.prose_problems(text)
    assert any("numbers in one sentence" in p for p in problems)
    assert kr.prose_problems(text, max_numbers=20) == []


def test_prose_check_fails_templated_phrases():
    template = "Verdict: holds within the stated tolerance, but the loss is real for net {}. "
    text = "".join(template.format(n) for n in "abcdefgh")
    assert any("six-word phrases" in p for p in kr.prose_problems(text))
    assert kr.repeated_phrases("one two three four five six") == {}


@pytest.mark.parametrize("text, kind", [
    ("The layer prints TTLinear(in_features=784, out_features=625).", "repr"),
    ("Parameter containing: tensor([[0.1]])", "repr"),
    ("U, V ∈ ℝ^{28×25} are the factors.", "raw LaTeX"),
    ("We use $W = U \\otimes V$ here.", "raw LaTeX"),
    ("max difference: 2.288818359375e-05", "float dump"),
    ("The loss is 0.0123456789 at the end.", "float dump"),
])
def test_plumbing_is_caught(text, kind):
    assert any(p.startswith(kind) for p in kr.plumbing(text))


def test_plumbing_leaves_ordinary_prose_alone():
    text = ("A Kronecker layer U⊗V of two 25×28 matrices (1,400 weights) reaches 97.76% (95% CI 97.70 to 97.82); "
            "the 10×625 output matrix stays dense. See Table 1 (n = 10).")
    assert kr.plumbing(text) == []


def test_density_limit_is_applied_only_when_given():
    text = "It is 1, 2, 3 and 4."
    assert kr.prose_problems(text) == []
    assert any("per 100 words" in p for p in kr.prose_problems(text, max_density=8))
