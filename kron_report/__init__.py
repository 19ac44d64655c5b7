"""Everything the report needs around the layer and the trainer of ``kron_utils``, one concern a module.

Imports run one way, each module using only those above it:

- ``paths``        the repository root, folder checks, and the one rule for where a run may write;
- ``store``        results on disk: settings keys, atomic writes, loading runs, a small cache;
- ``fetch``        fetching and verifying the datasets (`make data`);
- ``stats``        final epochs, Welch comparisons, verdicts, Pareto fronts, budgets;
- ``experiments``  baselines, ranks, tensor-train partners, the t3f recipe, projection;
- ``why``          permuted pixels, off-grid factors, recipes chosen on a validation split;
- ``runs``         what a notebook asks for (checked before any work) and the sweep;
- ``findings``     the first page's key findings, one computed number from each page;
- ``adapters``, ``adapter_runs``  Part 4: adapters (LoRA, LoKr, Kronecker sums) at matched budgets, and its runs;
- ``prose``, ``prose_beyond``, ``prose_why``, ``prose_adapters``  every sentence, caption and alt text the pages show (they read ``stats``
                   and ``experiments``, never ``figures``);
- ``figures``      every plot (it reads ``stats``, never ``prose``);
- ``render``       executing notebooks and rendering the HTML article.

``import kron_report as kr`` gives every public name of these modules as ``kr.<name>``.
``kron_utils`` never imports this package.
"""
from .paths import *  # noqa: F401,F403
from .store import *  # noqa: F401,F403
from .fetch import *  # noqa: F401,F403
from .stats import *  # noqa: F401,F403
from .experiments import *  # noqa: F401,F403
from .why import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .adapters import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403
from .prose_beyond import *  # noqa: F401,F403
from .prose_why import *  # noqa: F401,F403
from .prose_adapters import *  # noqa: F401,F403
from .prose_findings import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .sweep import *  # noqa: F401,F403
from .adapter_runs import *  # noqa: F401,F403
from .findings import *  # noqa: F401,F403
from .render import *  # noqa: F401,F403
from . import adapter_runs, adapters, experiments, findings, fetch, figures, paths, prose, prose_adapters, prose_beyond, prose_findings, prose_why, render, runs, stats, store, sweep, why  # noqa: F401
