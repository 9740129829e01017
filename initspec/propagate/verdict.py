"""Measurement against theory inside a finite-width band, the verdict, and the likely cause.

The band (log scale).  Follow one input through the stack (Hanin & Rolnick 2018).  Given the
layer's input, the n_l pre-activations of layer l are i.i.d. Gaussian, so
||φ(h_l)||² / E has relative variance (κ_l − 1)/n_l with κ_l = E[φ⁴]/E[φ²]² at q_l (5 for ReLU,
2 for linear), and the measured ||h_l||²/n_l adds a χ²_{n_l} term, 2/n_l.  The layers' factors
are independent (a Markov chain), so log q̂_L − log q_L has variance

    V_fwd(L) = 2/n_0 + Σ_{l<L} (κ_l − 1)/n_l + 2/n_L.

Backward, under the gradient-independence assumption, W^T g is Gaussian given g, so
||g_l||² = Σ φ'(h_j)² u_j² has relative variance (3κ'_l − 1)/n_l with κ'_l = E[φ'⁴]/E[φ'²]²:

    V_bwd(1) = 2/n_L + Σ_{l<L} (3κ'_l − 1)/n_l.

A batch of B inputs averages these fluctuations only in shallow layers: deep in the stack the
inputs' representations align (their per-unit mean dominates, which the ``sq_mean`` column shows),
so the band takes no credit for the batch: it is an upper bound, conservative by design, and the
false-alarm rate is measured (tests/propagate/test_band.py) rather than assumed.  For a conv stack
n_l is the channel count (the weights are shared across positions, so the positions are not
independent draws).  K seeds averaged in log divide V by K.  The stack agrees with theory when
|log q̂ − log q| ≤ Z √V at the end of each direction, Z = 3.29 (two-sided 0.1 % for a Gaussian).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initspec.propagate.activations import Activation
from initspec.propagate.theory import LayerShape, gauss_expect

Z = 3.29
TOLERANCE = 2.0  # a stack is preserving when its signal changes by less than ×2 over the whole depth
CAUSE_TOLERANCE = 0.10  # a cause is named when the measured variance ratio is within 10 % of its factor


def _kappa(f: Any, q: float, split: bool) -> float:
    m2 = gauss_expect(lambda x: f(x) ** 2, q, split=split)
    m4 = gauss_expect(lambda x: f(x) ** 4, q, split=split)
    return m4 / (m2 * m2) if m2 > 0 else 1.0


def band_variances(act: Activation, layers: list[LayerShape], q: list[float],
                   seeds: int = 1) -> tuple[list[float], list[float]]:
    """V_fwd at each layer (cumulative from the input) and V_bwd at each layer (cumulative from the top)."""
    n0 = layers[0].shape[1]
    fwd, acc = [], 2.0 / n0
    for k, L in enumerate(layers):
        fwd.append((acc + 2.0 / L.units) / seeds)
        acc += (_kappa(act.phi, min(q[k], 1e30), act.kinked) - 1.0) / L.units
    bwd, acc = [0.0] * len(layers), 2.0 / layers[-1].units
    for k in range(len(layers) - 1, -1, -1):
        bwd[k] = acc / seeds
        acc += (3.0 * _kappa(act.dphi, min(q[k], 1e30), act.kinked) - 1.0) / layers[k].units
    return fwd, bwd


def _log(x: float) -> float:
    return math.log(x) if x > 0 and math.isfinite(x) else (math.inf if x == math.inf or math.isnan(x) else -math.inf)


def factor(values: list[float], backward: bool = False) -> float:
    """The measured factor per layer: geometric mean of the per-layer ratios.

    Taken over the stretch where the signal is finite and positive: a stack whose signal leaves
    float range gets the factor of the layers it could be measured on (it only went further)."""
    seq = values[::-1] if backward else values
    if len(seq) == 1:
        return seq[0]
    good = [v > 0 and math.isfinite(v) for v in seq]
    if not good[0]:
        return math.nan
    b = 0
    while b + 1 < len(seq) and good[b + 1]:
        b += 1
    return (seq[b] / seq[0]) ** (1.0 / b) if b else math.nan


def direction(measured: list[float], predicted: list[float], v: list[float], backward: bool,
              tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Verdict of one direction: agreement with theory at its far end, and preserved / vanishing / exploding."""
    end = 0 if backward else len(measured) - 1
    dev = _log(measured[end]) - _log(predicted[end]) if measured[end] == measured[end] else math.inf
    if math.isinf(_log(predicted[end])) and _log(predicted[end]) == _log(measured[end]):
        dev = 0.0  # both left float range the same way
    sd = math.sqrt(max(v[end], 1e-300))
    agrees = bool(abs(dev) <= Z * sd)
    f = factor(measured, backward)
    fp = factor(predicted, backward)
    span = max(len(measured) - 1, 1)
    allow = (math.log(tolerance) + Z * sd) / span
    lf = _log(f)
    state = "preserved" if abs(lf) <= allow else ("vanishing" if lf < 0 else "exploding")
    return {"state": state, "factor_per_layer": f, "predicted_factor_per_layer": fp, "agrees_with_theory": agrees,
            "log_deviation": dev, "band_sd": sd, "z": dev / sd if math.isfinite(dev) else math.inf,
            "label": state if state == "preserved" else f"{state} ×{f:.3g} per layer"}


def likely_cause(sigma_w2_claimed: float, gain_preserving: float, ratio: float, fan_in: int, kernel: int | None,
                 activation: str, band_log: float = 0.0) -> str | None:
    """Name the mistake a variance ratio points to, in the diagnosis vocabulary (or None).

    ``ratio`` is measured/predicted per-layer forward factor (the actual σ_w² over the claimed one,
    exact for homogeneous φ); the actual σ_w² is compared with the preserving one too.  A factor
    matches within 10 % or within the band of the per-layer factor (``band_log``), the wider.
    """
    if not (ratio > 0 and math.isfinite(ratio)):
        return None
    actual = sigma_w2_claimed * ratio
    pres = gain_preserving**2

    def near(x: float, y: float) -> bool:
        return abs(math.log(x / y)) <= max(math.log1p(CAUSE_TOLERANCE), band_log)

    if kernel and kernel > 1 and (near(ratio, kernel**2) or near(actual / pres, kernel**2)):
        return (f"receptive_field_ignored: σ_w² is ×{kernel * kernel} ({kernel}x{kernel}) too large — fans counted "
                "from the channels only")
    var_claimed = sigma_w2_claimed / fan_in
    if var_claimed < 1 and near(actual / fan_in, var_claimed**2):
        return f"std_as_variance: Var(w) ≈ {var_claimed:.3g}² — the variance's value used as the std"
    if near(actual, 1.0 / 3.0) and not near(pres, 1.0 / 3.0):
        return (f"wrong_gain: σ_w² = 1/3 (gain² 1/3) under {activation}, where {pres:.4g} preserves — torch's "
                "nn.Linear/Conv default, kaiming_uniform_(a=√5)")
    for g2, what in ((2.0, "relu's 2"), (0.5, "relu's 2 missing"), (25 / 9, "tanh's (5/3)²"),
                     (9 / 25, "tanh's (5/3)² missing"), (9 / 16, "selu's (3/4)²"), (16 / 9, "selu's (3/4)² missing")):
        if near(ratio, g2):
            return f"wrong_gain: σ_w² off by ×{g2:.4g} ({what}) against the claim"
        if near(actual / pres, g2):
            return (f"wrong_gain: σ_w² = {actual:.4g} is ×{g2:.4g} the preserving {pres:.4g} under {activation} "
                    f"({what})")
    if not near(actual, pres):
        return f"σ_w² = {actual:.4g} under {activation}, where {pres:.4g} preserves (gain {math.sqrt(pres):.4g})"
    return None


def finite(xs: list[float]) -> np.ndarray:
    return np.asarray([x if math.isfinite(x) else np.nan for x in xs], dtype=float)
