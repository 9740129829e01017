"""The streaming path (chunks, digests, fast CDFs) gives the in-memory statistics."""

import math

import numpy as np
import pytest
from scipy import stats

import initspec.engine.runner as runner
from initspec.engine import stats as st
from initspec.spec.reference import build
from initspec.spec.schemes import resolve


def test_chunked_moments_equal_in_memory_moments():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1_000_003) * 0.05 + 0.01
    m = st.Moments(shift=0.01)
    for i in range(0, x.size, 65_536):
        m.add(x[i:i + 65_536])
    assert m.n == x.size
    assert m.mean == pytest.approx(x.mean(), rel=1e-12, abs=1e-15)
    assert m.var == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert (m.minimum, m.maximum) == (x.min(), x.max())


def test_run_with_tiny_chunks_equals_run_with_one_chunk(monkeypatch):
    """The same run with 1,000-value chunks gives the same verdicts and statistics."""
    from initspec.frameworks.numpy_reference import from_scheme

    def results():
        rep = __import__("initspec").check(from_scheme("glorot_uniform"), scheme="glorot_uniform",
                                           shapes=["512,128", "8,3,5,5"], samples=50_000)
        return [(r.verdict, r.observed, [(t.name, t.statistic, t.p_value) for t in r.tests]) for r in rep.results]

    whole = results()
    monkeypatch.setattr(runner, "CHUNK", 1000)
    chunked = results()
    for (v1, o1, t1), (v2, o2, t2) in zip(whole, chunked, strict=True):
        assert v1 == v2
        assert o1["n"] == o2["n"] and (o1["min"], o1["max"]) == (o2["min"], o2["max"])
        assert o1["mean"] == pytest.approx(o2["mean"], rel=1e-9, abs=1e-15)
        assert o1["var"] == pytest.approx(o2["var"], rel=1e-9)
        for (n1, s1, p1), (n2, s2, p2) in zip(t1, t2, strict=True):
            assert n1 == n2
            if s1 is not None:
                assert s1 == pytest.approx(s2, rel=1e-6, abs=1e-12)
            if p1 is not None:
                assert p1 == pytest.approx(p2, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("expr", ["he_normal", "he_truncated_normal", "glorot_uniform", "tf1_variance_scaling",
                                  "trunc_normal(std=1, a=-0.5, b=3)", "truncated_normal(std=0.1, lower=-3, upper=1)"])
def test_fast_cdf_equals_scipy_stats(expr):
    ref = build(resolve(expr), 75, 200, "float64")
    x = np.linspace(ref.mean - 6 * ref.std, ref.mean + 6 * ref.std, 10_001)
    assert np.abs(ref.cdf(x) - ref.law.cdf(x)).max() < 1e-12


def test_ks_statistic_equals_scipy_kstest():
    rng = np.random.default_rng(5)
    for n, method in ((5_000, "exact"), (20_000, "asymp")):  # below and above the switch to the limit law
        x = rng.standard_normal(n)
        d, p = st.ks_uniform(stats.norm.cdf(x))
        ref = stats.kstest(x, "norm", method=method)
        assert d == pytest.approx(ref.statistic, rel=1e-12)
        assert p == pytest.approx(ref.pvalue, rel=1e-6)


def test_family_distance_and_ks_sample_size():
    assert st.FAMILY_DISTANCE <= st._family_distance() < st.FAMILY_DISTANCE + 1e-4
    n = st.ks_samples_for_power(1e-4 / 1000)
    # the sized KS rejects the ±2σ truncated normal of the same variance with power >= 0.99
    c = stats.kstwobign.isf(1e-7)
    assert math.sqrt(n) * st.FAMILY_DISTANCE - c >= 2.32 / 2


def test_huge_tensor_is_never_copied_whole(monkeypatch):
    """Only CHUNK values at a time become float64: count the float64 allocations' sizes."""
    monkeypatch.setattr(runner, "CHUNK", 10_000)
    seen = []
    real = runner._chunks

    def spy(x):
        for c in real(x):
            seen.append(c.size)
            yield c

    monkeypatch.setattr(runner, "_chunks", spy)
    from initspec.frameworks.numpy_reference import from_scheme

    rep = __import__("initspec").check(from_scheme("he_normal"), scheme="he_normal", shapes=["1000,500"],
                                       samples=20_000)
    assert rep.ok
    assert max(seen) == 10_000 and sum(seen) >= 2 * 500_000
