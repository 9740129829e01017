"""The mean-field theory: quadrature against closed forms, q* and χ₁ against a direct simulation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from initspec.errors import InputError
from initspec.propagate.activations import get_activation
from initspec.propagate.stack import mlp_layers
from initspec.propagate.theory import (
    approach,
    chi1,
    gain_table,
    gauss_expect,
    length_map,
    predict,
    preserving_gain,
)
from initspec.spec.schemes import gain


@pytest.mark.parametrize("q", [0.01, 0.5, 1.0, 2.0, 37.0])
@pytest.mark.parametrize(("name", "m2", "d2"), [
    ("linear", lambda q: q, lambda q: 1.0),
    ("relu", lambda q: q / 2, lambda q: 0.5),
    ("leaky_relu(0.2)", lambda q: q * (1 + 0.04) / 2, lambda q: (1 + 0.04) / 2),
    ("leaky_relu(a=-0.5)", lambda q: q * (1 + 0.25) / 2, lambda q: (1 + 0.25) / 2),
])
def test_quadrature_equals_closed_forms(name, m2, d2, q):
    act = get_activation(name)
    assert gauss_expect(lambda x: act.phi(x) ** 2, q) == pytest.approx(m2(q), rel=1e-10, abs=1e-12)
    assert gauss_expect(lambda x: act.dphi(x) ** 2, q) == pytest.approx(d2(q), rel=1e-10)


def test_smooth_expectations_match_scipy_integration():
    from scipy import integrate, stats

    for name in ("tanh", "selu", "gelu", "silu", "softplus", "sigmoid", "elu", "erf"):
        act = get_activation(name)
        exact = integrate.quad(lambda z, a=act: float(a.phi(np.array(1.7 * z))) ** 2 * stats.norm.pdf(z), -12, 12,
                               points=[0.0], epsabs=1e-13)[0]
        got = gauss_expect(lambda x, a=act: a.phi(x) ** 2, 1.7**2, split=act.kinked)
        assert got == pytest.approx(exact, rel=1e-8), name


def test_preserving_gains_of_the_homogeneous_activations_are_the_framework_gains():
    for name in ("linear", "relu"):
        assert preserving_gain(get_activation(name)) == pytest.approx(gain(name), rel=1e-12)
    assert preserving_gain(get_activation("leaky_relu(0.3)")) == pytest.approx(gain("leaky_relu", 0.3), rel=1e-12)


def test_gain_table_states_tanh_and_selu_gains_are_not_preserving():
    """A finding, not a bug: torch's calculate_gain('tanh') = 5/3 grows q from 1 by ×1.095 per layer
    and calculate_gain('selu') = 3/4 shrinks it ×0.5625 (torch's docs say to use 'linear' for SNNs:
    Var = 1/fan_in is SELU's preserving choice)."""
    rows = {r["activation"]: r for r in gain_table()}
    assert rows["tanh"]["factor_per_layer"] == pytest.approx(1.0953, abs=1e-3) and not rows["tanh"]["preserving"]
    assert rows["selu"]["factor_per_layer"] == pytest.approx(0.5625, abs=1e-3) and not rows["selu"]["preserving"]
    assert rows["selu"]["gain_preserving"] == pytest.approx(1.0, abs=1e-4)
    assert rows["relu"]["preserving"] and rows["linear"]["preserving"]


def _simulate(act_name, sw2, sb2, width=2000, batch=16, depth=40, seed=0):
    """A direct simulation: one wide Gaussian stack, per-layer q and gradient second moments."""
    act = get_activation(act_name)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    hs, ws = [], []
    for _ in range(depth):
        w = rng.normal(0, math.sqrt(sw2 / width), (width, width))
        h = x @ w.T + math.sqrt(sb2) * rng.standard_normal(width)
        hs.append(h)
        ws.append(w)
        x = act.phi(h)
    g = rng.standard_normal((batch, width))
    gs = [g]
    for k in range(depth - 1, 0, -1):
        g = (g @ ws[k]) * act.dphi(hs[k - 1])
        gs.insert(0, g)
    return np.array([np.mean(h**2) for h in hs]), np.array([np.mean(g**2) for g in gs])


@pytest.mark.parametrize(("act", "sw2", "sb2"), [("tanh", 2.0, 0.05), ("selu", 1.0, 0.0), ("tanh", 1.5, 0.3)])
def test_fixed_point_and_chi1_agree_with_a_long_direct_simulation(act, sw2, sb2):
    """Width 2000, 16 inputs.  Each layer adds a relative fluctuation of variance v = (κ+1)/n to one
    input's q (κ = E[φ⁴]/E[φ²]², verdict's band); near q* the map relaxes it with slope s, an AR(1)
    whose mean over m = 26 layers has variance v / ((1-s)² m), and the 16 inputs (decorrelated: these
    maps are chaotic, χ₁ > 1) divide it by 16.  The tolerance is 4 sd of that.  The gradient's
    per-layer factor over 25 layers has log-sd ≈ sqrt(25·5/2000)/25 ≈ 1 %, so 3 % is > 3 sd."""
    from initspec.propagate.verdict import _kappa

    a = get_activation(act)
    q_star, _ = approach(a, sw2, sb2, 1.0 * sw2 + sb2)
    e = 1e-6
    s = (length_map(a, sw2, sb2, q_star * (1 + e)) - length_map(a, sw2, sb2, q_star * (1 - e))) / (2 * e * q_star)
    v = (_kappa(a.phi, q_star, a.kinked) + 1) / 2000
    tol = 4 * math.sqrt(v / ((1 - s) ** 2 * 26 * 16))
    q, g = _simulate(act, sw2, sb2)
    assert abs(np.mean(np.log(q[14:])) - math.log(q_star)) < tol
    measured_chi = (g[14] / g[39]) ** (1 / 25)
    assert measured_chi == pytest.approx(chi1(a, sw2, q_star), rel=0.03)
    assert length_map(a, sw2, sb2, q_star) == pytest.approx(q_star, rel=1e-10)


def test_predict_over_a_stack_and_its_speed():
    layers = mlp_layers([512] * 51)
    predict("he_normal", "relu", layers)  # warm the caches (scheme registry, nodes)
    t = time.perf_counter()
    p = predict("torch_linear_default", "relu", layers)
    elapsed = time.perf_counter() - t
    assert [r["forward_ratio"] for r in p["per_layer"][1:]] == pytest.approx([1 / 6] * 49, rel=1e-9)
    assert p["per_layer"][0]["backward_ratio"] == pytest.approx(1 / 6, rel=1e-9)
    assert p["chi1"] == pytest.approx(1 / 6, rel=1e-9)
    assert elapsed < 0.1, "the theory of a 50-layer stack takes milliseconds"


def test_non_square_layers_use_fan_out_backward():
    layers = mlp_layers([100, 400, 400, 100])
    p = predict("he_normal", "relu", layers)
    # layer 2's gradient = layer 3's times fan_out(3)·Var(W_3)·E[relu'²] = 100·(2/400)·1/2 = 1/4
    assert p["per_layer"][1]["backward_ratio"] == pytest.approx(0.25, rel=1e-10)


def test_unknown_activation_is_an_input_error():
    with pytest.raises(InputError, match=r"unknown activation 'rleu'.*did you mean relu"):
        get_activation("rleu")
    with pytest.raises(InputError, match="no parameter 'b'"):
        get_activation("leaky_relu(b=1)")
