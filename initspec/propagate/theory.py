"""Mean-field theory of signal propagation (Poole et al. 2016, Schoenholz et al. 2017), exact by quadrature.

Pre-activations h_l = W_l x_{l-1} + b_l, x_l = φ(h_l), x_0 ~ N(0, 1).  With Var(W_l) from the
scheme's exact reference law (``initspec.spec.reference``) and σ_b the bias std, the second
moment q_l = E[h_l²] follows the length map

    q_1 = σ_w,1² q_0 + σ_b²,   q_{l+1} = σ_w,l+1² E[φ(√q_l z)²] + σ_b²,   σ_w,l² = fan_in_l · Var(W_l),

and the gradient g_l = ∂L/∂h_l of a random projection L = <r, h_L> (r ~ N(0, 1)) has

    E[g_L²] = 1,   E[g_l²] = E[g_{l+1}²] · fan_out_{l+1} · Var(W_{l+1}) · E[φ'(√q_l z)²]

(fan_out, not fan_in: the backward pass sums over a layer's outputs; the two agree on square
layers, where the factor is χ₁ = σ_w² E[φ'(√q* z)²] at the fixed point).  Expectations over
z ~ N(0, 1) use probabilists' Gauss–Hermite nodes; its nodes are symmetric about 0, which makes
the quadrature exact (to rounding) for the piecewise-linear φ (linear, relu, leaky_relu).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.propagate.activations import Activation, get_activation
from initspec.spec.reference import build
from initspec.spec.schemes import Scheme, gains, resolve

NODES = 160  # exact for polynomials of degree < 320; smooth φ converge far faster


@functools.cache
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2 * math.pi)  # weights of E over N(0, 1): they sum to 1


@functools.cache
def _half_line(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    z = (x + 1) * (HALF_LINE_END / 2)  # [0, 14]: the N(0, 1) mass beyond 14 is 1e-44
    return z, w * (HALF_LINE_END / 2) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


HALF_LINE_END = 14.0


def gauss_expect(f: Callable[[np.ndarray], np.ndarray], q: float, n: int = NODES, split: bool = False) -> float:
    """E[f(√q z)], z ~ N(0, 1), by n-point Gauss–Hermite quadrature.

    ``split``: for φ whose derivative jumps at 0 (selu, elu), Gauss–Hermite converges only
    algebraically (7e-5 relative for selu at 160 nodes); E = ∫_0^∞ [f(√q z) + f(−√q z)] N(z) dz
    is smooth on each half-line, and Gauss–Legendre on [0, 14] converges exponentially there."""
    r = math.sqrt(max(q, 0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        if split:
            z, w = _half_line(n)
            return float(w @ (f(r * z) + f(-r * z)))
        x, w = _hermite(n)
        return float(w @ f(r * x))


@dataclass(frozen=True)
class LayerShape:
    """One layer of a stack: its weight shape (torch layout), fans and number of units (or channels)."""

    name: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    units: int


def weight_variance(scheme: Scheme, fan_in: int, fan_out: int) -> float:
    """Var(w) of one element, from the scheme's exact reference law."""
    ref = build(scheme, fan_in, fan_out, "float64")
    if ref is None:
        raise InputError(f"scheme {scheme.expr!r} has no per-element law (structured kind {scheme.kind!r}); "
                         "propagate needs a random, fan-based or constant-variance scheme")
    return ref.var + ref.mean**2  # the second moment is what carries the signal


def length_map(act: Activation, sw2: float, sb2: float, q: float) -> float:
    """One step of the forward map: σ_w² E[φ(√q z)²] + σ_b²."""
    return sw2 * gauss_expect(lambda x: act.phi(x) ** 2, q, split=act.kinked) + sb2


def approach(act: Activation, sw2: float, sb2: float, q0: float = 1.0, steps: int = 20000) -> tuple[float, float]:
    """(q*, q_last): the fixed point the length map reaches from q0 (0 or inf when it vanishes or
    explodes) and the last finite q on the way, where χ₁ is evaluated (φ' of relu at exactly 0 is
    a convention, its limit from the approach is not)."""
    q = q0
    for _ in range(steps):
        nxt = length_map(act, sw2, sb2, q)
        if not math.isfinite(nxt) or nxt > 1e100:
            return math.inf, q
        if nxt < 1e-100:
            return 0.0, q
        if abs(nxt - q) <= 1e-14 * max(q, 1e-300):
            return nxt, nxt
        q = nxt
    return q, q  # a marginal map (e.g. tanh with σ_w² = 1 creeping to 0): where it has got to


def fixed_point(act: Activation, sw2: float, sb2: float, q0: float = 1.0) -> float:
    """The fixed point q* the length map reaches from q0 (0 or inf when it vanishes or explodes)."""
    return approach(act, sw2, sb2, q0)[0]


def chi1(act: Activation, sw2: float, q: float) -> float:
    """σ_w² E[φ'(√q z)²], the per-layer gradient factor at second moment q."""
    return sw2 * gauss_expect(lambda x: act.dphi(x) ** 2, min(q, 1e30), split=act.kinked)


def preserving_gain(act: Activation, sb2: float = 0.0, q: float = 1.0) -> float:
    """The gain g (σ_w² = g²) that keeps q fixed at q: g² = (q - σ_b²) / E[φ(√q z)²]."""
    m = gauss_expect(lambda x: act.phi(x) ** 2, q, split=act.kinked)
    return math.sqrt((q - sb2) / m) if q > sb2 and m > 0 else math.nan


def predict(scheme: str | Scheme, act: str | Activation, layers: list[LayerShape], bias_std: float = 0.0,
            q0: float = 1.0) -> dict[str, Any]:
    """The theory over a stack: q per layer, gradient second moments, q*, χ₁ and the preserving gain."""
    scheme = resolve(scheme)
    act = get_activation(act) if isinstance(act, str) else act
    sb2 = bias_std**2
    cache: dict[tuple[int, int], float] = {}  # one reference law per distinct pair of fans
    for L in layers:
        if (L.fan_in, L.fan_out) not in cache:
            cache[L.fan_in, L.fan_out] = weight_variance(scheme, L.fan_in, L.fan_out)
    var = [cache[L.fan_in, L.fan_out] for L in layers]
    sw2 = [v * L.fan_in for v, L in zip(var, layers, strict=True)]
    q = [sw2[0] * q0 + sb2]
    for k in range(1, len(layers)):
        q.append(length_map(act, sw2[k], sb2, q[-1]))
    g = [1.0] * len(layers)
    for k in range(len(layers) - 2, -1, -1):
        d2 = gauss_expect(lambda x: act.dphi(x) ** 2, min(q[k], 1e30), split=act.kinked)
        g[k] = g[k + 1] * layers[k + 1].fan_out * var[k + 1] * d2
    # q* and χ₁ for the stack's typical (middle) layer; for a uniform stack they are the stack's.
    mid = len(layers) // 2
    q_star, q_eval = approach(act, sw2[mid], sb2, q[0])
    per_layer = []
    for k in range(len(layers)):
        per_layer.append({"index": k + 1, "q": q[k], "forward_ratio": q[k] / q[k - 1] if k else q[0] / q0,
                          "backward": g[k], "backward_ratio": g[k] / g[k + 1] if k + 1 < len(layers) else 1.0,
                          "sigma_w2": sw2[k], "var_w": var[k]})
    d2 = gauss_expect(lambda x: act.dphi(x) ** 2, min(q_eval, 1e30), split=act.kinked)
    chi_back = layers[mid].fan_out * var[mid] * d2
    return {"scheme": scheme.expr, "activation": act.label, "bias_std": bias_std, "q0": q0,
            "sigma_w2": sw2[mid], "q_star": q_star, "chi1": chi1(act, sw2[mid], q_eval),
            "chi1_fan_out": chi_back, "gain_preserving": preserving_gain(act, sb2, q0),
            "per_layer": per_layer}


def gain_table(bias_std: float = 0.0) -> list[dict[str, Any]]:
    """The frameworks' standard gains (torch calculate_gain, spec/gains.toml) against the preserving gain.

    ``factor_per_layer`` is the forward ratio q_1/q_0 at q_0 = 1 with σ_w² = gain² (fan_in mode):
    1 is preserving; ``chi1`` the gradient factor at the fixed point the map reaches from 1.
    """
    out = []
    table = gains()
    for name in ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        entry = table[name]
        g = math.sqrt(2.0 / (1 + entry["default_slope"] ** 2)) if isinstance(entry, dict) else float(entry)
        act = get_activation(name)
        sb2 = bias_std**2
        factor = length_map(act, g * g, sb2, 1.0)
        qs, qe = approach(act, g * g, sb2, 1.0)
        pg = preserving_gain(act, sb2, 1.0)
        out.append({"activation": act.label, "gain": g, "gain_preserving": pg, "factor_per_layer": factor,
                    "preserving": abs(math.log(factor)) < 1e-3, "q_star": qs, "chi1": chi1(act, g * g, qe)})
    return out
