"""The law algebra (initspec.audit.trace.laws): each rule is an identity of distributions.

Exact rules are checked exactly (parameters); the two rules that rest on a change of variables
(erfinv of a uniform, the affine map of a cut normal) are also checked by simulation: 200,000
draws through numpy/scipy's own erfinv against the law's exact CDF, KS at alpha 1e-6.  Power: a
KS test on 2e5 values rejects a CDF off by 0.012 (c(1e-6)/sqrt(n) = 2.62/447) -- a cut normal
with a 10% wrong scale is off by more than 0.03 -- and seeded, so it never flakes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import special, stats

from initspec.audit.trace import Site, Traced, Write
from initspec.audit.trace import laws as L
from initspec.spec.schemes import resolve

PHI_M2, PHI_P2 = float(special.ndtr(-2.0)), float(special.ndtr(2.0))


def _trunc_normal_ops(mean: float, std: float, a: float, b: float) -> L.Law:
    """torch.nn.init.trunc_normal_'s own sequence (torch/nn/init.py _no_grad_trunc_normal_)."""
    lo, hi = special.ndtr((a - mean) / std), special.ndtr((b - mean) / std)
    law = L.uniform(2 * lo - 1, 2 * hi - 1)
    law = L.erfinv(law)
    law = L.affine(law, std * math.sqrt(2.0))
    law = L.affine(law, 1.0, mean)
    return L.clamp(law, a, b)


def test_trunc_normal_sequence_is_the_cut_normal():
    law = _trunc_normal_ops(0.1, 0.5, -0.4, 0.8)
    assert law.kind == "truncated_normal"
    assert L.same_law(law, L.from_scheme("trunc_normal(mean=0.1, std=0.5, a=-0.4, b=0.8)", 1, 1))
    assert (law.low, law.high) == (-0.4, 0.8)  # the clamp's exact bounds, not erfinv's rounding


def test_vit_trunc_normal_is_a_plain_normal():
    """trunc_normal_(std=0.02): a, b = ±2 are absolute, 100 std away -- no cut a sampler can reach."""
    law = _trunc_normal_ops(0.0, 0.02, -2.0, 2.0)
    assert law.kind == "normal" and law.std == pytest.approx(0.02, rel=1e-12)
    assert law.scheme() == f"normal(std={law.std!r})"
    assert L.same_law(law, L.from_scheme("normal(std=0.02)", 1, 1))


def test_erfinv_of_a_uniform_by_simulation():
    rng = np.random.default_rng(20261206)
    u = rng.uniform(2 * PHI_M2 - 1, 2 * PHI_P2 - 1, 200_000)
    x = special.erfinv(u) * 0.3 * math.sqrt(2.0) + 0.05
    law = L.affine(L.affine(L.erfinv(L.uniform(2 * PHI_M2 - 1, 2 * PHI_P2 - 1)), 0.3 * math.sqrt(2)), 1.0, 0.05)
    ref = stats.truncnorm((law.low - law.mean) / law.std, (law.high - law.mean) / law.std, law.mean, law.std)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-6
    wrong = stats.truncnorm(-2, 2, 0.05, 0.33)  # 10% off in scale: rejected
    assert stats.kstest(x, wrong.cdf).pvalue < 1e-6


def test_erfinv_of_the_whole_interval_is_the_normal():
    assert L.same_law(L.erfinv(L.uniform(-1.0, 1.0)), L.normal(0.0, math.sqrt(0.5)))
    assert L.erfinv(L.normal(0, 1)).kind == "opaque"


def test_erfinv_of_the_float32_grid_end_is_the_normal():
    """JAX's normal: √2·erfinv(U(nextafter(-1, 0), 1)) in float32 (jax/_src/random/core.py,
    _normal_real) is N(0, 1), not N(0, 1) cut at -5.42: the end is the float32 grid's, no cut."""
    lo = float(np.nextafter(np.float32(-1), np.float32(0)))
    law = L.affine(L.erfinv(L.uniform(lo, 1.0)), float(np.float32(math.sqrt(2))))
    assert law.kind == "normal" and L.same_law(law, L.normal(0.0, 1.0))
    # an end one float32 step further in is still the grid's end; a real cut stays a cut
    assert L.erfinv(L.uniform(-1.0 - 1e-7, 1.0)).kind == "normal"
    assert L.erfinv(L.uniform(-0.9999, 1.0)).kind == "truncated_normal"
    assert L.erfinv(L.uniform(-1.01, 1.0)).kind == "opaque"


def test_affine_rules():
    assert L.affine(L.normal(1.0, 2.0), -3.0, 0.5) == L.normal(-2.5, 6.0)
    assert L.affine(L.uniform(-1.0, 2.0), -2.0) == L.uniform(-4.0, 2.0)
    assert L.affine(L.normal(0, 1), 0.0, 7.0) == L.constant(7.0)
    assert L.affine(L.constant(2.0), 3.0, 1.0) == L.constant(7.0)
    assert L.affine(L.UNWRITTEN, 2.0).kind == "opaque"
    assert L.affine(L.normal(0, 1), math.inf).kind == "opaque"
    cut = L.affine(L.truncated_normal(0.0, 1.0, -2.0, 2.0), -0.5, 1.0)
    assert cut == L.truncated_normal(1.0, 0.5, 0.0, 2.0)


def test_clamp_that_cuts_is_opaque_never_a_truncation():
    """clamp piles the tails' mass on the bounds: a censored law, not N cut at the bounds."""
    assert L.clamp(L.normal(0, 1), -2, 2).kind == "opaque"
    assert L.clamp(L.uniform(0, 1), 0.5, None).kind == "opaque"
    assert L.clamp(L.uniform(-1, 1), -1, 1) == L.uniform(-1, 1)
    assert L.clamp(L.constant(5.0), None, 3.0) == L.constant(3.0)


@pytest.mark.parametrize(("expr", "fans", "kind"), [
    ("kaiming_normal(mode=fan_out, nonlinearity=relu)", (27, 64 * 9), "normal"),
    ("glorot_uniform", (100, 300), "uniform"),
    ("glorot_truncated_normal", (100, 300), "truncated_normal"),
    ("torch_linear_default", (128, 64), "uniform"),
    ("zeros", (1, 1), "constant"),
    ("orthogonal", (8, 8), "opaque"),
])
def test_from_scheme_matches_the_reference(expr, fans, kind):
    law = L.from_scheme(expr, *fans)
    assert law.kind == kind
    if law.random:
        from initspec.spec.reference import build

        ref = build(resolve(expr), fans[0], fans[1], "float64")
        assert L._var(law) == pytest.approx(ref.var, rel=1e-12)


def test_declared_law_compared_exactly():
    """kaiming_normal_(mode='fan_out', nonlinearity='relu') on a 64x3x3x3 conv: std sqrt(2/576)."""
    drawn = L.normal(0.0, math.sqrt(2.0) / math.sqrt(64 * 9))
    assert L.same_law(drawn, L.from_scheme("kaiming_normal(mode=fan_out, nonlinearity=relu)", 27, 576))
    assert not L.same_law(drawn, L.from_scheme("kaiming_normal(nonlinearity=relu)", 27, 576))
    assert L.ratio(L.normal(0, 0.02 * math.sqrt(8)), L.normal(0, 0.02)) == pytest.approx(8.0)


finite = hs.floats(-1e3, 1e3, allow_nan=False)
positive = hs.floats(1e-6, 1e3, allow_nan=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(hs.one_of(
    hs.builds(L.normal, finite, positive),
    hs.builds(lambda a, w: L.uniform(a, a + w), finite, positive),
    hs.builds(lambda m, s, a, w: L.truncated_normal(m, s, m + a * s, m + (a + w) * s),
              finite, positive, hs.floats(-5, 3), hs.floats(0.5, 5)),
    hs.builds(L.constant, finite),
))
def test_a_law_resolves_back_to_itself(law):
    """Law.scheme() is an expression of the spec vocabulary that gives the same law again."""
    expr = law.scheme()
    resolve(expr)
    assert L.same_law(L.from_scheme(expr, 1, 1), law, rtol=1e-9)


def test_traced_record_orders_writes():
    site = Site("/x/modeling.py", 10, "_init_weights")
    first = Write(L.uniform(-1, 1), site, ("uniform_",))
    last = Write(L.normal(0, 0.02), site, ("normal_",), declared="normal(std=0.02)")
    row = Write(L.constant(0.0), site, ("fill_",), region="row 0")
    t = Traced("wte.weight", last.law, [first, last, row])
    assert t.last is last and t.shadowed == [first] and t.regions == [row]
    assert str(site) == "modeling.py:10 in _init_weights"
