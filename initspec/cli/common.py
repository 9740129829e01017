"""Option groups shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from initspec.options import OPTIONS


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for o in reversed(OPTIONS):
        fn = click.option(f"--{o.name}", type=o.type, default=o.default, show_default=True, help=o.help)(fn)
    return fn


def no_progress_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--no-progress``: no bar on stderr even on a terminal (initspec.reports.progress)."""
    return click.option("--no-progress", is_flag=True,
                        help="no progress bar (it shows on a terminal once a run takes over 2 s)")(fn)
