"""Releases compared: an architecture audited against the lockfile a scan wrote on another release.

The lockfile is an audit spec (``audit/spec.py``); what differs is read off the audit's own
verdicts: a group that fails its locked law has *changed* (old law: the lockfile's, new law: the
one identified now, with the diagnosis), a group no lockfile line covers is *new*, a lockfile line
that matches no parameter is *missing* (renamed or removed).  A failing group whose law is written
the same on both releases is *unstable*, not a change: the lockfile line does not hold its own model
(a computed table pinned as a random law), which a note says, and the row stays ``ok``.  A failing
group is confirmed by a second audit under other seeds before it is called a change, so a scan of hundreds of
architectures does not report the one-in-ten-thousand false alarm its level allows for each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from initspec.audit.spec import AuditSpec, load_spec

#: the second audit's first seed, far from the first audit's seeds
CONFIRM_SEED_OFFSET = 1000


class LockSpec(AuditSpec):
    """A lockfile whose lines may match nothing: a renamed parameter is a change to report, not
    bad input that stops the scan (``AuditSpec.unmatched`` is what the audit refuses)."""

    def unmatched(self) -> list[str]:
        return []

    def missing(self) -> list[str]:
        return [r.glob for r in self.rules if not r.matched]


def load_lock(path: str | Path) -> LockSpec:
    spec = load_spec(path)
    return LockSpec(spec.path, spec.vars, spec.rules, spec.tied)


def lock_name(name: str) -> str:
    """An architecture's lockfile name (a path separator in a name would leave the folder)."""
    return name.replace("/", "_").replace("\\", "_") + ".toml"


def changes(rep: Any, lock: LockSpec) -> list[dict[str, Any]]:
    """What differs between the audited model and its lockfile, one dict per group or line."""
    from initspec.audit.verdicts import lock_expr

    out: list[dict[str, Any]] = []
    for g in rep.groups:
        v = rep.verdict(g)
        if v in ("fail", "error") and g.rule is not None:
            r = g.result
            diag = r.diagnosis[0] if r is not None and r.diagnosis else {}
            # the same line written on both releases: nothing the lockfile pins changed; the line does
            # not hold its own model (a deterministic table or an estimate pinned as a law: issue 22)
            kind = "unstable" if lock_expr(g) == g.rule.expr else "changed"
            out.append({"kind": kind, "group": g.name, "members": len(g.members), "old": g.rule.expr,
                        "new": lock_expr(g) or g.identified, "diagnosis": diag.get("id", ""),
                        "detail": diag.get("message", "") or (r.error if r is not None else g.error) or "",
                        # the line that sets the new law comes from the traced audit (issue 19) where it runs
                        "line": None})
        elif v == "unchecked" and lock_expr(g) is not None:
            out.append({"kind": "new", "group": g.name, "members": len(g.members), "old": None,
                        "new": lock_expr(g), "diagnosis": "", "detail": "no lockfile line covers this group",
                        "line": None})
    for glob in lock.missing():
        expr = next(r.expr for r in lock.rules if r.glob == glob)
        out.append({"kind": "missing", "group": glob, "members": 0, "old": expr, "new": None, "diagnosis": "",
                    "detail": "no parameter matches this lockfile line (renamed or removed)", "line": None})
    return out


def confirmed(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes of the first audit that the second, independent one shows again (law changes by
    group; new and missing groups are structural and need no second look)."""
    again = {c["group"] for c in second if c["kind"] == "changed"}
    return [c for c in first if c["kind"] != "changed" or c["group"] in again]
