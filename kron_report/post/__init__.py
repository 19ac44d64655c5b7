"""Parts 1 and 2: the explainer and the 2018 claims retested (notebooks 01, 02 and 03).

One module a concern: ``plan`` (what the notebook asks for, checked before any work), the experiments,
``prose`` (its sentences) and ``figures``. This folder imports the shared core, never another page.
"""
from . import explainer, figures, plan, prose, verdicts
from .explainer import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403
from .verdicts import *  # noqa: F401,F403

__all__ = [name for module in (plan, verdicts, explainer, prose, figures) for name in module.__all__]
