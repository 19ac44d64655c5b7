"""What Part 2 (and the front matter that reads its runs) asks for, checked before any work.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd

from ..params import read_parameters
from ..paths import output_dirs
from ..store import load_runs, reading

__all__ = ['REPORT_SEEDS', 'GAUSS_VARIANTS', 'REPORT_VARIANTS', 'ReportPlan']


#: Part 2's committed runs: the post's six nets and its four Kronecker nets with Gaussian factors, on
#: REPORT_SEEDS; Part 3 uses BEYOND_SEEDS. Which configuration is committed is decided in :mod:`paths`.
REPORT_SEEDS = tuple(range(1, 11))


GAUSS_VARIANTS = tuple(f"{v}_gauss" for v in ku.VARIANTS if "kron" in v)


REPORT_VARIANTS = ku.VARIANTS + GAUSS_VARIANTS


@dataclass(frozen=True)
class ReportPlan:
    """What Part 2 (and the front matter that reads its runs) shows, validated before any work."""
    settings: ku.TrainSettings
    variants: list[str]
    seeds: list[int]
    tolerance: float
    results_dir: Path
    figures_dir: Path
    reads: list[Path]
    full: bool

    @classmethod
    def from_parameters(cls, notebook: str, p: Mapping) -> "ReportPlan":
        """From the parameters of ``notebook`` ('00_article' or '03_report'); None takes the committed grid."""
        v = read_parameters(notebook, p)  # every value checked by its rule, before any work
        settings = ku.TrainSettings(epochs=v["epochs"], dataset=v["dataset"])
        variants = v["variants"] if v["variants"] is not None else list(REPORT_VARIANTS)
        seeds = v["seeds"] if v["seeds"] is not None else list(REPORT_SEEDS)
        tolerance = v["tolerance_pp"]
        results_dir, figures_dir, full = output_dirs(notebook, p)
        return cls(settings, variants, seeds, tolerance, results_dir, figures_dir, reading(results_dir), full)

    def load(self, settings: ku.TrainSettings | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`load_runs` of this plan's folders and seeds (its settings and variants unless given)."""
        return load_runs(self.reads, settings or self.settings, variants or self.variants, self.seeds)
