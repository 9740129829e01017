"""The tensorflow binding and adapters/tensorflow.toml: conversion, seeding, fans, a caught
wrong claim, findings.

Every statistical assertion uses a fixed seed and a sample sized so the effect it checks is
many standard errors away from the threshold (the sizes are argued next to each test).
"""

import math
from pathlib import Path

import numpy as np
import pytest

from initspec.frameworks.manifest import Case, load_manifest
from initspec.frameworks.target import parse_target

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.framework("tensorflow")

from initspec.frameworks import tensorflow as binding  # noqa: E402 - after the importorskip

ROOT = Path(__file__).resolve().parent.parent


def drawer(call: str):
    target = parse_target(call)
    return binding.prepare(target.load(), target, "tf")


def test_bfloat16_conversion_is_bit_exact():
    """Every finite and infinite bfloat16 bit pattern survives tf tensor -> numpy unchanged."""
    import ml_dtypes

    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(ml_dtypes.bfloat16)
    keep = ~np.isnan(values.astype(np.float32))
    out = binding.to_numpy(tf.constant(values[keep], dtype=tf.bfloat16))
    assert out.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(out.view(np.uint16), bits[keep])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("call", ["tensorflow.compat.v1:glorot_normal_initializer",
                                  "tensorflow.compat.v1.initializers:he_uniform",
                                  "tensorflow.random:truncated_normal(stddev=0.02)"])
def test_draw_equals_a_direct_seeded_call(call, dtype):
    """The drawer is exactly `tf.random.set_seed(s)` then the initializer (or sampler) with seed=s."""
    x = drawer(call)(Case((64, 96)), dtype, 7)
    t = parse_target(call)
    obj = t.load()
    tf.random.set_seed(7)
    if t.attr == "truncated_normal":
        direct = obj((64, 96), stddev=0.02, dtype=dtype, seed=7)
    else:
        direct = obj(seed=7)((64, 96), dtype=dtype)
    direct = binding.to_numpy(direct)
    assert x.dtype == direct.dtype and x.dtype.name == dtype
    assert np.array_equal(x.view(np.uint8), direct.view(np.uint8))


def test_one_seed_one_tensor_in_eager_mode():
    """In eager mode an op seed alone gives a new tensor on every call; the binding's global
    seed reset makes a seed reproducible, and different seeds differ."""
    init = tf.compat.v1.random_normal_initializer(seed=3)
    assert not np.array_equal(init((16, 16)).numpy(), init((16, 16)).numpy())  # why the reset is needed
    draw = drawer("tensorflow.compat.v1:random_normal_initializer")
    a, b, c = (draw(Case((16, 16)), "float32", s) for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_manifest_fans_are_tensorflow_fans():
    """Every fan the engine uses is init_ops._compute_fans; uniform_unit_scaling's input size
    prod(shape[:-1]) is the engine's fan_in on every shape it is checked on."""
    from tensorflow.python.ops.init_ops import _compute_fans

    checked = 0
    for entry in load_manifest(ROOT / "adapters" / "tensorflow.toml").entries:
        for case in entry.cases:
            assert entry.layout.fans(case.shape) == _compute_fans(case.shape), (entry.id, case.shape)
            if entry.id.startswith("uniform_unit_scaling"):
                assert math.prod(case.shape[:-1]) == entry.layout.fans(case.shape)[0]
            checked += 1
    assert checked > 100


def test_a_wrong_claim_is_caught(claims_are_held):
    """glorot_normal_initializer declared as he_normal: Var 2/fan_in instead of 2/(fan_in +
    fan_out), 5x on (128, 512) and 1.1x on (1000, 96), hundreds of standard errors at the run's
    sample size, so the exit code is 1 with certainty; its true claim exits 0 with probability
    >= 1 - alpha (1e-4) under the fixed seed."""
    body = ('framework = "tensorflow"\nconvention = "tf"\nlayout = "tf"\ndtypes = ["float32"]\n\n'
            '[[entry]]\nid = "claim_under_test"\ncall = "tensorflow.compat.v1:glorot_normal_initializer"\n'
            'claims = "{claim}"\nshapes = [[128, 512], [1000, 96]]\n')
    claims_are_held(body.format(claim="he_normal"), body.format(claim="glorot_truncated_normal"), 2)


def test_v1_variance_scaling_is_the_corrected_truncated_normal_not_contrib():
    """Finding: tf.compat.v1.variance_scaling_initializer is core TF's VarianceScaling, whose
    truncated normal has stddev sqrt(scale/n)/0.8796 (variance exactly scale/n), not the removed
    tf.contrib.layers one (stddev sqrt(1.3 scale/n), variance 1.0058 scale/n, cut at 2.28 std).

    2^22 values on (2048, 2048): the variance ratio's SE is sqrt((k - 1)/n) = 0.00057
    (k = 2.36 for a +-2 std truncated normal), so |ratio - 1| < 0.0029 (5 SE) holds for the
    corrected law and fails for contrib's 1.0058 (5.1 SE beyond the band).  No value exceeds the
    corrected bound 2/0.8796 = 2.2737 std; contrib would put 1.2e-3 of its values beyond it.
    """
    x = drawer("tensorflow.compat.v1:variance_scaling_initializer(scale=2.0)")(
        Case((2048, 2048)), "float32", 0).astype(np.float64)
    var = 2.0 / 2048
    assert abs(x.var() / var - 1) < 5 * math.sqrt(1.36 / x.size)
    assert np.abs(x).max() <= 2 / 0.87962566103423978 * math.sqrt(var) * (1 + 1e-6)


def test_bfloat16_uniform_is_a_128_point_lattice():
    """Finding: tf.random.uniform(bfloat16) takes 128 values k/128; U(0, 1) rounded to bfloat16
    takes >= 2000 distinct values in 2^20 draws and rounds up to 1.0 with probability 2^-9
    (2048 expected, SE 45); the lattice's top is 1 - 2^-7 and its mean 127/256 (z = -14 at n = 2^20)."""
    x = binding.to_numpy(tf.random.uniform((2**20,), dtype=tf.bfloat16, seed=1)).astype(np.float64)
    assert np.unique(x).size <= 128
    assert x.max() == 1 - 2**-7
    assert (x - 0.5).mean() * math.sqrt(12 * x.size) < -8


def test_float16_orthogonal_is_computed_in_half_precision():
    """Finding: orthogonal_initializer(float16) runs QR in float16: max |W Wᵀ - I| on (1000, 96)
    is above 8 eps (0.0079), while the float32 draw rounded to float16 stays below 2e-4."""
    def gram_error(w: np.ndarray) -> float:
        w = w.astype(np.float64)
        return float(np.abs(w.T @ w - np.eye(w.shape[1])).max())

    draw = drawer("tensorflow.compat.v1:orthogonal_initializer")
    half = draw(Case((1000, 96)), "float16", 0)
    single = draw(Case((1000, 96)), "float32", 0).astype(np.float16)
    assert gram_error(half) > 8 * np.finfo(np.float16).eps
    assert gram_error(single) < 2e-4
