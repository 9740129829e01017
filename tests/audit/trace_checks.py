"""Verdicts from a trace, for tests: a spec rule holds when every parameter it matches has the
rule's law on its fans, exactly (the law algebra's ``same_law``; no statistics)."""

from __future__ import annotations

from initspec.audit.trace import Recording
from initspec.audit.trace import laws as L
from initspec.audit.trace.jax import fans


def verdicts(rec: Recording, spec) -> dict[str, str]:
    """{rule glob: "pass" | "fail"} over the recording's parameters."""
    out: dict[str, str] = {}
    for p in rec.params:
        rule = spec.match(p.path)
        if rule is None:
            continue
        ok = L.same_law(rec.traced[p.path].law, L.from_scheme(rule.scheme, *fans(p)))
        out[rule.glob] = "pass" if ok and out.get(rule.glob, "pass") == "pass" else "fail"
    return out


def group_verdicts(rep, rec: Recording) -> dict[str, str]:
    """{drawn group name: traced verdict} for the drawn report's checked groups."""
    params = {p.path: p for p in rec.params}
    out = {}
    for g in rep.groups:
        if g.rule is None:
            continue
        ok = all(L.same_law(rec.traced[m].law, L.from_scheme(g.rule.scheme, *fans(params[m]))) for m in g.members)
        out[g.name] = "pass" if ok else "fail"
    return out


def drawn_verdicts(rep) -> dict[str, str]:
    return {g.name: rep.verdict(g) for g in rep.groups if g.rule is not None}


def cloned(rec: Recording) -> set[str]:
    """Parameters the trace says hold the same draw as another (each with the one it copies)."""
    out = set()
    for t in rec.traced.values():
        if t.copy_of:
            out |= {t.path, t.copy_of}
    return out


def seed_ignored(rec: Recording) -> set[str]:
    return {t.path for t in rec.traced.values() if t.seed_follows is False}
