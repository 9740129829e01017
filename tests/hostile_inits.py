"""Initializers that try to end or hang the run (numpy convention ``fn(rng, shape, dtype)``).

Each must become an error result of its own; the run, its report and its exit code go on.
"""

import os
import sys
import time

import numpy as np


def good(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def exits_0(rng, shape, dtype):
    sys.exit(0)


def exits_3(rng, shape, dtype):
    sys.exit(3)


def hard_exit(rng, shape, dtype):
    os._exit(0)


def raises_base(rng, shape, dtype):
    raise BaseException("not an Exception")


def sleeps(rng, shape, dtype):
    time.sleep(3600)


def busy_loop(rng, shape, dtype):
    while True:
        pass


def returns_none(rng, shape, dtype):
    return None


def returns_generator(rng, shape, dtype):
    return (v for v in range(3))


def broadcast(rng, shape, dtype):
    """A zero-memory view claiming the whole shape (np.broadcast_to)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def torch_no_fill(tensor):
    """A torch-convention initializer that leaves its tensor as torch.empty gave it."""
    return tensor


def kills_itself(rng, shape, dtype):
    """SIGKILL: no in-process guard can catch it; only a -j worker's death is survivable."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
