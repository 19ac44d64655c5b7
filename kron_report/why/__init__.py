"""The 'why' page: permuted pixels, off-grid factors, and recipes chosen on a validation split (notebook 05).

One module a concern: ``plan`` (what the notebook asks for, checked before any work), the experiments,
``prose`` (its sentences) and ``figures``. This folder imports the shared core, never another page.
"""
from . import analysis, figures, plan, prose
from .analysis import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403

__all__ = [name for module in (plan, analysis, prose, figures) for name in module.__all__]
