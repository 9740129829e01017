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

import functools
import math
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
    # Compiling is most of a JAX run's time (0.1-0.2 s a program here, against milliseconds of
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


def fast_eager_compiles() -> None:
    """Let JAX compile what initspec does not compile itself with most XLA optimizations off.

    An eager draw (``--eager``, a fallback, a Keras layer built on the JAX backend) compiles the
    framework's jitted samplers at each new shape with XLA's defaults: 1.3 s for a truncated
    normal here, for a draw that then takes under a millisecond.  ``jax_disable_most_optimizations``
    makes that 50-100 ms; the draws run a few times slower and follow the same law (bits: the
    untruncated normals move by up to 3 ulp, as under ``jit``).  initspec's own programs keep their
    ``compiler_options``.  The flag is the whole process's, so it is set only where
    ``INITSPEC_JAX_FAST_COMPILE`` says so -- the ``initspec`` command's default -- and never over a
    ``JAX_DISABLE_MOST_OPTIMIZATIONS`` the user set.
    """
    if os.environ.get("INITSPEC_JAX_FAST_COMPILE", "") != "1" or "JAX_DISABLE_MOST_OPTIMIZATIONS" in os.environ:
        return
    import_jax().config.update("jax_disable_most_optimizations", True)


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
    fast_eager_compiles()
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
        return fns[key](np.asarray(seeds, dtype=np.uint32))

    return many


#: XLA options of initspec's compilations (see shared_program), where this jaxlib knows them
COMPILER_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}
#: a compiled batch length is reused for a shorter batch while it returns at most this many more values
PAD_VALUES = 1 << 22
_SHARED: dict[str, Program] = {}


class Program:
    """One compiled ``jit(vmap(run))`` and the batch lengths it has been compiled for."""

    def __init__(self, fn: Any, row_size: int) -> None:
        self.fn, self.row_size, self.lengths = fn, row_size, set()

    def length_for(self, n: int) -> int:
        """The batch length to run n rows at: a compiled one up to twice as long (and at most
        PAD_VALUES values longer) rather than a new compilation.  Padding a batch costs
        generating those rows (4M values: ~50 ms here), a compilation 0.1-0.2 s."""
        fits = [m for m in self.lengths if n <= m <= 2 * n and (m - n) * self.row_size <= PAD_VALUES]
        m = min(fits, default=n)
        self.lengths.add(m)
        return m

    def __call__(self, values: list[Any], seeds: np.ndarray) -> np.ndarray:
        n = len(seeds)
        m = self.length_for(n)
        if m > n:  # rows are independent under vmap: padding changes none of the first n
            seeds = np.concatenate([seeds, np.repeat(seeds[-1:], m - n, axis=0)])
        return to_numpy(self.fn(values, seeds))[:n]


@functools.cache
def compiler_options() -> dict[str, Any]:
    """The COMPILER_OPTIONS this jaxlib accepts (an unknown option is an error at compile time)."""
    jax = import_jax()
    kept = {}
    for name, value in COMPILER_OPTIONS.items():
        try:
            jax.jit(lambda x: x + 1, compiler_options={**kept, name: value}).lower(np.float32(0)).compile()
        except Exception:  # noqa: BLE001 - an option this XLA does not have: compile without it
            continue
        kept[name] = value
    return kept


def shared_program(row: Any, example: Any) -> Any:
    """``seeds -> batch`` (numpy): ``jit(vmap(row))``, one compilation shared by every row of the same program.

    A run compiles each initializer at each shape and dtype, and compiling is most of a JAX run
    (0.1-0.2 s a program here, milliseconds to draw).  Most initializers are one sampler and
    different numbers: ``he_normal``, ``glorot_normal``, ``normal(0.02)`` and
    ``variance_scaling(2, ...)`` are one normal times a std, computed from the fans (in Python or
    in ``jnp``) before any random bit.  So the row is traced once (``make_jaxpr``) and split by
    what depends on the seed (:func:`canonical_program`): the rest is computed now, and its
    values, with the seed-dependent part's scalar float literals, become inputs of one program.
    That program's text is the cache key: one compilation per sampler, shape, dtype and batch
    length (a compiled longer batch serves a shorter one: :meth:`Program.length_for`).  It runs
    what ``jit(row)`` would run, with those numbers as inputs rather than folded in (the law is
    the same; bits may differ in the last place, as any fusion may: tested against the eager
    draws).

    XLA compiles at backend optimization level 1 with its older loop emitters: at level 3, its
    default, LLVM spends up to six times longer on some shapes (a (5, 5, 3, 8) truncated normal:
    2.4 s against 0.4 s), and its fusion emitters take 120-160 ms a compilation at level 1 where
    the loop emitters take 70-100 ms; neither draws faster at these sizes (``bench/jax_compile.py``).
    """
    jax = import_jax()
    run, values = canonical_program(row, example)
    traced = jax.make_jaxpr(run)(values, example)
    key = str(traced)
    program = _SHARED.get(key)
    if program is None:
        fn = jax.jit(jax.vmap(run, in_axes=(None, 0)), compiler_options=compiler_options())
        program = _SHARED[key] = Program(fn, math.prod(traced.out_avals[0].shape))
    return lambda seeds: program(values, seeds)


def canonical_program(row: Any, example: Any) -> tuple[Any, list[Any]]:
    """``(run, values)`` with ``run(values, seed) == row(seed)``, ``run`` depending only on the sampler.

    The row's jaxpr loses the equations its output does not need (a Flax init draws every
    parameter, a check reads one) and is split by JAX's partial evaluation into what depends on
    the seed and what does not (fans, scales, truncation bounds: computed here, once).  The
    seed-independent values and the top-level scalar float literals of the seed-dependent part
    become ``values``, in the order the program first reads them, so two rows that differ only
    in those numbers trace to the same ``run``.  Where JAX's partial evaluation does not apply
    (a primitive without a rule), the whole row is the program and only its literals are lifted.
    """
    jax = import_jax()
    from jax.extend import core as jcore

    closed = jax.make_jaxpr(row)(example)
    jaxpr, known = _split_seed(closed)
    slots: dict[Any, int] = {}  # a residual Var or an (equation, operand) literal -> index in values
    values: list[Any] = []  # numpy scalars and JAX arrays

    def use(v: Any, where: Any) -> None:
        if isinstance(v, jcore.Literal):
            if np.ndim(v.val) == 0 and np.issubdtype(np.asarray(v.val).dtype, np.floating):
                slots[where] = len(values)
                values.append(np.asarray(v.val, dtype=v.aval.dtype))
        elif v in known and v not in slots:
            slots[v] = len(values)
            values.append(known[v])

    for i, e in enumerate(jaxpr.eqns):
        for k, v in enumerate(e.invars):
            use(v, (i, k))
    for k, v in enumerate(jaxpr.outvars):
        use(v, ("out", k))

    def read(env: dict[Any, Any], vals: list[Any], v: Any, where: Any) -> Any:
        if where in slots:
            return vals[slots[where]]
        if isinstance(v, jcore.Literal):
            return v.val
        return vals[slots[v]] if v in slots else env[v]

    def run(vals: list[Any], seed: Any) -> Any:
        env: dict[Any, Any] = {jaxpr.invars[-1]: seed}
        for i, e in enumerate(jaxpr.eqns):
            out = e.primitive.bind(*[read(env, vals, v, (i, k)) for k, v in enumerate(e.invars)], **e.params)
            for var, val in zip(e.outvars, out if e.primitive.multiple_results else [out], strict=True):
                env[var] = val
        (result,) = [read(env, vals, v, ("out", k)) for k, v in enumerate(jaxpr.outvars)]
        return result

    return run, values


def _split_seed(closed: Any) -> tuple[Any, dict[Any, Any]]:
    """The seed-dependent jaxpr (invars: residuals, then the seed) and the residuals' values."""
    jax = import_jax()
    from jax._src.interpreters import partial_eval as pe  # no public API splits a jaxpr by dependence
    from jax.extend import core as jcore

    jaxpr = pe.convert_constvars_jaxpr(closed.jaxpr)  # constants first, then the seed
    consts = list(closed.consts)
    jaxpr, used = pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars), instantiate=[False] * len(consts) + [True])
    consts = [c for c, u in zip(consts, used, strict=False) if u]
    try:
        known, unknown, _, _ = pe.partial_eval_jaxpr_nounits(
            jcore.ClosedJaxpr(jaxpr, ()), [False] * len(consts) + [True], instantiate=True)
        with jax.disable_jit():  # op by op: a nested jit's seed-independent half would compile
            res = jcore.jaxpr_as_fun(known)(*consts)
        if unknown.consts:
            raise ValueError("constants left in the seed-dependent part")
        program = unknown.jaxpr
    except Exception:  # noqa: BLE001 - no partial-evaluation rule: the whole row is the program
        program, res = jaxpr, consts
    return program, dict(zip(program.invars[:-1], res, strict=True))
