"""Model walkers: one module per framework, each imported only when its framework is in use.

A walker module defines

- ``FRAMEWORK``: the import name of the framework (``torch``, ``keras``, ``flax``, ``jax``);
- ``recognizes(obj) -> bool``: whether ``obj`` (what a target returned) is a model of this
  framework, decided through ``sys.modules`` only (never importing a framework to find out);
- ``build(factory, seed, **options) -> model``: call ``factory`` (a zero-argument callable that
  makes the model) under ``seed`` in the framework's own way (torch manual seed, Keras
  ``set_random_seed``, a JAX key, ``nnx.Rngs``), building it if the framework builds lazily;
- ``walk(model) -> Iterator[Param]``: every parameter, in a stable order;
- ``release(model)``: drop the instance (and framework caches) before the next one is built.

Recognition order and dispatch live in :func:`walker_for`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

#: walker modules, tried in this order; a module is only asked when its framework is imported
WALKERS = ("torch", "keras", "flax", "jax")


@dataclass
class Param:
    """One parameter of one model instance, described by the layer that owns it.

    ``values()`` returns the parameter as a float numpy array (bfloat16 as ``ml_dtypes.bfloat16``)
    without keeping a copy; walkers must not hold arrays themselves.
    """

    path: str                       # dotted: "h.0.attn.c_proj.weight", "Dense_0.kernel"
    shape: tuple[int, ...]
    dtype: str                      # numpy dtype name: "float32", "bfloat16", "int64"
    values: Callable[[], np.ndarray] = field(repr=False)
    owner: str = ""                 # the owning layer's class name: "Linear", "Conv1D", "Dense"
    role: str = ""                  # the attribute on the owner: "weight", "bias", "kernel", "embedding"
    layout: str | None = None       # "torch" (out, in, *k), "tf" (*k, in, out), or None when fans are given
    fan_in: int | None = None       # from the owning layer (None: from layout and shape)
    fan_out: int | None = None
    default: str | None = None      # the owner's documented default as a scheme expression, when known
    storage: Any = None             # a hashable key of the underlying storage (tied parameters share it)
    uninitialized: bool = False     # on torch's meta device, or storage never written
    trainable: bool = True


def walker_for(obj: Any) -> ModuleType | None:
    """The walker module whose framework made ``obj``, or None (checked through ``sys.modules``)."""
    for name in WALKERS:
        if name not in sys.modules and not (name == "keras" and "tf_keras" in sys.modules):
            continue
        mod = importlib.import_module(f"initspec.audit.walkers.{name}")
        if mod.recognizes(obj):
            return mod
    return None
