"""How a page's prose reads, measured the way ``shared/tools/page_stats.py`` measures it: numbers per sentence and per
100 words, six-word phrases that recur, and plumbing that has no place in a sentence (reprs, raw LaTeX, float
dumps). The browser test applies these to every rendered page's visible prose (tables, code and figures excluded).
"""
from __future__ import annotations

import re
from collections import Counter

__all__ = ["NUMBER", "sentences", "numbers_in", "number_density", "repeated_phrases", "PLUMBING", "plumbing",
           "prose_problems"]

#: A number as a reader counts it: signs, thousands separators, decimals and a unit (%, pp, ×).
NUMBER = re.compile(r"[-+−]?\d[\d,]*(?:\.\d+)?\s*(?:%|pp|×|x\b)?")


def sentences(text: str) -> list[str]:
    """The text split into sentences (after . ! or ? followed by a space and a capital or a parenthesis)."""
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text) if s.strip()]


def numbers_in(sentence: str) -> int:
    """How many numbers ``sentence`` holds."""
    return len(NUMBER.findall(sentence))


def number_density(text: str) -> float:
    """Numbers per 100 words."""
    words = re.findall(r"[\w'’.,%×−+-]+", text)
    return 100 * sum(numbers_in(s) for s in sentences(text)) / max(len(words), 1)


def repeated_phrases(text: str, length: int = 6, at_least: int = 3) -> dict[str, int]:
    """Phrases of ``length`` words (numbers and punctuation ignored) that recur ``at_least`` times: templated prose."""
    tokens = [w.lower().strip(".,;:()") for w in re.findall(r"[A-Za-z][\w'-]*", text)]
    grams = Counter(" ".join(tokens[i:i + length]) for i in range(len(tokens) - length + 1))
    return {g: n for g, n in grams.most_common() if n >= at_least}


#: What a sentence must not show, by name: printed reprs, raw LaTeX, float dumps.
PLUMBING = {
    "repr": re.compile(r"\b[A-Z]\w*\((?:\w+=|in_features|\d+, \d+)|Parameter containing|<\w[\w.]* object at|"
                       r"\btensor\(\["),
    "raw LaTeX": re.compile(r"\\(?:frac|mathbb|otimes|times|cdot|sum|left|right)\b|\^\{|_\{|\$[^$\s][^$]*\$"),
    "float dump": re.compile(r"\d\.\d{7,}|\d(?:\.\d+)?e[-+]\d\d\b"),
}


def plumbing(text: str) -> list[str]:
    """'kind: excerpt' for every piece of plumbing in ``text``."""
    return [f"{kind}: {m.group(0)!r}" for kind, pattern in PLUMBING.items() for m in pattern.finditer(text)]


def prose_problems(text: str, max_numbers: int = 8, max_repeats: int = 3, max_density: float | None = None) -> list[str]:
    """Every way ``text`` breaks the article's rules: a sentence with more than ``max_numbers`` numbers, more than
    ``max_repeats`` six-word phrases that recur three or more times, a density above ``max_density`` numbers per 100
    words (when given), and any plumbing. An empty list means the prose passes."""
    problems = [f"{numbers_in(s)} numbers in one sentence: {s[:120]!r}" for s in sentences(text)
                if numbers_in(s) > max_numbers]
    repeats = repeated_phrases(text)
    if len(repeats) > max_repeats:
        problems.append(f"{len(repeats)} six-word phrases recur 3 or more times: {list(repeats)[:5]}")
    if max_density is not None and number_density(text) > max_density:
        problems.append(f"{number_density(text):.1f} numbers per 100 words (at most {max_density:g})")
    return problems + plumbing(text)
