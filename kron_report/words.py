"""The phrasing every page shares: counts and number words, seeds and recipes, intervals, error rates, the fit
summary, and the references. Each function words numbers it is given and computes no statistic itself.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from .stats import error_change, seed_groups

__all__ = ["signed", "cite", "epochs_phrase", "WORDS", "number_word", "count", "seeds_phrase", "recipe", "is_post_recipe",
           "recipe_name_of", "join_words", "ranked_values", "mistakes_phrase", "error_rates", "sweep_sentence",
           "BIBLIOGRAPHY", "PAGE_REFERENCES", "reference_entry", "references", "interval", "seeds_statement", "seeds_counts", "gap_phrase",
           "ci_cell", "fit_table"]


def signed(value: float, digits: int = 2) -> str:
    """'+1.25', '-0.40', and '0.00' for anything that rounds to zero (never '-0.00')."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def epochs_phrase(n: int) -> str:
    """'35 epochs', '1 epoch': epoch counts stay in digits, as in the recipe."""
    return f"{int(n)} epoch{'s' if int(n) != 1 else ''}"


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


def sweep_sentence(sweep: pd.DataFrame) -> str:
    """What a sweep did, in one line (for the terminal, not the page): runs trained now and runs reused."""
    trained, reused = int(sweep.trained.map(len).sum()), int(sweep.reused.map(len).sum())
    return f"{trained} runs trained now, {reused} reused from earlier sweeps with the same settings"


# --- References ---------------------------------------------------------------------

BIBLIOGRAPHY = {
    "post": 'Kento Nozawa, "Kronecker積によるパラメータ削減" ("Parameter reduction with the Kronecker product"), blog '
            "post, 10 May 2018. In English: the author expected the Kronecker product to shrink weight matrices, "
            "found on searching that the idea was already published, and wrote the post anyway. It replaces the "
            "784×625 input weights of an MNIST MLP with U⊗V for two 28×25 matrices (1,400 weights, or 700 with "
            "U = V), and notes that factoring the sizes into primes would shrink them further. It also writes the "
            "output weights as the product of a 5×25 and a 2×25 matrix (175 weights instead of 6,250). It trains the nets with "
            "the PyTorch-examples MNIST settings for thirty-five epochs, shows accuracy and loss curves without "
            "numbers, and makes the four observations retested here. It opens with Jure Leskovec's Kronecker graphs and their use in the "
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
    "potapczynski2024": 'A. Potapczynski, S. Qiu, M. Finzi, C. Ferri, Z. Chen, M. Goldblum, B. Bruss, C. De Sa, '
                        'A. G. Wilson, "Searching for Efficient Linear Layers over a Continuous Space of Structured '
                        'Matrices", NeurIPS 2024: less parameter sharing and higher rank scale better, compared at equal '
                        'compute.',
    "qiu2024": 'S. Qiu, A. Potapczynski, M. Finzi, M. Goldblum, A. G. Wilson, "Compute Better Spent: Replacing Dense '
               'Layers with Structured Matrices", ICML 2024: structured layers need their own initialisation and '
               'per-tensor learning rates, derived from μP, before they can be compared with dense ones.',
    "sgdr": 'I. Loshchilov, F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017: the cosine '
            'learning-rate schedule.',
    "rahimi2007": 'A. Rahimi, B. Recht, "Random Features for Large-Scale Kernel Machines", NeurIPS 2007: a wide layer '
                  'of fixed random features with only a linear read-out trained.',
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
    "cdka": 'J. Bai, D. Yu, Z. Liao, T. Hou, F. Zhou, R. C. Qiu, Z. Ling, "Diving into Kronecker Adapters: Component '
            'Design Matters" (CDKA), [arXiv:2602.01267](https://arxiv.org/abs/2602.01267), 2026: the dimensions and '
            'number of Kronecker components govern the adapter\'s capacity.',
    "lycoris164": 'LyCORIS issue 164, "Implementing DiffuseKronA paper", 2024 '
                  '([KohakuBlueleaf/LyCORIS#164](https://github.com/KohakuBlueleaf/LyCORIS/issues/164)): its maintainer '
                  'answers that at almost the same parameter count a non-square factor is almost the same as LoKr\'s '
                  'own, not significantly better; issue 138 asks how the factorisation is chosen.',
    "diffusekrona": 'S. Marjit, H. Singh, N. Mathur, S. Paul, C.-M. Yu, P.-Y. Chen, "DiffuseKronA: A Parameter '
                    'Efficient Fine-tuning Method for Personalized Diffusion Models", '
                    '[arXiv:2402.17412](https://arxiv.org/abs/2402.17412), 2024: non-square factors reported to do '
                    'better than LoKr\'s.',
    "transfer": 'J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural networks?", '
                'NeurIPS 2014: a net trained on half the classes, transferred to the other half.',
    "effrank": 'O. Roy, M. Vetterli, "The effective rank: A measure of effective dimensionality", EUSIPCO 2007.',
    "eckart": 'C. Eckart, G. Young, "The approximation of one matrix by another of lower rank", *Psychometrika* 1, '
              "1936.",
    "fashion": 'H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine '
               'Learning Algorithms", [arXiv:1708.07747](https://arxiv.org/abs/1708.07747), 2017.',
}


#: Which references each page lists, in order.
PAGE_REFERENCES = {"retest": ["post", "recipe", "zhou2015"],
                   "kronecker": ["post", "zhou2015", "vanloan", "recipe"],
                   "kronecker_report": ["post", "zhou2015", "zhou2016", "kfac", "leskovec", "vanloan", "novikov2015",
                                        "recipe", "shampoo", "phm", "compacter", "lora", "krona", "lycoris", "monarch", "qiu2024"],
                   "beyond": ["post", "zhou2015", "zhou2016", "kfac", "leskovec", "vanloan", "novikov2015", "recipe",
                              "oseledets", "t3f", "tensorly", "monarch", "qiu2024", "potapczynski2024"],
                   "why": ["post", "zhou2015", "recipe", "permuted", "rahimi2007", "bengio2012", "adam", "sgdr", "qiu2024"],
                   "adapters": ["post", "transfer", "lora", "lycoris", "krona", "peft", "cdka", "lycoris164",
                                "diffusekrona", "fashion", "adam", "effrank", "eckart", "vanloan"]}


def cite(key: str, page: str) -> str:
    """'[n]': the number of reference ``key`` in ``page``'s list (:data:`PAGE_REFERENCES`), linked to it."""
    if key not in PAGE_REFERENCES.get(page, []):
        raise ValueError(f"{key!r} is not among the references of the {page} page")
    return f"[[{PAGE_REFERENCES[page].index(key) + 1}]](#references)"


def reference_entry(key: str, page: str) -> str:
    """The bibliography entry of ``key``; on the evidence pages the source post's entry without its English summary,
    which the post's own list gives."""
    if key != "post" or page == "kronecker_report":
        return BIBLIOGRAPHY[key]
    head = BIBLIOGRAPHY[key].split(" In English:")[0]
    return head + " Summarised in English in [the post's references](kronecker_report.html#references)."


def references(page: str) -> str:
    """The page's numbered reference list, as Markdown under a 'References' heading with the #references anchor."""
    items = [f"{n}. {reference_entry(key, page)}" for n, key in enumerate(PAGE_REFERENCES[page], start=1)]
    return '<a id="references"></a>\n\n## References\n\n' + "\n".join(items)


def interval(diff: float, low: float, high: float, n: tuple[int, int] | None = None) -> str:
    """'+0.23 pp, 95% CI +0.01 to +0.45', and with ``n`` the seeds behind it: '..., 10 and 5 seeds'."""
    seeds = f", {n[0]} and {n[1]} seeds" if n is not None else ""
    return f"{signed(diff)} pp, 95% CI {signed(low)} to {signed(high)}{seeds}"


def seeds_statement(rows: pd.DataFrame, variants: Sequence[str] | None = None) -> str:
    """Which nets have which seeds: 'ten seeds (1 to 10) for `original` and `two_kron`, and five seeds (1 to 5)
    for the other 28 nets' (the largest group of nets is named by its size)."""
    groups = seed_groups(rows, variants)
    if len(groups) == 1:
        return f"{seeds_phrase(next(iter(groups)))} for every net"
    rest = max(groups, key=lambda s: len(groups[s])) if max(map(len, groups.values())) > 3 else None
    named = [f"{seeds_phrase(s)} for {join_words([f'`{v}`' for v in nets])}" for s, nets in groups.items() if s != rest]
    return "; ".join(named + ([f"{seeds_phrase(rest)} for the other {count(len(groups[rest]), 'net')}"] if rest else []))


def seeds_counts(rows: pd.DataFrame, variants: Sequence[str] | None = None) -> str:
    """How many nets have which seeds, without naming them: 'ten seeds (1 to 10) for six nets and five seeds (1 to
    5) for the other 28' (a table names the nets and their seeds)."""
    groups = seed_groups(rows, variants)
    if len(groups) == 1:
        return f"{seeds_phrase(next(iter(groups)))} for every net"
    parts = [f"{seeds_phrase(s)} for {count(len(nets), 'net')}" for s, nets in groups.items()]
    return join_words(parts)


def gap_phrase(c: Mapping) -> str:
    """A Welch comparison of :func:`stats.compare_final` as 'diff pp, 95% CI ..., n and m seeds'."""
    return interval(c["diff"], c["low"], c["high"], (c["n_a"], c["n_b"]))


def ci_cell(c: Mapping, digits: int = 2) -> str:
    """'-0.40 (-0.47 to -0.33)': a difference (``diff``) and its 95% interval (``low``, ``high``), for a table cell."""
    return f"{signed(c['diff'], digits)} ({signed(c['low'], digits)} to {signed(c['high'], digits)})"


def fit_table(diagnoses: Sequence[Mapping]) -> pd.DataFrame:
    """:func:`stats.fit_diagnosis` for display, the reference net first: final training loss (mean), its difference
    to the reference and the test-accuracy gap, each with its 95% interval, and the seeds."""
    first = diagnoses[0]
    loss, accuracy, ref = first["train_loss"], first["accuracy"], first["reference"]
    if any(d["reference"] != ref for d in diagnoses):
        raise ValueError("fit_table shows diagnoses against one reference net")
    vs_loss, vs_test = f"loss vs {ref} (95% CI)", f"test vs {ref}, pp (95% CI)"
    rows = [{"net": ref, "training loss": f"{loss['mean_b']:.3f}", vs_loss: "–", "test acc. (%)": f"{accuracy['mean_b']:.2f}",
             vs_test: "–", "seeds": f"{loss['n_b']}"}]
    rows += [{"net": d["net"], "training loss": f"{d['train_loss']['mean_a']:.3f}", vs_loss: ci_cell(d["train_loss"], 3),
              "test acc. (%)": f"{d['accuracy']['mean_a']:.2f}", vs_test: ci_cell(d["accuracy"]),
              "seeds": f"{d['accuracy']['n_a']}"} for d in diagnoses]
    return pd.DataFrame(rows)
