"""The terminal report: what a person reads after ``initspec check``."""

from __future__ import annotations

import math
import os
from typing import Any

from initspec.reports.report import Report, _g, one_line

_STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta", "xfail": "yellow", "xpass": "cyan"}


def print_table(report: Report, console: Any, *, quiet: bool = False) -> None:
    """A rich table of results (failures first), then a summary line."""
    from rich.table import Table

    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # a CI log is wider than rich's 80-column default for pipes
    if not quiet:
        table = Table(title=f"initspec: {report.framework} {report.framework_version} "
                      f"(seed {report.seed}, alpha {report.alpha:g})")
        for col in ("initializer", "shape", "dtype", "claims", "verdict", "var obs/exp", "n", "why"):
            table.add_column(col, overflow="fold")
        order = {"error": 0, "fail": 1, "xfail": 2, "xpass": 3, "pass": 4}
        for r in sorted(report.results, key=lambda r: order[r.verdict]):
            ratio = (r.observed.get("var", math.nan) / r.expected["var"]
                     if r.expected.get("var") and "var" in r.observed else math.nan)
            why = r.xfail if r.xfail and r.verdict == "xfail" else one_line(r)
            table.add_row(r.entry, "x".join(map(str, r.shape)), r.dtype, r.scheme,
                          f"[{_STYLE[r.verdict]}]{r.verdict}[/]", _g(ratio), str(r.observed.get("n", "")), why)
        console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    s = report.summary
    console.print(f"{s['passed']} passed, {s['failed']} failed, {s['errors']} errors, "
                  f"{s['xfailed']} xfailed, {s['xpassed']} xpassed")
