"""Keras 3 conventions, on whichever backend ``KERAS_BACKEND`` selects.

``keras``: ``call`` names an initializer class; every draw builds it with the call's literal
arguments and ``seed=seed`` (Keras initializers seeded with an int are deterministic) and
calls ``init(shape, dtype)``.  Initializers without a ``seed`` parameter (Constant, Zeros,
Ones, Identity, STFT) are built without one.

``keras_layer``: ``call`` names a layer class; every draw runs
``keras.utils.set_random_seed(seed)``, builds the layer with the call's and the case's
arguments and ``dtype=dtype``, calls ``layer.build(build_shape)`` (``build_shape`` is a
reserved case kwarg, the input shape) and reads the weight named by ``param``
(``kernel``, ``bias``, ``embeddings``, ``recurrent_kernel``, ...).  ``param`` may slice the
first axis, ``bias[32:64]``, to read one gate of a fused LSTM bias.

Batched draws (``draw.many``, issue 13) for the ``keras`` convention on the JAX and TensorFlow
backends: a seeded initializer class (a ``RandomInitializer``) is built once per batch row inside
one compiled function, ``jax.jit(jax.vmap(row))`` or ``tf.function(tf.map_fn(row))``,
its ``seed`` replaced by a seed generator that hands out that row's traced ``[seed, 0]`` tensor:
exactly the tensor ``draw_seed(seed)`` makes for an int seed, so a row is the eager draw's law
and its bits -- but for the untruncated normals on JAX, whose one fused XLA program rounds the
erfinv and ``x * stddev + mean`` differently (within 2 ulp of the largest value; README, Speed).
``keras_layer``, the torch and numpy backends, seedless initializers and initializer instances
stay eager (no ``many``).

Results come back through ``keras.ops.convert_to_numpy``; bfloat16 arrives as
``ml_dtypes.bfloat16`` on every backend (checked bit-exact by the tests).  On the torch
backend, preparing a drawer sets ``torch.set_num_threads(1)`` (see ``_single_thread_torch``).
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.frameworks.keras_backends import BACKEND_MODULES
from initspec.spec.reference import np_dtype

FRAMEWORK = "keras"
EXTRA = "keras"
CONVENTIONS = ("keras", "keras_layer")

_PARAM = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?$")


def version() -> str:
    """The Keras version (the backend is reported by :func:`backend`)."""
    import keras

    return keras.__version__


def backend() -> str:
    """The active Keras backend: tensorflow, jax, torch or numpy."""
    import keras

    return keras.backend.backend()


def backend_version() -> str:
    """Version of the framework behind the active backend."""
    import importlib

    mod = importlib.import_module(BACKEND_MODULES.get(backend(), backend()))
    return str(getattr(mod, "__version__", "?"))


def to_numpy(x: Any) -> np.ndarray:
    """A backend tensor (or Keras variable) as a numpy array; bfloat16 as ml_dtypes.bfloat16."""
    import keras

    if isinstance(x, keras.Variable):
        x = x.value
    out = np.asarray(keras.ops.convert_to_numpy(x))
    bf16 = np_dtype("bfloat16")
    if out.dtype.name == "bfloat16" and out.dtype != bf16:
        # a foreign bfloat16 numpy type (old TF builds): reinterpret the bits, never round
        out = out.view(np.uint16).view(bf16)
    return out


def _accepts(obj: Any, name: str) -> bool:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _parse_param(param: str | None) -> tuple[str, slice | None]:
    if not param:
        raise InputError("the keras_layer convention needs `param` (the weight to read, e.g. kernel)")
    m = _PARAM.match(param)
    if m is None:
        raise InputError(f"param {param!r}: expected NAME or NAME[start:stop], e.g. bias[32:64]")
    if m.group("start") is None:
        return m.group("name"), None
    to_int = lambda s: int(s) if s else None  # noqa: E731
    return m.group("name"), slice(to_int(m.group("start")), to_int(m.group("stop")))


def _weight(layer: Any, name: str) -> Any:
    """The layer's variable called ``name`` (searched in the layer and its sublayers, e.g. an RNN cell)."""
    found = [w for w in layer.weights if w.name == name or w.path.rsplit("/", 1)[-1] == name]
    if len(found) != 1:
        names = sorted({w.path.rsplit("/", 1)[-1] for w in layer.weights})
        what = "no" if not found else f"{len(found)}"
        raise InputError(f"param {name!r}: {type(layer).__name__} has {what} weight of that name "
                         f"(it has {', '.join(names) or 'none'})")
    return found[0]


def _single_thread_torch() -> None:
    # The draws are small tensors: torch's intra-op pool only adds spin-waiting, which on a
    # busy 2-core machine made a (5, 5, 3, 8) GlorotNormal draw 18 ms instead of 0.36 ms.
    if backend() == "torch":
        import torch

        torch.set_num_threads(1)


def prepare(obj: Any, target: Any, convention: str):
    """A Drawer for a Keras initializer class (``keras``) or layer class (``keras_layer``)."""
    _single_thread_torch()
    if backend() == "jax":
        from initspec.frameworks.jax import fast_eager_compiles

        fast_eager_compiles()
    if convention == "keras_layer":
        return _prepare_layer(obj, target)
    if convention != "keras":
        raise InputError(f"the keras binding has no convention {convention!r}")
    if isinstance(obj, type):
        seeded = _accepts(obj, "seed")
        obj(*target.args, **target.kwargs)  # bad arguments are an error now, not per draw

        def build(seed: int) -> Any:
            kw = {**target.kwargs, "seed": seed} if seeded else target.kwargs
            return obj(*target.args, **kw)
    elif callable(obj):  # an initializer instance: it keeps its own seed
        build = lambda seed: obj  # noqa: E731
    else:
        raise InputError(f"--target {target.text!r}: {type(obj).__name__} is not an initializer")

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        np_dtype(dtype)
        return to_numpy(build(seed)(tuple(case.shape), dtype=dtype))

    if isinstance(obj, type) and seeded:
        batched = _batched(obj, target)
        if batched is not None:
            many, compiled_path = batched

            def labelled(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
                """many, and ``draw.path`` the path this batch took (the runner reads it after the call)."""
                out = many(case, dtype, seeds)
                way = many.way[(tuple(case.shape), dtype, len(seeds))]
                draw.path = compiled_path if way == "compiled" else "eager (stacked)"
                return out

            labelled.way, labelled.compiled = many.way, many.compiled  # type: ignore[attr-defined]
            draw.many, draw.path = labelled, compiled_path  # type: ignore[attr-defined]
    return draw


# ---- batched draws (issue 13) --------------------------------------------------------------------

BATCHED_PATHS = {"jax": "jax.jit(vmap)", "tensorflow": "tf.function(map_fn)"}
# On TensorFlow a compiled batch costs a trace (~50 ms a job) that a short batch of cheap eager
# draws does not: there `many` draws a batch eagerly when that is expected to be cheaper
# (``choose``; the rows are the same bits either way).  On JAX it always compiles: a JAX program
# is shared across entries (``initspec.frameworks.jax.shared_program``), and the eager probe
# would itself pay JAX's per-op compilation for each new shape (bench/batched_keras.py --plan).
EAGER_WHEN_CHEAPER = {"tensorflow": True, "jax": False}
COMPILE_SECONDS_PRIOR = {"tensorflow": 0.1}  # the guess until this process has compiled a batch


def seed_rows(seeds: list[int]) -> np.ndarray:
    """The ``(len(seeds), 2)`` array of the tensors ``draw_seed(seed)`` builds for int seeds:
    ``[seed, 0]`` in the backend's seed dtype, a seed bit-cast to int32 where that dtype is int32."""
    from keras.src.backend import random_seed_dtype

    dtype = random_seed_dtype()
    rows = []
    for seed in seeds:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"seed {seed!r}: expected an int")
        seed = int(seed)
        if dtype == "int32":  # draw_seed's two's-complement cast, keeping all 32 bits
            seed = (seed & 0xFFFFFFFF ^ 0x80000000) - 0x80000000
        rows.append((seed, 0))
    return np.array(rows, dtype=dtype).reshape(len(rows), 2)


@functools.cache
def _row_seed_class() -> type:
    """A ``SeedGenerator`` whose ``next()`` is a given tensor: ``draw_seed`` (which every backend's
    random ops call) returns a generator's ``next()`` unchanged, so a traced ``[seed, 0]`` row
    reaches ``jax.random.*`` / ``tf.random.stateless_*`` exactly as the int seed's tensor does
    eagerly.  No state variable is made: the state is the row itself."""
    from keras.random import SeedGenerator

    class RowSeed(SeedGenerator):
        def __init__(self, row: Any) -> None:  # SeedGenerator.__init__ would make a state variable
            self.name = "initspec_row_seed"
            self.row = row

        def next(self, ordered: bool = True) -> Any:
            return self.row

    return RowSeed


def _batched(obj: type, target: Any):
    """``(many, path)`` for a seeded Keras initializer class on the JAX or TensorFlow backend,
    None where no compiled path means the same thing (another backend, a class that does not
    keep its int seed in ``self.seed`` as ``RandomInitializer`` does)."""
    from keras.src.initializers.random_initializers import RandomInitializer

    name = backend()
    if name not in BATCHED_PATHS:
        return None
    probe = obj(*target.args, **{**target.kwargs, "seed": 12345})
    if not isinstance(probe, RandomInitializer) or probe.seed != 12345:
        return None
    compiled: dict[tuple[tuple[int, ...], str], Any] = {}

    def row_fn(shape: tuple[int, ...], dtype: str):
        def row(seed_row: Any) -> Any:
            init = obj(*target.args, **{**target.kwargs, "seed": 0})
            init.seed = _row_seed_class()(seed_row)
            return init(shape, dtype=dtype)
        return row

    def compile_for(shape: tuple[int, ...], dtype: str):
        if name == "jax":
            from initspec.frameworks.jax import shared_program

            return shared_program(row_fn(shape, dtype), np.zeros(2, dtype=np.uint32))
        import tensorflow as tf

        # tf.map_fn, not tf.vectorized_map: pfor has no converter for the stateless random ops
        # and falls back to this same while_loop, warning once per op per trace
        spec = tf.TensorSpec(shape, tf.as_dtype(dtype))
        row = row_fn(shape, dtype)
        return tf.function(lambda rows: tf.map_fn(row, rows, fn_output_signature=spec))

    def eager_rows(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        shape = tuple(case.shape)
        return np.stack([to_numpy(obj(*target.args, **{**target.kwargs, "seed": s})(shape, dtype=dtype))
                         for s in seeds])

    def many(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        """One draw per seed, stacked: row i has the law of ``draw(case, dtype, seeds[i])``."""
        np_dtype(dtype)
        shape = tuple(case.shape)
        key = (shape, dtype, len(seeds))
        if key not in way:
            way[key] = choose(case, dtype, seeds)
        if way[key] == "eager":
            return eager_rows(case, dtype, seeds)
        return compiled_rows(case, dtype, seeds)

    def compiled_rows(case: Any, dtype: str, seeds: list[int]) -> np.ndarray:
        """The batch from the compiled function, whatever it costs."""
        np_dtype(dtype)
        shape = tuple(case.shape)
        key = (shape, dtype, len(seeds))
        fn = compiled.get((shape, dtype))
        if fn is None:  # jit / tf.function then trace once per batch length
            fn = compiled[(shape, dtype)] = compile_for(shape, dtype)
        t0 = time.perf_counter()
        out = to_numpy(fn(seed_rows(seeds)))
        if key not in first_call:
            first_call[key] = time.perf_counter() - t0
            compile_seconds.append(first_call[key])
        if out.shape != (len(seeds), *shape):
            raise ValueError(f"a batch of {len(seeds)} draws of {shape} came back as {out.shape}")
        return out

    def choose(case: Any, dtype: str, seeds: list[int]) -> str:
        """"compiled" unless the batch's eager draws cost less than one compilation does here.

        TensorFlow only (see EAGER_WHEN_CHEAPER).  Decided once per (shape, dtype, batch length),
        so the same seeds always take the same path (the runner's determinism test redraws a
        batch).  The eager cost is the faster of two eager draws (the first pays the backend's
        per-op set-up) times the batch length, the compile cost the median first call of this
        process's compiled batches so far."""
        if not EAGER_WHEN_CHEAPER[name]:
            return "compiled"
        if len(seeds) < 2:
            return "eager"
        t0 = time.perf_counter()
        eager_rows(case, dtype, seeds[:1])
        t1 = time.perf_counter()
        eager_rows(case, dtype, seeds[1:2])
        per_draw = min(t1 - t0, time.perf_counter() - t1)
        cost = float(np.median(compile_seconds)) if compile_seconds else COMPILE_SECONDS_PRIOR[name]
        return "compiled" if per_draw * len(seeds) > cost else "eager"

    way: dict[tuple[tuple[int, ...], str, int], str] = {}
    first_call: dict[tuple[tuple[int, ...], str, int], float] = {}
    compile_seconds: list[float] = []
    many.way = way  # type: ignore[attr-defined]  # which path each (shape, dtype, length) took
    many.compiled = compiled_rows  # type: ignore[attr-defined]  # the compiled path alone (tests, bench)
    return many, BATCHED_PATHS[name]


def _prepare_layer(obj: Any, target: Any):
    if not isinstance(obj, type):
        raise InputError(f"--target {target.text!r}: the keras_layer convention needs a layer class")

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        import keras

        name, part = _parse_param(case.param)
        kwargs = {**target.kwargs, **case.kwargs}
        build_shape = kwargs.pop("build_shape", None)
        if build_shape is None:
            raise InputError(f"{target.text}: a keras_layer case needs kwargs.build_shape (the input shape)")
        keras.utils.set_random_seed(seed)
        layer = obj(*target.args, *case.args, dtype=dtype, **kwargs)
        layer.build(tuple(build_shape))
        x = to_numpy(_weight(layer, name))
        return x[part] if part is not None else x

    return draw
