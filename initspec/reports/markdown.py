"""A Markdown summary fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Every result that is not a plain pass gets its own row (failures and errors first); passes are
folded into one row per initializer and dtype, so a framework's ~1000 results stay well under
GitHub's 65536-character comment limit.  The repro block of the first failures follows.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from initspec.reports import printable
from initspec.reports.report import failure_message, one_line

if TYPE_CHECKING:
    from initspec.engine.runner import Result
    from initspec.reports.report import Report

ICON = {"pass": "✅", "fail": "❌", "error": "💥", "xfail": "🟡", "xpass": "🔵"}
_ORDER = {"error": 0, "fail": 1, "xpass": 2, "xfail": 3}
#: most rows of non-passing results, and most repro blocks, shown (the JSON/JUnit have all)
MAX_ROWS = 100
MAX_REPROS = 10
_WHY_CHARS = 300


def _text(s: str) -> str:
    """Plain table-cell text: no HTML, no cell breaks, no line breaks."""
    return html.escape(" ".join(printable(s).split()), quote=False).replace("|", "\\|")


def _code(s: str) -> str:
    s = " ".join(printable(s).split()).replace("|", "\\|")
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def _ratio(r: Result) -> float:
    exp, obs = r.expected.get("var"), r.observed.get("var")
    return obs / exp if exp and obs is not None and math.isfinite(obs) else math.nan


def _g(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else ""


def _why(r: Result) -> str:
    if r.verdict == "xfail":
        why = f"known deviation: {r.xfail}"
    elif r.verdict == "xpass":
        why = f"listed as a known deviation ({r.xfail}) but conforms"
    else:
        why = one_line(r)
    return why if len(why) <= _WHY_CHARS else why[:_WHY_CHARS - 1] + "…"


def headline(report: Report) -> str:
    """The verdict of the run in one line."""
    s = report.summary
    if report.ok:
        state = f"{ICON['pass']} {s['passed'] + s['xpassed']} of {len(report.results)} conform"
        if s["xfailed"]:
            state += f", {s['xfailed']} known deviations"
    else:
        state = f"{ICON['fail']} {s['failed']} failed, {s['errors']} errors"
    return f"initspec: {report.framework} {report.framework_version}: {state}"


def to_markdown(report: Report) -> str:
    """The summary as GitHub-flavoured Markdown."""
    s = report.summary
    out = [f"### {_text(headline(report))}", "",
           f"seed {report.seed} · alpha {report.alpha:g} · {len(report.results)} results: {s['passed']} passed, "
           f"{s['failed']} failed, {s['errors']} errors, {s['xfailed']} xfailed, {s['xpassed']} xpassed", ""]
    if report.warnings:
        out += [f"- ⚠️ {_text(w)}" for w in report.warnings] + [""]
    notable = sorted((r for r in report.results if r.verdict != "pass"), key=lambda r: _ORDER[r.verdict])
    if notable:
        out += ["| verdict | result | claims | var obs/exp | why |", "|---|---|---|---:|---|"]
        out += [f"| {ICON[r.verdict]} {r.verdict} | {_code(r.id)} | {_code(r.scheme)} | {_g(_ratio(r))} | "
                f"{_text(_why(r))} |" for r in notable[:MAX_ROWS]]
        if len(notable) > MAX_ROWS:
            out.append(f"\n…and {len(notable) - MAX_ROWS} more not shown (the JSON and JUnit reports have them all)")
        out.append("")
    passed: dict[tuple[str, str, str], list[Result]] = {}
    for r in report.results:
        if r.verdict == "pass":  # the target too: entry ids of separate API checks may repeat
            passed.setdefault((r.entry, r.target, r.dtype), []).append(r)
    if passed:
        out += [f"<details><summary>{ICON['pass']} {s['passed']} passed ({len(passed)} initializer × dtype)"
                "</summary>", "", "| initializer | claims | dtype | passed | var obs/exp |", "|---|---|---|---:|---|"]
        for (entry, _, dtype), rs in passed.items():
            ratios = [x for x in map(_ratio, rs) if math.isfinite(x)]
            span = f"{_g(min(ratios))}–{_g(max(ratios))}" if ratios else ""
            out.append(f"| {_code(entry)} | {_code(rs[0].scheme)} | {dtype} | {len(rs)} | {span} |")
        out += ["", "</details>", ""]
    failing = [r for r in notable if r.verdict in ("error", "fail")]
    for r in failing[:MAX_REPROS]:
        out += [f"<details><summary>reproduce {html.escape(r.id)}</summary>", "", "```text",
                printable(failure_message(r)).replace("```", "'''"), "```", "", "</details>", ""]
    return "\n".join(out)
