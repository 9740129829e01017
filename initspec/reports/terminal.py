"""The terminal report: what a person reads after ``initspec check``.

By default the grouped view of :mod:`initspec.reports.view` (pytest's shape: one line per
initializer and dtype, failures expanded once, the summary last); ``-v`` every result as a table
row; ``--quiet`` the summary alone.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from initspec.reports.report import Report, _g, one_line
from initspec.reports.view import Row, failed_checks, ratio, rows

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta", "xfail": "yellow", "xpass": "cyan"}
_NAME_MAX = 36  # a longer initializer id takes its own width rather than the column's


def summary_line(report: Report) -> str:
    s = report.summary
    return (f"{s['passed']} passed, {s['failed']} failed, {s['errors']} errors, {s['xfailed']} xfailed, "
            f"{s['xpassed']} xpassed")


def _verdict(v: str) -> str:
    return f"[{_STYLE[v]}]{v.upper():5}[/]"


def _row_lines(row: Row, widths: tuple[int, int, int]) -> list[str]:
    name, dtypes, size = (escape(row.entry).ljust(widths[0]), " ".join(row.dtypes).ljust(widths[1]),
                          row.size.ljust(widths[2]))
    span = f"var obs/exp {row.ratio_span}" if row.ratio_span else ""
    head = f"{_verdict(row.verdict)}  {name}  {dtypes}  {size}"
    if not row.expanded:
        tail = "  ".join(x for x in (row.counts, span, escape(row.why)) if x)
        return [f"{head}  {tail}".rstrip()]
    lines = [f"{head}  claims {escape(row.scheme)}" + (f"  ({row.counts})" if row.counts else ""),
             f"       {escape(row.why)}"]
    labels = ["x".join(map(str, r.shape)) or "scalar" for r in row.results]
    if all(r.error and r.error == row.why for r in row.results):  # one error, raised on every shape
        return [*lines, f"         on every shape: {', '.join(labels)}",
                f"         reproduce: {escape(row.results[0].repro)}"]
    shape_w = max(map(len, labels))
    for r in row.results:
        shape = ("x".join(map(str, r.shape)) or "scalar").ljust(shape_w)
        x = ratio(r)
        var = f"var obs/exp {x:<8.4g}" if math.isfinite(x) else " " * 20
        what = failed_checks(r) if r.verdict in ("fail", "error") else r.verdict
        lines.append(f"         {shape}  {var}  {escape(what)}")
    first = next(r for r in row.results if r.verdict in ("fail", "error"))
    if first.repro:
        lines.append(f"         reproduce: {escape(first.repro)}")
    return lines


def print_grouped(report: Report, console: Console) -> None:
    """One line per initializer (and per failing or known-deviation dtype), failures expanded."""
    view = rows(report.results)
    widths = (min(max((len(r.entry) for r in view), default=0), _NAME_MAX),
              max((len(" ".join(r.dtypes)) for r in view), default=0),
              max((len(r.size) for r in view), default=0))
    paths = report.paths_line()
    console.print(escape(f"initspec: {report.framework} {report.framework_version} "
                         f"(seed {report.seed}, alpha {report.alpha:g}{'; ' + paths if paths else ''})"),
                  soft_wrap=True)
    for row in view:
        for line in _row_lines(row, widths):
            console.print(line, soft_wrap=True, highlight=False)


def print_results(report: Report, console: Console) -> None:
    """Every result as a row of a table (``-v``), failures first."""
    from rich.table import Table

    table = Table(title=f"initspec: {report.framework} {report.framework_version} "
                  f"(seed {report.seed}, alpha {report.alpha:g})")
    for col in ("initializer", "shape", "dtype", "claims", "verdict", "var obs/exp", "n", "why"):
        table.add_column(col, overflow="fold")
    order = {"error": 0, "fail": 1, "xfail": 2, "xpass": 3, "pass": 4}
    for r in sorted(report.results, key=lambda r: order[r.verdict]):
        x = ratio(r)
        why = r.xfail if r.xfail and r.verdict == "xfail" else one_line(r)
        table.add_row(escape(r.entry), "x".join(map(str, r.shape)), r.dtype, escape(r.scheme),
                      f"[{_STYLE[r.verdict]}]{r.verdict}[/]", _g(x) if math.isfinite(x) else "",
                      str(r.observed.get("n", "")), escape(why))
    console.print(table)


def print_report(report: Report, console: Any, *, verbosity: int = 0) -> None:
    """The report at a verbosity: -1 the summary alone, 0 the grouped view, 1 every result."""
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # a CI log is wider than rich's 80-column default for pipes
    if verbosity > 0:
        print_results(report, console)
    elif verbosity == 0:
        print_grouped(report, console)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{summary_line(report)}[/]", highlight=False)
