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
        return np.asarray(init(np.random.default_rng(seed), tuple(case.shape), np_dtype(dtype)))

    return draw
