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


def import_jax() -> Any:
    """Import jax, on the CPU unless the user chose a platform (GPU/TPU numerics differ), with
    initspec's persistent compilation cache (:func:`compilation_cache_dir`)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    _compilation_cache(jax)
    return jax


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/initspec/jax`` (``~/.cache/initspec/jax``): the command line's default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "initspec", "jax")


def compilation_cache_dir() -> str | None:
    """Where JAX's persistent compilation cache is kept for initspec's draws, or None.

    ``INITSPEC_JAX_CACHE`` names the folder (``0`` or unset: none).  The ``initspec`` command sets it
    to :func:`default_cache_dir` unless it is set; the Python API and the pytest plugin leave it
    unset, because JAX's cache is a setting of the whole process -- a test suite that imports
    initspec keeps its own.  A cache configured for JAX itself (``JAX_COMPILATION_CACHE_DIR``) wins.
    """
    choice = os.environ.get("INITSPEC_JAX_CACHE", "")
    return None if choice.lower() in ("", "0", "off", "no", "false") else choice


def _compilation_cache(jax: Any) -> None:
    # Compiling is most of a JAX run's time (0.2-1 s a program here, against milliseconds of
    # drawing): the next run of the same manifest reads the executables back.  Every compilation
    # is kept, however quick (JAX's default keeps those over 1 s).
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
    over the seeds through :func:`shared_program`, compiled once per program and batch length."""
    fns: dict[tuple, Any] = {}

    def many(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        key = (tuple(case.shape), dtype)
        if key not in fns:
            fns[key] = shared_program(one(case, dtype), np.uint32(0))
        return to_numpy(fns[key](np.asarray(seeds, dtype=np.uint32)))

    return many


#: XLA's CPU code generation level for initspec's compilations (see shared_program)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
_SHARED: dict[str, Any] = {}


def shared_program(row: Any, example: Any) -> Any:
    """``seeds -> batch``: ``jit(vmap(row))``, one compilation shared by every row of the same program.

    A run compiles each initializer at each shape and dtype, and compiling is most of a JAX run
    (0.2-1 s a program here, milliseconds to draw).  Most initializers are one sampler and
    different scalars (he_normal, glorot_normal, variance_scaling(2, ...) are one normal times a
    std Python computed), so the row is traced once (``make_jaxpr``), its top-level scalar float
    literals and its constants become inputs of an evaluator that binds the same primitives with
    the same parameters, and the evaluator's own program is the cache key: one compilation per
    sampler, shape, dtype and batch length.  It runs the program ``jit(row)`` would run, with the
    scalars as inputs rather than folded in (the law is the same; bits may differ in the last
    place, as any fusion may: tested against the eager draws).

    XLA compiles at backend optimization level 1: level 3, its default, spends up to six times
    longer in LLVM on some shapes (a (5, 5, 3, 8) truncated normal: 2.4 s against 0.4 s) and
    draws no faster at these sizes.
    """
    jax = import_jax()
    from jax.extend import core as jcore

    probe = jax.make_jaxpr(row)(example)
    jaxpr = probe.jaxpr
    lifted = [(i, k) for i, e in enumerate(jaxpr.eqns) for k, v in enumerate(e.invars)
              if isinstance(v, jcore.Literal) and np.ndim(v.val) == 0
              and np.issubdtype(np.asarray(v.val).dtype, np.floating)]
    values = [np.asarray(jaxpr.eqns[i].invars[k].val, dtype=jaxpr.eqns[i].invars[k].aval.dtype) for i, k in lifted]
    consts = list(probe.consts)
    where = {pos: n for n, pos in enumerate(lifted)}

    def run(vals: list[Any], cvals: list[Any], seed: Any) -> Any:
        env: dict[Any, Any] = dict(zip(jaxpr.constvars, cvals, strict=True))
        env[jaxpr.invars[0]] = seed
        for i, e in enumerate(jaxpr.eqns):
            args = [vals[where[(i, k)]] if (i, k) in where else
                    (v.val if isinstance(v, jcore.Literal) else env[v]) for k, v in enumerate(e.invars)]
            out = e.primitive.bind(*args, **e.params)
            for var, val in zip(e.outvars, out if e.primitive.multiple_results else [out], strict=True):
                env[var] = val
        (result,) = [v.val if isinstance(v, jcore.Literal) else env[v] for v in jaxpr.outvars]
        return result

    key = str(jax.make_jaxpr(run)(values, consts, example))
    fn = _SHARED.get(key)
    if fn is None:
        fn = _SHARED[key] = jax.jit(jax.vmap(run, in_axes=(None, None, 0)), compiler_options=COMPILER_OPTIONS)
    return lambda seeds: fn(values, consts, seeds)
