"""jax convention: ``init(key: jax.random.key(seed), shape, dtype) -> jax.Array``.

``call`` names a factory with its literal arguments (``variance_scaling(2.0, 'fan_in', 'normal')``)
or an initializer itself (``zeros``).  Every draw is an eager call, the way users call an
initializer outside ``jit``: compiling the whole initializer lets XLA fuse its arithmetic
(on jax 0.10.2 ``normal`` then differs in the last bits for about half the values).  JAX
runs on the CPU unless ``JAX_PLATFORMS`` says otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.spec.reference import np_dtype

FRAMEWORK = "jax"
EXTRA = "jax"
CONVENTIONS = ("jax",)


def import_jax() -> Any:
    """Import jax, on the CPU unless the user chose a platform (GPU/TPU numerics differ)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    return jax


def version() -> str:
    return import_jax().__version__


def jax_dtype(dtype: str) -> Any:
    """The dtype object to hand to JAX for a dtype name; float64 needs ``jax_enable_x64``."""
    jax = import_jax()
    if dtype == "float64" and not jax.config.jax_enable_x64:
        # Without x64 JAX silently returns float32; say why instead of reporting a dtype change.
        raise ValueError("float64 needs 64-bit JAX: set JAX_ENABLE_X64=1")
    return np_dtype(dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A JAX array as numpy, bit for bit (bfloat16 stays ml_dtypes.bfloat16)."""
    return np.asarray(import_jax().device_get(x))


def prepare(obj: Any, target: Any, convention: str):
    """A factory call ``obj(*args, **kwargs)`` when the target has arguments, else obj itself."""
    jax = import_jax()
    init = obj(*target.args, **target.kwargs) if target.has_call else obj
    if not callable(init):
        raise InputError(f"--target {target.text!r}: {type(init).__name__} is not callable")

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        return to_numpy(init(jax.random.key(seed), tuple(case.shape), jax_dtype(dtype)))

    return draw
