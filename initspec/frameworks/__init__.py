"""Framework bindings: seed, call and convert to numpy; nothing else.

Each binding module defines ``FRAMEWORK`` (the import name), ``EXTRA`` (the pip extra that
installs it), ``CONVENTIONS``, ``version()`` and ``prepare(obj, target, convention) -> Drawer``.
A Drawer is ``draw(case, dtype, seed) -> numpy.ndarray``.  Bindings are imported only when
a run needs them, so ``import initspec`` imports no ML framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from initspec.errors import InputError

#: convention -> binding module (below initspec.frameworks)
CONVENTIONS = {"numpy": "numpy", "torch": "torch", "torch_module": "torch", "keras": "keras",
               "keras_layer": "keras", "tf": "tensorflow", "jax": "jax", "flax": "flax"}
#: framework name -> binding module
FRAMEWORKS = {"numpy": "numpy", "torch": "torch", "keras": "keras", "tensorflow": "tensorflow",
              "jax": "jax", "flax": "flax"}

Drawer = Callable[[Any, str, int], np.ndarray]


def binding_for(name: str, *, convention: bool = False) -> ModuleType:
    """Import a framework's binding; InputError naming the extra when the framework is missing."""
    table = CONVENTIONS if convention else FRAMEWORKS
    if name not in table:
        kind = "convention" if convention else "framework"
        raise InputError(f"unknown {kind} {name!r}: use one of {', '.join(table)}")
    mod = importlib.import_module(f"initspec.frameworks.{table[name]}")
    try:
        importlib.import_module(mod.FRAMEWORK)
    except ModuleNotFoundError:
        raise InputError(f"{mod.FRAMEWORK} is not installed: pip install 'initspec[{mod.EXTRA}]'") from None
    return mod
