"""Verdicts: each group's law identified from its evidence, and checked against the spec's rule
(variance, mean, KS, support; Holm over the whole model; the diagnosis catalogue plus the
model-level ``not_constant``, ``constant``, ``wrong_scale``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initspec.audit.report import FLOATS, Group, observed
from initspec.engine import stats as st
from initspec.engine.runner import Evidence, Result, Test
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference


def in_dtype(value: float, dtype: str) -> float:
    """A number as a parameter of this dtype holds it (the value a constant fill leaves)."""
    from initspec.spec.reference import np_dtype

    try:
        return float(np.asarray(value, dtype=np_dtype(dtype)))
    except (TypeError, ValueError, OverflowError, InputError):
        return value


def planned_tests(g: Group) -> int:
    if g.rule is None or g.rule.scheme.kind in ("constant", "orthogonal"):
        return 0
    ref = build_reference(g.rule.scheme, g.fan_in, g.fan_out, g.dtype) if g.dtype in FLOATS else None
    return 0 if ref is None else 4 if ref.bounded else 3


def identify_group(g: Group, seed: int) -> None:
    from initspec.engine.identify import ShapeSample, rank_samples, same_presets

    if g.error or g.dtype not in FLOATS or not g.moments.n:
        g.identified = (g.error and "—") or f"({g.dtype}: not identified)"
        return
    sample = g.sample()
    if sample.size < 2:
        g.identified = "(too few values)"
        return
    s = ShapeSample(g.shape, g.fan_in, g.fan_out, sample, g.dtype)
    m = g.moments
    if not g.constant:  # the full stream's sufficient statistics; the bounded sample serves the KS
        s.n, s.mean, s.var, s.lo, s.hi = m.n, m.mean, m.var, m.minimum, m.maximum
        s.s1 = m.n * m.mean
        s.s2 = m.m2 + m.n * m.mean * m.mean
    try:
        ident = rank_samples([s], get_layout(g.layout), name=g.name, seed=seed, fitted_scale=False)
    except Exception as e:  # noqa: BLE001 - a failed identification is shown, never fatal
        g.identified = f"(identification failed: {type(e).__name__}: {e})"
        return
    best = ident.best
    if best is None:
        g.identified = "(no candidate)"
        return
    g.same_as = same_presets(best.scheme)
    if g.default and g.default not in g.same_as and _same_law(g.default, best.scheme, s):
        g.same_as.append(g.default)  # on this group's fans the default's law is the identified one
    g.identified_expr = best.expr
    if g.default and g.default in g.same_as:
        g.identified = f"{g.default} (layer default)"
    elif best.scheme.kind == "constant":
        v = best.scheme.params["value"]
        g.identified = "zeros" if v == 0 else "ones" if v == 1 else best.expr
    else:
        names = [n for n in g.same_as if n not in ("variance_scaling",)]
        g.identified = best.expr + (f" (= {', '.join(names[:3])})" if names else "")
    if not ident.consistent:
        g.identified += " [no candidate fits]"


def _same_law(expr: str, scheme: Any, s: Any) -> bool:
    """Whether scheme expression ``expr`` gives the same law as ``scheme`` on sample ``s``'s fans
    (on a square kernel glorot_uniform is lecun_uniform; identify names only one of them)."""
    from initspec.engine.identify import _law_key
    from initspec.spec.schemes import resolve

    try:
        return _law_key(resolve(expr), [s]) == _law_key(scheme, [s])
    except Exception:  # noqa: BLE001 - a law without a continuous form (constant, orthogonal) is not compared
        return False


def lock_expr(g: Group) -> str | None:
    """The simplest consistent expression of a group's law, for --write-spec: the traced law where the
    trace knows it exactly (with the scheme the code named), else the drawn identification."""
    if g.traced is not None:
        from initspec.audit.evidence import lock_expr as traced_expr

        expr = traced_expr(g)
        if expr:
            return expr
    return drawn_expr(g)


def drawn_expr(g: Group) -> str | None:
    """The simplest consistent expression of the drawn identification (a layer default or preset name)."""
    if not g.identified_expr:
        return None
    if g.default and g.default in g.same_as:
        return g.default
    if g.identified in ("zeros", "ones"):
        return g.identified
    named = [n for n in g.same_as if n != "variance_scaling"]
    if g.identified_expr.startswith("variance_scaling(") and named:
        return named[0]  # lecun_normal rather than variance_scaling(scale=1.0, mode=fan_in, ...)
    return g.identified_expr


def check_groups(groups: list[Group], target: str, seed: int, alpha: float, alpha_each: float) -> None:
    from initspec.engine.diagnosis import diagnose_group

    results = []
    for g in groups:
        if g.rule is None:
            continue
        scheme = g.rule.scheme
        r = Result(id=g.name, entry=g.name, target=target, convention="audit", scheme=g.rule.expr,
                   layout=g.layout, shape=g.shape, dtype=g.dtype, fan_in=g.fan_in, fan_out=g.fan_out, seed=seed,
                   repro=f"initspec audit {target} --seed {seed}")
        g.result = r
        results.append(r)
        m = g.moments
        if g.error:
            r.error = g.error
            continue
        if g.dtype not in FLOATS:
            r.error = f"dtype {g.dtype}: not a floating-point parameter"
            continue
        if g.nonfinite:
            r.fail("finite", f"{g.nonfinite} values are NaN or infinite")
            continue
        r.observed = observed(g)
        if scheme.kind == "constant":
            v = in_dtype(float(scheme.params["value"]), g.dtype)  # 1e-6 is stored as 9.99999997e-07 in float32
            ok = m.minimum == v and m.maximum == v
            r.expected = {"value": v}
            r.tests.append(Test("constant", passed=ok, detail="" if ok else
                                f"expected every value {v:g}, got range [{m.minimum:.4g}, {m.maximum:.4g}], "
                                f"var {m.var:.4g}"))
            continue
        if scheme.kind == "orthogonal":
            gain = float(scheme.params.get("gain", 1.0))
            tol = 1e-3 * gain**2 + 1e-4
            r.expected = {"gram": gain**2, "tolerance": tol}
            r.tests.append(Test("orthogonal", statistic=g.orth_dev, passed=g.orth_dev <= tol,
                                detail="" if g.orth_dev <= tol else f"max |W Wᵀ - gain² I| = {g.orth_dev:.3g}"))
            continue
        ref = build_reference(scheme, g.fan_in, g.fan_out, g.dtype)
        if ref is None:
            r.error = f"{scheme.kind} laws are not checked by the audit"
            continue
        r.expected = ref.expected()
        tests, ks_sample = law_tests(g, ref, seed, alpha_each)
        r.tests += tests
        r.power = st.variance_power(m.n, ref.kurtosis, alpha_each)
        r.evidence = Evidence(scheme, ref, ks_sample[:32_768], tests[1].statistic, get_layout(g.layout))
    tests = [t for r in results for t in r.tests if t.p_value is not None]
    for t, rejected in zip(tests, st.holm([t.p_value for t in tests], alpha), strict=True):
        t.passed = not rejected
    by_result = {id(g.result): g for g in groups if g.result is not None}
    for r in results:
        r.verdict = "error" if r.error else "fail" if r.failed_tests else "pass"
        diagnose_group([r])
        if r.verdict == "fail":
            model_level = _model_diagnosis(by_result[id(r)], r)
            known = [d for d in r.diagnosis if d["id"] != "unknown"]
            r.diagnosis = known + model_level + [d for d in r.diagnosis if d["id"] == "unknown"]
            if not r.diagnosis:
                r.diagnosis = [{"id": "unknown", "confidence": 0.0, "message": "; ".join(
                    t.detail or t.name for t in r.failed_tests)}]


def law_tests(g: Group, ref: Any, seed: int, alpha_each: float) -> tuple[list[Test], np.ndarray]:
    """The drawn values of a group against one exact reference law: finite, variance, mean, KS
    (and support, bounds reached for a bounded law), and the sample the KS test read.  p-valued
    tests get ``passed`` from the caller's Holm."""
    m = g.moments
    sample = g.sample()
    rng = np.random.default_rng([seed, 104729])
    n_ks = st.ks_samples_for_power(alpha_each)
    ks_sample = sample if sample.size <= n_ks else sample[np.sort(rng.choice(sample.size, n_ks, replace=False))]
    z_var, p_var = st.variance_test(m, ref.var, ref.mu4)
    z_mean, p_mean = st.mean_test(m, ref.mean, ref.var)
    d, p_ks = st.ks_uniform(ref.pit(ks_sample, rng))
    tests = [Test("finite", passed=True),
             Test("variance", z_var, p_var, detail=f"observed/expected var = {m.var / ref.var:.5g}"),
             Test("mean", z_mean, p_mean),
             Test("ks", d, p_ks, detail=f"KS on {ks_sample.size} values against the exact reference CDF")]
    if ref.bounded:
        tol = 2 * np.finfo(np.float32).eps if g.dtype != "float64" else 1e-12
        lo, hi = ref.lower - tol * abs(ref.lower), ref.upper + tol * abs(ref.upper)
        outside = m.minimum < lo or m.maximum > hi
        tests.append(Test("support", passed=not outside, detail="" if not outside else
                          f"values outside [{ref.lower:.6g}, {ref.upper:.6g}] (observed range "
                          f"[{m.minimum:.6g}, {m.maximum:.6g}])"))
        tests.append(Test("bounds_reached", None, st.bounds_reached_test(
            ref.prob_at_most(m.maximum), ref.prob_at_least(m.minimum), m.n),
            detail=f"min {m.minimum:.6g} / max {m.maximum:.6g}"))
    return tests, ks_sample


def _model_diagnosis(g: Group, r: Result) -> list[dict[str, Any]]:
    """What the catalogue cannot say about a model's group: a constant where a law was declared and
    the other way round, or the declared law off by a plain factor (a gain applied or forgotten)."""
    m = g.moments
    constant = next((t for t in r.failed_tests if t.name == "constant"), None)
    if constant is not None:
        return [{"id": "not_constant", "confidence": 1.0, "message": constant.detail}]
    orth = next((t for t in r.failed_tests if t.name == "orthogonal"), None)
    if orth is not None:
        return [{"id": "not_orthogonal", "confidence": 1.0, "message": f"{orth.detail}; identified {g.identified}"}]
    if not m.n:
        return []
    if g.constant:
        return [{"id": "constant", "confidence": 1.0, "message": f"every value is {m.minimum:g} (identified "
                 f"{g.identified}), declared the random law {r.scheme}"}]
    exp = r.expected.get("var")
    if exp and math.isfinite(m.var) and m.var > 0 and any(t.name == "variance" for t in r.failed_tests):
        from fractions import Fraction

        ratio = m.var / exp
        f = Fraction(ratio).limit_denominator(16)
        plain = f"; the variance off by {f}" if f and abs(float(f) / ratio - 1) < 0.02 and f != 1 else ""
        return [{"id": "wrong_scale", "confidence": 0.5,
                 "message": f"observed std is {math.sqrt(ratio):.4g}× the declared (var obs/exp {ratio:.4g}"
                            f"{plain}); identified {g.identified}"}]
    return []
