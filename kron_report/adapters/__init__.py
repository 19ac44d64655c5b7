"""Part 4: Kronecker adapters against LoRA and LoKr at matched budgets (notebook 06).

One module a concern: ``plan`` (what the notebook asks for, checked before any work), the experiments,
``prose`` (its sentences) and ``figures``. This folder imports the shared core, never another page.
"""
from . import arms, figures, plan, prose, results, sections, transfer
from .arms import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .prose import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .sections import *  # noqa: F401,F403
from .transfer import *  # noqa: F401,F403

__all__ = [name for module in (plan, transfer, arms, results, prose, sections, figures) for name in module.__all__]
