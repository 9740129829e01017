"""TensorFlow ``tf`` convention, eager mode: tf.compat.v1 initializers and tf.random samplers.

``call`` names one of
- an initializer class (``tensorflow.compat.v1:variance_scaling_initializer(scale=2.0)``) or a
  factory returning one (``tensorflow.compat.v1.initializers:he_normal``): built per draw with
  the literal arguments and ``seed=seed`` (when it takes a seed), then called
  ``init(shape, dtype=dtype)``;
- a sampler whose first parameter is ``shape`` (``tensorflow.random:truncated_normal(stddev=0.02)``):
  called ``fn(shape, *args, dtype=dtype, seed=seed, **kwargs)``.
Every draw first runs ``tf.random.set_seed(seed)``: in eager mode an op seed alone gives a new
sequence on every call, the global seed resets it, so one seed means one tensor.

The batched path (``draw.many``, ``draw.path == "tf.function"``): one concrete ``tf.function``
per (shape, dtype, batch length) runs the initializer's own code in a ``tf.map_fn`` over the
seeds, with its stateful random op (``RandomStandardNormal``, ``TruncatedNormal``,
``RandomUniform``) traced as the stateless V2 twin fed the Philox key and counter the eager op
starts from: ``key = seed1``, ``counter = (0, seed2)`` with ``(seed1, seed2)`` the eager
``random_seed.get_seed(seed)`` after ``tf.random.set_seed(seed)``.  The stateful kernels run
``PhiloxRandom(seed1, seed2)`` (key ``seed1``, counter high word ``seed2``) from counter 0 after
the seed reset, and both kernels fill through the same ``FillPhiloxRandom`` distributions, so
each row is the eager draw with that seed, and a graph of stateless ops is deterministic across
calls.  ``many`` raises (the runner falls back to the eager loop) where that cannot hold: an
initializer instance (it keeps its own seed), a call whose op seed is not the one passed, more
than one random op per draw (eager continues one stream, a twin would repeat it), or any other
stateful op in the traced draw.

A batch of fewer than ``_MIN_ROWS`` seeds skips the compile (it would cost more than it saves)
and runs the same twinned initializer eagerly, one row at a time, without the seed reset (which
clears TF's kernel cache and is most of an eager draw's cost): the same bits, checked once per
(shape, dtype) by tracing one row into a scratch graph.  ``draw.path`` names the path the last
``many`` call took: ``"tf.function"`` or ``"eager stateless"``.
"""

from __future__ import annotations

import inspect
import math
import threading
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.spec.reference import np_dtype

FRAMEWORK = "tensorflow"
EXTRA = "tensorflow"
CONVENTIONS = ("tf",)


def version() -> str:
    import tensorflow as tf

    return tf.__version__


def to_numpy(x: Any) -> np.ndarray:
    """An eager tensor as numpy; bfloat16 as ml_dtypes.bfloat16 (bits reinterpreted, never rounded)."""
    out = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    bf16 = np_dtype("bfloat16")
    if out.dtype.name == "bfloat16" and out.dtype != bf16:
        out = out.view(np.uint16).view(bf16)
    return out


# The stateful random ops tf.random / init_ops draw through, by gen_random_ops function name:
# (the stateless V2 twin in gen_stateless_random_ops_v2).
_TWINS = {"random_standard_normal": "stateless_random_normal_v2",
          "truncated_normal": "stateless_truncated_normal_v2",
          "random_uniform": "stateless_random_uniform_v2"}
_PHILOX = 1  # the Philox algorithm id of the stateless V2 ops (the stateful kernels' generator)
_TRACE_SEED = 0x5EED  # the op seed the traced initializer is built with: the twin checks it arrives
# Rows per loop iteration: enough for ~2048 values (small kernels, e.g. 600 values, take several
# rows a step); more unrolled rows cost trace time (~0.03 s a job at one row) for no measured gain.
_TARGET_VALUES = 2048
_PARALLEL = 4  # loop iterations in flight: rows are independent stateless draws
# Batches of fewer rows run eagerly on the twins (the same bits): a compile costs ~50-60 ms a job,
# an eager twinned row ~0.3-0.7 ms (5x5x3x8 to 3x3x64x32; an eager draw with the seed reset
# 1.8-2.3 ms), so below ~150 rows the compile costs more than it saves (bench/batched_tf.py).
_MIN_ROWS = 128
_trace_lock = threading.Lock()
_tracing = threading.local()  # .pair: the (seed1, seed2) uint64 tensors of the row being traced


def seed_pair(seed: int) -> tuple[int, int]:
    """The (global, op) seed pair an eager stateful op runs with after ``tf.random.set_seed(seed)``
    and ``seed=seed`` (``random_seed.get_seed``): both truncated mod 2^31 - 1, (0, 0) -> (0, 2^31 - 1)."""
    from tensorflow.python.framework import random_seed

    pair = (random_seed._truncate_seed(seed), random_seed._truncate_seed(seed))
    return (0, random_seed._MAXINT32) if pair == (0, 0) else pair


def _twin(name: str, original: Any) -> Any:
    """``gen_random_ops.<name>`` that, while a batched draw is traced on this thread, emits the
    stateless V2 twin on the row's Philox key and counter instead (and the original otherwise)."""
    from tensorflow.python.ops import gen_stateless_random_ops_v2 as v2

    stateless = getattr(v2, _TWINS[name])

    def op(shape: Any, dtype: Any, seed: int = 0, seed2: int = 0, name: str | None = None) -> Any:
        pair = getattr(_tracing, "pair", None)
        if pair is None:
            return original(shape, dtype, seed=seed, seed2=seed2, name=name)
        import tensorflow as tf

        if seed2 != _TRACE_SEED:
            raise NotImplementedError("the random op's seed is not the seed passed to the initializer")
        _tracing.ops += 1
        if _tracing.ops > 1:
            raise NotImplementedError("the draw runs more than one random op (eager continues one stream)")
        key = tf.reshape(pair[0], [1])
        counter = tf.stack([tf.constant(0, tf.uint64), pair[1]])
        return stateless(shape, key=key, counter=counter, alg=_PHILOX, dtype=dtype, name=name)

    return op


class _Twins:
    """Context: gen_random_ops' stateful samplers replaced by :func:`_twin` (during one batch only)."""

    def __enter__(self) -> None:
        from tensorflow.python.ops import gen_random_ops

        if not _trace_lock.acquire(timeout=60):  # held by an abandoned (timed-out) draw thread
            raise RuntimeError("another thread's batched TensorFlow draw has held the twins for 60 s")
        self.saved = {n: getattr(gen_random_ops, n) for n in _TWINS}
        for n, f in self.saved.items():
            setattr(gen_random_ops, n, _twin(n, f))

    def __exit__(self, *exc: Any) -> None:
        from tensorflow.python.ops import gen_random_ops

        for n, f in self.saved.items():
            setattr(gen_random_ops, n, f)
        _trace_lock.release()


def _stateful_ops(graph: Any) -> list[str]:
    return sorted({op.type for op in graph.get_operations() if op.op_def.is_stateful})


def _parameters(obj: Any) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return {}


def prepare(obj: Any, target: Any, convention: str):
    """A Drawer for a TF initializer class/factory or a ``tf.random`` sampler."""
    import tensorflow as tf

    if convention != "tf":
        raise InputError(f"the tensorflow binding has no convention {convention!r}")
    params = _parameters(obj)
    seeded = "seed" in params
    sampler = not isinstance(obj, type) and next(iter(params), None) == "shape"
    if not sampler and not (target.has_call or isinstance(obj, type) or seeded):
        if not callable(obj):
            raise InputError(f"--target {target.text!r}: {type(obj).__name__} is not an initializer")
        instance = obj  # an initializer instance: it keeps its own seed
    else:
        instance = None
        if not sampler:
            obj(*target.args, **target.kwargs)  # bad arguments are an error now, not per draw

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        np_dtype(dtype)
        tf_dtype = tf.dtypes.as_dtype(dtype)
        shape = tuple(case.shape)
        tf.random.set_seed(seed)
        if sampler:
            kw = {**target.kwargs, "dtype": tf_dtype, **({"seed": seed} if seeded else {})}
            return to_numpy(obj(shape, *target.args, **kw))
        init = instance
        if init is None:
            init = obj(*target.args, **{**target.kwargs, **({"seed": seed} if seeded else {})})
        return to_numpy(init(shape, dtype=tf_dtype))

    if instance is not None:
        return draw  # it keeps its own seed: a batch of "seeds" would not mean the same thing
    compiled: dict[tuple, Any] = {}  # (shape, dtype, len) -> concrete function, or the error
    checked: dict[tuple, Exception | None] = {}  # (shape, dtype) -> why the eager twins cannot run

    def one(shape: tuple[int, ...], tf_dtype: Any) -> Any:
        """The initializer's draw of one row (the op seed is the checked placeholder)."""
        if sampler:
            kw = {**target.kwargs, "dtype": tf_dtype, **({"seed": _TRACE_SEED} if seeded else {})}
            return obj(shape, *target.args, **kw)
        init = obj(*target.args, **{**target.kwargs, **({"seed": _TRACE_SEED} if seeded else {})})
        return init(shape, dtype=tf_dtype)

    def row(shape: tuple[int, ...], tf_dtype: Any, pair: tuple[Any, Any]) -> Any:
        """One row on the twins with the row's (seed1, seed2) uint64 scalars (inside :class:`_Twins`)."""
        _tracing.pair, _tracing.ops = pair, 0
        try:
            x = one(shape, tf_dtype)
        finally:
            _tracing.pair = None
        if _tracing.ops != int(seeded):  # a seed that reached no twin went somewhere else
            raise NotImplementedError(f"a seeded draw ran {_tracing.ops} of the twinned random ops"
                                      if seeded else "an unseeded draw runs a random op")
        return x

    def stateless() -> None:
        """Raises unless the current graph holds stateless ops only (rows repeat across calls)."""
        bad = _stateful_ops(tf.compat.v1.get_default_graph())
        if bad:
            raise NotImplementedError(f"the traced draw has stateful ops {bad}")

    def build(shape: tuple[int, ...], tf_dtype: Any, n: int) -> Any:
        per_step = max(1, min(n, _TARGET_VALUES // max(1, math.prod(shape))))
        while n % per_step:
            per_step -= 1  # equal steps: rows per iteration divides the batch

        def rows(pairs: Any) -> Any:  # pairs: (per_step, 2) uint64 -> (per_step, *shape)
            out = [row(shape, tf_dtype, (pairs[j, 0], pairs[j, 1])) for j in range(per_step)]
            stateless()
            return tf.stack(out)

        @tf.function(autograph=False)
        def batch(pairs: Any) -> Any:
            steps = tf.reshape(pairs, [n // per_step, per_step, 2])
            spec = tf.TensorSpec((per_step, *shape), tf_dtype)
            out = tf.map_fn(rows, steps, fn_output_signature=spec, parallel_iterations=_PARALLEL)
            return tf.reshape(out, [n, *shape])

        with _Twins():
            return batch.get_concrete_function(tf.TensorSpec([n, 2], tf.uint64))

    def check(shape: tuple[int, ...], tf_dtype: Any) -> None:
        """One row traced into a scratch graph: the checks the compiled path makes, without a compile."""
        with _Twins(), tf.Graph().as_default():
            pair = tf.compat.v1.placeholder(tf.uint64, [2])
            row(shape, tf_dtype, (pair[0], pair[1]))
            stateless()

    def eager(shape: tuple[int, ...], tf_dtype: Any, pairs: np.ndarray) -> np.ndarray:
        key = (shape, tf_dtype.name)
        if key not in checked:
            try:
                check(shape, tf_dtype)
                checked[key] = None
            except Exception as e:  # noqa: BLE001 - kept and re-raised, as for a compile
                checked[key] = e
        if checked[key] is not None:
            raise checked[key]
        with _Twins():
            return np.stack([to_numpy(row(shape, tf_dtype, (tf.constant(a, tf.uint64), tf.constant(b, tf.uint64))))
                             for a, b in pairs])

    def many(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        np_dtype(dtype)
        tf_dtype = tf.dtypes.as_dtype(dtype)
        shape = tuple(case.shape)
        if not seeds:
            return np.empty((0, *shape), dtype=np_dtype(dtype))
        pairs = np.array([seed_pair(int(s)) for s in seeds], dtype=np.uint64).reshape(len(seeds), 2)
        if len(seeds) < _MIN_ROWS:
            out = eager(shape, tf_dtype, pairs)
            draw.path = "eager stateless"
            return out
        key = (shape, tf_dtype.name, len(seeds))
        if key not in compiled:
            try:
                compiled[key] = build(shape, tf_dtype, len(seeds))
            except Exception as e:  # noqa: BLE001 - kept and re-raised: one trace per key, not per call
                compiled[key] = e
        if isinstance(compiled[key], Exception):
            raise compiled[key]
        out = to_numpy(compiled[key](tf.constant(pairs)))
        draw.path = "tf.function"
        return out

    draw.many = many
    draw.path = "tf.function"
    return draw
