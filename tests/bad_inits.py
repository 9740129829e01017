"""Deliberately broken and correct numpy initializers for the CLI and engine tests.

Convention numpy: ``fn(rng, shape, dtype)``; torch layout ``(out, in, *kernel)``.
"""

import math

import numpy as np


def _fans(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def he_normal(rng, shape, dtype):
    fan_in, _ = _fans(shape)
    return (rng.standard_normal(shape) * math.sqrt(2 / fan_in)).astype(dtype)


def he_normal_std_as_variance(rng, shape, dtype):
    fan_in, _ = _fans(shape)
    return (rng.standard_normal(shape) * (2 / fan_in)).astype(dtype)


def raises(rng, shape, dtype):
    raise RuntimeError("boom")


def returns_nan(rng, shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def wrong_shape(rng, shape, dtype):
    return he_normal(rng, shape, dtype).ravel()


def wrong_dtype(rng, shape, dtype):
    return he_normal(rng, shape, dtype).astype(np.float64)


not_callable = 3.0


def he_normal_logging_pid(rng, shape, dtype):
    """he_normal that appends the drawing process's id to $INITSPEC_TEST_PID_LOG (the -j tests)."""
    import os

    log = os.environ.get("INITSPEC_TEST_PID_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
    return he_normal(rng, shape, dtype)
