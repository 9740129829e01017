"""The report object: a run's results with its metadata, as a dict and as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec.engine.runner import Result

#: verdicts that make a run fail (xfail and xpass do not)
FAILING = ("fail", "error")


@dataclass
class Report:
    """A run: who was tested, with which settings, and every result."""

    framework: str
    framework_version: str
    seed: int
    alpha: float
    results: list[Result]
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        count = {v: sum(r.verdict == v for r in self.results) for v in ("pass", "fail", "error", "xfail", "xpass")}
        return {"passed": count["pass"], "failed": count["fail"], "errors": count["error"],
                "xfailed": count["xfail"], "xpassed": count["xpass"]}

    @property
    def paths(self) -> dict[str, int]:
        """How many results each draw path took (``eager``, ``jit(vmap)``, ...), most first."""
        count: dict[str, int] = {}
        for r in self.results:
            count[r.path] = count.get(r.path, 0) + 1
        return dict(sorted(count.items(), key=lambda kv: -kv[1]))

    def paths_line(self) -> str:
        """``draws: jit(vmap) 540, eager 6 (6 after the batched call failed)``; '' when all were eager."""
        if set(self.paths) <= {"eager"}:
            return ""
        fell = sum(r.path_fallback is not None for r in self.results)
        return "draws: " + ", ".join(f"{p} {n}" for p, n in self.paths.items()) + (
            f" ({fell} after the batched call failed)" if fell else "")

    @property
    def ok(self) -> bool:
        return not any(r.verdict in FAILING for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        from initspec import __version__

        return {"initspec_version": __version__, "framework": self.framework,
                "framework_version": self.framework_version, "seed": self.seed, "alpha": self.alpha,
                **self.meta, "results": [r.to_dict() for r in self.results], "summary": self.summary,
                "paths": self.paths,
                "warnings": self.warnings}

    def write_json(self, path: str | Path) -> None:
        from initspec.reports.output import write_text

        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def _g(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)


def one_line(r: Result) -> str:
    """Why a result failed, in one line: the failed tests and the top diagnosis."""
    if r.error:
        return r.error
    failed = ", ".join(f"{t.name} (p={t.p_value:.2g})" if t.p_value is not None else t.name for t in r.failed_tests)
    text = f"failed: {failed}" if failed else ""
    if r.diagnosis:
        d = r.diagnosis[0]
        text += f"; probably {d['id']}: {d['message']}"
    return text


def failure_message(r: Result) -> str:
    """The repro block of a failed result (seed, shape, layout, expected vs observed, diagnosis, CLI)."""
    exp = ", ".join(f"{k} {_g(v)}" for k, v in r.expected.items())
    obs = ", ".join(f"{k} {_g(v)}" for k, v in r.observed.items())
    lines = [f"{r.id}: {r.target} does not conform to {r.scheme}",
             f"  seed {r.seed}, shape {r.shape}, layout {r.layout}, dtype {r.dtype}, "
             f"fan_in {r.fan_in}, fan_out {r.fan_out}",
             f"  expected: {exp}", f"  observed: {obs}", f"  {one_line(r)}", f"  reproduce: {r.repro}"]
    return "\n".join(lines)
