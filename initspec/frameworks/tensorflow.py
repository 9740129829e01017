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
"""

from __future__ import annotations

import inspect
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

    return draw
