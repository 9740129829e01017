"""initspec: hold neural-network weight initializers to a declarative spec.

``import initspec`` imports no ML framework; bindings load when a run needs them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "assert_conforms", "assert_model_conforms", "audit", "audit_sharded", "check",
           "check_framework", "resolve"]


def __getattr__(name: str) -> Any:  # lazy: keep `import initspec` cheap
    if name == "audit":  # the subpackage, callable: initspec.audit(target, spec=...)
        import importlib

        return importlib.import_module("initspec.audit")
    if name in ("check", "assert_conforms", "check_framework", "assert_model_conforms"):
        from initspec import api

        return getattr(api, name)
    if name == "audit_sharded":  # on ranks a training codebase set up: initspec.audit.shards.loop
        from initspec.audit.shards import audit_sharded

        return audit_sharded
    if name == "resolve":
        from initspec.spec.schemes import resolve

        return resolve
    raise AttributeError(f"module 'initspec' has no attribute {name!r}")
