"""Parts 1 and 2: the explainer and the 2018 claims retested (notebooks 01 and 03; notebook 02, one variant, is
the core's :class:`sweep.TrainRequest`).

``plan`` (what notebook 03 asks for, checked before any work), ``verdicts`` (the experiments), ``explainer`` (Part 1's
small experiments, figures and captions together), ``prose`` and ``figures`` (Part 2's sentences and figures). This
folder imports the shared core, never another page.
"""
from . import explainer, figures, plan, prose, verdicts
from .explainer import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403
from .verdicts import *  # noqa: F401,F403

__all__ = [name for module in (plan, verdicts, explainer, prose, figures) for name in module.__all__]
