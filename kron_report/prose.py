"""Every sentence of the pages that states a number, a count or a finding: the ledes, the verdicts, the
findings of each section, the figure captions and alt text, and the references.

Each function takes the structured results of :mod:`stats` and :mod:`experiments` (tables, dicts) and
returns Markdown; none computes a statistic itself. The notebooks' Markdown cells keep the argument and
leave every number to these functions, so a papermill rerun with other parameters stays true.
Part 3's sentences live in :mod:`prose_beyond`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

import kron_utils as ku

from .stats import epochs_phrase, error_change, final_epochs, signed

# --- Words for numbers -------------------------------------------------------

WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def number_word(n: int) -> str:
    """'three' for 3, up to twelve; digits with thousands separators above."""
    n = int(n)
    return WORDS[n] if 0 <= n < len(WORDS) else f"{n:,}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'one seed', 'ten seeds', '35 epochs': a count and its noun, in words up to twelve."""
    return f"{number_word(n)} {noun if int(n) == 1 else plural or noun + 's'}"


def seeds_phrase(seeds: Sequence[int]) -> str:
    """'ten seeds (1 to 10)', 'two seeds (1 and 2)', 'three seeds (2, 5, 9)'."""
    seeds = sorted(int(s) for s in seeds)
    if len(seeds) == 1:
        listing = str(seeds[0])
    elif seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        listing = f"{seeds[0]} to {seeds[-1]}"
    else:
        listing = ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}"
    return f"{count(len(seeds), 'seed')} ({listing})"


def recipe(settings: ku.TrainSettings) -> str:
    """The training recipe in words: 'SGD, lr 0.01, momentum 0.5, batches of 64, 35 epochs'."""
    rule = (f"SGD, lr {settings.lr:g}, momentum {settings.momentum:g}" if settings.optimizer == "sgd"
            else f"Adam, lr {settings.lr:g}")
    return f"{rule}, batches of {settings.batch_size}, {epochs_phrase(settings.epochs)}"


def is_post_recipe(settings: ku.TrainSettings) -> bool:
    """Whether ``settings`` train with the post's recipe (optimiser, learning rate, momentum, batch size, epochs),
    on whatever data."""
    post = ku.TrainSettings()
    return all(getattr(settings, k) == getattr(post, k) for k in ("optimizer", "lr", "momentum", "batch_size", "epochs"))


def recipe_name_of(settings: ku.TrainSettings) -> str:
    """'the post's recipe' for the post's recipe, 'this recipe' for any other (an exploratory run's)."""
    return "the post's recipe" if is_post_recipe(settings) else "this recipe"


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def ranked_values(values: pd.Series, digits: int = 1) -> str:
    """'original 98.2, two_kron 97.8 and width10 93.9 percent', highest first: alt text from data."""
    ordered = values.sort_values(ascending=False)
    return join_words([f"{name} {value:.{digits}f}" for name, value in ordered.items()]) + " percent"


def source_listing(*functions) -> str:
    """The source of ``functions``, read from their module now (``inspect.getsource``), as one Markdown code block:
    code shown on a page can never drift from the code that ran."""
    import inspect
    return "```python\n" + "\n\n".join(inspect.getsource(f).rstrip() for f in functions) + "\n```"


# --- Part 2: the post's experiment ---------------------------------------------

#: A verdict of :mod:`stats` in words ({tol}: the tolerance in pp). A real loss is never called a success
#: without saying it is real.
VERDICT_WORDS = {
    "holds": "holds",
    "holds, real loss": "holds within {tol} pp, but the loss is real",
    "real loss, size unsettled": "the loss is real and may exceed {tol} pp",
    "fails": "fails",
    "fails, real loss": "fails: the loss is real but under {tol} pp",
    "not settled": "not settled",
    "not tested": "not tested",
}

#: Why a comparison got its verdict, by rule and verdict (the rules live in :mod:`stats`).
REASONS = {
    ("judge_no_loss", "holds"): "any loss is smaller than {tol} pp",
    ("judge_no_loss", "holds, real loss"): "the whole interval lies between -{tol} pp and zero",
    ("judge_no_loss", "real loss, size unsettled"): "the whole interval lies below zero and reaches past -{tol} pp",
    ("judge_no_loss", "fails"): "it loses more than {tol} pp",
    ("judge_no_loss", "not settled"): "the interval includes both no loss and a loss above {tol} pp",
    ("judge_clear_loss", "holds"): "it loses more than {tol} pp",
    ("judge_clear_loss", "fails"): "any loss is smaller than {tol} pp",
    ("judge_clear_loss", "fails, real loss"): "the whole interval lies between -{tol} pp and zero",
    ("judge_clear_loss", "real loss, size unsettled"): "the whole interval lies below zero and reaches past -{tol} pp",
    ("judge_clear_loss", "not settled"): "the interval includes both no loss and a loss above {tol} pp",
    ("judge_worse", "holds"): "it is worse beyond the seed noise",
    ("judge_worse", "fails"): "it is better beyond the seed noise",
    ("judge_worse", "not settled"): "the interval includes zero",
}


def verdict_words(verdict: str, tolerance: float) -> str:
    """'holds within 0.5 pp, but the loss is real' for 'holds, real loss': a verdict code in words."""
    return VERDICT_WORDS[verdict].format(tol=f"{tolerance:g}")


def reason(row) -> str:
    """Why one comparison of :func:`stats.post_verdicts` got its verdict."""
    if row.verdict == "not tested":
        return f"it needs {row.a} and {row.b} with two or more seeds each"
    return REASONS[(row.rule, row.verdict)].format(tol=f"{row.tolerance:g}")


def observation_verdict(group: pd.DataFrame) -> str:
    """One observation's verdict in words: the common one, or each comparison's with its net when they differ."""
    tol = group.tolerance.iloc[0]
    if group.verdict.nunique() == 1:
        return verdict_words(group.verdict.iloc[0], tol)
    return "; ".join(f"{verdict_words(r.verdict, tol)} for `{r.a}`" for r in group.itertuples())


def observation_effects(group: pd.DataFrame) -> str:
    """'-0.40 pp (`two_kron` vs `original`) and -0.43 pp (`one_kron` vs `original`)': the measured effects."""
    tested = group[group.verdict != "not tested"]
    return join_words([f"{signed(r.diff)} pp (`{r.a}` vs `{r.b}`)" for r in tested.itertuples()]) if len(tested) \
        else "none measured"


def part2_method(settings: ku.TrainSettings, seeds: Sequence[int]) -> str:
    """How Part 2 reran the post: dataset, recipe and seeds."""
    return (f"The post shows accuracy and loss curves and gives no numbers. Here we rerun every net on "
            f"{'real ' + settings.dataset.upper() if settings.dataset == 'mnist' else settings.dataset} with "
            f"{'the same' if is_post_recipe(settings) else 'this'} recipe ({recipe(settings)}), "
            f"**{seeds_phrase(seeds)}** each, and check each claim against the seed spread.")


def runs_sentence(rows: pd.DataFrame) -> str:
    """What the table below rests on: nets, seeds, epochs, diverged runs."""
    runs = rows.groupby(["variant", "seed"]).ngroups
    diverged = int((rows.status == "diverged").sum())
    return (f"{count(rows.variant.nunique(), 'net').capitalize()} × {count(rows.seed.nunique(), 'seed')}: {runs:,} runs of up to "
            f"{epochs_phrase(rows.epoch.max())}; {count(diverged, 'run')} diverged.")


def summary_note(variants: Sequence[str]) -> str:
    """Which rows of the summary table are the Gaussian-init reruns, if any."""
    gauss = [v for v in variants if v.endswith("_gauss")]
    if not gauss:
        return ""
    return (f"The last {count(len(gauss), 'row')} are the post's Kronecker nets with Gaussian factors (see below). "
            if len(gauss) > 1 else "The last row is a Kronecker net with Gaussian factors (see below). ")


def tolerance_sentence(tolerance: float) -> str:
    """How the verdicts read a difference."""
    return (f"We read them with a stated tolerance: a gap smaller than {tolerance:g} percentage points counts as "
            "\"no loss\". The tolerance is our judgement call: the post gives no numbers to derive it from.")


def init_intro(by_init: pd.DataFrame, seeds: Sequence[int]) -> str:
    """What the second initialisation is and on how many seeds it ran."""
    return ("Another common choice draws each factor entry from a Gaussian whose scale gives the rebuilt matrix "
            "that standard deviation on average. We trained the post's Kronecker nets again that way, on the same "
            f"{seeds_phrase(seeds)}, and judged each observation again with the Gaussian nets standing in for the "
            "uniform ones. The half-width of each 95% interval follows the ±."
            if "gauss" in set(by_init.init) else "")


def mistakes_phrase(relative: float | None) -> str:
    """How many more mistakes a makes than b (:func:`stats.error_change`'s ``relative``): '22% more mistakes' (or
    'fewer') below a doubling, '2.3× the mistakes' from there on, '' when b makes none."""
    if relative is None:
        return ""
    if relative < 1:
        return f"{abs(relative):.0%} {'more' if relative >= 0 else 'fewer'} mistakes"
    times = 1 + relative
    return f"{times:.1f}× the mistakes" if times < 10 else f"{times:,.0f}× the mistakes"


def error_rates(r) -> str:
    """'test error 1.84% → 2.24%, 22% more mistakes': one comparison's accuracies (b, then a) as error rates."""
    e = error_change(r.mean_a, r.mean_b)
    share = f", {mistakes_phrase(e['relative'])}" if e["relative"] is not None else ""
    return f"test error {e['error_b']:.2f}% → {e['error_a']:.2f}%{share}"


def verdict_markdown(verdicts: pd.DataFrame) -> str:
    """The verdicts as Markdown: per observation its measured effects, then its verdict, then one bullet per
    comparison with the interval, the error rates and the reason for the verdict."""
    lines = []
    for number, group in verdicts.groupby("observation", sort=True):
        lines.append(f"**{number}. {group.claim.iloc[0]}** Effect: {observation_effects(group)}. "
                     f"Verdict: **{observation_verdict(group)}**.")
        for r in group.itertuples():
            if r.verdict == "not tested":
                lines.append(f"- `{r.a}` vs `{r.b}`: not tested, {reason(r)}.")
                continue
            lines.append(f"- `{r.a}` {r.mean_a:.2f} ± {r.std_a:.2f}% vs `{r.b}` {r.mean_b:.2f} ± {r.std_b:.2f}%: "
                         f"difference **{signed(r.diff)} pp** (95% CI {signed(r.low)} to {signed(r.high)}, "
                         f"half-width {r.half_width:.2f}, n = {int(r.n_a)} + {int(r.n_b)}); {error_rates(r)}. "
                         f"Verdict: {verdict_words(r.verdict, r.tolerance)}, as {reason(r)}.")
    return "\n\n".join(lines)


def init_markdown(by_init: pd.DataFrame) -> str:
    """Per observation: whether each comparison's verdict survives the other factor initialisation, with both
    effects (± the half-width of the 95% interval)."""
    from .stats import init_robustness
    table = init_robustness(by_init)
    if "gauss" not in table:
        return "No runs with Gaussian factors: the verdicts were not checked under a second initialisation."
    lines = []
    for number, row in table.iterrows():
        tested = by_init[(by_init.observation == number) & (by_init.verdict != "not tested")]
        pairs = tested.set_index(["a", "b", "init"])
        detail = []
        for a, b in dict.fromkeys(zip(tested.a, tested.b)):
            if (a, b, "uniform") not in pairs.index or (a, b, "gauss") not in pairs.index:
                continue
            u, g = pairs.loc[(a, b, "uniform")], pairs.loc[(a, b, "gauss")]
            words = (verdict_words(g.verdict, g.tolerance) if u.verdict == g.verdict else
                     f"{verdict_words(u.verdict, u.tolerance)} → {verdict_words(g.verdict, g.tolerance)}")
            detail.append(f"`{a}` vs `{b}` {signed(u['diff'])} ± {u.half_width:.2f} pp → "
                          f"{signed(g['diff'])} ± {g.half_width:.2f} pp, {words}")
        lines.append(f"- **{number}.** {'Same verdict' if row['holds under both'] else 'The verdict changes'} with "
                     "Gaussian factors" + (": " + "; ".join(detail) + "." if detail else "."))
    return "\n".join(lines)


def bench_sentence(record: Mapping | None, mac_ratio: float) -> str:
    """What ``make bench`` measured for the layer, beside the multiply-add ratio; says so when nothing is committed."""
    if record is None:
        return (f"That is {mac_ratio:.1f}× fewer multiply-adds; `make bench` measures the layer and the whole training "
                "step side by side (no measurement is committed yet).")
    got = {r["name"]: r["value"] for r in record["rows"] if r.get("name")}
    speedups = {b: got[f"layer_vs_dense_{b}"] for b in (64, 1000) if f"layer_vs_dense_{b}" in got}
    parts = [f"{v:.1f}× faster at batch {b}" for b, v in speedups.items()]
    dense = (f"one forward and backward pass of the Kronecker layer runs {join_words(parts)} than the dense "
             f"`nn.Linear(784, 625)`" if parts else "")
    gains = (", and the clock gains less, because two small products use the processor less efficiently than one "
             "large one" if speedups and max(speedups.values()) < mac_ratio else "")
    rebuilt = (f"; rebuilding W with `torch.kron` at every step instead, as peft's LoKr does, makes the layer "
               f"{got['layer_vs_rebuilt_64']:.1f}× slower at batch 64" if "layer_vs_rebuilt_64" in got else "")
    epoch = (f". A whole training epoch of `two_kron` runs {got['epoch_vs_examples']:.0f}× faster than the "
             f"pytorch/examples pipeline it reproduces" if "epoch_vs_examples" in got else "")
    return (f"That is {mac_ratio:.1f}× fewer multiply-adds{gains}. Measured by `make bench` (median of "
            f"{count(record['repeats'], 'repeat')} on {record['machine']}, {count(record['threads'], 'thread')}, "
            f"torch {record['torch']}, {record['date']}): {dense}{rebuilt}{epoch}.")


def lede(verdicts: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The article's opening findings, in words, from the verdicts and the final accuracies of the post's nets
    (those of them in ``rows``)."""
    finals = final_epochs(rows)
    mean, seeds = finals.groupby("variant").test_accuracy.mean(), finals.groupby("variant").seed.nunique()
    weights = finals.groupby("variant").weights.first()
    claims = {n: c[0].lower() + c[1:].rstrip(".") for n, c in verdicts.groupby("observation").claim.first().items()}
    first = verdicts[verdicts.verdict != "not tested"].groupby("observation").first()
    effect = {n: (f"{signed(first.loc[n, 'diff'])} pp (95% CI {signed(first.loc[n, 'low'])} to "
                  f"{signed(first.loc[n, 'high'])}, `{first.loc[n, 'a']}` vs `{first.loc[n, 'b']}`), "
                  f"**{verdict_words(first.loc[n, 'verdict'], first.loc[n, 'tolerance'])}**"
                  if n in first.index else "**not tested**") for n in claims}
    listing = "; ".join(f"({n}) {claims[n]}: {effect[n]}" for n in claims)
    u_shape = f"{ku.IMAGE_FACTORS[0]}×{ku.HIDDEN_FACTORS[0]}"  # as the post writes U, V ∈ R^{28×25}
    text = [f"In 2018 Kento Nozawa replaced the {ku.IMAGE_SIZE}×{ku.HIDDEN_SIZE} weight matrix of an MNIST MLP with "
            f"a Kronecker product U⊗V of two {u_shape} matrices"
            + (f", shrinking the net from {weights['original']:,} weights to {weights['two_kron']:,}," if
               {"original", "two_kron"} <= set(weights.index) else "")
            + " and reported that performance did not drop."]
    kron_nets = [v for v in ku.VARIANTS if "kron" in v and v in mean.index]
    others = [v for v in mean.index if v not in kron_nets]
    names = {"original": "the dense original", "width10": "an equal-budget dense net"}
    ran = ([f"his {count(len(kron_nets), 'Kronecker net')}"] if kron_nets else []) + [
        names.get(v, f"`{v}`") for v in others]
    text.append(f"We reran {join_words(ran)} with his recipe on {number_word(seeds.min())} seeds each.")
    if {"original", "two_kron", "one_kron", "width10"} <= set(mean.index):
        text.append(f"After {epochs_phrase(finals.epoch.max())} the dense net reaches {mean['original']:.2f}%, the "
                    f"Kronecker input layer {mean['two_kron']:.2f}% ({mean['one_kron']:.2f}% with tied factors), and "
                    f"the dense net with the same budget only {mean['width10']:.2f}%.")
    else:
        text.append(f"After {epochs_phrase(finals.epoch.max())}: {ranked_values(mean, 2)}.")
    text.append(f"Measured against the seed noise, with our verdict on each of the post's "
                f"{count(len(claims), 'observation')} after its effect: {listing}.")
    return " ".join(text)


#: How the conclusion files an observation, by its comparisons' verdicts.
REAL_LOSS = {"holds, real loss", "real loss, size unsettled", "fails, real loss"}


def conclusion_group(group: pd.DataFrame) -> str:
    """'right' when every comparison holds, 'missed' when one shows a real loss the claim leaves out, 'wrong' when
    one fails outright, else 'unsettled'."""
    verdicts = set(group.verdict)
    if verdicts == {"holds"}:
        return "right"
    if verdicts & REAL_LOSS:
        return "missed"
    return "wrong" if "fails" in verdicts else "unsettled"


def effect_with_errors(r) -> str:
    """'`two_kron` vs `original` -0.40 pp (95% CI -0.47 to -0.33; test error 1.84% → 2.24%, 22% more mistakes)'."""
    return f"`{r.a}` vs `{r.b}` {signed(r.diff)} pp (95% CI {signed(r.low)} to {signed(r.high)}; {error_rates(r)})"


def conclusion(verdicts: pd.DataFrame, by_init: pd.DataFrame) -> str:
    """Where the post was right, what it missed (a real loss it does not report), where it was wrong and what the
    runs cannot settle, each observation with its effects, from the verdicts and their robustness to the init."""
    from .stats import init_robustness
    robust = init_robustness(by_init)["holds under both"] if "gauss" in set(by_init.init) else None
    heads = {"right": "Where the post was right.", "missed": "What it missed.", "wrong": "Where it was wrong.",
             "unsettled": "What these runs cannot settle."}
    parts: dict[str, list[str]] = {key: [] for key in heads}
    for n, group in verdicts.groupby("observation", sort=True):
        key, claim = conclusion_group(group), group.claim.iloc[0]
        tested = [effect_with_errors(r) for r in group.itertuples() if r.verdict != "not tested"]
        text = f"({n}) {claim}"
        if key == "missed":
            text += f" The loss is real: {join_words(tested)}. Verdict: {observation_verdict(group)}."
        elif key != "right":
            text += (f" {join_words(tested)}." if tested else "") + f" Verdict: {observation_verdict(group)}."
        if robust is not None:
            text += (" Both initialisations agree." if robust[n]
                     else " The Gaussian initialisation gives another verdict.")
        parts[key].append(text)
    return "\n\n".join(f"**{heads[key]}** " + " ".join(texts) for key, texts in parts.items() if texts)


def limitations(rows: pd.DataFrame, settings: ku.TrainSettings, recipes: int, device: str | None = None) -> str:
    """What these results cannot say, with the counts they rest on: the data, the one net shape, the recipes, the
    seeds and, where the sweep recorded it, the device."""
    seeds = final_epochs(rows).groupby("variant").seed.nunique()
    spread = (count(seeds.min(), "seed") if seeds.min() == seeds.max()
              else f"{number_word(seeds.min())} to {count(seeds.max(), 'seed')}")
    ran = f", trained on {device.upper() if device == 'cpu' else device}" if device else ""
    whose = "the post's one recipe" if is_post_recipe(settings) else "one recipe"
    return (f"Everything here is one small net on one kind of data: a {ku.IMAGE_SIZE}-{ku.HIDDEN_SIZE}-"
            f"{ku.NUM_CLASSES} MLP on {settings.dataset.upper() if settings.dataset == 'mnist' else settings.dataset} "
            f"(Part 3 adds Fashion-MNIST), with {whose} ({recipe(settings)}) on this page and "
            f"{count(recipes, 'recipe')} on the why page, {spread} per net{ran}. It says nothing about convolutional "
            "or transformer nets, larger inputs, other optimisers at scale, or speed on accelerators; the seed "
            "intervals cover training noise, not the choice of dataset or architecture.")


def sweep_sentence(sweep: pd.DataFrame) -> str:
    """What a sweep did, in one line (for the terminal, not the page): runs trained now and runs reused."""
    trained, reused = int(sweep.trained.map(len).sum()), int(sweep.reused.map(len).sum())
    return f"{trained} runs trained now, {reused} reused from earlier sweeps with the same settings"


# --- Captions and alt text of Parts 1 and 2 -------------------------------------

def headline_caption(rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the headline dot plot."""
    finals = final_epochs(rows)
    means = finals.groupby("variant").test_accuracy.mean()
    return (f"Final test accuracy after {epochs_phrase(finals.epoch.max())} of the post's nets and the equal-budget "
            f"dense net: mean over {count(finals.seed.nunique(), 'seed')} with its 95% confidence interval. Weight "
            "counts exclude biases, as in the post.",
            f"A dot plot of {count(len(means), 'net')}' final test accuracy, highest first: {ranked_values(means, 2)}.")


def curves_caption(rows: pd.DataFrame, baseline: str = "width10") -> tuple[str, str]:
    """(caption, alt text) of the accuracy-by-epoch figure."""
    finals = final_epochs(rows).groupby("variant").test_accuracy.mean()
    dashed = f" The dashed black line is the equal-budget dense net {baseline}." if baseline in finals.index else ""
    return ("Test accuracy by epoch, mean over seeds with its 95% confidence interval as a band. Below: the top of "
            "the upper panel, enlarged." + dashed,
            f"Two line charts of test accuracy against epoch for {count(len(finals), 'net')}, which end at "
            f"{ranked_values(finals)} after epoch {rows.epoch.max()}.")


def loss_caption(rows: pd.DataFrame) -> tuple[str, str]:
    """(caption, alt text) of the loss-by-epoch figure."""
    final = final_epochs(rows).groupby("variant")
    train, test = final.train_loss.mean().sort_values(), final.test_loss.mean().sort_values()
    return ("Training loss (top) and test loss (bottom) by epoch, log scale, mean over seeds with its 95% confidence "
            "interval as a band.",
            f"Two line charts of loss against epoch on a log scale for {count(len(test), 'net')}. At epoch "
            f"{rows.epoch.max()} the training loss is lowest for {train.index[0]} ({train.iloc[0]:.3f}) and highest for "
            f"{train.index[-1]} ({train.iloc[-1]:.3f}); the test loss is lowest for {test.index[0]} "
            f"({test.iloc[0]:.3f}) and highest for {test.index[-1]} ({test.iloc[-1]:.3f}).")


def growth_caption(factor: "torch.Tensor", big: "torch.Tensor", copies: int) -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of the Kronecker-power figure."""
    rows = ", ".join(f"[{', '.join(f'{v:g}' for v in row)}]" for row in factor.tolist())
    return (f"{number_word(copies).capitalize()} copies of G = [{rows}] under the Kronecker product: a "
            f"{big.shape[0]} × {big.shape[1]} matrix (black: 1).",
            "A square black-and-white fractal of nested triangles, each a smaller copy of the whole.")


def receptive_fields_caption(fields: "torch.Tensor", epochs: int, step: int = 5) -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of :func:`figures.receptive_fields_figure` of ``fields`` (a, b, rows, columns)."""
    side, units = len(range(0, fields.shape[0], step)), fields.shape[0] * fields.shape[1]
    return (f"Receptive fields of {side * side} of the {units} hidden units of two_kron after {epochs_phrase(epochs)} "
            "of training, on one colour scale (red positive, blue negative). Each is the outer product of a row of U "
            "and a row of V, so the structure repeats along the grid: the units in one row of it share U's row a, "
            "which sets how the field varies down the image, and those in one column share V's row b, which sets "
            "how it varies across.",
            f"A {side} by {side} grid of {fields.shape[2]} by {fields.shape[3]} pixel maps in red and blue; every "
            "map is a pattern of horizontal and vertical stripes, with no diagonal strokes.")


def symmetry_caption(hidden: "torch.Tensor", hidden_of_transposed: "torch.Tensor") -> tuple[str, str]:  # noqa: F821
    """(caption, alt text) of the tied-symmetry figure, with the two differences it shows."""
    side = f"{ku.HIDDEN_FACTORS[0]} × {ku.HIDDEN_FACTORS[1]}"
    moved = float((hidden_of_transposed - hidden).abs().max())
    equivariant = float((hidden_of_transposed - hidden.T).abs().max())
    return (f"A test digit, its transpose, and the {side} maps of hidden pre-activations of a tied layer (bias "
            f"removed). Bottom, on one colour scale: transposing the digit changes the map (largest change "
            f"{moved:.2f}), but the map of the transposed digit is the transpose of the digit's map (largest "
            f"difference {equivariant:.1e}, float rounding).",
            "Six panels: a handwritten digit, the same digit mirrored in its diagonal, two square colour maps that "
            f"are mirror images of each other in the diagonal, and two difference maps: the first with entries up to "
            f"{moved:.2f}, the second blank (at most {equivariant:.1e}).")


# --- References ---------------------------------------------------------------------

BIBLIOGRAPHY = {
    "post": 'Kento Nozawa, "Kronecker積によるパラメータ削減" ("Parameter reduction with the Kronecker product"), blog '
            "post, 10 May 2018. In English: the author expected the Kronecker product to shrink weight matrices, "
            "found on searching that the idea was already published, and wrote the post anyway. It replaces the "
            "784×625 input weights of an MNIST MLP with U⊗V for two 28×25 matrices (1,400 weights, or 700 with "
            "U = V), notes that factoring the sizes into primes would shrink them further, and replaces the output "
            "weights W ∈ ℝ¹⁰ˣ⁶²⁵ with U⊗V for U ∈ ℝ⁵ˣ²⁵ and V ∈ ℝ²ˣ²⁵ (175 weights). It trains the nets with the PyTorch-examples "
            "MNIST settings for thirty-five epochs, shows accuracy and loss curves without numbers, and makes the four "
            "observations tested in Part 2. It opens with Jure Leskovec's Kronecker graphs and their use in the "
            "Graph500 benchmark, and closes by pointing to the existing work and to Kronecker-factored "
            "approximations of the natural gradient published at ICML and ICLR.",
    "zhou2015": 'S. Zhou, J.-N. Wu, "Compression of Fully-Connected Layer in Neural Network by Kronecker Product", '
                "[arXiv:1507.05775](https://arxiv.org/abs/1507.05775), 2015.",
    "zhou2016": 'S. Zhou, J.-N. Wu, Y. Wu, X. Zhou, "Exploiting Local Structures with the Kronecker Layer in '
                'Convolutional Networks", [arXiv:1512.09194](https://arxiv.org/abs/1512.09194), 2015.',
    "kfac": 'J. Martens, R. Grosse, "Optimizing Neural Networks with Kronecker-factored Approximate Curvature" '
            '(K-FAC), ICML 2015; R. Grosse, J. Martens, "A Kronecker-factored approximate Fisher matrix for '
            'convolution layers", ICML 2016.',
    "leskovec": 'J. Leskovec, D. Chakrabarti, J. Kleinberg, C. Faloutsos, Z. Ghahramani, "Kronecker Graphs: An '
                'Approach to Modeling Networks", JMLR 11, 2010; the Graph500 benchmark builds its graphs with a '
                "Kronecker generator.",
    "vanloan": 'C. F. Van Loan, N. Pitsianis, "Approximation with Kronecker Products", in *Linear Algebra for Large '
               "Scale and Real-Time Applications*, Kluwer, 1993.",
    "novikov2015": 'A. Novikov, D. Podoprikhin, A. Osokin, D. Vetrov, "Tensorizing Neural Networks", NeurIPS 2015.',
    "recipe": "The training recipe: pytorch/examples, `mnist/main.py` as of 2018 (SGD, learning rate 0.01, "
              "momentum 0.5, batches of 64, test batches of 1000).",
    "oseledets": 'I. V. Oseledets, "Tensor-Train Decomposition", *SIAM J. Sci. Comput.* 33(5), 2295–2317, 2011.',
    "t3f": 'A. Novikov, P. Izmailov, V. Khrulkov, M. Figurnov, I. Oseledets, "Tensor Train decomposition on '
           'TensorFlow (T3F)", JMLR 21, 2020; its tutorial "Tensor Nets (compressing neural networks)", '
           "`docs/tutorials/tensor_nets.ipynb` in the Bihaqo/t3f repository, quoted at commit abd4f77 "
           "(\"Bring the neural tutorial up to date\").",
    "permuted": 'Permuted MNIST as a test of what a model owes to the image grid: a fixed permutation of the pixels '
                "leaves a fully connected net's task unchanged but destroys the local structure convolutions rely on; "
                'see e.g. I. J. Goodfellow, M. Mirza, D. Xiao, A. Courville, Y. Bengio, "An Empirical Investigation of '
                'Catastrophic Forgetting in Gradient-Based Neural Networks", [arXiv:1312.6211](https://arxiv.org/abs/1312.6211), 2013.',
    "bengio2012": 'Y. Bengio, "Practical Recommendations for Gradient-Based Training of Deep Architectures", in *Neural '
                  "Networks: Tricks of the Trade*, 2nd ed., Springer, 2012: the learning rate as the one hyper-parameter "
                  "to tune first, on a validation set.",
    "adam": 'D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.',
    "shampoo": 'V. Gupta, T. Koren, Y. Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML 2018.',
    "phm": 'A. Zhang, Y. Tay, S. Zhang, A. Chan, A. T. Luu, S. C. Hui, J. Fu, "Beyond Fully-Connected Layers with '
           'Quaternions: Parameterization of Hypercomplex Multiplications with 1/n Parameters" (PHM layers), ICLR 2021.',
    "compacter": 'R. Karimi Mahabadi, J. Henderson, S. Ruder, "Compacter: Efficient Low-Rank Hypercomplex Adapter Layers", '
                 "NeurIPS 2021, [arXiv:2106.04647](https://arxiv.org/abs/2106.04647).",
    "lora": 'E. J. Hu, Y. Shen, P. Wallis, Z. Allen-Zhu, Y. Li, S. Wang, L. Wang, W. Chen, "LoRA: Low-Rank Adaptation of '
            'Large Language Models", ICLR 2022.',
    "krona": 'A. Edalati, M. Tahaei, I. Kobyzev, V. Partovi Nia, J. J. Clark, M. Rezagholizadeh, "KronA: Parameter '
             'Efficient Tuning with Kronecker Adapter", [arXiv:2212.10650](https://arxiv.org/abs/2212.10650), 2022.',
    "lycoris": 'S.-Y. Yeh et al., "Navigating Text-To-Image Customization: '
               'From LyCORIS Fine-Tuning to Model Evaluation" (LoKr), ICLR 2024, '
               "[arXiv:2309.14859](https://arxiv.org/abs/2309.14859); LoKr is also Hugging Face peft's `LoKrConfig`.",
    "monarch": 'T. Dao, B. Chen, N. Sohoni, A. Desai, M. Poli, J. Grogan, A. Liu, A. Rao, A. Rudra, C. Ré, "Monarch: '
               'Expressive Structured Matrices for Efficient and Accurate Training", ICML 2022, '
               "[arXiv:2204.00595](https://arxiv.org/abs/2204.00595).",
    "tensorly": 'J. Kossaifi, Y. Panagakis, A. Anandkumar, M. Pantic, "TensorLy: Tensor Learning in Python", JMLR 20, '
                "2019: `tensor_train_matrix`, the TT-SVD used in section 4.",
    "peft": 'S. Mangrulkar, S. Gugger, L. Debut, Y. Belkada, S. Paul, B. Bossan, "PEFT: State-of-the-art '
            'Parameter-Efficient Fine-Tuning methods", Hugging Face, 2022; version 0.21.2 here (`LoraConfig`, '
            "`LoKrConfig`, `get_peft_model`, `merge_and_unload`).",
    "effrank": 'O. Roy, M. Vetterli, "The effective rank: A measure of effective dimensionality", EUSIPCO 2007.',
    "eckart": 'C. Eckart, G. Young, "The approximation of one matrix by another of lower rank", *Psychometrika* 1, '
              "1936.",
    "fashion": 'H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine '
               'Learning Algorithms", [arXiv:1708.07747](https://arxiv.org/abs/1708.07747), 2017.',
}
#: Which references each page lists, in order.
PAGE_REFERENCES = {"kronecker_report": ["post", "zhou2015", "zhou2016", "kfac", "leskovec", "vanloan", "novikov2015",
                                        "recipe", "shampoo", "phm", "compacter", "lora", "krona", "lycoris", "monarch"],
                   "beyond": ["post", "zhou2015", "zhou2016", "kfac", "leskovec", "vanloan", "novikov2015", "recipe",
                              "oseledets", "t3f", "tensorly"],
                   "why": ["post", "zhou2015", "recipe", "permuted", "bengio2012", "adam"],
                   "adapters": ["post", "lora", "lycoris", "krona", "peft", "fashion", "adam", "effrank", "eckart",
                                "vanloan"]}


def references(page: str) -> str:
    """The page's numbered reference list, as Markdown under a 'References' heading with the #references anchor."""
    items = [f"{n}. {BIBLIOGRAPHY[key]}" for n, key in enumerate(PAGE_REFERENCES[page], start=1)]
    return '<a id="references"></a>\n\n## References\n\n' + "\n".join(items)
