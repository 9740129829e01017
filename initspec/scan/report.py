"""A scan's result: one row per architecture, as terminal lines, JSON, Markdown and JUnit.

Statuses: ``ok``; ``failed`` (a severe finding, e.g. ``seed_ignored``); ``changed`` (against its
lockfile: a law, a new group, a missing line); ``could not build`` (with the reason); and with
``--specs`` also ``new`` (no lockfile for it) and ``removed`` (a lockfile with no architecture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "changed", "failed", "could not build", "new", "removed")
_LABEL = {"ok": "OK", "changed": "CHANGED", "failed": "FAILED", "could not build": "NOBUILD", "new": "NEW",
          "removed": "REMOVED"}


@dataclass
class ScanReport:
    library: str
    version: str
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        out = {s: sum(r["status"] == s for r in self.rows) for s in STATUSES}
        return {"architectures": len(self.rows), **out}

    @property
    def exit_code(self) -> int:
        """1 when any architecture failed, changed, was removed or could not be built; else 0."""
        return int(any(r["status"] in ("changed", "failed", "could not build", "removed") for r in self.rows))

    def lines(self, verbose: bool = False, summary: bool = True, width: int | None = None) -> list[str]:
        """One line per architecture; a changed one also lists each change (all of them with -v)."""
        w = width or max((len(r["name"]) for r in self.rows), default=10)
        out = []
        for r in self.rows:
            label = _LABEL[r["status"]]
            if r["status"] == "failed":
                label = "FINDING" if r["findings"] else "FAILED"
            text = r["reason"] or f"{r['groups']} groups, {r['params']} parameters"
            out.append(f"{label:<8} {r['name']:<{w}}  {text}")
            shown = r["changes"] if verbose else r["changes"][:5]
            for c in shown:
                line = f"{'':<8} {'':<{w}}  - {c['group']} ×{c['members']}: " if c["members"] else \
                    f"{'':<8} {'':<{w}}  - {c['group']}: "
                if c["kind"] == "changed":
                    line += f"{c['old']} -> {c['new']}" + (f" ({c['diagnosis']}: {c['detail']})" if c["diagnosis"]
                                                           else f" ({c['detail']})" if c["detail"] else "")
                elif c["kind"] == "new":
                    line += f"new group, {c['new']}"
                else:
                    line += f"missing (was {c['old']}): renamed or removed"
                if c.get("line"):
                    line += f" [set at {c['line']}]"
                out.append(line)
            if len(r["changes"]) > len(shown):
                out.append(f"{'':<8} {'':<{w}}  ... {len(r['changes']) - len(shown)} more (-v)")
        if not summary:
            return out
        s = self.summary
        out.append(f"{self.library} {self.version}: {s['architectures']} architectures: {s['ok']} ok, "
                   f"{s['changed']} changed, {s['failed']} failed, {s['could not build']} could not be built"
                   + (f", {s['new']} new, {s['removed']} removed" if s["new"] or s["removed"] else "")
                   + f" ({self.seconds:.0f} s)")
        return out

    def to_dict(self) -> dict[str, Any]:
        from initspec import __version__

        return {"initspec_version": __version__, "library": self.library, "library_version": self.version,
                "settings": self.settings, "notes": self.notes, "seconds": round(self.seconds, 3),
                "summary": self.summary, "rows": self.rows}

    def to_markdown(self) -> str:
        from initspec.reports.markdown import _code, _text

        s = self.summary
        out = [f"### initspec scan {self.library} ({self.library} {self.version})", "",
               f"{s['architectures']} architectures: {s['ok']} ok, {s['changed']} changed, {s['failed']} failed, "
               f"{s['could not build']} could not be built ({self.seconds:.0f} s)", "",
               "| architecture | status | detail | target |", "|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: (r["status"] == "ok", r["name"])):
            out.append(f"| {_text(r['name'])} | {r['status']} | {_text(r['reason'])} | "
                       f"{_code(r['target']) if r['target'] else ''} |")
        return "\n".join(out) + "\n"

    def as_report(self) -> Any:
        """The scan as the run Report the JUnit writer takes: one case per architecture (changed and
        failed ones fail, could-not-build ones are errors)."""
        from initspec.engine.runner import Result, Test
        from initspec.reports.report import Report

        results = []
        for r in self.rows:
            res = Result(id=r["name"], entry=r["name"], target=r["target"] or r["name"], convention="scan",
                         scheme="(architecture)", layout="-", shape=(), dtype="-", fan_in=None, fan_out=None,
                         seed=int(self.settings.get("seed", 0)),
                         repro=f"initspec audit {r['target']}" if r["target"] else "")
            res.timing["total"] = float(r.get("seconds", 0.0))
            if r["status"] in ("changed", "failed", "removed"):
                res.verdict = "fail"
                res.tests.append(Test(r["status"], passed=False, detail=r["reason"]))
                res.diagnosis = [{"id": r["status"], "confidence": 1.0, "message": r["reason"]}]
            elif r["status"] == "could not build":
                res.verdict, res.error = "error", r["reason"]
            results.append(res)
        return Report(f"scan {self.library}", self.version, int(self.settings.get("seed", 0)),
                      float(self.settings.get("alpha", 1e-4)), results, meta={"library": self.library})
