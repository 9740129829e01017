"""``initspec audit``: every parameter of a model identified and held to a declared spec.

Built on the engine (identify, the checks, Holm, diagnosis) and on per-framework walkers
(:mod:`initspec.audit.walkers`) that build a model under a seed and list its parameters with
the layout and fans of the layer that owns each one.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """``initspec.audit(target, spec=...)`` calls the audit; ``initspec.audit.run`` etc. stay modules."""

    def __call__(self, target: Any, **kwargs: Any) -> Any:
        from initspec.audit.run import audit_model

        return audit_model(target, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
