"""What a stack run through a framework's autograd must show, whatever the framework:
test_torch.py and test_jax.py call these in their own tox env (one framework per process)."""

from __future__ import annotations

import numpy as np
import pytest

from initspec.propagate import stack
from initspec.propagate.activations import get_activation
from initspec.propagate.run import propagate

ACTIVATIONS = ["relu", "leaky_relu(0.2)", "tanh", "selu", "gelu", "silu", "softplus", "elu(0.5)"]


def small(backend: str) -> dict:
    """Depth 20, width 256, batch 64: the band at this size is derived in test_stack.py."""
    return {"depth": 20, "width": 256, "batch": 64, "backend": backend}


def assert_autograd_equals_the_numpy_pass(backend: str, act: str, conv: bool) -> None:
    """Forward moments and hand-written numpy gradients equal the framework's, to float32 rounding."""
    a = get_activation(act)
    layers = stack.conv_layers(3, 4, 3) if conv else stack.mlp_layers([7, 6, 5, 4])
    params = stack.draw_stack(layers, stack.scheme_weights("he_normal"), 0.1, 0)
    x, r = stack._inputs(layers, 3, 0)
    hn, gn = stack._run_numpy(params, a, x, r)
    ht, gt = getattr(stack, f"_run_{backend}")(params, a, x, r)
    for u, v in zip(hn + gn, ht + gt, strict=True):
        np.testing.assert_allclose(u, v, rtol=2e-4, atol=1e-5)


def assert_he_relu_is_preserved(backend: str) -> None:
    r = propagate("he_normal", "relu", **small(backend))
    assert r["verdict"]["ok"] and r["factor_per_layer"]["forward"] == pytest.approx(1.0, rel=0.11)
