"""The audit's result: groups of parameters with their evidence and verdicts, model-level findings.

A :class:`Group` is the parameters that play one role across layers (``group.py`` decides which);
each evidence source (``draws.py``: sampled values) fills its fields, ``verdicts.py`` identifies and
checks it.  :class:`AuditReport` is what every front end (terminal, JSON, JUnit, Markdown, HTML)
reads.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.audit.findings import Finding
from initspec.audit.spec import Rule
from initspec.audit.structure import RowFact
from initspec.engine import stats as st
from initspec.engine.runner import Result, Test

DEFAULT_ALPHA = 1e-4
DEFAULT_MAX_SEEDS = 8
#: parameter dtypes whose values have a law (others are listed, never checked)
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
    # Facts beside the law, from whichever evidence states them (the draws now; a trace can fill the
    # same fields).  rows: rows/columns of one value, left out of the law's statistics;
    # deterministic: non-constant members equal under every seed (computed, not drawn), and what they
    # look like; expected_random: the spec (or a trace) says the values are drawn.
    rows: tuple[RowFact, ...] = ()
    rows_broken: set[str] = field(default_factory=set)
    deterministic: set[str] = field(default_factory=set)
    looks_like: str = ""
    copy_of: str = ""
    looks: dict[str, str] = field(default_factory=dict)    # per member, while drawing
    copies: dict[str, str] = field(default_factory=dict)   # member -> a parameter with its very values
    member_digests: dict[str, bytes] = field(default_factory=dict)
    expected_random: bool | None = None
    member_moments: dict[str, st.Moments] = field(default_factory=dict)
    #: identification: every law the data cannot reject, the one named, and the per-sample facts
    accepted: list[Any] = field(default_factory=list)
    chosen: Any = None
    fits: bool = False
    ident: Any = None
    shape_sample: Any = None
    consensus: int = 0     # how many other groups of the model accept the law named here
    traced: Any = None              # evidence.GroupTrace: the law the code applied, and where

    @property
    def size(self) -> int:
        return max(math.prod(self.shape), 1)

    @property
    def constant(self) -> bool:
        return bool(self.moments.n) and self.moments.minimum == self.moments.maximum

    @property
    def is_deterministic(self) -> bool:
        """Every member computed: equal under every seed, not constant."""
        return bool(self.deterministic) and self.deterministic >= set(self.members) - self.constant_members

    def sample(self) -> np.ndarray:
        return np.concatenate([a for _, a in self.picks]) if self.picks else np.empty(0)

    def digest(self) -> str:
        """The values of a deterministic group as one hex digest: the members' common digest, or the
        digest of their digests in member order when they differ (a per-layer schedule)."""
        import hashlib

        ds = [self.member_digests[m] for m in self.members if m in self.member_digests]
        if ds and all(d == ds[0] for d in ds):
            return ds[0][:8].hex()
        return hashlib.blake2b(b"".join(ds), digest_size=8).hexdigest()


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
    #: spec lines that matched no parameter: {"glob", "declared", "reason"} (each fails the audit)
    missing: list[dict[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=lambda: ["draws"])  # the evidence used: trace, draws
    #: command-line options beyond the seeds and spec that shaped the run (--world-size ...), for repro
    options: list[str] = field(default_factory=list)

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
                "unchecked": out["unchecked"], "missing": len(self.missing), "findings": len(self.findings),
                "severe_findings": sum(f.severe for f in self.findings)}

    @property
    def ok(self) -> bool:
        if self.error or self.missing or any(self.verdict(g) in ("fail", "error") for g in self.groups):
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
        for m in self.missing:
            r = Result(id=f"missing:{m['glob']}", entry=m["glob"], target=self.target, convention="audit",
                       scheme=m["declared"], layout="-", shape=(), dtype="-", fan_in=None, fan_out=None,
                       seed=self.seeds[0], repro=repro(self), verdict="fail")
            r.tests.append(Test("missing", passed=False, detail=m["reason"]))
            r.diagnosis = [{"id": "missing", "confidence": 1.0, "message": m["reason"]}]
            results.append(r)
        rep = Report(f"audit {self.target}", f"{self.framework} {self.framework_version}", self.seeds[0],
                     self.alpha, results, meta={"seeds": self.seeds})
        rep.warnings += [f"{g.name} ×{len(g.members)}: unchecked (identified {g.identified})"
                         for g in self.groups if g.result is None]
        return rep

    def to_dict(self) -> dict[str, Any]:
        from initspec import __version__
        from initspec.audit.lockfile import drawn_expr, lock_expr
        from initspec.audit.structure import rows_text

        results = []
        for g in self.groups:
            r = g.result
            lock = lock_expr(g)
            results.append({
                "param": g.members[0] if g.members else g.name, "group": g.name, "members": list(g.members),
                "shape": list(g.shape), "dtype": g.dtype, "layout": g.layout, "fan_in": g.fan_in,
                "fan_out": g.fan_out,
                # the law as a spec line writes it (the lockfile's); a law no round number names: the fit
                "identified": (lock[0] if lock and lock[0] != "unknown" else g.chosen.text if g.chosen else None),
                "lock": lock[0] if lock else None, "law": _law_kind(g), "rows": rows_text(g.rows) or None,
                "looks_like": g.looks_like or None,
                **({"drawn": (drawn_expr(g) or (None,))[0]} if "draws" in self.sources else {}),
                "declared": g.rule.declared if g.rule else None, "verdict": self.verdict(g),
                "tests": [t.to_dict() for t in r.tests] if r else [],
                "diagnosis": r.diagnosis if r else [],
                "observed": _clean(r.observed if r else observed(g)),
                "expected": _clean(r.expected) if r else {},
                **({"traced": g.traced.to_dict()} if g.traced is not None else {}),
                **({"error": g.error} if g.error else {}),
            })
        for m in self.missing:
            results.append({"param": None, "group": m["glob"], "members": [], "declared": m["declared"],
                            "verdict": "missing", "identified": None, "tests": [],
                            "diagnosis": [{"id": "missing", "confidence": 1.0, "message": m["reason"]}]})
        return {"initspec_version": __version__, "target": self.target, "framework": self.framework,
                "framework_version": self.framework_version, "seeds": self.seeds, "alpha": self.alpha,
                "spec": self.spec_path, "sources": self.sources, "error": self.error or None, "results": results,
                "findings": [f.to_dict() for f in self.findings], "tied": self.tied,
                "summary": self.summary, "timing": self.timing}


def _law_kind(g: Group) -> str | None:
    """random | constant | deterministic (None: not identified)."""
    if not g.moments.n:
        return None
    return "constant" if g.constant else "deterministic" if g.is_deterministic else "random"


def observed(g: Group) -> dict[str, float]:
    m = g.moments
    return {"n": m.n, "mean": m.mean, "var": m.var, "min": m.minimum, "max": m.maximum} if m.n else {}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in d.items()}


def framework_version(name: str) -> str:
    mod = sys.modules.get(name)
    return str(getattr(mod, "__version__", "?"))


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
    line += "".join(f" {shlex.quote(o)}" for o in rep.options)
    return line + (" --strict" if rep.strict else "")
