"""Synthetic stacks through torch autograd (tox env torch): the same verdicts as numpy, same numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from initspec.propagate.run import propagate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # initializers and models the tests name as targets
import propagate_inits as inits  # noqa: E402 - a test module beside this one (sys.path above)
from autograd_cases import (  # noqa: E402
    ACTIVATIONS,
    assert_autograd_equals_the_numpy_pass,
    assert_he_relu_is_preserved,
    small,
)

SMALL = small("torch")


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("conv", [False, True])
def test_torch_autograd_equals_the_numpy_pass(act, conv):
    assert_autograd_equals_the_numpy_pass("torch", act, conv)


def test_he_relu_is_preserved():
    assert_he_relu_is_preserved("torch")


def test_torch_linear_default_weights_vanish_by_a_sixth():
    """nn.Linear's own weights (the manifest entry), not the spec's sampler."""
    r = propagate("torch_linear_default", "relu", target="torch:Linear.weight", **SMALL)
    assert r["verdict"]["forward"].startswith("vanishing ×0.16")
    assert r["verdict"]["forward_detail"]["agrees_with_theory"]
    assert r["factor_per_layer"]["forward"] == pytest.approx(1 / 6, rel=0.11)
    assert r["factor_per_layer"]["backward"] == pytest.approx(1 / 6, rel=0.11)
    assert "nn.Linear" in r["verdict"]["cause"]


def test_kaiming_normal_entry_is_preserved():
    r = propagate("he_normal", "relu", target="torch:kaiming_normal_", **SMALL)
    assert r["verdict"]["ok"], r["verdict"]


def test_receptive_field_ignored_conv_explodes():
    r = propagate("he_normal", "relu", depth=10, conv=3, channels=32, batch=8, target=inits.he_channels_only,
                  convention="numpy", backend="torch")
    assert r["verdict"]["forward"].startswith("exploding")
    assert abs(math.log(r["factor_per_layer"]["forward"] / 9)) < 3.29 * r["layers"][-1]["forward"]["band_sd"] / 9
    assert r["verdict"]["cause"].startswith("receptive_field_ignored")


def test_model_hooks_report_every_leaf_and_the_check_bounds(run_cli, tmp_path):
    """--model on a real nn.Module: nn.Linear's default init shrinks E[h²] ×1/6 per Linear (the
    ReLU between halves it, so the per-leaf ratio alternates 1/3, 1/2); He keeps it.  Width 256,
    batch 64, 10 layers: the band's log-sd is sqrt(10·5/256) ≈ 0.44, and ×(1/6)^9 = 1e-7 is 36 sd
    below the ×0.1 bound, He's ×1 is 5 sd above it."""
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:torch_mlp(10, 256)",
                           "--input-shape", "64,256", "--min-shrink", "0.1", "--json", str(tmp_path / "m.json"))
    import json

    data = json.loads((tmp_path / "m.json").read_text())
    assert code == 1 and "FAIL: forward shrinks" in out
    assert len(data["layers"]) == 20 and data["layers"][0]["fan_in"] == 256
    assert all(r["backward"] is not None for r in data["layers"])
    lin = [r["forward"]["second_moment"] for r in data["layers"] if r["type"] == "Linear"]
    assert (lin[-1] / lin[0]) ** (1 / 9) == pytest.approx(1 / 6, rel=0.2)
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:torch_mlp(10, 256, False)",
                           "--input-shape", "64,256", "--min-shrink", "0.1")
    assert code == 0, out
    code, _, err = run_cli("propagate", "--model", "propagate_inits:torch_mlp(2, 16)", "--input-shape", "4,15")
    assert code == 2 and "rejects it" in err and len(err.strip().splitlines()) == 1
