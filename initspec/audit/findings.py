"""Model-level findings: what is wrong across parameters, with no spec at all.

Each finding has a stable id and the parameters it concerns.  Constant laws (zeros, ones, a
fill) are the same under every seed and equal to each other by design: they are never a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from initspec.audit.spec import AuditSpec

#: findings that fail the audit (the second line: what the trace sees, ``initspec.audit.evidence``; the third:
#: across ranks, ``initspec.audit.shards``)
SEVERE = ("non_finite", "uninitialized", "seed_ignored", "cloned",
          "init_lost", "trace_mismatch",
          "shards_cloned", "replicas_differ", "shard_fans", "sharded_law_differs")


@dataclass
class Finding:
    id: str
    params: list[str]
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def severe(self) -> bool:
        return self.id in SEVERE

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "params": self.params, "message": self.message, "severe": self.severe}


def _names(paths: list[str], k: int = 3) -> str:
    return ", ".join(paths[:k]) + (f" and {len(paths) - k} more" if len(paths) > k else "")


def non_finite(paths: list[str], count: int) -> Finding:
    return Finding("non_finite", list(paths), f"{count} NaN or infinite values in {_names(paths)}")


def uninitialized(paths: list[str], how: str = "left on the meta device or without storage") -> Finding:
    return Finding("uninitialized", list(paths), f"{len(paths)} parameter(s) never initialized "
                   f"({how}): {_names(paths)}")


def seed_ignored(paths: list[str], n_seeds: int) -> Finding:
    return Finding("seed_ignored", list(paths), f"{len(paths)} random parameter(s) identical under all {n_seeds} "
                   f"seeds (a private generator or a fixed seed): {_names(paths)}")


def cloned(paths: list[str]) -> Finding:
    return Finding("cloned", list(paths), f"{len(paths)} random parameters hold identical values and are not "
                   f"declared [tied] (blocks copied from one initialized block?): {_names(paths, 4)}")


def constant_among_random(paths: list[str], group: str) -> Finding:
    return Finding("constant_among_random", list(paths), f"{_names(paths)} constant while the other members of "
                   f"{group} are random (an init skipped for some layers?)")


def clones(digests: dict[str, list[bytes]], groups: dict[tuple, Any], spec: AuditSpec | None,
            findings: list[Finding]) -> None:
    """Two random parameters of one instance with identical values, not declared tied."""
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


def model_findings(groups: list[Any], digests: dict[str, list[bytes]], n_seeds: int,
                    findings: list[Finding]) -> None:
    bad = [g for g in groups if g.nonfinite]
    for g in bad:
        findings.append(non_finite(g.members, g.nonfinite))
    if n_seeds >= 2:
        same = [p for g in groups for p in sorted(g.random_members)
                if len(digests.get(p, [])) >= 2 and len(set(digests[p])) == 1]
        if same:
            findings.append(seed_ignored(same, n_seeds))
    findings.sort(key=lambda f: (not f.severe, f.id))
