"""The activation table: φ and its derivative φ', analytic, on numpy arrays.

Names: linear, relu, leaky_relu(a) (default a = 0.01, torch's), tanh, sigmoid, selu, elu(alpha),
gelu (the exact, erf form), gelu_tanh (the tanh approximation: torch's ``approximate='tanh'``,
GPT-2's ``gelu_new``), silu, softplus; any other name is looked up in ``scipy.special`` (a
vectorized real ufunc of one argument and one output, e.g. ``erf``, ``expit``), whose derivative
is a central difference (the one place φ' is not analytic, said in ``Activation.analytic``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from initspec.errors import InputError, closest
from initspec.spec.expr import parse_call

Fn = Callable[[np.ndarray], np.ndarray]

# SELU's constants (Klambauer et al. 2017), as torch and jax define them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """One activation: its name as given, φ, φ', and the parameters it was built with."""

    name: str
    base: str
    phi: Fn
    dphi: Fn
    params: dict[str, float] = field(default_factory=dict)
    analytic: bool = True
    kinked: bool = False  # φ' jumps at 0 away from symmetry (selu, elu with alpha != 1): split quadrature

    @property
    def label(self) -> str:
        return self.base + (f"({', '.join(f'{k}={v:g}' for k, v in self.params.items())})" if self.params else "")


def _leaky(a: float) -> tuple[Fn, Fn]:
    def phi(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0) if a == 0 else np.where(x > 0, x, a * x)

    def dphi(x: np.ndarray) -> np.ndarray:
        dt = np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64  # float32 stacks stay float32
        return np.where(x > 0, dt.type(1.0), dt.type(a))

    return phi, dphi


def _elu(alpha: float, scale: float = 1.0) -> tuple[Fn, Fn]:
    return ((lambda x: scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))),
            (lambda x: scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))))


def _gelu() -> tuple[Fn, Fn]:
    def d(x: np.ndarray) -> np.ndarray:
        return special.ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    return (lambda x: x * special.ndtr(x)), d


def _gelu_tanh() -> tuple[Fn, Fn]:
    c = math.sqrt(2 / math.pi)  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), Hendrycks & Gimpel 2016

    def phi(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))

    def d(x: np.ndarray) -> np.ndarray:
        t = np.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)

    return phi, d


def _silu() -> tuple[Fn, Fn]:
    def d(x: np.ndarray) -> np.ndarray:
        s = special.expit(x)
        return s * (1 + x * (1 - s))

    return (lambda x: x * special.expit(x)), d


_TABLE: dict[str, tuple[dict[str, float], Callable[..., tuple[Fn, Fn]]]] = {
    "linear": ({}, lambda: ((lambda x: np.asarray(x, dtype=float)), (lambda x: np.ones_like(x, dtype=float)))),
    "relu": ({}, lambda: _leaky(0.0)),
    "leaky_relu": ({"a": 0.01}, _leaky),
    "tanh": ({}, lambda: (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2)),
    "sigmoid": ({}, lambda: (special.expit, lambda x: special.expit(x) * (1 - special.expit(x)))),
    "selu": ({}, lambda: _elu(SELU_ALPHA, SELU_SCALE)),
    "elu": ({"alpha": 1.0}, _elu),
    "gelu": ({}, _gelu),
    "gelu_tanh": ({}, _gelu_tanh),
    "silu": ({}, _silu),
    "softplus": ({}, lambda: ((lambda x: np.logaddexp(0.0, x)), special.expit)),
}
NAMES = tuple(_TABLE)


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."


def get_activation(text: str) -> Activation:
    """Parse ``relu``, ``leaky_relu(0.2)``, ``leaky_relu(a=0.2)``, ``elu(alpha=0.5)`` or a scipy.special name."""
    name, args, kwargs = parse_call(text, what="--activation")
    if name in _TABLE:
        defaults, make = _TABLE[name]
        keys = list(defaults)
        if len(args) > len(keys):
            raise InputError(f"--activation {text!r}: {name} takes {len(keys)} parameter(s) "
                             f"({', '.join(keys) or 'none'})")
        params = dict(defaults)
        params.update(zip(keys, args, strict=False))
        for k, v in kwargs.items():
            if k not in defaults:
                raise InputError(f"--activation {text!r}: {name} has no parameter {k!r}"
                                 f"{'; it takes ' + ', '.join(keys) if keys else ''}")
            params[k] = v
        for k, v in params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"--activation {text!r}: {k} must be a finite number, got {v!r}")
            params[k] = float(v)
        phi, dphi = make(*params.values())
        kinked = name in ("selu", "elu")  # φ or φ' not smooth at 0, and not symmetric about it
        return Activation(text, name, phi, dphi, params, kinked=kinked)
    fn = getattr(special, name, None) if name.isidentifier() else None
    if not isinstance(fn, np.ufunc) or fn.nin != 1 or args or kwargs:
        raise InputError(f"unknown activation {_short(text)}{closest(name, list(_TABLE))}: use one of "
                         f"{', '.join(_TABLE)} or a one-argument scipy.special function (e.g. erf)")
    if fn.nout != 1 or not any(t.split("->")[1] in "efdg" for t in fn.types):
        raise InputError(f"--activation {text!r}: scipy.special.{name} is not a real-valued function of one "
                         f"variable ({fn.nout} output(s), signatures {', '.join(fn.types[:4])})")

    def phi(x: np.ndarray) -> np.ndarray:
        return np.asarray(fn(x), dtype=float)

    def dphi(x: np.ndarray) -> np.ndarray:
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        return (phi(x + h) - phi(x - h)) / (2 * h)

    with np.errstate(all="ignore"):
        raw = fn(np.linspace(-3, 3, 7))
    if not isinstance(raw, np.ndarray) or raw.shape != (7,) or raw.dtype.kind != "f":
        raise InputError(f"--activation {text!r}: scipy.special.{name} does not return real numbers "
                         f"(it returns {getattr(raw, 'dtype', type(raw).__name__)})")
    probe = np.asarray(raw, dtype=float)
    if not np.all(np.isfinite(probe)):
        raise InputError(f"--activation {text!r}: scipy.special.{name} is not finite on [-3, 3]")
    return Activation(text, name, phi, dphi, {}, analytic=False)
