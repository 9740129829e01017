"""initspec diff across frameworks (the `cross` tox env has torch, keras and flax side by side).

200,000 values a side: the variance test's standard error is ~0.3%, the KS critical D at
alpha 1e-4 is ~0.006, and the differences asserted here are a 3x variance ratio and a
normal vs truncated normal (D = 0.0167), so they are found with certainty.
"""

import importlib.util

import pytest

pytest.importorskip("torch")


def need(module: str) -> None:
    """Skip unless installed (found, not imported: Keras imports its default backend, tensorflow)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def test_torch_xavier_normal_is_not_keras_glorot_normal(run_cli):
    need("keras")
    code, out, _ = run_cli("diff", "torch:xavier_normal_", "keras@torch:GlorotNormal")
    assert code == 1, out
    assert "same variance" in out
    assert "torch:xavier_normal_ looks normal" in out
    assert "keras@torch:GlorotNormal looks truncated normal" in out


def test_torch_linear_default_is_not_flax_dense_default(run_cli):
    need("flax")
    code, out, _ = run_cli("diff", "torch:Linear.weight", "flax:linen.Dense:kernel")
    assert code == 1, out
    assert "variance differs: flax:linen.Dense:kernel / torch:Linear.weight = 3" in out
    assert "torch:Linear.weight looks uniform" in out and "looks truncated normal" in out
