"""Exact reference laws, including the rounded 16-bit ones."""

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from initspec.engine.stats import ks_uniform
from initspec.spec.reference import build
from initspec.spec.schemes import resolve


def ref(expr, fan_in=75, fan_out=200, dtype="float64"):
    return build(resolve(expr), fan_in, fan_out, dtype)


def test_variance_scaling_variances():
    assert ref("glorot_normal").var == pytest.approx(2 / 275)
    assert ref("glorot_uniform").upper == pytest.approx(math.sqrt(6 / 275))
    assert ref("he_uniform").var == pytest.approx(2 / 75)
    assert ref("lecun_normal(mode=fan_out)").var == pytest.approx(1 / 200)
    assert ref("variance_scaling(scale=1, mode=fan_geo_avg, distribution=normal)").var == pytest.approx(
        1 / math.sqrt(75 * 200))
    assert ref("torch_linear_default").upper == pytest.approx(1 / math.sqrt(75))


def test_truncation_correction():
    # Keras/JAX: the pre-truncation std is divided by 0.87962566103423978, so Var is exactly scale/n
    corrected = ref("he_truncated_normal")
    assert corrected.var == pytest.approx(2 / 75, rel=1e-12)
    assert corrected.upper == pytest.approx(2 * math.sqrt(2 / 75) / 0.87962566103423978, rel=1e-12)
    uncorrected = ref("variance_scaling(scale=2, distribution=truncated_normal, truncation_correction=none)")
    assert uncorrected.var == pytest.approx(2 / 75 * 0.87962566103423978**2, rel=1e-12)
    tf1 = ref("tf1_variance_scaling")
    assert tf1.var == pytest.approx(1.3 * 2 / 75 * 0.87962566103423978**2, rel=1e-12)


def test_truncated_bounds_std_units_versus_absolute():
    std_units = ref("truncated_normal(std=0.5)")
    assert (std_units.lower, std_units.upper) == (-1.0, 1.0)
    absolute = ref("trunc_normal(std=0.5, a=-2, b=2)")  # torch: a, b absolute -> barely truncated
    assert (absolute.lower, absolute.upper) == (-2.0, 2.0)
    assert absolute.var == pytest.approx(stats.truncnorm(-4, 4, scale=0.5).var())


def test_rounded_bfloat16_law_has_exact_moments_and_support():
    r = ref("glorot_uniform", dtype="bfloat16")
    limit = math.sqrt(6 / 275)
    assert r.upper == float(np.asarray(limit).astype(ml_dtypes.bfloat16))
    assert r.pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert r.var == pytest.approx(limit**2 / 3, rel=1e-3)


def test_plain_ks_rejects_correct_bfloat16_but_the_rounded_reference_does_not():
    """The issue's measurement: a KS against the continuous law rejects correct bfloat16 output."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4_000_000) * 0.05).astype(ml_dtypes.bfloat16).astype(np.float64)
    r = ref("normal(std=0.05)", dtype="bfloat16")
    _, p_plain = ks_uniform(r.law.cdf(x))
    _, p_rounded = ks_uniform(r.pit(x, np.random.default_rng(2)))
    assert p_plain < 1e-4
    assert p_rounded > 1e-3
