"""The grouped view of a run that the terminal and the Markdown report both show.

A person reads a run the way pytest prints one: one row per initializer and dtype, its shapes
folded; a failing row expanded once (its diagnosis stated once, the per-shape numbers beneath);
a known deviation on one line with its reason; every dtype of an initializer that passes on
one line.  ``rows(report)`` builds that view; the front ends only format it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from initspec.reports.report import one_line

if TYPE_CHECKING:
    from initspec.engine.runner import Result

#: the order rows are shown in, worst first
ORDER = {"error": 0, "fail": 1, "xpass": 2, "xfail": 3, "pass": 4}


def ratio(r: Result) -> float:
    """Observed over expected variance, NaN where the law has no variance (constants, structures)."""
    exp, obs = r.expected.get("var"), r.observed.get("var")
    return obs / exp if exp and obs is not None and math.isfinite(obs) else math.nan


@dataclass
class Row:
    """Results of one initializer folded into one row: one dtype, or every dtype that passes."""

    entry: str
    target: str
    scheme: str
    dtypes: list[str]
    results: list[Result]

    @property
    def verdict(self) -> str:
        return min((r.verdict for r in self.results), key=ORDER.__getitem__)

    @property
    def expanded(self) -> bool:
        """Failing rows show their results one by one."""
        return self.verdict in ("fail", "error")

    @property
    def size(self) -> str:
        """``5 shapes`` for one dtype, ``10 results`` across several."""
        n = len(self.results)
        if len(self.dtypes) == 1:
            return f"{n} shape{'s' * (n != 1)}"
        return f"{n} results"

    @property
    def counts(self) -> str:
        """``3 fail, 2 pass`` when the verdicts of the row differ, else ''."""
        seen = {v: sum(r.verdict == v for r in self.results) for v in ORDER}
        mixed = [f"{n} {v}" for v, n in seen.items() if n]
        return ", ".join(mixed) if len(mixed) > 1 else ""

    @property
    def ratio_span(self) -> str:
        """The range of var obs/exp over the row, '' when no result has a variance."""
        finite = [x for x in map(ratio, self.results) if math.isfinite(x)]
        if not finite:
            return ""
        lo, hi = min(finite), max(finite)
        return f"{lo:.4g}" if f"{lo:.4g}" == f"{hi:.4g}" else f"{lo:.4g}–{hi:.4g}"

    @property
    def why(self) -> str:
        """The row's one-line story: the diagnosis or error (stated once), or the known deviation."""
        verdict = self.verdict
        if verdict in ("fail", "error"):
            first = next(r for r in self.results if r.verdict == verdict)
            if first.error:
                return first.error
            if first.diagnosis:
                d = first.diagnosis[0]
                return f"probably {d['id']}: {d['message']}"
            return one_line(first)
        if verdict == "xfail":
            return f"known deviation: {next(r.xfail for r in self.results if r.xfail)}"
        if verdict == "xpass":
            reason = next(r.xfail for r in self.results if r.verdict == "xpass")
            return f"listed as a known deviation ({reason}) but conforms"
        return ""


def failed_checks(r: Result) -> str:
    """The failed checks of one result with their p-values (no diagnosis: the row states it)."""
    if r.error:
        return r.error
    return ", ".join(f"{t.name} (p={t.p_value:.2g})" if t.p_value is not None else t.name for t in r.failed_tests)


def rows(results: list[Result]) -> list[Row]:
    """The grouped view: failing, erroring and known-deviation dtypes one row each, passing dtypes
    of an initializer folded into one row; worst first, then in the run's order."""
    by_entry: dict[tuple[str, str], dict[str, list[Result]]] = {}
    for r in results:  # the target too: entry ids of separate API checks may repeat
        by_entry.setdefault((r.entry, r.target), {}).setdefault(r.dtype, []).append(r)
    out: list[Row] = []
    for (entry, target), dtypes in by_entry.items():
        scheme = next(iter(dtypes.values()))[0].scheme
        passing = [d for d, rs in dtypes.items() if all(r.verdict == "pass" for r in rs)]
        for dtype, rs in dtypes.items():
            if dtype not in passing:
                out.append(Row(entry, target, scheme, [dtype], rs))
        if passing:
            out.append(Row(entry, target, scheme, passing, [r for d in passing for r in dtypes[d]]))
    order = {id(row): i for i, row in enumerate(out)}
    return sorted(out, key=lambda row: (ORDER[row.verdict], order[id(row)]))
