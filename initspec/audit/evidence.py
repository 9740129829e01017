"""The traced evidence in the audit: run a recorder, give each group the law its code applied, check
it against the spec exactly, hold the draws to it, and say what only the trace can see.

- :func:`record` runs the recorder of the target's framework (``initspec.audit.trace.<framework>``);
- :func:`attach` gives every group a :class:`GroupTrace` (the law, the line that set it, the writes);
- :func:`check_traced`: the spec's law against the traced law -- equal or not, no statistics;
- :func:`compare`: the drawn values against the traced law (the law's own tests, Holm over the
  model); a rejection is ``trace_mismatch``;
- :func:`trace_findings`: ``uninitialized``, ``non_finite``, ``cloned``, ``seed_ignored``,
  ``init_lost`` and the notes ``named_law_differs``, each with the line that set the value.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from initspec.audit.findings import Finding, _names
from initspec.audit.report import FLOATS, Group
from initspec.audit.trace import NotThisFramework, Recording, Site, Traced
from initspec.audit.trace import laws as L
from initspec.engine import stats as st
from initspec.engine.runner import Result, Test
from initspec.errors import InputError

#: frameworks tried, in order, for a target whose framework is only known once it is built
ORDER = ("torch", "keras", "flax", "jax")
STRUCTURED = ("orthogonal", "identity", "dirac", "sparse")
#: how each recorder knows a draw ignores the run's seed
SEED_EVIDENCE = {"torch": "traced under two seeds", "jax": "its key does not descend from the run's",
                 "flax": "its key does not descend from the run's",
                 "keras": "its initializer's seed is fixed, or was drawn before the run's"}


def brief(law: Any) -> str:
    """A law (or expression) for a message: long numbers to 4 significant digits (JSON keeps them exact)."""
    return re.sub(r"\d+\.\d{5,}(e-?\d+)?", lambda m: f"{float(m.group(0)):.4g}", str(law))


class TraceUnavailable(Exception):
    """No recorder can trace this target (its framework has none, or none recognised what it built)."""


def record(target: Any, seed: int, options: dict[str, Any]) -> Recording:
    """Trace ``target`` with its framework's recorder: :class:`TraceUnavailable` when there is none,
    ``BuildError`` when the model's own code raises while it is traced.  A target of unknown framework
    is offered to each imported framework's recorder in turn (Keras on torch builds torch modules too)."""
    from initspec.audit.targets import BuildError

    names = [target.framework] if target.framework else _candidates(target)
    missing: list[str] = []
    failed: BuildError | None = None
    for name in names:
        try:
            mod = importlib.import_module(f"initspec.audit.trace.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"initspec.audit.trace.{name}":
                raise
            missing.append(name)
            continue
        try:
            return mod.trace(target, seed, **options)
        except NotThisFramework:
            continue
        except BuildError as e:
            if target.framework:
                raise
            failed = failed or e  # another framework's recorder may own what this target builds
    if failed is not None:
        raise failed
    if missing:
        raise TraceUnavailable(f"initspec has no trace recorder for {' or '.join(missing)} yet")
    raise TraceUnavailable("no trace recorder recognised what the target builds"
                           if names else "the target's framework is not imported")


def _candidates(target: Any) -> list[str]:
    """The recorders to offer a target of unknown framework, in order: those of the imported frameworks.
    The torch recorder builds under a FakeTensorMode, which must not reach a Keras model on the torch
    backend (Keras may keep a tensor it made): with Keras on torch it is offered only a torch class."""
    names = [n for n in ORDER if n in sys.modules or (n == "keras" and "tf_keras" in sys.modules)]
    keras = sys.modules.get("keras")
    if "torch" in names and keras is not None and _keras_on_torch(keras):
        callee = getattr(target.factory, "callee", None)
        torch = sys.modules["torch"]
        layer = getattr(keras, "Layer", None)
        torch_class = isinstance(callee, type) and issubclass(callee, torch.nn.Module) and not (
            isinstance(layer, type) and issubclass(callee, layer))
        if not torch_class:
            names.remove("torch")
    return names


def _keras_on_torch(keras: Any) -> bool:
    try:
        return keras.backend.backend() == "torch"
    except Exception:  # noqa: BLE001 - a Keras without a readable backend is not assumed to be on torch
        return False


def param_bytes(recording: Recording) -> int:
    """What one instance's parameters take in memory (tied ones counted once)."""
    import numpy as np

    seen, total = set(), 0
    for p in recording.params:
        if p.storage is not None and p.storage in seen:
            continue
        seen.add(p.storage)
        try:
            size = np.dtype(p.dtype).itemsize
        except TypeError:
            size = 2 if p.dtype == "bfloat16" else 4
        total += math.prod(p.shape) * size
    return total


def law_key(t: Traced | None) -> tuple[bool, str | None]:
    """What the grouping compares: whether the law is a constant, and the law itself (never pooled if
    different; the declared name is part of it, so schemes that coincide on one shape stay apart)."""
    if t is None:
        return False, None
    last = t.last
    declared = last.declared if last else None
    return t.law.kind == "constant", f"{t.law.scheme() or f'{t.law.kind}: {t.law.why}'} | {declared}"


@dataclass
class GroupTrace:
    """The trace of one group: its law (every member's, by the grouping), the first member's record,
    and every distinct line that set a member's law."""

    law: L.Law
    record: Traced
    sites: list[Site] = field(default_factory=list)
    regions: bool = False

    @property
    def declared(self) -> str | None:
        last = self.record.last
        return last.declared if last else None

    @property
    def named(self) -> tuple[str, ...]:
        last = self.record.last
        return last.named if last else ()

    def expr(self) -> str | None:
        """The law as a spec expression: the declared scheme where the code named one whose law it is."""
        return self.declared or self.law.scheme()

    def display(self) -> str:
        if self.declared and not self.law.exact:
            return f"{self.declared} (declared; its operations are opaque to the algebra)"
        text = self.expr()
        return text if text else f"{self.law.kind} ({self.law.why})" if self.law.why else self.law.kind

    def to_dict(self) -> dict[str, Any]:
        last = self.record.last
        return {"law": self.law.scheme() or str(self.law), "kind": self.law.kind, "declared": self.declared,
                "named": list(self.named), "site": last.site.to_dict() if last and last.site else None,
                "sites": [s.to_dict() for s in self.sites], "ops": list(last.ops) if last else [],
                "chain": [w.to_dict() for w in self.record.chain],
                "shadowed": [w.to_dict() for w in self.record.shadowed],
                "regions": [w.to_dict() for w in self.record.regions],
                "copy_of": self.record.copy_of, "seed_follows": self.record.seed_follows}


def attach(groups: list[Group], recording: Recording) -> None:
    for g in groups:
        records = [recording.traced[m] for m in g.members if m in recording.traced]
        if not records:
            continue
        sites = list(dict.fromkeys(r.last.site for r in records if r.last is not None and r.last.site is not None))
        g.traced = GroupTrace(records[0].law, records[0], sites, any(r.regions for r in records))


# --- the spec against the traced law, exactly --------------------------------------------------


def check_traced(groups: list[Group], target: str, seed: int, drawn: bool) -> None:
    """Each group with a spec rule and a traced law: the spec's law equal to the traced law on the group's
    fans, or not.  With draws the test joins the group's drawn tests; without, it is the verdict."""
    from initspec.spec.schemes import resolve

    for g in groups:
        tr = g.traced
        if g.rule is None or tr is None:
            continue
        scheme = g.rule.scheme
        law = tr.law
        if scheme.kind in ("deterministic", "unknown"):  # facts, no law to compare (the draws' fact tests)
            continue
        if scheme.kind in STRUCTURED:
            declared = resolve(tr.declared) if tr.declared else None
            if declared is None and not law.exact:
                continue
            same = declared is not None and declared.kind == scheme.kind and all(
                math.isclose(float(declared.params.get(k, v)), float(v), rel_tol=L.RTOL)
                for k, v in scheme.params.items() if isinstance(v, (int, float)))
            detail = (f"the code declared {tr.declared}; the spec {g.rule.expr}: "
                      + ("the same scheme" if same else "another scheme") + " (exact: no statistics)")
            diag = None if same else _diag("not_orthogonal" if scheme.kind == "orthogonal" else "wrong_distribution",
                                           f"traced {brief(tr.display())} at {_at(tr)}, declared {g.rule.expr}")
        elif law.exact:
            ref = L.from_scheme(g.rule.expr, g.fan_in, g.fan_out)
            same = L.same_law(law, ref)
            detail = (f"traced {brief(tr.display())} at {_at(tr)}; the spec's {brief(g.rule.expr)} is {brief(ref)} on "
                      f"fans {g.fan_in:g}/{g.fan_out:g}: {'equal' if same else 'not equal'} (exact: no statistics)")
            diag = None if same else _exact_diagnosis(law, ref, g.rule.expr, tr)
        else:
            continue
        test = Test("traced_law", passed=same, detail=detail)
        r = g.result
        if r is None:
            if drawn:
                continue
            r = g.result = Result(id=g.name, entry=g.name, target=target, convention="audit", scheme=g.rule.expr,
                                  layout=g.layout, shape=g.shape, dtype=g.dtype, fan_in=g.fan_in,
                                  fan_out=g.fan_out, seed=seed, repro=f"initspec audit {target} --trace")
            r.observed = {"traced": str(law)}
            r.expected = {"law": g.rule.expr}
        r.tests.insert(0, test)
        if not same:
            r.verdict = "fail"
            r.error = None
            r.diagnosis = [diag, *(d for d in r.diagnosis if d["id"] != diag["id"])]
        elif r.verdict != "fail" and not r.error:
            r.verdict = "pass"


def _at(tr: GroupTrace) -> str:
    return str(tr.sites[0]) if tr.sites else "an unknown line"


def _diag(id_: str, message: str) -> dict[str, Any]:
    return {"id": id_, "confidence": 1.0, "message": message}


def _exact_diagnosis(law: L.Law, ref: L.Law, expr: str, tr: GroupTrace) -> dict[str, Any]:
    """The catalogue's ids for an exact mismatch (the ids the drawn diagnosis gives the same mistakes)."""
    at = _at(tr)
    if ref.kind == "constant":
        return _diag("not_constant", f"traced {brief(tr.display())} at {at}, declared {expr}")
    if law.kind == "constant":
        return _diag("constant", f"every value is {law.value:g} (traced at {at}), declared the random law {expr}")
    r = L.ratio(law, ref)
    if r is not None and not math.isclose(r, 1.0, rel_tol=1e-6):
        f = Fraction(r).limit_denominator(64)
        plain = f"; the variance off by {f}" if f != 1 and math.isclose(float(f), r, rel_tol=1e-6) else ""
        return _diag("wrong_scale", f"traced std is {math.sqrt(r):.4g}× the declared (var ratio {r:.6g}{plain}): "
                                    f"traced {brief(tr.display())} at {at}, declared {brief(expr)}")
    if law.kind == ref.kind and not math.isclose(law.mean, ref.mean, abs_tol=L.RTOL * max(ref.std, 1e-30)):
        return _diag("mean_shift", f"traced mean {law.mean:g}, declared {ref.mean:g} ({expr}) at {at}")
    return _diag("wrong_distribution", f"traced {brief(tr.display())} at {at}, declared {expr} = {brief(ref)}")


# --- the draws against the traced law ----------------------------------------------------------


def compare(groups: list[Group], digests: dict[str, list[bytes]], seed: int, alpha: float) -> list[Finding]:
    """Hold each group's drawn values to its traced law: the law's own tests (variance, mean, KS,
    support) with Holm over the model, exact equality for a constant, seed-independence for a
    deterministic law.  A rejection is ``trace_mismatch``."""
    from initspec.audit.verdicts import law_tests
    from initspec.spec.reference import build as build_reference
    from initspec.spec.schemes import resolve

    checks: list[tuple[Group, list[Test]]] = []
    exact_fail: list[tuple[Group, str]] = []
    for g in groups:
        tr = g.traced
        if tr is None or g.error or g.dtype not in FLOATS or not g.moments.n or tr.regions:
            continue  # rows written apart mix laws the whole-tensor tests would pool
        m = g.moments
        if tr.law.kind == "constant":
            from initspec.audit.verdicts import in_dtype

            if not (m.minimum == m.maximum == in_dtype(tr.law.value, g.dtype)):
                exact_fail.append((g, f"drawn values range [{m.minimum:.6g}, {m.maximum:.6g}]"))
        elif tr.law.kind == "deterministic":
            moved = [p for p in g.members if len(set(digests.get(p, []))) > 1]
            if moved:
                exact_fail.append((g, f"the values of {_names(moved)} differ between seeds"))
        elif tr.law.random:
            if g.constant:
                exact_fail.append((g, f"every drawn value is {m.minimum:g}"))
                continue
            if _replicated(g, digests):  # one draw counted again and again: the tests would claim power they lack
                continue                 # (the seed_ignored / cloned finding says so)
            ref = build_reference(resolve(tr.law.scheme()), g.fan_in, g.fan_out, g.dtype)
            if ref is not None:
                checks.append((g, law_tests(g, ref, seed, alpha)[0]))
    tests = [t for _, ts in checks for t in ts if t.p_value is not None]
    for t, rejected in zip(tests, st.holm([t.p_value for t in tests], alpha), strict=True):
        t.passed = not rejected
    out = [_mismatch(g, why) for g, why in exact_fail]
    for g, ts in checks:
        failed = [t for t in ts if t.passed is False]
        if failed:
            why = ", ".join(f"{t.name} (p={t.p_value:.2g})" if t.p_value is not None else t.name for t in failed)
            out.append(_mismatch(g, f"the drawn values reject it: {why}"))
    return out


def _replicated(g: Group, digests: dict[str, list[bytes]]) -> bool:
    """Whether two of the group's drawn tensors (members, seeds) hold the same values."""
    seen = [d for p in g.members for d in digests.get(p, [])]
    return len(set(seen)) < len(seen)


def _mismatch(g: Group, why: str) -> Finding:
    tr = g.traced
    ops = ", ".join(tr.record.last.ops) if tr.record.last else "?"
    ident = f"; the draws identify {g.identified}" if g.identified else ""
    return Finding("trace_mismatch", list(g.members), (
        f"{g.name}: the code asks for {brief(tr.display())} at {_at(tr)} (ops: {ops}); {why}{ident}. Either the "
        "sampler draws another law than its arguments ask (a framework bug: the draws are the evidence) or "
        "the algebra misreads these operations (a gap in initspec: the ops are the evidence)"))


def drop_explained(findings: list[Finding], recording: Recording, n_seeds: int) -> None:
    """The draws see equal values across seeds or parameters; where the trace shows they were computed
    with no random draw (a sinusoid table, ``log(arange)``) or are constants, that is no finding."""
    from initspec.audit.findings import cloned, seed_ignored

    fixed = {p for p, t in recording.traced.items() if t.law.kind in ("deterministic", "constant")}
    for i, f in reversed(list(enumerate(findings))):
        if f.id not in ("seed_ignored", "cloned") or not fixed & set(f.params):
            continue
        left = [p for p in f.params if p not in fixed]
        if len(left) < (2 if f.id == "cloned" else 1):
            del findings[i]
        else:
            findings[i] = cloned(left) if f.id == "cloned" else seed_ignored(left, n_seeds)


# --- what only the trace sees --------------------------------------------------------------------


def trace_findings(recording: Recording, groups: list[Group], spec: Any, tied: list[list[str]]) -> list[Finding]:
    traced = recording.traced
    out: list[Finding] = []
    bad = []
    for path, t in traced.items():
        for w in [*t.chain, *t.regions]:
            if w.law.kind == "constant" and not math.isfinite(w.law.value):
                bad.append((path, w))
    if bad:
        paths = list(dict.fromkeys(p for p, _ in bad))
        w0 = bad[0][1]
        out.append(Finding("non_finite", paths, f"a non-finite constant ({w0.law.value}) written to "
                           f"{_names(paths)}{' ' + w0.region if w0.region else ''} at {w0.site}"))
    same_storage = {p: i for i, t in enumerate(tied) for p in t}
    roots: dict[str, list[str]] = {}
    for path, t in traced.items():
        if t.copy_of is None or not t.law.random:
            continue
        root = t.copy_of
        while traced.get(root) is not None and traced[root].copy_of is not None:
            root = traced[root].copy_of
        if same_storage.get(root, -1) == same_storage.get(path, -2):
            continue
        if spec is not None and spec.tied_with(root, path):
            continue
        roots.setdefault(root, [root]).append(path)
    for paths in roots.values():
        site = traced[paths[1]].last.site if traced[paths[1]].last else None
        out.append(Finding("cloned", paths, f"{len(paths)} random parameters hold one draw's values and are not "
                           f"declared [tied]: {_names(paths, 4)} (copied at {site})"))
    ignored = [p for p, t in traced.items() if t.seed_follows is False]
    if ignored:
        site = traced[ignored[0]].last.site if traced[ignored[0]].last else None
        how = SEED_EVIDENCE.get(recording.framework, "the trace")
        out.append(Finding("seed_ignored", ignored, f"{len(ignored)} random parameter(s) drawn from a generator "
                           f"whose seed does not follow the run's ({how}): {_names(ignored)} (drawn at {site})"))
    if recording.lost:
        by_target: dict[str, list[str]] = {}
        for w in recording.lost:
            what = brief(w.declared or w.law.scheme() or str(w.law))
            by_target.setdefault(w.target or "a temporary tensor", []).append(f"{what} at {w.site}")
        parts = [f"into {target}: {'; '.join(writes)}" for target, writes in by_target.items()]
        out.append(Finding("init_lost", [], f"{len(recording.lost)} initializing write(s) reached no parameter, "
                           f"{' | '.join(parts)}; the parameters keep their earlier values"))
    for g in groups:
        tr = g.traced
        if tr is None or not tr.named or not tr.law.exact or tr.named[0] == tr.declared:
            continue
        outer = tr.named[0]  # the scheme the code meant: the outermost name it called
        try:
            theirs = L.from_scheme(outer, g.fan_in, g.fan_out)
        except Exception:  # noqa: BLE001 - a name the spec cannot read is not compared
            continue
        if theirs.kind == "opaque" or L.same_law(theirs, tr.law):
            continue
        inner = f" (through {', '.join(brief(n) for n in tr.named[1:])})" if len(tr.named) > 1 else ""
        out.append(Finding("named_law_differs", list(g.members), (
            f"{g.name}: the code calls {outer}{inner} at {_at(tr)}; on this parameter's fans "
            f"({g.fan_in:g}, {g.fan_out:g}) {outer} is {brief(theirs)}, but the traced law is {brief(tr.law)}")))
    return out


def lock_expr(g: Group) -> str | None:
    """The traced law as a lockfile line (exact numbers; the declared scheme where the code named one)."""
    tr = g.traced
    if tr is None:
        return None
    if tr.declared and (tr.law.exact or resolve_kind(tr.declared) in STRUCTURED):
        return tr.declared
    return tr.law.scheme()


def resolve_kind(expr: str) -> str | None:
    from initspec.spec.schemes import resolve

    try:
        return resolve(expr).kind
    except InputError:
        return None
