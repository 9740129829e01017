"""Synthetic stacks through JAX autograd (tox env jax): the same verdicts as numpy, same numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

jax = pytest.importorskip("jax")

from initspec.propagate.run import propagate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # initializers and models the tests name as targets
import propagate_inits as inits  # noqa: E402 - a test module beside this one (sys.path above)
from autograd_cases import (  # noqa: E402
    ACTIVATIONS,
    assert_autograd_equals_the_numpy_pass,
    assert_he_relu_is_preserved,
    small,
)

SMALL = small("jax")


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("conv", [False, True])
def test_jax_autograd_equals_the_numpy_pass(act, conv):
    assert_autograd_equals_the_numpy_pass("jax", act, conv)


def test_he_relu_is_preserved():
    assert_he_relu_is_preserved("jax")


def test_torch_linear_default_scheme_vanishes_by_a_sixth():
    r = propagate("torch_linear_default", "relu", **SMALL)
    assert r["verdict"]["forward"].startswith("vanishing ×0.16")
    assert r["verdict"]["forward_detail"]["agrees_with_theory"]
    assert r["factor_per_layer"]["forward"] == pytest.approx(1 / 6, rel=0.11)
    assert r["factor_per_layer"]["backward"] == pytest.approx(1 / 6, rel=0.11)


def test_jax_initializer_is_preserved():
    r = propagate("he_normal", "relu", target="jax:he_normal", **SMALL)
    assert r["verdict"]["ok"], r["verdict"]


def test_receptive_field_ignored_conv_explodes():
    r = propagate("he_normal", "relu", depth=10, conv=3, channels=32, batch=8, target=inits.he_channels_only,
                  convention="numpy", backend="jax")
    assert r["verdict"]["forward"].startswith("exploding")
    assert abs(math.log(r["factor_per_layer"]["forward"] / 9)) < 3.29 * r["layers"][-1]["forward"]["band_sd"] / 9
    assert r["verdict"]["cause"].startswith("receptive_field_ignored")
