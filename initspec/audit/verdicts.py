"""Verdicts: each group's law identified from its evidence, and checked against the spec's rule
(variance, mean, KS, support; Holm over the whole model; the diagnosis catalogue plus the
model-level ``not_constant``, ``constant``, ``wrong_scale``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from initspec.audit.report import FLOATS, Group, observed
from initspec.audit.structure import normalized, rows_text
from initspec.engine import stats as st
from initspec.engine.runner import Evidence, Result, Test
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference


def missing_rules(spec: Any, paths: list[str]) -> list[dict[str, str]]:
    """The spec's lines that matched no parameter: a ``missing`` row each (renamed or removed, or every
    match taken by an earlier line), so the other lines are still checked."""
    import fnmatch

    if spec is None:
        return []
    out = []
    for i, r in enumerate(spec.rules):
        if r.matched:
            continue
        hits = [p for p in paths if fnmatch.fnmatchcase(p, r.glob)]
        earlier = next((e for e in spec.rules[:i] if any(fnmatch.fnmatchcase(p, e.glob) for p in hits)), None)
        why = (f"every parameter it matches is taken by the earlier line {earlier.glob[:60]!r}" if earlier else
               "matches no parameter of the model (renamed or removed?)")
        out.append({"glob": r.glob, "declared": r.declared, "reason": why})
    return out


def in_dtype(value: float, dtype: str) -> float:
    """A number as a parameter of this dtype holds it (the value a constant fill leaves)."""
    from initspec.spec.reference import np_dtype

    try:
        return float(np.asarray(value, dtype=np_dtype(dtype)))
    except (TypeError, ValueError, OverflowError, InputError):
        return value


def lock_expr(g: Group) -> str | None:
    """A group's lockfile value (:func:`initspec.audit.lockfile.lock_expr` without its comment)."""
    from initspec.audit.lockfile import lock_expr as line

    found = line(g)
    return found[0] if found else None


def planned_tests(g: Group) -> int:
    if g.rule is None or g.rule.scheme.kind in ("constant", "orthogonal"):
        return 0
    ref = build_reference(g.rule.scheme, g.fan_in, g.fan_out, g.dtype) if g.dtype in FLOATS else None
    return 0 if ref is None else 4 if ref.bounded else 3


#: a round law that CONSENSUS_GROUPS other groups of the model accept is accepted in one more down to
#: this p-value (0.01 otherwise): in a model of 130 groups N(0, 0.02) everywhere, about one group
#: has p < 0.01 by chance, and a law that many groups share is a priori the one the code wrote
CONSENSUS_ALPHA = 1e-3
CONSENSUS_GROUPS = 3


def identify_groups(groups: list[Group], seed: int) -> None:
    """Name each group's law: the simplest law its data cannot reject, chosen across the model (a
    layer default first; then the law the most groups accept: one fan law for every shape of a
    model; then the simplest), and the facts beside it (rows, computed values)."""
    for g in groups:
        adopt(g, identify_group(g, seed))
    name_groups(groups, seed)


def identify_group(g: Group, seed: int) -> Any:
    """The slow, per-group part: the group's candidates ranked and tested (an Identification, or None
    with ``g.identified`` saying why not).  The sharded audit deals it over its ranks; rank 0 then
    :func:`adopt`s each result and :func:`name_groups` the whole model."""
    from initspec.engine.identify import rank_samples

    s = shape_sample(g)
    if s is None:
        return None
    try:
        return rank_samples([s], get_layout(g.layout), name=g.name, seed=seed, fitted_scale=False)
    except Exception as e:  # noqa: BLE001 - a failed identification is shown, never fatal
        first = (str(e).splitlines() or [""])[0][:100]
        g.identified = f"(not identified: no candidate law could be scored on these values: {first})"
        return None


def shape_sample(g: Group) -> Any:
    """The group's evidence as identify reads it (the full stream's moments, the bounded sample for
    the KS), or None (and ``g.identified`` says why) when there is nothing to identify."""
    from initspec.engine.identify import ShapeSample

    if g.error or g.dtype not in FLOATS or not g.moments.n:
        g.identified = (g.error and "—") or f"({g.dtype}: not identified)"
        return None
    sample = g.sample()
    if sample.size < 2 and not g.constant:
        g.identified = "(one value: no law to identify)"
        return None
    s = ShapeSample(g.shape, g.fan_in, g.fan_out, sample, g.dtype)
    m = g.moments
    if not g.constant:  # the full stream's sufficient statistics; the bounded sample serves the KS
        s.n, s.mean, s.var, s.lo, s.hi = m.n, m.mean, m.var, m.minimum, m.maximum
        s.s1 = m.n * m.mean
        s.s2 = m.m2 + m.n * m.mean * m.mean
    return s


def adopt(g: Group, ident: Any) -> None:
    """A group's identification (made here or on another rank) as its fields."""
    g.ident, g.accepted, g.chosen, g.fits = ident, [], None, False
    if ident is None:
        return
    g.shape_sample = shape_sample(g)
    g.accepted = list(ident.accepted)
    g.fits = ident.consistent
    g.chosen = ident.best


def name_groups(groups: list[Group], seed: int) -> None:
    """The model-wide part: the law each group is named by (consensus across groups, the layer
    default, GPT-2's depth-scaled std) and the identified column."""
    for g in groups:
        if g.rule is not None and g.expected_random is None:
            g.expected_random = g.rule.random
    counts = Counter(t for g in groups for t in {c.text for c in g.accepted})
    for g in groups:
        if g.ident is not None:  # a law most of the model's groups follow needs less evidence in one more
            g.accepted += [c for c in g.ident.tested if c not in g.accepted and c.p_value >= CONSENSUS_ALPHA
                           and c.simplicity <= 2 and counts[c.text] >= CONSENSUS_GROUPS]
    for g in groups:
        _choose(g, counts, seed)
    _scaled_by_depth(groups, seed)
    for g in groups:
        _name(g)


def _choose(g: Group, counts: Counter, seed: int) -> None:
    """The layer default when the data cannot reject it; else, among the laws it cannot reject, the
    one the most groups of the model accept (named laws before fitted ones), then the simplest."""
    from initspec.engine.identify import PINNED, PRESET_ALPHA, Candidate, _acceptance
    from initspec.spec.schemes import resolve

    if g.ident is None or g.chosen is None:
        return
    if g.default and g.chosen.scheme.kind not in ("constant", "orthogonal") and not g.is_deterministic:
        try:
            scheme = resolve(g.default)
        except Exception:  # noqa: BLE001 - a default the spec language cannot say is not offered
            scheme = None
        if scheme is not None and scheme.kind not in ("constant", "orthogonal"):
            p = _acceptance(scheme, [g.shape_sample], [g.shape_sample.values], seed)
            if p >= PRESET_ALPHA:
                g.chosen = Candidate(scheme.expr, scheme, text=g.default, simplicity=-1, p_value=p)
                return
    if g.accepted:
        g.chosen = max(g.accepted, key=lambda c: (c.simplicity <= PINNED, counts[c.text], -c.simplicity, -c.bic))
        g.consensus = counts[g.chosen.text] - 1  # the other groups that accept it


def _scaled_by_depth(groups: list[Group], seed: int) -> None:
    """GPT-2's residual projections: the model's round std over sqrt(n) or sqrt(2 n), n the layers
    (the parameters of the group's role), for a normal group no preset or default names
    (transformers 5.24 ``models/gpt2/modeling_gpt2.py`` line 448, ``_init_weights``:
    ``std = self.config.initializer_range / math.sqrt(2 * self.config.n_layer)``); the
    model's own std explains it better than a round number that happens to be equal (1 / sqrt(20000))."""
    from initspec.engine.identify import PREFER_ALPHA, _acceptance, _plain

    stds = Counter(c.scheme.params["std"] for g in groups for c in [g.chosen]
                   if c is not None and c.scheme.kind == "normal" and c.simplicity <= 1 and not c.scheme.params["mean"])
    if not stds:
        return
    r = stds.most_common(1)[0][0]
    per_role = Counter(g.key[0] for g in groups for _ in g.members)
    for g in groups:
        c = g.chosen
        if (c is None or c.simplicity < 1 or c.scheme.kind != "normal" or g.is_deterministic
                or c.scheme.params["std"] == r):
            continue
        for k in sorted({per_role[g.key[0]], 2 * per_role[g.key[0]]}):
            if k < 2:
                continue
            cand = _plain("normal", [("std", r / math.sqrt(k), f"{r!r} / sqrt({k})")], 1, 2,
                          "the model's std / sqrt(depth)")
            if cand is not None:
                cand.p_value = _acceptance(cand.scheme, [g.shape_sample], [g.shape_sample.values], seed)
                if cand.p_value >= PREFER_ALPHA:
                    g.chosen = cand
                    g.accepted.append(cand)
                    break


def _display(c: Any) -> str:
    """A law as the table names it: a preset's name where one is the law, else the expression."""
    from initspec.audit.lockfile import preset_names

    names = preset_names(c.scheme) if c.scheme.kind == "variance_scaling" else []
    return names[0] if names else c.text


def _name(g: Group) -> None:
    """The identified column: the law (or computed values) and the facts beside it."""
    from initspec.engine.identify import same_presets

    c = g.chosen
    if c is None:
        return
    rows = f", {rows_text(g.rows)}" if g.rows else ""
    g.identified_expr = c.expr
    g.same_as = same_presets(c.scheme)
    if g.is_deterministic:
        if g.looks_like or not g.fits:
            what = g.looks_like or "computed values"
        else:
            what = f"computed, yet looks drawn from {_display(c)}"
        g.identified = f"deterministic: {what}" + (f" ({g.copy_of})" if g.copy_of else "") + rows
        return
    if c.scheme.kind == "constant":
        v = c.scheme.params["value"]
        name = "zeros" if v == 0 else "ones" if v == 1 else c.expr
        g.identified = name + (" (layer default)" if g.default == name else "")
        return
    if c.simplicity == -1:
        g.identified = f"{c.text} (layer default){rows}"
        return
    from initspec.audit.lockfile import preset_names

    # a preset's name before the expression (lecun_normal, not variance_scaling(scale=1.0, ...)); its aliases after
    names = preset_names(c.scheme) if c.scheme.kind == "variance_scaling" else []
    if g.default in names:  # the layer's own name for this law (torch_bias_default on a bias)
        names.insert(0, names.pop(names.index(g.default)))
    g.identified = (names[0] + (f" (= {', '.join(names[1:3])})" if names[1:] else "") if names else c.text) + rows
    if not g.fits and c not in g.accepted:
        g.identified += " [no candidate fits]"


def check_groups(groups: list[Group], target: str, seed: int, alpha: float, alpha_each: float,
                 n_seeds: int = 2) -> None:
    from initspec.engine.diagnosis import diagnose_group

    results = []
    for g in groups:
        if g.rule is None:
            continue
        scheme = g.rule.scheme
        r = Result(id=g.name, entry=g.name, target=target, convention="audit", scheme=g.rule.declared,
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
        _fact_tests(g, r, n_seeds)
        if scheme.kind in ("deterministic", "unknown"):
            r.tests.append(Test("finite", passed=True))
            continue
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


def _fact_tests(g: Group, r: Result, n_seeds: int) -> None:
    """Exact tests of the facts a rule states beside its law: the row facts, computed values (and
    which), drawn values (``unknown`` and every random law; a constant group under a random law is
    left to the law's tests and the ``constant`` diagnosis)."""
    kind = g.rule.scheme.kind
    declared, found = normalized(g.rule.rows, g.shape), normalized(g.rows, g.shape)
    if declared or found:
        ok = declared == found and not g.rows_broken
        why = ("" if ok else f"rows differ in {', '.join(sorted(g.rows_broken)[:2])} from instance to instance"
               if declared == found else f"found {rows_text(g.rows) or 'no constant row'}, declared "
               f"{rows_text(g.rule.rows) or 'none'}")
        r.tests.append(Test("rows", passed=ok, detail=why))
    if n_seeds < 2:
        return
    if kind == "deterministic":
        ok = g.is_deterministic or g.constant
        r.tests.append(Test("deterministic", passed=ok, detail="" if ok else
                            f"values change with the seed in {_names(sorted(g.random_members))}; "
                            "declared deterministic"))
        want = g.rule.scheme.params.get("digest")
        if ok and want:
            got = g.digest()
            r.tests.append(Test("digest", passed=got == want, detail="" if got == want else
                                f"the computed values changed: digest {got}, the spec's {want}"
                                + (f" (now {g.looks_like})" if g.looks_like else "")))
    elif g.rule.random and not (g.constant and kind != "unknown"):
        ok = not g.is_deterministic and not g.constant
        what = ("every value the same" if g.constant else f"identical under all {n_seeds} seeds"
                + (f": {g.looks_like}" if g.looks_like else ""))
        r.tests.append(Test("drawn", passed=ok, detail="" if ok else f"{what}; declared drawn ({g.rule.declared})"))


def _names(paths: list[str], k: int = 2) -> str:
    return ", ".join(paths[:k]) + (f" and {len(paths) - k} more" if len(paths) > k else "")


#: the failed fact tests and the diagnosis each one is
_FACTS = {"rows": "rows_differ", "deterministic": "not_deterministic", "digest": "values_changed"}


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
    the other way round, the declared law off by a plain factor (a gain applied or forgotten), and
    the facts beside the law (rows, computed values): values that ignore the seed first (the law's
    tests on them follow from it), then the law's, then the other facts."""
    facts = [{"id": _FACTS[t.name], "confidence": 1.0, "message": t.detail} for t in r.failed_tests
             if t.name in _FACTS]
    drawn = next((t for t in r.failed_tests if t.name == "drawn"), None)
    seeded = []
    if drawn is not None and not g.constant:
        looks_drawn = g.fits and not g.looks_like
        seeded = [{"id": "seed_ignored" if looks_drawn else "deterministic", "confidence": 1.0,
                   "message": drawn.detail}]
    return seeded + _law_diagnosis(g, r) + facts


def _law_diagnosis(g: Group, r: Result) -> list[dict[str, Any]]:
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
