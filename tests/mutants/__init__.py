"""Broken numpy initializers, one or more per mistake id, each with its correct twin.

Convention numpy: ``init(rng, shape, dtype) -> ndarray``.  Every sampler here takes a
``bug`` argument; ``bug=None`` is the correct twin, so a mutant and its twin differ in
exactly the line the bug names.  The samplers are written out plainly (own fans, own
rejection sampler) and share nothing with :mod:`initspec.frameworks.numpy_reference` or the references.

``MUTANTS`` is the table the tests and ``bench/calibration.py`` run: each row names the
mistake id the diagnosis must put first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.spec.reference import np_dtype

Init = Callable[[np.random.Generator, Sequence[int], Any], np.ndarray]

TORCH_SHAPES = ((512, 128), (96, 1000), (8, 3, 5, 5), (32, 64, 3, 3), (16, 8, 7))
TF_SHAPES = ((128, 512), (1000, 96), (5, 5, 3, 8), (3, 3, 64, 32), (7, 8, 16))
MATRICES = ((512, 128), (96, 1000))
TRUNCATION_STD = 0.87962566103423978  # std of N(0, 1) cut at ±2


def fans(shape: Sequence[int], layout: str, bug: str | None = None) -> tuple[int, int]:
    """(fan_in, fan_out); the fan bugs live here."""
    if bug == "other_layout":
        layout = "tf" if layout == "torch" else "torch"
    if layout == "torch":
        n_out, n_in, kernel = shape[0], shape[1], shape[2:]
    else:
        n_in, n_out, kernel = shape[-2], shape[-1], shape[:-2]
    receptive = 1 if bug == "channels_only" else math.prod(kernel)
    fan_in, fan_out = n_in * receptive, n_out * receptive
    return (fan_out, fan_in) if bug == "fan_swapped" else (fan_in, fan_out)


def _n(mode: str, fan_in: int, fan_out: int) -> float:
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def _out(x: np.ndarray, shape: Sequence[int], dtype: Any) -> np.ndarray:
    return x.reshape(tuple(shape)).astype(np_dtype(dtype))


def _truncated(rng: np.random.Generator, size: int, bound: float, bug: str | None = None) -> np.ndarray:
    """N(0, 1) cut at ±bound by rejection; bug 'resample_once' redraws the rejects only once."""
    x = rng.standard_normal(size)
    if bug == "resample_once":
        bad = np.abs(x) > bound
        x[bad] = rng.standard_normal(int(bad.sum()))
        return x
    bad = np.abs(x) > bound
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > bound
    return x


def normal_vs(scale: float, mode: str = "fan_in", layout: str = "torch", bug: str | None = None) -> Init:
    """N(0, scale/n(mode)); bugs: std_as_variance, variance_as_std, fan bugs, mode_<m>, gain_<f>, laplace."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        m = bug[5:] if bug and bug.startswith("mode_") else mode
        s = scale * float(bug[5:]) if bug and bug.startswith("gain_") else scale
        var = s / _n(m, *fans(shape, layout, bug))
        std = {"std_as_variance": var, "variance_as_std": var**0.25}.get(bug or "", math.sqrt(var))
        size = math.prod(shape)
        if bug == "laplace":  # same variance, heavier tails: in no hypothesis of the catalogue
            return _out(rng.laplace(0.0, std / math.sqrt(2), size), shape, dtype)
        return _out(rng.standard_normal(size) * std, shape, dtype)

    return init


def uniform_vs(scale: float, mode: str = "fan_in", layout: str = "torch", bug: str | None = None) -> Init:
    """U(±sqrt(3 scale/n)); bugs: missing_sqrt3, uncentered, top_cell_wraps, normal, gain_<f>, fan bugs."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        s = scale * float(bug[5:]) if bug and bug.startswith("gain_") else scale
        var = s / _n(mode, *fans(shape, layout, bug))
        size = math.prod(shape)
        if bug == "normal":
            return _out(rng.standard_normal(size) * math.sqrt(var), shape, dtype)
        limit = math.sqrt(var) if bug == "missing_sqrt3" else math.sqrt(3 * var)
        u = rng.random(size)
        x = 2 * limit * u if bug == "uncentered" else limit * (2 * u - 1)
        out = _out(x, shape, dtype)
        if bug == "top_cell_wraps":  # torch's 16-bit uniform_: a value that rounds to the top is sent to the bottom
            top = np.array(limit).astype(out.dtype)
            out[out >= top] = np.array(-limit).astype(out.dtype)
        return out

    return init


def truncated_vs(scale: float, mode: str = "fan_in", layout: str = "torch", bug: str | None = None) -> Init:
    """Truncated normal at ±2 sigma with Var = scale/n; bugs: uncorrected, resample_once, normal."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        std = math.sqrt(scale / _n(mode, *fans(shape, layout, bug)))
        size = math.prod(shape)
        if bug == "normal":
            return _out(rng.standard_normal(size) * std, shape, dtype)
        sigma = std if bug == "uncorrected" else std / TRUNCATION_STD
        return _out(_truncated(rng, size, 2.0, bug) * sigma, shape, dtype)

    return init


def truncated_fixed(std: float, lower: float = -2.0, upper: float = 2.0, bounds: str = "std",
                    bug: str | None = None) -> Init:
    """N(0, std²) cut at [lower, upper] (std units or absolute); bug 'other_bounds' swaps the unit."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        unit = bounds if bug != "other_bounds" else ("absolute" if bounds == "std" else "std")
        lo, hi = (lower, upper) if unit == "std" else (lower / std, upper / std)
        size = math.prod(shape)
        x = np.empty(0)
        while x.size < size:
            z = rng.standard_normal(2 * size)
            x = np.concatenate([x, z[(z >= lo) & (z <= hi)]])
        return _out(x[:size] * std, shape, dtype)

    return init


def normal_fixed(std: float, bug: str | None = None) -> Init:
    """N(0, std²); bug 'std_as_variance' draws with std²."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        s = std * std if bug == "std_as_variance" else std
        return _out(rng.standard_normal(math.prod(shape)) * s, shape, dtype)

    return init


def he_normal_structural(bug: str | None = None) -> Init:
    """N(0, 2/fan_in) (torch layout); structural bugs: int8_fan, float64, flatten, unseeded, fixed_seed."""
    def init(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
        fan_in = fans(shape, "torch")[0]
        if bug == "int8_fan":  # the fan kept in a small integer type wraps around: sqrt of a negative
            fan_in = int(np.array(fan_in).astype(np.int8))
        with np.errstate(invalid="ignore"):
            std = float(np.sqrt(2 / np.float64(fan_in)))
        if bug == "unseeded":
            rng = np.random.default_rng()
        elif bug == "fixed_seed":
            rng = np.random.default_rng(1234)
        x = rng.standard_normal(tuple(shape)) * std
        if bug == "float64":
            return x
        if bug == "flatten":
            x = x.reshape(shape[0], -1)
            return x.astype(np_dtype(dtype))
        return x.astype(np_dtype(dtype))

    return init


@dataclass(frozen=True)
class Mutant:
    """A broken initializer, the claim it fails, and the mistake the diagnosis must name."""

    name: str
    mistake: str
    claim: str
    factory: Callable[..., Init]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bug: str = ""
    layout: str = "torch"
    shapes: tuple[tuple[int, ...], ...] = TORCH_SHAPES
    dtypes: tuple[str, ...] = ("float32",)

    def broken(self) -> Init:
        return self.factory(**self.kwargs, bug=self.bug)

    def twin(self) -> Init:
        return self.factory(**self.kwargs, bug=None)

    def check_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``initspec.check`` (default settings otherwise)."""
        return {"scheme": self.claim, "convention": "numpy", "layout": self.layout,
                "shapes": list(self.shapes), "dtypes": self.dtypes}


HE = {"scale": 2.0}
BF = ("float32", "bfloat16")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("he_normal_std_is_var", "std_as_variance", "he_normal", normal_vs, HE, "std_as_variance", dtypes=BF),
    Mutant("normal_0.05_std_is_var", "std_as_variance", "normal(std=0.05)", normal_fixed, {"std": 0.05},
           "std_as_variance", shapes=MATRICES),
    Mutant("lecun_normal_sqrt_twice", "variance_as_std", "lecun_normal", normal_vs, {"scale": 1.0},
           "variance_as_std"),
    Mutant("kaiming_normal_fan_out", "fan_swapped", "kaiming_normal", normal_vs, HE, "fan_swapped", dtypes=BF),
    Mutant("he_uniform_tf_fan_swapped", "fan_swapped", "he_uniform", uniform_vs, {**HE, "layout": "tf"},
           "fan_swapped", layout="tf", shapes=TF_SHAPES),
    Mutant("he_normal_fan_avg", "wrong_fan_mode", "he_normal", normal_vs, HE, "mode_fan_avg"),
    Mutant("glorot_normal_fan_in", "wrong_fan_mode", "glorot_normal", normal_vs, {"scale": 1.0, "mode": "fan_avg"},
           "mode_fan_in"),
    Mutant("he_normal_channels_only", "receptive_field_ignored", "he_normal", normal_vs, HE, "channels_only",
           dtypes=BF),
    Mutant("glorot_uniform_channels_only", "receptive_field_ignored", "glorot_uniform", uniform_vs,
           {"scale": 1.0, "mode": "fan_avg"}, "channels_only"),
    Mutant("kaiming_relu_without_gain", "wrong_gain", "kaiming_normal(nonlinearity=relu)", normal_vs, HE,
           "gain_0.5"),
    Mutant("kaiming_uniform_tanh_relu_gain", "wrong_gain", "kaiming_uniform(nonlinearity=tanh)", uniform_vs,
           {"scale": 25 / 9}, "gain_0.72", dtypes=BF),  # relu's gain² 2 where tanh's 25/9 belongs
    Mutant("glorot_truncated_uncorrected", "truncation_uncorrected", "glorot_truncated_normal", truncated_vs,
           {"scale": 1.0, "mode": "fan_avg"}, "uncorrected", dtypes=BF),
    Mutant("truncated_normal_absolute", "truncation_absolute_bounds", "truncated_normal(std=0.05)",
           truncated_fixed, {"std": 0.05}, "other_bounds", shapes=MATRICES, dtypes=BF),
    Mutant("trunc_normal_std_units", "truncation_absolute_bounds", "trunc_normal(std=0.5, a=-0.4, b=0.8)",
           truncated_fixed, {"std": 0.5, "lower": -0.4, "upper": 0.8, "bounds": "absolute"}, "other_bounds",
           shapes=MATRICES),
    Mutant("he_uniform_missing_sqrt3", "uniform_limit_missing_sqrt3", "he_uniform", uniform_vs, HE,
           "missing_sqrt3", dtypes=BF),
    Mutant("glorot_uniform_as_normal", "wrong_distribution", "glorot_uniform", uniform_vs,
           {"scale": 1.0, "mode": "fan_avg"}, "normal", dtypes=BF),
    Mutant("he_truncated_as_normal", "wrong_distribution", "he_truncated_normal", truncated_vs, HE, "normal"),
    Mutant("he_normal_tf_read_as_torch", "layout_mismatch", "he_normal", normal_vs, {**HE, "layout": "tf"},
           "other_layout", layout="tf", shapes=TF_SHAPES),
    Mutant("glorot_uniform_uncentered", "mean_shift", "glorot_uniform", uniform_vs,
           {"scale": 1.0, "mode": "fan_avg"}, "uncentered", dtypes=BF),
    Mutant("lecun_truncated_resample_once", "support_violation", "lecun_truncated_normal", truncated_vs,
           {"scale": 1.0}, "resample_once"),
    Mutant("he_uniform_top_cell_wraps", "support_violation", "he_uniform", uniform_vs, HE, "top_cell_wraps",
           dtypes=("bfloat16", "float16")),  # torch's 16-bit uniform_: the top cell is never drawn
    Mutant("he_normal_nan", "non_finite", "he_normal", he_normal_structural, {}, "int8_fan", shapes=MATRICES),
    Mutant("he_normal_float64", "dtype_changed", "he_normal", he_normal_structural, {}, "float64",
           shapes=MATRICES),
    Mutant("he_normal_flattened", "shape_changed", "he_normal", he_normal_structural, {}, "flatten"),
    Mutant("he_normal_unseeded", "not_deterministic", "he_normal", he_normal_structural, {}, "unseeded",
           shapes=MATRICES),
    Mutant("he_normal_fixed_seed", "seed_ignored", "he_normal", he_normal_structural, {}, "fixed_seed",
           shapes=MATRICES),
    Mutant("he_normal_laplace", "unknown", "he_normal", normal_vs, HE, "laplace"),
)


#: errors below the catalogue's resolution, for the power table of bench/calibration.py: the
#: default sample size is sized to catch a 1% error in std with power 0.99 on each shape
NEAR_MISSES: tuple[Mutant, ...] = (
    Mutant("he_normal_std_+1%", "unknown", "he_normal", normal_vs, HE, "gain_1.0201"),
    Mutant("he_normal_std_-1%", "unknown", "he_normal", normal_vs, HE, "gain_0.9801"),
    Mutant("he_normal_std_+0.5%", "unknown", "he_normal", normal_vs, HE, "gain_1.010025"),
    Mutant("he_normal_std_+0.5%_one_shape", "unknown", "he_normal", normal_vs, HE, "gain_1.010025",
           shapes=((512, 128),)),
)
