"""jax convention: ``init(key: jax.random.key(seed), shape, dtype) -> jax.Array``.

``call`` names a factory with its literal arguments (``variance_scaling(2.0, 'fan_in', 'normal')``)
or an initializer itself (``zeros``).  Draws are batched: ``many`` runs
``jit(vmap(lambda s: init(jax.random.key(s), shape, dtype)))`` over a batch of seeds, compiled
once per shape, dtype and batch length -- the law users get when they initialize under ``jit``.
The eager drawer (one call per seed, ``--eager``) is the law outside ``jit``; XLA may fuse the
compiled arithmetic differently, so the bits can differ while the law does not (tested).  JAX
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


#: XLA's CPU code generation level for initspec's compilations (see import_jax)
XLA_OPT_LEVEL = "--xla_backend_optimization_level=1"


def import_jax() -> Any:
    """Import jax, on the CPU unless the user chose a platform (GPU/TPU numerics differ).

    Unless ``XLA_FLAGS`` already sets it, XLA compiles at backend optimization level 1: a run
    compiles every initializer at every shape once, and level 3 (XLA's default) spends up to six
    times longer in LLVM on some shapes (a (5, 5, 3, 8) truncated normal: 2.4 s against 0.4 s)
    for no gain on draws this small.  The level only changes the machine code, not what is
    computed: the law is the same (tested against the eager draws).  Takes effect if JAX has not
    started its CPU backend yet in this process.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_OPT_LEVEL}".strip()
    import jax

    _compilation_cache(jax)
    return jax


def compilation_cache_dir() -> str | None:
    """Where initspec keeps JAX's persistent compilation cache; None when it is off.

    ``INITSPEC_JAX_CACHE``: a folder, or ``0`` for none; default ``$XDG_CACHE_HOME/initspec/jax``
    (``~/.cache/initspec/jax``).  A cache the user configured for JAX itself
    (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
    """
    choice = os.environ.get("INITSPEC_JAX_CACHE", "")
    if choice.lower() in ("0", "off", "no", "false"):
        return None
    if choice:
        return choice
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "initspec", "jax")


def _compilation_cache(jax: Any) -> None:
    # A run compiles every initializer at every shape and dtype, and compiling is most of a JAX
    # run's time (0.1-1 s a shape here, against milliseconds of drawing): the next run of the same
    # manifest reads the executables back.  Every compilation is kept, however quick.
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return
    where = compilation_cache_dir()
    if where is None:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


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

    draw.many = batched(lambda case, dtype: lambda s: init(jax.random.key(s), tuple(case.shape), jax_dtype(dtype)))
    draw.path = "jit(vmap)"
    return draw


def batched(one: Any) -> Any:
    """``many(case, dtype, seeds)`` from ``one(case, dtype) -> f(seed) -> array``: ``jit(vmap(f))``
    over the seeds, compiled once per shape, dtype and batch length (the runner keeps it fixed)."""
    jax = import_jax()
    compiled: dict[tuple, Any] = {}

    def many(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        key = (tuple(case.shape), dtype, len(seeds))
        if key not in compiled:
            compiled[key] = jax.vmap(one(case, dtype)) if os.environ.get("INITSPEC_NOJIT") else jax.jit(jax.vmap(one(case, dtype)))
        return to_numpy(compiled[key](np.asarray(seeds, dtype=np.uint32)))

    return many
