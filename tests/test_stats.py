"""The statistics against numbers derived here, independently of the engine's constants.

Holm's method is checked on p-values whose rejections are known by hand (the step-down
stop, ties, p exactly at its threshold) and against a brute-force closed-testing definition.
The sample size is derived from the formula docs/how/statistics.md states, with scipy, and compared with
that page's table and with the n the runner actually plans for ``check numpy``.  The power
claim ("a 1% error in std is caught with power 0.99 on each shape") is tested on ONE shape,
so no fan-law test over several shapes can rescue an undersized sample.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats

import initspec
import initspec.engine.runner as runner
from initspec.engine import stats as st
from initspec.frameworks.manifest import load_manifest, manifest_path

# --- Holm --------------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "alpha", "rejected"), [
    # sorted 0.005 <= .05/4, 0.014 <= .05/3, 0.03 > .05/2: stop.  Bonferroni (.05/4 = 0.0125)
    # would reject only 0.005, no correction all four: both differ from Holm here.
    ([0.014, 0.04, 0.03, 0.005], 0.05, [True, False, False, True]),
    # the step-down stop: 0.0299 <= alpha/1 would pass its own threshold, but 0.016 > alpha/2
    # failed before it (a step-up method, Hochberg's, would reject all three)
    ([0.001, 0.016, 0.0299], 0.03, [True, False, False]),
    # ties get one decision: both tested against alpha/2 first
    ([0.02, 0.02], 0.03, [False, False]),
    ([0.01, 0.01, 0.01], 0.03, [True, True, True]),
    # p exactly at its threshold is rejected (<=); powers of two so the thresholds are exact
    ([2**-5, 2**-4], 2**-4, [True, True]),
    ([2**-5 + 2**-30, 2**-4], 2**-4, [False, False]),
    ([0.0, 1.0], 0.5, [True, False]),
    ([1.0], 1.0, [True]),
    ([], 0.05, []),
])
def test_holm_known_rejections(p, alpha, rejected):
    assert st.holm(p, alpha) == rejected


def test_holm_alpha_over_m_is_the_first_step_on_a_large_family():
    """The runner's case: one deviation among many; it is rejected iff p <= alpha/m."""
    m, alpha = 1366, 1e-4
    rest = [0.5] * (m - 1)
    assert st.holm([alpha / m, *rest], alpha)[0] is True
    assert st.holm([alpha / m * 1.001, *rest], alpha)[0] is False
    # a false alarm at 1e-6 (far below alpha, far above alpha/m) must not be rejected
    assert not any(st.holm([1e-6, *rest], alpha))


def _closed_testing(p: list[float], alpha: float) -> list[bool]:
    """Holm by its definition: H_i is rejected iff every intersection containing it is
    rejected by Bonferroni (min p over the subset <= alpha / its size)."""
    m = len(p)
    out = []
    for i in range(m):
        others = [j for j in range(m) if j != i]
        out.append(all(min(p[j] for j in (i, *sub)) <= alpha / (len(sub) + 1)
                       for r in range(m) for sub in itertools.combinations(others, r)))
    return out


@settings(max_examples=300, deadline=None, derandomize=True)
@given(hs.lists(hs.sampled_from([0.0, 1e-4, 0.001, 0.004, 0.005, 0.01, 0.0125, 0.02, 0.025, 0.04, 0.05, 0.3, 1.0])
                | hs.floats(0, 1), min_size=0, max_size=6),
       hs.sampled_from([0.01, 0.05, 0.1]))
def test_holm_is_closed_testing_with_bonferroni(p, alpha):
    """Small p-values from a grid that makes ties and exact thresholds common (0.05/4 = 0.0125)."""
    assert st.holm(p, alpha) == _closed_testing(p, alpha)


# --- sample size -------------------------------------------------------------------------

README_M = 1366  # p-values of `initspec check numpy`, as docs/how/statistics.md states
README_N = {"normal": 297_810, "truncated_normal": 203_335, "uniform": 119_124}


def _kurtosis(law: str) -> float:
    """mu4 / sigma^4, from scipy."""
    dist = {"normal": stats.norm(), "truncated_normal": stats.truncnorm(-2, 2), "uniform": stats.uniform()}[law]
    return float(dist.stats(moments="k")) + 3.0


def _derived_n(kurtosis: float, alpha_each: float, error: float = 0.01, power: float = 0.99) -> int:
    """The manual's rule (docs/how/statistics.md): n >= (k - 1)(z_{1-a/2} + z_P f)² / r², f = (1 ± e)²,
    r = f - 1, the larger direction."""
    za, zp = stats.norm.isf(alpha_each / 2), stats.norm.ppf(power)
    return math.ceil(max((kurtosis - 1) * (za + zp * f) ** 2 / (f - 1) ** 2
                         for f in ((1 + error) ** 2, (1 - error) ** 2)))


@pytest.mark.parametrize("law", sorted(README_N))
def test_readme_sample_sizes_follow_from_the_readme_formula(law):
    assert _derived_n(_kurtosis(law), 1e-4 / README_M) == README_N[law]


def test_check_numpy_plans_the_derived_sample_sizes(monkeypatch):
    """The runner's own plan of `check numpy` (draws replaced by a recorder): its family has
    the manual's m, and each float32 shape of a normal, truncated and uniform entry asks for
    exactly the derived n."""
    seen: dict[str, tuple[int, float]] = {}

    def record(job, drawer, n_req, max_draws, seed, alpha_each, *_):
        seen[job.result.id] = (n_req, alpha_each)

    monkeypatch.setattr(runner, "_execute", record)
    entries = load_manifest(manifest_path("numpy")).entries
    runner.run(entries, framework="numpy")
    assert len(seen) == 426
    assert all(a == pytest.approx(1e-4 / README_M, rel=1e-12) for _, a in seen.values())
    for entry, law in (("he_normal", "normal"), ("he_truncated_normal", "truncated_normal"),
                       ("he_uniform", "uniform")):
        planned = {rid: n for rid, (n, _) in seen.items() if rid.startswith(f"{entry}[") and rid.endswith("-float32]")}
        assert len(planned) == 5
        assert set(planned.values()) == {README_N[law]}, (entry, planned)


# --- power on one shape ---------------------------------------------------------------------

SHAPE = (512, 128)  # torch layout: fan_in 128


def _he_normal_times(factor: float):
    """N(0, 2/fan_in) with its std multiplied by `factor`; fans written out here (torch layout)."""
    def init(rng, shape, dtype):
        fan_in = shape[1] * math.prod(shape[2:])
        return (rng.standard_normal(shape) * factor * math.sqrt(2.0 / fan_in)).astype(dtype)
    return init


@pytest.mark.parametrize("factor", [0.99, 1.01])
def test_one_percent_std_error_on_one_shape_is_rejected(factor):
    """One shape, default settings: the family is variance, mean, KS (m = 3), so n is derived
    at alpha/3 and the variance test alone must reject, with power >= 0.99 by construction
    (the -1% direction is the one that sets n).  With n sized for a 3% error (~1/9 of it) the
    power against 1% would be ~0.02: this test then fails.  Seeded, so it is deterministic;
    the seed is not chosen, any seed passes with probability >= 0.99."""
    report = initspec.check(_he_normal_times(factor), scheme="he_normal", shapes=[SHAPE])
    [r] = report.results
    n_req = _derived_n(3.0, 1e-4 / 3)
    size = math.prod(SHAPE)
    assert r.observed["n"] == math.ceil(n_req / size) * size  # whole draws until n_req
    failed = {t.name for t in r.failed_tests}
    assert "variance" in failed, r.tests
    assert report.exit_code == 1
    # the reported power, recomputed here: P(|z| > z_a) when the true variance is 0.99² of the claim
    n, za, f = r.observed["n"], stats.norm.isf(1e-4 / 3 / 2), 0.99**2
    se0 = math.sqrt(2 / n)
    assert r.power == pytest.approx(float(stats.norm.sf((za * se0 - (1 - f)) / (se0 * f))), rel=1e-9)
    assert r.power >= 0.99


def test_correct_twin_on_one_shape_passes():
    report = initspec.check(_he_normal_times(1.0), scheme="he_normal", shapes=[SHAPE])
    assert report.ok, [t for t in report.results[0].tests if t.passed is False]


# --- the single tests' arithmetic -------------------------------------------------------------


def test_variance_test_standard_error_is_the_exact_one():
    """Var(s²) = (mu4 - sigma⁴ (n-3)/(n-1)) / n for i.i.d. samples: here for a uniform."""
    m = st.Moments()
    x = np.random.default_rng(3).uniform(-1, 1, 10_001)
    m.add(x)
    var, mu4 = 1 / 3, 1 / 5  # U(-1, 1)
    n = x.size
    z, p = st.variance_test(m, var, mu4)
    assert z == pytest.approx((x.var(ddof=1) - var) / math.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n), rel=1e-9)
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)


def test_moments_merge_chunks_like_one_pass():
    x = np.random.default_rng(4).normal(0.3, 2.0, 50_000)
    m = st.Moments(shift=0.3)
    for part in np.array_split(x, 7):
        m.add(part)
    assert m.n == x.size
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.var == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert (m.minimum, m.maximum) == (x.min(), x.max())


def test_fan_law_is_chi_square():
    z = [1.0, -2.0, 0.5]
    chi2, p = st.fan_law_test(z)
    assert chi2 == pytest.approx(5.25)
    assert p == pytest.approx(stats.chi2.sf(5.25, 3))
