"""Reference initializers in plain numpy, one factory per kind (the numpy adapter).

Each factory returns ``init(rng: numpy.random.Generator, shape, dtype) -> ndarray``.
They sample with numpy directly (inverse CDF for the truncated normal, QR for orthogonal)
and share nothing with the scipy references in :mod:`initspec.spec.reference` but the fans and
the spec, so ``initspec check numpy`` is a real test of the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from initspec.spec.fans import Layout, get_layout, n_of
from initspec.spec.reference import np_dtype
from initspec.spec.schemes import resolve

Init = Callable[[np.random.Generator, Sequence[int], str], np.ndarray]


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return x.astype(np_dtype(dtype))  # round to nearest, also for bfloat16


def _layout(layout: str | Layout) -> Layout:
    return layout if isinstance(layout, Layout) else get_layout(layout)


def _std_normal_truncated(rng: np.random.Generator, size: int, lower: float, upper: float) -> np.ndarray:
    """N(0, 1) restricted to [lower, upper] by the inverse CDF: one pass, bounded whatever the bounds.

    (Rejection would loop for ever on a far tail like [50, 60].)  The interval is mirrored into
    the lower half, where ndtr/ndtri keep their relative precision.
    """
    from scipy.special import ndtr, ndtri

    flip = lower > 0
    if flip:
        lower, upper = -upper, -lower
    a, b = ndtr(lower), ndtr(upper)
    x = np.clip(ndtri(a + rng.uniform(size=size) * (b - a)), lower, upper)
    return -x if flip else x


def _truncated_std(lower: float, upper: float) -> float:
    """Std of N(0, 1) cut at lower..upper, by the closed form (no scipy here)."""
    def pdf(z: float) -> float:
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z: float) -> float:
        return 0.5 * math.erfc(-z / math.sqrt(2))

    mass = cdf(upper) - cdf(lower)
    mu = (pdf(lower) - pdf(upper)) / mass
    return math.sqrt(1 + (lower * pdf(lower) - upper * pdf(upper)) / mass - mu * mu)


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                     layout: str | Layout = "torch", lower: float = -2.0, upper: float = 2.0,
                     truncation_correction: str | float = "exact", mean: float = 0.0) -> Init:
    """Var = scale / n(mode) as a normal, uniform or (variance-corrected) truncated normal."""
    lay = _layout(layout)

    def init(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        shape = tuple(shape)
        var = scale / n_of(mode, *lay.fans(shape))
        size = math.prod(shape)
        if distribution == "normal":
            x = rng.standard_normal(size) * math.sqrt(var)
        elif distribution == "uniform":
            limit = math.sqrt(3 * var)
            x = rng.uniform(-limit, limit, size)
        elif distribution == "truncated_normal":
            tc = truncation_correction
            c = 1 / _truncated_std(lower, upper) ** 2 if tc == "exact" else 1.0 if tc == "none" else float(tc)
            x = _std_normal_truncated(rng, size, lower, upper) * math.sqrt(c * var)
        else:
            raise ValueError(f"unknown distribution {distribution!r}")
        return _cast(mean + x.reshape(shape), dtype)

    return init


def normal(mean: float = 0.0, std: float = 1.0) -> Init:
    """N(mean, std²)."""
    return lambda rng, shape, dtype="float32": _cast(mean + std * rng.standard_normal(tuple(shape)), dtype)


def truncated_normal(mean: float = 0.0, std: float = 1.0, lower: float = -2.0, upper: float = 2.0,
                     bounds: str = "std") -> Init:
    """N(mean, std²) cut at lower..upper, in std units or absolute."""
    lo, hi = (lower, upper) if bounds == "std" else ((lower - mean) / std, (upper - mean) / std)

    def init(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        x = _std_normal_truncated(rng, math.prod(shape), lo, hi).reshape(tuple(shape))
        return _cast(mean + std * x, dtype)

    return init


def uniform(low: float = 0.0, high: float = 1.0) -> Init:
    """U(low, high)."""
    return lambda rng, shape, dtype="float32": _cast(rng.uniform(low, high, tuple(shape)), dtype)


def constant(value: float = 0.0) -> Init:
    """Every element equal to value."""
    return lambda rng, shape, dtype="float32": _cast(np.full(tuple(shape), value), dtype)


def orthogonal(gain: float = 1.0, layout: str | Layout = "torch") -> Init:
    """A Haar-random (semi-)orthogonal matrix times gain, on the layout's flattening."""
    lay = _layout(layout)

    def init(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        rows, cols = lay.matrix(tuple(shape))
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes Q Haar-distributed
        w = q.T if rows < cols else q
        return _cast(gain * w.reshape(tuple(shape)), dtype)

    return init


def identity(gain: float = 1.0) -> Init:
    """gain * I for a 2-D weight."""
    return lambda rng, shape, dtype="float32": _cast(gain * np.eye(*shape), dtype)


def dirac(groups: int = 1) -> Init:
    """Identity-on-channels convolution kernel (torch layout ``(out, in, *kernel)``)."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        w = np.zeros(tuple(shape))
        out_per_group = shape[0] // groups
        center = tuple(d // 2 for d in shape[2:])
        for g in range(groups):
            for i in range(min(out_per_group, shape[1])):
                w[(g * out_per_group + i, i, *center)] = 1.0
        return _cast(w, dtype)

    return init


def sparse(sparsity: float = 0.1, std: float = 0.01) -> Init:
    """2-D; ceil(sparsity * rows) zeros in every column, the rest N(0, std²)."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
        rows, cols = shape
        w = std * rng.standard_normal((rows, cols))
        zeros = math.ceil(sparsity * rows)
        for c in range(cols):
            w[rng.permutation(rows)[:zeros], c] = 0.0
        return _cast(w, dtype)

    return init


_FACTORIES = {"variance_scaling": variance_scaling, "normal": normal, "truncated_normal": truncated_normal,
              "uniform": uniform, "constant": constant, "orthogonal": orthogonal, "identity": identity,
              "dirac": dirac, "sparse": sparse}
_TAKES_LAYOUT = ("variance_scaling", "orthogonal")


def from_scheme(expr: str, layout: str = "torch") -> Init:
    """The numpy sampler of any scheme expression, e.g. ``from_scheme('he_normal(mode=fan_out)')``."""
    scheme = resolve(expr)
    kwargs = dict(scheme.params)
    if scheme.kind in _TAKES_LAYOUT:
        kwargs["layout"] = layout
    return _FACTORIES[scheme.kind](**kwargs)
