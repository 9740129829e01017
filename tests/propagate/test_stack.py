"""Synthetic stacks in numpy: the verdicts the theory predicts, the causes named, bad input exit 2."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from initspec.errors import InputError
from initspec.propagate.run import propagate

sys.path.insert(0, str(Path(__file__).resolve().parent))  # initializers and models the tests name as targets
import propagate_inits as inits

# Width 256, depth 20, batch 64: the band's log-sd at the top is sqrt(2/256 + 19·5/256 + 2/256) ≈ 0.62,
# so a preserving stack's measured factor per layer lies within exp(±3.29·0.62/19) ≈ ±11 % of the
# prediction, and ×1/6 (log -1.79 per layer) is 34 band-widths from preserved.
SMALL = {"depth": 20, "width": 256, "batch": 64}


def test_he_relu_is_preserved():
    r = propagate("he_normal", "relu", **SMALL)
    assert r["verdict"]["forward"] == "preserved" and r["verdict"]["backward"] == "preserved"
    assert r["verdict"]["ok"] and r["verdict"]["forward_detail"]["agrees_with_theory"]
    assert r["factor_per_layer"]["forward"] == pytest.approx(1.0, rel=0.11)


def test_torch_linear_default_under_relu_vanishes_by_a_sixth_per_layer():
    r = propagate("torch_linear_default", "relu", **SMALL)
    v = r["verdict"]
    assert v["forward"].startswith("vanishing ×0.16") and v["backward"].startswith("vanishing ×0.16")
    assert v["forward_detail"]["agrees_with_theory"] and v["backward_detail"]["agrees_with_theory"]
    assert r["factor_per_layer"]["forward"] == pytest.approx(1 / 6, rel=0.11)
    assert r["factor_per_layer"]["backward"] == pytest.approx(1 / 6, rel=0.11)
    assert "nn.Linear" in v["cause"] and not v["ok"]


def test_receptive_field_ignored_conv_explodes_and_is_named():
    # 3x3 over 32 channels: fans from the channels give ×9 the He variance per layer; the factor is
    # held to the band's own claim (3.29 sd of log q over the 9 ratios), ×9 to the theory's ×1
    r = propagate("he_normal", "relu", depth=10, conv=3, channels=32, batch=8, target=inits.he_channels_only,
                  convention="numpy")
    assert r["verdict"]["forward"].startswith("exploding ×")
    tol = 3.29 * r["layers"][-1]["forward"]["band_sd"] / 9
    assert abs(math.log(r["factor_per_layer"]["forward"] / 9.0)) < tol < math.log(9) / 3
    assert r["verdict"]["cause"].startswith("receptive_field_ignored")
    assert not r["verdict"]["forward_detail"]["agrees_with_theory"]


def test_he_conv_is_preserved():
    r = propagate("he_normal", "relu", depth=10, conv=3, channels=16, batch=8)
    assert r["verdict"]["ok"], r["verdict"]


def test_std_as_variance_is_named():
    r = propagate("he_normal", "relu", depth=5, width=512, batch=64, target=inits.he_std_as_variance,
                  convention="numpy")
    assert r["verdict"]["forward"].startswith("vanishing")
    assert r["verdict"]["cause"].startswith("std_as_variance")


def test_glorot_under_relu_halves_per_layer():
    r = propagate("glorot_normal", "relu", **SMALL)
    assert r["verdict"]["forward"].startswith("vanishing")
    assert r["factor_per_layer"]["forward"] == pytest.approx(0.5 * r["theory"]["sigma_w2"], rel=0.11)
    assert "wrong_gain" in r["verdict"]["cause"]


def test_json_fields_are_the_issues():
    r = propagate("he_normal", "tanh", depth=3, width=64, batch=16, bias_std=0.1)
    assert {"q_star", "chi1", "gain_preserving", "per_layer"} <= set(r["theory"])
    layer = r["layers"][0]
    assert {"index", "name", "fan_in", "fan_out", "forward", "backward"} <= set(layer)
    assert {"second_moment", "variance", "sq_mean", "predicted"} <= set(layer["forward"])
    assert {"second_moment", "predicted"} <= set(layer["backward"])
    assert set(r["verdict"]) >= {"forward", "backward"} and set(r["factor_per_layer"]) == {"forward", "backward"}
    # variance + average channel squared mean = second moment, per unit averaged
    f = layer["forward"]
    assert f["variance"] + f["sq_mean"] == pytest.approx(f["second_moment"], rel=1e-9)


def test_numpy_backward_by_hand_is_the_gradient():
    """The hand-written backward pass against central differences of <r, h_L> in float64."""
    from initspec.propagate import stack
    from initspec.propagate.activations import get_activation

    act = get_activation("tanh")
    for layers in (stack.mlp_layers([6, 5, 4]), stack.conv_layers(2, 3, 3)):
        rng = np.random.default_rng(0)
        params = [(rng.normal(0, 0.5, L.shape), rng.normal(0, 0.1, L.shape[0])) for L in layers]
        x, r = (a.astype(np.float64) for a in stack._inputs(layers, 2, 0))

        def loss(h1_shift, params=params, x=x, r=r):
            hs, _ = stack._run_numpy(params, act, x, r)
            conv = x.ndim == 4
            a = act.phi(hs[0] + h1_shift)
            w, b = params[1]
            h2 = (stack._conv_np(a, w) + b[None, :, None, None]) if conv else a @ w.T + b
            return float(np.sum(h2 * r))

        hs, gs = stack._run_numpy(params, act, x, r)
        e = np.zeros_like(hs[0])
        idx = (1,) + (0,) * (hs[0].ndim - 1)
        e[idx] = 1e-5
        fd = (loss(e) - loss(-e)) / 2e-5
        assert gs[0][idx] == pytest.approx(fd, rel=1e-3)


@pytest.mark.parametrize(("args", "message"), [
    (["he_normal", "-a", "rleu"], "unknown activation 'rleu'"),
    (["he_normal", "-a", "relu", "--depth", "0"], "--depth must be a positive integer"),
    (["he_normal", "-a", "relu", "--widths", "784,5x"], "'5x' is not a positive integer"),
    (["he_normal", "-a", "relu", "--width", "2.5"], "'2.5' is not a valid integer"),
    (["he_normal", "-a", "relu", "--conv", "2x2"], "must be odd"),
    (["he_normal", "-a", "relu", "--conv", "3x5"], "square kernel"),
    (["he_normal", "-a", "relu", "--batch", "-1"], "--batch must be a positive integer"),
    (["he_normal", "-a", "relu", "--bias-std", "-1"], "--bias-std"),
    (["he_normal", "-a", "relu", "--backend", "tf"], "unknown backend"),
    (["he_normal", "-a", "relu", "--target", "nosuchfw:x"], "--target"),
    (["he_normal", "-a", "relu", "--target", "numpy:no_such_entry"], "no entry"),
    (["orthogonal", "-a", "relu"], "no per-element law"),
    (["he_normal"], "--activation"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, message):
    code, _, err = run_cli("propagate", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_exit_codes_and_json(run_cli, tmp_path):
    code, out, _ = run_cli("propagate", "he_normal", "-a", "relu", "--depth", "8", "--width", "128", "--batch", "32")
    assert code == 0 and "PASS" in out and "2–7" in out  # the middle layers folded into one row
    path = tmp_path / "p.json"
    code, out, _ = run_cli("propagate", "torch_linear_default", "-a", "relu", "--depth", "8", "--width", "128",
                           "--json", str(path))
    import json

    data = json.loads(path.read_text())
    assert code == 1 and "FAIL" in out
    assert data["factor_per_layer"]["forward"] == pytest.approx(1 / 6, rel=0.15)
    code, out, _ = run_cli("propagate", "--gains")
    assert code == 0 and "tanh" in out and "not preserving" in out


def test_bad_target_raises_input_error():
    with pytest.raises(InputError):
        propagate("he_normal", "relu", depth=2, width=8, target="numpy:nope")
    assert math.isfinite(propagate("he_normal", "relu", depth=2, width=8, target="numpy:he_normal")
                         ["factor_per_layer"]["forward"])
