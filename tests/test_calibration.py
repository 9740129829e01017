"""Calibration: under the null every check's p-value is uniform (conservative for
``bounds_reached`` on rounded 16-bit laws), so Holm's family-wise alpha means what it says.

Each case collects R = 200 p-values from independent seeded runs of a correct initializer
and tests them with the engine's own one-sample KS at CAL_ALPHA = 1e-3.  Why 200 suffices:
the KS then rejects once sup|F - G| >~ 1.95/sqrt(200) = 0.14, which the faults that matter
exceed — a variance standard error off by the kurtosis (normal's 3 used for a uniform's
1.8) moves the p-value CDF by ~0.2, correlated shapes in the fan law (z's equal) by 0.16;
the negative controls below show each one rejected by this very harness (and the plain,
non-randomized PIT on bfloat16 rejected on one large sample, where its bias shows).
The seeds are fixed, so every case is deterministic.
Sizes per run are small (~10^4 values per shape, the z-tests' asymptotic regime) so the
module runs in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mutants
import numpy as np
import pytest

import initspec
from initspec.engine import stats as st
from initspec.spec.reference import build, np_dtype
from initspec.spec.schemes import resolve

RUNS = 200
CAL_ALPHA = 1e-3
SAMPLES = 10_000  # per shape and run: two draws of a 10 240-value tensor, 20 480 values
SHAPES = [(64, 160), (160, 64)]  # the same size, fans swapped: a fan-law group of two
SEED_STEP = 1_000_003  # run i uses seed SEED_STEP * i (every draw's seed is hashed from it)


def _uniform_p(p: list[float]) -> float:
    return st.ks_uniform(np.asarray(p))[1]


def _engine_p_values(scheme: str, init: Callable, dtype: str = "float32") -> dict[str, list[float]]:
    """p-values of R engine runs: per-result checks from the first shape, the group's fan law."""
    out: dict[str, list[float]] = {}
    for i in range(RUNS):
        report = initspec.check(init, scheme=scheme, shapes=SHAPES, dtypes=(dtype,), samples=SAMPLES,
                                seed=SEED_STEP * i)
        for t in report.results[0].tests:  # the fan-law test is shared by the group's results
            if t.p_value is not None:
                out.setdefault(t.name, []).append(t.p_value)
    return out


#: correct initializers written independently of the engine (own fans, own samplers: tests/mutants),
#: so an engine whose fans or laws are wrong sees p-values far from uniform here
TWINS = {"he_normal": mutants.normal_vs(2.0), "glorot_uniform": mutants.uniform_vs(1.0, "fan_avg"),
         "he_truncated_normal": mutants.truncated_vs(2.0)}


@pytest.fixture(scope="module")
def engine_runs() -> dict[str, dict[str, list[float]]]:
    return {scheme: _engine_p_values(scheme, init) for scheme, init in TWINS.items()}


@pytest.mark.parametrize("scheme", ["he_normal", "glorot_uniform", "he_truncated_normal"])
@pytest.mark.parametrize("check", ["variance", "mean", "ks", "fan_law"])
def test_engine_p_values_are_uniform(engine_runs, scheme, check):
    """The fan law included: the two shapes of a run draw from their own hashed seeds, so the
    variance z's it sums are independent (with shared seeds, equal-size shapes give equal z's:
    the last control below)."""
    p = engine_runs[scheme][check]
    assert len(p) == RUNS
    assert _uniform_p(p) > CAL_ALPHA


@pytest.mark.parametrize("scheme", ["glorot_uniform", "he_truncated_normal"])
def test_engine_bounds_reached_is_uniform(engine_runs, scheme):
    """1 - (1 - min)² of the two extreme-value tail probabilities: exactly uniform."""
    p = engine_runs[scheme]["bounds_reached"]
    assert len(p) == RUNS
    assert _uniform_p(p) > CAL_ALPHA


# --- bfloat16: the runner's statistics applied to rounded draws of the exact law --------------


def _rounded_p_values(expr: str, dtype: str) -> dict[str, list[float]]:
    """R runs of SAMPLES rounded values each, tested as the runner tests them."""
    ref = build(resolve(expr), 128, 512, dtype)
    rng = np.random.default_rng(11)
    draws = ref.law.rvs(size=(RUNS, SAMPLES), random_state=rng).astype(np_dtype(dtype)).astype(np.float64)
    out: dict[str, list[float]] = {"variance": [], "mean": [], "ks": [], "bounds_reached": []}
    for x in draws:
        m = st.Moments(shift=ref.mean)
        m.add(x)
        out["variance"].append(st.variance_test(m, ref.var, ref.mu4)[1])
        out["mean"].append(st.mean_test(m, ref.mean, ref.var)[1])
        out["ks"].append(st.ks_uniform(ref.pit(x, rng))[1])
        if ref.bounded:
            out["bounds_reached"].append(st.bounds_reached_test(ref.prob_at_most(m.maximum),
                                                                ref.prob_at_least(m.minimum), m.n))
    return out


@pytest.fixture(scope="module")
def rounded_runs() -> dict[str, dict[str, list[float]]]:
    return {expr: _rounded_p_values(expr, "bfloat16")
            for expr in ("he_truncated_normal", "he_uniform", "normal(std=0.02)")}


@pytest.mark.parametrize("expr", ["he_truncated_normal", "he_uniform", "normal(std=0.02)"])
@pytest.mark.parametrize("check", ["variance", "mean", "ks"])
def test_bfloat16_p_values_are_uniform(rounded_runs, expr, check):
    assert _uniform_p(rounded_runs[expr][check]) > CAL_ALPHA


@pytest.mark.parametrize("expr", ["he_truncated_normal", "he_uniform"])
def test_bfloat16_bounds_reached_is_valid(rounded_runs, expr):
    """On a rounded law the extremes sit on grid points: conservative, P(p <= t) <= t."""
    p = np.asarray(rounded_runs[expr]["bounds_reached"])
    for t in (0.05, 0.1, 0.25, 0.5):
        # one-sided binomial bound: the count may exceed R t by chance, at most ~3.1 sd at 1e-3
        assert (p <= t).sum() <= RUNS * t + 3.1 * math.sqrt(RUNS * t * (1 - t))


# --- negative controls: the harness rejects what it should -------------------------------------


def test_control_plain_cdf_on_bfloat16_is_rejected():
    """Without the randomized PIT a correct bfloat16 sample fails the KS once it is large.

    The plain CDF at a rounded value sits mid-cell, so the PIT's CDF is off by up to half a
    cell's mass (~7e-4 for he_uniform at fan_in 128): the KS sees that from ~10^6 values (at
    the runner's KS sample of ~5e4 it would not yet); at 4e6 values it is rejected while the
    randomized PIT of the same values is not.
    """
    ref = build(resolve("he_uniform"), 128, 512, "bfloat16")
    rng = np.random.default_rng(14)
    x = ref.law.rvs(size=4_000_000, random_state=rng).astype(np_dtype("bfloat16")).astype(np.float64)
    assert st.ks_uniform(np.asarray(ref.cdf(x)))[1] < CAL_ALPHA
    assert st.ks_uniform(ref.pit(x, rng))[1] > CAL_ALPHA


def test_control_wrong_kurtosis_in_the_variance_se_is_rejected():
    """A uniform's variance tested with a normal's fourth moment (3 var² instead of 1.8 var²)."""
    ref = build(resolve("he_uniform"), 128, 512, "float32")
    rng = np.random.default_rng(12)
    p = []
    for x in ref.law.rvs(size=(RUNS, 2 * SAMPLES), random_state=rng):
        m = st.Moments()
        m.add(x)
        p.append(st.variance_test(m, ref.var, 3 * ref.var**2)[1])
    assert _uniform_p(p) < CAL_ALPHA


def test_control_equal_z_in_the_fan_law_is_rejected():
    """Two shapes whose z's are one and the same: chi-square 2 z² is not chi-square(2)."""
    z = np.random.default_rng(13).standard_normal(RUNS)
    p = [st.fan_law_test([v, v])[1] for v in z]
    assert _uniform_p(p) < CAL_ALPHA
