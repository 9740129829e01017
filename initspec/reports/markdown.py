"""A Markdown summary fit for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

The same grouped view as the terminal (:mod:`initspec.reports.view`): one row per initializer and
dtype that does not plainly pass (failures first, the diagnosis stated once), passes folded into
one row per initializer, so a framework's ~1000 results stay well under GitHub's 65536-character
comment limit; then, per failing row, its shapes and the repro block of its first failure.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from initspec.reports import printable
from initspec.reports.report import failure_message
from initspec.reports.view import Row, failed_checks, ratio, rows

if TYPE_CHECKING:
    from initspec.reports.report import Report

ICON = {"pass": "✅", "fail": "❌", "error": "💥", "xfail": "🟡", "xpass": "🔵"}
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


def _why(row: Row) -> str:
    why = row.why
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


def _shape_table(row: Row) -> list[str]:
    out = ["| shape | verdict | var obs/exp | failed checks |", "|---|---|---:|---|"]
    for r in row.results:
        x = ratio(r)
        var = f"{x:.4g}" if math.isfinite(x) else ""
        checks = failed_checks(r) if r.verdict in ("fail", "error") else ""
        out.append(f"| {'x'.join(map(str, r.shape)) or 'scalar'} | {r.verdict} | {var} | {_text(checks)} |")
    return out


def to_markdown(report: Report) -> str:
    """The summary as GitHub-flavoured Markdown: the terminal's grouped view (:mod:`initspec.reports.view`)."""
    s = report.summary
    out = [f"### {_text(headline(report))}", "",
           f"seed {report.seed} · alpha {report.alpha:g} · {len(report.results)} results: {s['passed']} passed, "
           f"{s['failed']} failed, {s['errors']} errors, {s['xfailed']} xfailed, {s['xpassed']} xpassed", ""]
    if report.warnings:
        out += [f"- ⚠️ {_text(w)}" for w in report.warnings] + [""]
    view = rows(report.results)
    notable = [row for row in view if row.verdict != "pass"]
    if notable:
        out += ["| verdict | initializer | dtype | results | claims | var obs/exp | why |",
                "|---|---|---|---:|---|---|---|"]
        out += [f"| {ICON[row.verdict]} {row.verdict} | {_code(row.entry)} | {' '.join(row.dtypes)} | "
                f"{len(row.results)} | {_code(row.scheme)} | {row.ratio_span} | {_text(_why(row))} |"
                for row in notable[:MAX_ROWS]]
        if len(notable) > MAX_ROWS:
            out.append(f"\n…and {len(notable) - MAX_ROWS} more not shown (the JSON and JUnit reports have them all)")
        out.append("")
    passed = [row for row in view if row.verdict == "pass"]
    if passed:
        out += [f"<details><summary>{ICON['pass']} {s['passed']} passed ({len(passed)} initializers)</summary>", "",
                "| initializer | claims | dtype | passed | var obs/exp |", "|---|---|---|---:|---|"]
        out += [f"| {_code(row.entry)} | {_code(row.scheme)} | {' '.join(row.dtypes)} | {len(row.results)} | "
                f"{row.ratio_span} |" for row in passed]
        out += ["", "</details>", ""]
    for row in [row for row in notable if row.expanded][:MAX_REPROS]:
        first = next(r for r in row.results if r.verdict in ("fail", "error"))
        out += [f"<details><summary>{html.escape(row.entry)} {' '.join(row.dtypes)}: {row.size}</summary>", "",
                *_shape_table(row), "", f"reproduce {html.escape(first.id)}:", "", "```text",
                printable(failure_message(first)).replace("```", "'''"), "```", "", "</details>", ""]
    return "\n".join(out)
