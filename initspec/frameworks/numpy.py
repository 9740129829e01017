"""numpy convention: ``fn(rng: numpy.random.Generator, shape, dtype) -> ndarray``."""

from __future__ import annotations

from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.spec.reference import np_dtype

FRAMEWORK = "numpy"
EXTRA = "dev"
CONVENTIONS = ("numpy",)


def version() -> str:
    return np.__version__


def prepare(obj: Any, target: Any, convention: str):
    """A `(obj)(*args)` factory call when the target has arguments, else obj itself."""
    init = obj(*target.args, **target.kwargs) if target.has_call else obj
    if not callable(init):
        raise InputError(f"--target {target.text!r}: {type(init).__name__} is not callable")

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        out = init(np.random.default_rng(seed), tuple(case.shape), np_dtype(dtype))
        if not isinstance(out, (np.ndarray, np.generic, list, tuple, int, float)):
            # np.asarray(None) or of a generator is a 0-d object array: say what came back instead
            raise TypeError(f"the initializer returned {type(out).__name__}, not an array of shape {tuple(case.shape)}")
        return np.asarray(out)

    return draw
