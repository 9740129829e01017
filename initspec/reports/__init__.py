"""Reports of a run for CI and people: JUnit XML, a Markdown summary, a self-contained HTML page.

``write_reports(report, junit=..., markdown=..., html=...)`` writes those asked for.  The HTML
needs matplotlib (``pip install 'initspec[report]'``); the other two need nothing beyond initspec.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from initspec.errors import InputError

if TYPE_CHECKING:
    from initspec.reports.report import Report

__all__ = ["printable", "require_matplotlib", "write_reports"]

_INSTALL = "pip install 'initspec[report]'"
# control characters (XML 1.0 forbids them; HTML and Markdown mangle them) and lone surrogates
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` with control characters (an exception message may carry them) shown as U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", text)


def require_matplotlib() -> None:
    """InputError (one line, exit 2 in the CLI) when matplotlib, needed for ``--html``, is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f"--html needs matplotlib, which is not installed: {_INSTALL}") from None
    except Exception as e:  # noqa: BLE001 - a broken install raises anything at import
        raise InputError(f"--html needs matplotlib, which failed to import: {type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:100]}") from None


def _write(path: str | Path, text: str, *, append: bool = False) -> None:
    from initspec.reports.output import write_text

    write_text(path, text, append=append)


def write_reports(report: Report, *, junit: str | Path | None = None, markdown: str | Path | None = None,
                  html: str | Path | None = None) -> None:
    """Write the reports given a path; the Markdown also goes to ``$GITHUB_STEP_SUMMARY`` when set."""
    if html:
        require_matplotlib()
    if junit:
        from initspec.reports.junit import to_junit_xml

        _write(junit, to_junit_xml(report))
    if markdown:
        from initspec.reports.markdown import to_markdown

        text = to_markdown(report)
        _write(markdown, text)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            _write(summary, text + "\n", append=True)
    if html:
        from initspec.reports.html import to_html

        _write(html, to_html(report))
