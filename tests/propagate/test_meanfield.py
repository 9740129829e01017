"""The residual branches' mean-field rules and the width fit, without a framework (every tox env)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from initspec.propagate import meanfield, widthfit
from initspec.propagate.meanfield import Op, predict


def test_tap_fraction_of_zero_padding():
    assert meanfield.valid_tap_fraction(16, 3, 1, 1) == pytest.approx(46 / 48)
    assert meanfield.valid_tap_fraction(8, 3, 1, 0) == 1.0  # 'valid': every tap inside
    assert meanfield.valid_tap_fraction(8, 1, 1, 0) == 1.0
    # stride 2, pad 1, k 3 on 8: outputs at -1..1, 1..3, 3..5, 5..7 -> one tap outside, of 12
    assert meanfield.valid_tap_fraction(8, 3, 2, 1) == pytest.approx(11 / 12)


def test_attention_factor():
    assert meanfield.attention_factor(5, 5, False) == pytest.approx(1 / 5)
    assert meanfield.attention_factor(4, 4, True) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    mask = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], bool)
    assert meanfield.attention_factor(3, 3, False, mask) == meanfield.attention_factor(3, 3, True)
    assert math.isnan(meanfield.attention_factor(2, 2, False, np.zeros((2, 2), bool)))


def test_rules_chain_and_opacity_is_carried():
    ops = [Op("norm", ("x",), ("n",), {"kind": "layer", "gamma": np.ones(4), "beta": np.zeros(4), "eps": 0.0}),
           Op("linear", ("n",), ("h",), {"fan_in": 4, "w2": 0.5, "b2": 0.0, "n": 8}),
           Op("act", ("h",), ("a",), {"name": "relu", "n": 8}),
           Op("linear", ("a",), ("y",), {"fan_in": 8, "w2": 0.25, "b2": 0.1, "n": 4}),
           Op("linear", ("other",), ("z",), {"fan_in": 8, "w2": 9.0, "b2": 0.0, "n": 4})]  # not on the branch
    v = predict(ops, "x", 7.0, "y")
    assert v.opaque is None and v.q == pytest.approx(8 * 0.25 * (4 * 0.5 * 1.0) / 2 + 0.1)
    assert v.v > 0
    assert predict(ops[:1], "x", 7.0, "n").v == 0  # a norm fixes the scale: no band left
    zero = [Op("linear", ("x",), ("y",), {"fan_in": 4, "w2": 0.0, "b2": 0.0, "n": 4})]
    assert predict(zero, "x", 3.0, "y").q == 0  # a zero-initialized branch is exactly zero
    blocked = [Op("opaque", ("x",), ("c",), {"reason": "no mean-field rule for cumsum"}),
               Op("linear", ("c",), ("h",), {"fan_in": 4, "w2": 0.5, "b2": 0.0, "n": 8})]
    assert predict(blocked, "x", 1.0, "h").opaque == "no mean-field rule for cumsum"
    mixed = [Op("add", ("x", "pos"), ("y",))]
    assert "not computed from the stream" in predict(mixed, "x", 1.0, "y").opaque
    assert "not computed" in predict([], "x", 1.0, "y").opaque
    big = [Op("attention", ("x", "x", "x"), ("y",), {"c": 0.1, "s2": 1.0, "d": 16, "n": 16})]
    assert "logits not small" in predict(big, "x", 1.0, "y").opaque
    small = [Op("attention", ("x", "x", "x"), ("y",), {"c": 0.1, "s2": 1 / 16, "d": 16, "n": 16})]
    assert predict(small, "x", 0.05, "y").q == pytest.approx(0.005)


def test_a_sampled_branch_lands_in_its_band():
    """LN → Linear(64→256) → GELU → Linear(256→64), N(0, 0.02²) weights, 256 tokens, 40 draws: the
    measured E[branch²] against the prediction from the drawn weights; |log ratio| ≤ z·√V for all 40 at
    z = 3.29 (expected false alarms 0.04), and the median within 3 % (the mean field is exact in
    expectation; the band is a bound, it takes no credit for the tokens)."""
    rng = np.random.default_rng(0)
    devs, sds = [], []
    for _ in range(40):
        x = rng.standard_normal((256, 64))
        w1, w2 = rng.normal(0, 0.02, (64, 256)), rng.normal(0, 0.02, (256, 64))
        n = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
        h = n @ w1
        y = (h * special.ndtr(h)) @ w2
        ops = [Op("norm", ("x",), ("n",), {"kind": "layer", "gamma": np.ones(64), "beta": np.zeros(64), "eps": 1e-5}),
               Op("linear", ("n",), ("h",), {"fan_in": 64, "w2": float(np.mean(w1**2)), "b2": 0.0, "n": 256}),
               Op("act", ("h",), ("a",), {"name": "gelu", "n": 256}),
               Op("linear", ("a",), ("y",), {"fan_in": 256, "w2": float(np.mean(w2**2)), "b2": 0.0, "n": 64})]
        v = predict(ops, "x", float(np.mean(x * x)), "y")
        devs.append(math.log(np.mean(y * y) / v.q))
        sds.append(math.sqrt(v.v))
    assert all(abs(d) <= 3.29 * s for d, s in zip(devs, sds, strict=True))
    assert abs(np.median(devs)) < 0.03


def test_width_fit_recovers_an_exponent_and_its_band():
    """RMS = 3·W^0.5 · e^{ε}, ε ~ N(0, 0.05²) per (seed, width): the per-seed slopes have sd 0.05/√Σ(x−x̄)²;
    the t-interval at 1 − 0.001/2 covers 0.5, and k = 0 is far outside it."""
    rng = np.random.default_rng(1)
    widths = [64, 128, 256, 512]
    rms = 3 * np.asarray(widths, float) ** 0.5 * np.exp(rng.normal(0, 0.05, (8, 4)))
    tq = float(stats.t.ppf(1 - 0.001 / 2, 7))
    f = widthfit.fit_one(rms, widths, tq)
    assert f["state"] == "grows" and abs(f["exponent"] - 0.5) <= f["band"] < 0.1
    assert f["intercept"] == pytest.approx(math.log(3), abs=0.2)
    flat = widthfit.fit_one(3 * np.exp(rng.normal(0, 0.05, (8, 4))), widths, tq)
    assert flat["state"] == "stable"
    assert widthfit.fit_one(np.zeros((3, 4)), widths, tq)["state"] == "zero"
    holed = np.ones((3, 4))
    holed[1, 2] = 0
    assert widthfit.fit_one(holed, widths, tq)["label"] == "zero or not finite at width 256"


def test_width_fit_bonferroni_over_layers_and_times():
    runs = {w: [{0: {"a": ("Linear", 1.0 + 0.01 * s), "b": ("ReLU", w ** -1.0 * (1 + 0.01 * s))},
                 3: {"a": ("Linear", 1.0 + 0.02 * s), "b": ("ReLU", 2.0)}} for s in range(4)] for w in (8, 16, 32)}
    out = widthfit.fit_all(runs, [8, 16, 32], 4, [0, 3])
    assert out["fits"] == 4 and out["t"] == pytest.approx(stats.t.ppf(1 - 0.001 / 8, 3))
    assert out["verdict"]["unstable"] == ["b at t=0"] and not out["verdict"]["ok"]
    assert [layer["times"]["0"]["state"] for layer in out["layers"]] == ["stable", "shrinks"]
