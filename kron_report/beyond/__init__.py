"""Part 3, beyond the post: other structures at equal budgets, trained layers projected and compressed
(notebook 04).

One module a concern: ``plan`` (what the notebook asks for, checked before any work), the experiments,
``prose`` (its sentences) and ``figures``. This folder imports the shared core, never another page.
"""
from . import budgets, compression, figures, plan, prose
from .budgets import *  # noqa: F401,F403
from .compression import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403

__all__ = [name for module in (plan, budgets, compression, prose, figures) for name in module.__all__]
