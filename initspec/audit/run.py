"""One audit: build the model under each seed (one instance in memory at a time), stream every
parameter into its group's moments, identify each group, check the declared ones, look across
parameters for model-level findings.
"""

from __future__ import annotations

import gc
import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.audit.findings import Finding
from initspec.audit.group import group_key, group_names, roles_of
from initspec.audit.spec import AuditSpec, Rule
from initspec.audit.targets import AuditTarget, BuildError, build_model, parse_audit_target
from initspec.audit.walkers import Param, walker_for
from initspec.engine import stats as st
from initspec.engine.runner import Evidence, Result, Test
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference

DEFAULT_ALPHA = 1e-4
DEFAULT_MAX_SEEDS = 8
#: values per group kept for identification and the KS test (identify's own default per shape)
SAMPLE_CAP = 200_000
CHUNK = 1 << 22
FLOATS = ("float64", "float32", "float16", "bfloat16")


@dataclass
class Group:
    """The parameters of one role, pooled: streamed moments, a bounded sample, per-member digests."""

    key: tuple
    name: str
    shape: tuple[int, ...]
    dtype: str
    owner: str
    layout: str
    fan_in: float
    fan_out: float
    default: str | None
    rule: Rule | None
    members: list[str] = field(default_factory=list)
    moments: st.Moments = field(default_factory=st.Moments)
    picks: list[np.ndarray] = field(default_factory=list)
    picked: int = 0
    nonfinite: int = 0
    constant_members: set[str] = field(default_factory=set)
    random_members: set[str] = field(default_factory=set)
    orth_dev: float = 0.0
    identified: str = ""
    identified_expr: str = ""
    same_as: list[str] = field(default_factory=list)
    result: Result | None = None
    error: str = ""

    @property
    def size(self) -> int:
        return max(math.prod(self.shape), 1)

    @property
    def constant(self) -> bool:
        return bool(self.moments.n) and self.moments.minimum == self.moments.maximum

    def sample(self) -> np.ndarray:
        return np.concatenate(self.picks) if self.picks else np.empty(0)


@dataclass
class AuditReport:
    """An audit's groups, findings and settings; ``exit_code`` 0 conforms, 1 fails."""

    target: str
    framework: str
    framework_version: str
    seeds: list[int]
    alpha: float
    groups: list[Group]
    findings: list[Finding]
    tied: list[list[str]]
    strict: bool = False
    spec_path: str | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    def verdict(self, g: Group) -> str:
        if g.error:
            return "error"
        if g.result is None:
            return "unchecked"
        return g.result.verdict

    @property
    def summary(self) -> dict[str, int]:
        out = {v: 0 for v in ("pass", "fail", "error", "unchecked")}
        for g in self.groups:
            out[self.verdict(g)] += 1
        return {"groups": len(self.groups), "params": sum(len(g.members) for g in self.groups),
                "passed": out["pass"], "failed": out["fail"], "errors": out["error"],
                "unchecked": out["unchecked"], "findings": len(self.findings),
                "severe_findings": sum(f.severe for f in self.findings)}

    @property
    def ok(self) -> bool:
        if self.error or any(self.verdict(g) in ("fail", "error") for g in self.groups):
            return False
        if any(f.severe for f in self.findings):
            return False
        return not (self.strict and any(self.verdict(g) == "unchecked" for g in self.groups))

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def as_report(self) -> Any:
        """The audit as the run Report the JUnit, Markdown and HTML writers take: one result per
        checked group, one failed result per severe finding; unchecked groups as warnings."""
        from initspec.reports.report import Report

        results = [g.result for g in self.groups if g.result is not None]
        for f in self.findings:
            if not f.severe:
                continue
            r = Result(id=f"finding:{f.id}", entry=f"finding:{f.id}", target=self.target, convention="audit",
                       scheme="(model-level check)", layout="-", shape=(), dtype="-", fan_in=None, fan_out=None,
                       seed=self.seeds[0], repro=repro(self), verdict="fail")
            r.tests.append(Test(f.id, passed=False, detail=f.message))
            r.diagnosis = [{"id": f.id, "confidence": 1.0, "message": f.message}]
            results.append(r)
        rep = Report(f"audit {self.target}", f"{self.framework} {self.framework_version}", self.seeds[0],
                     self.alpha, results, meta={"seeds": self.seeds})
        rep.warnings += [f"{g.name} ×{len(g.members)}: unchecked (identified {g.identified})"
                         for g in self.groups if g.result is None]
        return rep

    def to_dict(self) -> dict[str, Any]:
        from initspec import __version__

        results = []
        for g in self.groups:
            r = g.result
            results.append({
                "param": g.members[0] if g.members else g.name, "group": g.name, "members": list(g.members),
                "shape": list(g.shape), "dtype": g.dtype, "layout": g.layout, "fan_in": g.fan_in,
                "fan_out": g.fan_out, "identified": lock_expr(g),
                "declared": g.rule.expr if g.rule else None, "verdict": self.verdict(g),
                "tests": [t.to_dict() for t in r.tests] if r else [],
                "diagnosis": r.diagnosis if r else [],
                "observed": _clean(r.observed if r else _observed(g)),
                "expected": _clean(r.expected) if r else {},
                **({"error": g.error} if g.error else {}),
            })
        return {"initspec_version": __version__, "target": self.target, "framework": self.framework,
                "framework_version": self.framework_version, "seeds": self.seeds, "alpha": self.alpha,
                "spec": self.spec_path, "error": self.error or None, "results": results,
                "findings": [f.to_dict() for f in self.findings], "tied": self.tied,
                "summary": self.summary, "timing": self.timing}


def _observed(g: Group) -> dict[str, float]:
    m = g.moments
    return {"n": m.n, "mean": m.mean, "var": m.var, "min": m.minimum, "max": m.maximum} if m.n else {}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in d.items()}


def _digest(x: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(x).reshape(-1).view(np.uint8), digest_size=16).digest()


def _framework_version(name: str) -> str:
    mod = sys.modules.get(name)
    return str(getattr(mod, "__version__", "?"))


class _Builder:
    """Builds instances through the walker; a factory that raises is a BuildError."""

    def __init__(self, target: AuditTarget, options: dict[str, Any]) -> None:
        self.target, self.options = target, options
        self.walker: Any = None
        self.first: Any = None

    def _call(self, fn: Any) -> Any:
        return build_model(self.target.text, fn)

    def detect(self, seed: int) -> None:
        """Find the walker: from the target's kind, or from what one build returns."""
        import importlib

        if self.target.framework:
            fw = self.target.framework
            try:
                self.walker = importlib.import_module(f"initspec.audit.walkers.{fw}")
            except ModuleNotFoundError as e:
                raise InputError(f"target {self.target.text!r}: no {fw} walker ({e.name} is missing)") from None
            return
        if "torch" in sys.modules:  # this build then is the seed's own instance (the torch walker's way)
            sys.modules["torch"].manual_seed(seed)
        obj = self._call(self.target.factory)
        self.walker = walker_for(obj)
        if self.walker is None:
            raise InputError(f"target {self.target.text!r} returned {type(obj).__module__}.{type(obj).__name__}, "
                             "not a torch, Keras, Flax or JAX model")
        if self.walker.FRAMEWORK == "torch":
            self.first = obj
        else:
            self.walker.release(obj)
        del obj

    def build(self, seed: int) -> Any:
        if self.first is not None:
            model, self.first = self.first, None
            return model
        return self._call(lambda: self.walker.build(self.target.factory, seed, **self.options))


def audit(target: str | AuditTarget, *, spec: AuditSpec | None = None, seeds: int | None = None,
          max_seeds: int = DEFAULT_MAX_SEEDS, seed: int = 0, alpha: float = DEFAULT_ALPHA,
          layout: str | None = None, convention: str | None = None, input_shape: tuple[int, ...] | None = None,
          strict: bool = False) -> AuditReport:
    """Audit a model target; BuildError when its constructor raises, InputError on bad input."""
    t0 = time.perf_counter()
    if seeds is not None and seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    if max_seeds < 1:
        raise InputError(f"--max-seeds must be at least 1, got {max_seeds}")
    if layout is not None:
        get_layout(layout)
    tgt = parse_audit_target(target, convention) if isinstance(target, str) else target
    options = {"input_shape": input_shape} if input_shape is not None else {}
    builder = _Builder(tgt, options)
    builder.detect(seed)
    framework = builder.walker.FRAMEWORK
    fallback = layout or ("torch" if framework == "torch" else "tf")
    groups: dict[tuple, Group] = {}
    order: list[tuple] = []
    findings: list[Finding] = []
    tied: dict[Any, list[str]] = {}
    digests: dict[str, list[bytes]] = {}
    seed_list = [seed]
    n_seeds = seeds or 2
    alpha_each = alpha
    timing = {"detect": time.perf_counter() - t0, "build": 0.0, "walk": 0.0}
    i = 0
    while i < n_seeds:
        s = seed + i
        tb = time.perf_counter()
        model = builder.build(s)
        timing["build"] += time.perf_counter() - tb
        tw = time.perf_counter()
        try:
            params = list(builder.walker.walk(model))
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - a model whose parameters cannot be listed fails its audit
            raise BuildError(f"walking {tgt.text} raised {type(e).__name__}: {e}".strip()) from None
        if i == 0:
            first_paths = {p.path for p in params}
        elif {p.path for p in params} != first_paths:
            new = sorted({p.path for p in params} ^ first_paths)
            raise BuildError(f"the instance built under seed {s} has other parameter names than the first "
                             f"({', '.join(new[:3])}): names that change per build cannot be pooled")
        if i == 0:
            _plan(params, groups, order, spec, fallback, tied, findings)
            m = sum(_planned(g) for g in groups.values())
            alpha_each = alpha / max(m, 1)
        _consume(params, groups, digests, i, n_seeds)
        if i == 0:
            if seeds is None:  # now that the first instance says which groups are random
                n_seeds = _seeds_needed(groups, alpha_each, max_seeds)
            seed_list = list(range(seed, seed + n_seeds))
            _clones(digests, groups, spec, findings)
        del params
        builder.walker.release(model)
        del model
        gc.collect()  # the instance is gone before the next one is built
        timing["walk"] += time.perf_counter() - tw
        i += 1
    tc = time.perf_counter()
    ordered = [groups[k] for k in order]
    _model_findings(ordered, digests, n_seeds, findings)
    for g in ordered:
        _identify(g, seed)
    _check(ordered, tgt.text, seed, alpha, alpha_each)
    timing["analyse"] = time.perf_counter() - tc
    timing["total"] = time.perf_counter() - t0
    return AuditReport(tgt.text, framework, _framework_version(framework), seed_list, alpha, ordered, findings,
                       [v for v in tied.values() if len(v) > 1], strict=strict,
                       spec_path=spec.path if spec else None, notes=list(tgt.notes), timing=timing)


def audit_model(target: str | AuditTarget, *, spec: str | dict[str, Any] | AuditSpec | None = None,
                **kwargs: Any) -> AuditReport:
    """:func:`audit` with ``spec`` as a file path, a dict of the TOML's tables or an AuditSpec
    (``initspec.audit(...)``)."""
    from pathlib import Path

    from initspec.audit.spec import load_spec, parse_spec

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec, "spec")
    return audit(target, spec=spec, **kwargs)


def repro(rep: AuditReport) -> str:
    """The command line that repeats an audit."""
    import shlex

    line = f"initspec audit {shlex.quote(rep.target)} --seed {rep.seeds[0]} --seeds {len(rep.seeds)}"
    if rep.spec_path and rep.spec_path != "spec":
        line += f" --spec {shlex.quote(rep.spec_path)}"
    elif rep.spec_path:
        line += " (the spec was a dict: write it to a TOML file for --spec)"
    if rep.alpha != DEFAULT_ALPHA:
        line += f" --alpha {rep.alpha!r}"
    return line + (" --strict" if rep.strict else "")


# --- the first instance: groups -----------------------------------------------------------


def _fans_of(p: Param, fallback: str) -> tuple[str, float, float]:
    lay = p.layout
    if len(p.shape) >= 2:
        lay = lay or fallback
        if p.fan_in is None or p.fan_out is None:
            fi, fo = get_layout(lay).fans(p.shape)
            return lay, float(fi), float(fo)
    n = float(max(math.prod(p.shape), 1))
    fi = float(p.fan_in if p.fan_in is not None else n)
    return lay or fallback, fi, float(p.fan_out if p.fan_out is not None else n)


def _plan(params: list[Param], groups: dict[tuple, Group], order: list[tuple], spec: AuditSpec | None,
          fallback: str, tied: dict[Any, list[str]], findings: list[Finding]) -> None:
    from initspec.audit.findings import uninitialized

    seen_storage: dict[Any, str] = {}
    bad = []
    roles = roles_of([p.path for p in params])
    for p in params:
        rule = spec.match(p.path) if spec else None
        if p.storage is not None and p.storage in seen_storage:
            tied.setdefault(p.storage, [seen_storage[p.storage]]).append(p.path)
            continue
        if p.storage is not None:
            seen_storage[p.storage] = p.path
        if p.uninitialized:
            bad.append(p.path)
            continue
        lay, fi, fo = _fans_of(p, fallback)
        q = Param(p.path, p.shape, p.dtype, p.values, p.owner, p.role, lay, int(fi), int(fo))
        # a constant member never pools with random siblings: it is its own group (and a note)
        key = (*group_key(q, rule.glob if rule else None, roles[p.path]), _is_constant(p))
        if key not in groups:
            groups[key] = Group(key, roles[p.path], p.shape, p.dtype, p.owner, lay, fi, fo, p.default, rule)
            if rule is not None and rule.scheme.kind not in ("constant", "orthogonal"):
                ref = build_reference(rule.scheme, fi, fo, p.dtype) if p.dtype in FLOATS else None
                if ref is not None:
                    groups[key].moments = st.Moments(shift=ref.mean)
            order.append(key)
        groups[key].members.append(p.path)
    if bad:
        findings.append(uninitialized(bad))
    from initspec.audit.findings import constant_among_random

    names = group_names(order, {k: groups[k].members for k in order})
    for k in order:
        groups[k].name = names[k]
    for k in order:
        twin = (*k[:-1], False)
        if k[-1] and twin in groups:
            findings.append(constant_among_random(groups[k].members, groups[twin].name))
    if spec:
        missing = spec.unmatched()
        if missing:
            raise InputError(f"{spec.path}: [params] {missing[0]!r} matches no parameter of the model")


def _is_constant(p: Param) -> bool:
    """Every value of the parameter equal (read once more from the first instance, then dropped)."""
    if p.dtype not in FLOATS:
        return False
    try:
        x = np.asarray(p.values())
    except Exception:  # noqa: BLE001 - reported when the values are read for real
        return False
    return bool(x.size) and bool(np.all(x.reshape(-1) == x.reshape(-1)[0]))


def _planned(g: Group) -> int:
    if g.rule is None or g.rule.scheme.kind in ("constant", "orthogonal"):
        return 0
    ref = build_reference(g.rule.scheme, g.fan_in, g.fan_out, g.dtype) if g.dtype in FLOATS else None
    return 0 if ref is None else 4 if ref.bounded else 3


def _seeds_needed(groups: dict[tuple, Group], alpha_each: float, max_seeds: int) -> int:
    """As many instances as the smallest random group needs for the variance test's power (>= 2:
    the seed check needs two), capped by ``max_seeds``."""
    need = 2
    for g in groups.values():
        if g.dtype not in FLOATS or not g.random_members:
            continue
        kurt = 3.0
        if g.rule is not None:
            ref = build_reference(g.rule.scheme, g.fan_in, g.fan_out, g.dtype)
            if ref is None:
                continue
            kurt = ref.kurtosis
        per_instance = len(g.members) * g.size
        need = max(need, math.ceil(st.samples_for_power(kurt, alpha_each) / per_instance))
    return max(1, min(need, max_seeds))


# --- every instance: stream ----------------------------------------------------------------


def _consume(params: list[Param], groups: dict[tuple, Group], digests: dict[str, list[bytes]],
             i: int, n_seeds: int) -> None:
    by_path = {m: g for g in groups.values() for m in g.members}
    rng = np.random.default_rng([i, 7919])
    for p in params:
        g = by_path.get(p.path)
        if g is None or g.error:
            continue
        try:
            x = np.asarray(p.values())
        except Exception as e:  # noqa: BLE001 - a parameter that cannot be read is the model's failure
            g.error = f"{p.path}: reading the values raised {type(e).__name__}: {e}"
            continue
        digests.setdefault(p.path, []).append(_digest(x))
        if g.dtype not in FLOATS:
            continue
        flat = x.reshape(-1)
        lo = hi = None
        for j in range(0, flat.size, CHUNK):
            c = flat[j:j + CHUNK].astype(np.float64)
            finite = np.isfinite(c)
            if not finite.all():
                g.nonfinite += int(c.size - finite.sum())
                c = c[finite]
            if c.size:
                cmin, cmax = g.moments.add(c)
                lo = cmin if lo is None else min(lo, cmin)
                hi = cmax if hi is None else max(hi, cmax)
        if lo is not None and i == 0:
            (g.constant_members if lo == hi else g.random_members).add(p.path)
        # the bounded sample: the first member's first tensor whole (identify's orthogonal check reads
        # it as a matrix), then an equal random share of every tensor
        # (half the cap from the first instance, half from the others: their number is decided after it)
        share = max(1, SAMPLE_CAP // (2 * len(g.members) * (1 if i == 0 else max(n_seeds - 1, 1))))
        if g.picked == 0 and flat.size <= SAMPLE_CAP // 2:
            take = flat.astype(np.float64)
        elif flat.size <= share:
            take = flat.astype(np.float64)
        else:
            take = flat[np.sort(rng.choice(flat.size, share, replace=False))].astype(np.float64)
        take = take[np.isfinite(take)]
        g.picks.append(take)
        g.picked += take.size
        if g.rule is not None and g.rule.scheme.kind == "orthogonal" and len(g.shape) >= 2:
            g.orth_dev = max(g.orth_dev, _orth_deviation(x, g))
        del x, flat


def _orth_deviation(x: np.ndarray, g: Group) -> float:
    rows, cols = get_layout(g.layout).matrix(g.shape)
    w = x.astype(np.float64).reshape(rows, cols) if g.layout == "torch" else \
        np.moveaxis(x.astype(np.float64), -1, 0).reshape(cols, rows).T
    gram = w @ w.T if rows <= cols else w.T @ w
    gain = float(g.rule.scheme.params.get("gain", 1.0))
    return float(np.abs(gram - gain**2 * np.eye(gram.shape[0])).max())


def _clones(digests: dict[str, list[bytes]], groups: dict[tuple, Group], spec: AuditSpec | None,
            findings: list[Finding]) -> None:
    """Two random parameters of one instance with identical values, not declared tied."""
    from initspec.audit.findings import cloned

    random = {m for g in groups.values() for m in g.random_members}
    by_digest: dict[bytes, list[str]] = {}
    for path, ds in digests.items():
        if path in random:
            by_digest.setdefault(ds[0], []).append(path)
    for paths in by_digest.values():
        if len(paths) > 1:
            undeclared = [p for p in paths[1:] if not (spec and spec.tied_with(paths[0], p))]
            if undeclared:
                findings.append(cloned([paths[0], *undeclared]))


def _model_findings(groups: list[Group], digests: dict[str, list[bytes]], n_seeds: int,
                    findings: list[Finding]) -> None:
    from initspec.audit.findings import non_finite, seed_ignored

    bad = [g for g in groups if g.nonfinite]
    for g in bad:
        findings.append(non_finite(g.members, g.nonfinite))
    if n_seeds >= 2:
        same = [p for g in groups for p in sorted(g.random_members)
                if len(digests.get(p, [])) >= 2 and len(set(digests[p])) == 1]
        if same:
            findings.append(seed_ignored(same, n_seeds))
    findings.sort(key=lambda f: (not f.severe, f.id))


# --- after the last instance: identify, check ----------------------------------------------


def _identify(g: Group, seed: int) -> None:
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
    """The simplest consistent expression of a group's identified law, for --write-spec."""
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


def _check(groups: list[Group], target: str, seed: int, alpha: float, alpha_each: float) -> None:
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
        r.observed = _observed(g)
        if scheme.kind == "constant":
            v = float(scheme.params["value"])
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
        sample = g.sample()
        rng = np.random.default_rng([seed, 104729])
        n_ks = st.ks_samples_for_power(alpha_each)
        ks_sample = sample if sample.size <= n_ks else sample[np.sort(rng.choice(sample.size, n_ks, replace=False))]
        z_var, p_var = st.variance_test(m, ref.var, ref.mu4)
        z_mean, p_mean = st.mean_test(m, ref.mean, ref.var)
        d, p_ks = st.ks_uniform(ref.pit(ks_sample, rng))
        r.power = st.variance_power(m.n, ref.kurtosis, alpha_each)
        r.tests += [Test("finite", passed=True),
                    Test("variance", z_var, p_var, detail=f"observed/expected var = {m.var / ref.var:.5g}"),
                    Test("mean", z_mean, p_mean),
                    Test("ks", d, p_ks, detail=f"KS on {ks_sample.size} values against the exact reference CDF")]
        if ref.bounded:
            tol = 2 * np.finfo(np.float32).eps if g.dtype != "float64" else 1e-12
            lo, hi = ref.lower - tol * abs(ref.lower), ref.upper + tol * abs(ref.upper)
            outside = m.minimum < lo or m.maximum > hi
            r.tests.append(Test("support", passed=not outside, detail="" if not outside else
                                f"values outside [{ref.lower:.6g}, {ref.upper:.6g}] (observed range "
                                f"[{m.minimum:.6g}, {m.maximum:.6g}])"))
            r.tests.append(Test("bounds_reached", None, st.bounds_reached_test(
                ref.prob_at_most(m.maximum), ref.prob_at_least(m.minimum), m.n),
                detail=f"min {m.minimum:.6g} / max {m.maximum:.6g}"))
        r.evidence = Evidence(scheme, ref, ks_sample[:32_768], z_var, get_layout(g.layout))
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
