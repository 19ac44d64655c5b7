"""Everything the report needs around the layer and the trainer of ``kron_utils``: one folder per page over a
small shared core.

The shared core, by kind (each module imports only core modules above it):

- ``paths``    the repository root, folder checks, and the one rule for where a run may write;
- ``store``    results on disk: settings keys, atomic writes, loading runs, a small cache, the bench record;
- ``fetch``    fetching and verifying the datasets (`make data`);
- ``stats``    final epochs, Welch comparisons, the verdict rules, intervals, fit diagnoses;
- ``claims``   the rules that size a claim to its evidence (within x, shared baselines, ratios, headings);
- ``words``    the phrasing every page shares, and the references;
- ``readability`` how a page's prose reads: numbers per sentence, repeated phrases, plumbing;
- ``style``    the figure style, and showing a figure with its caption and alt text;
- ``params``   reading and checking notebook parameters, before any work;
- ``nets``     reading trained nets (input-layer weights, ranks, receptive fields);
- ``recipes``  recipes chosen on a validation split;
- ``sweep``    training a grid of runs (on Dask, or serially) and the one-variant train request;
- ``render``   executing notebooks and rendering the HTML pages.

One folder per page, each with its plan, experiments, sentences and figures; page folders never import each
other:

- ``post``      Parts 1 and 2 (notebooks 01, 02, 03);
- ``beyond``    Part 3 (notebook 04);
- ``why``       the why page (notebook 05);
- ``adapters``  Part 4 (notebook 06);
- ``front``     the first page's title, lede line and key findings (notebook 00), the only code that reads
                every page.

``import kron_report as kr`` gives every public name as ``kr.<name>`` (each defined once), and each page as
``kr.<page>`` (``kr.why.plan.WhyPlan``) for a reader who wants to know where a call lives. ``kron_utils`` never
imports this package.
"""
from . import (  # noqa: F401  # noqa: F401
           adapters,
           beyond,
           claims,
           fetch,
           front,
           nets,
           params,
           paths,
           post,
           readability,
           recipes,
           render,
           stats,
           store,
           style,
           sweep,
           why,
           words,
)
from .adapters import *  # noqa: F401,F403
from .beyond import *  # noqa: F401,F403
from .claims import *  # noqa: F401,F403
from .fetch import *  # noqa: F401,F403
from .front import *  # noqa: F401,F403
from .nets import *  # noqa: F401,F403
from .params import *  # noqa: F401,F403
from .paths import *  # noqa: F401,F403
from .post import *  # noqa: F401,F403
from .readability import *  # noqa: F401,F403
from .recipes import *  # noqa: F401,F403
from .render import *  # noqa: F401,F403
from .stats import *  # noqa: F401,F403
from .store import *  # noqa: F401,F403
from .style import *  # noqa: F401,F403
from .sweep import *  # noqa: F401,F403
from .why import *  # noqa: F401,F403
from .words import *  # noqa: F401,F403

#: The modules whose names ``kr`` re-exports, core first.
MODULES = (paths, store, fetch, stats, claims, words, readability, style, params, nets, recipes, sweep, render, post, beyond, why, adapters,
           front)
#: The page folders; none imports another.
PAGE_PACKAGES = (post, beyond, why, adapters)

__all__ = [name for module in MODULES for name in module.__all__]
