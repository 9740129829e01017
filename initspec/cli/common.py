"""Option groups and the progress bar shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from initspec.options import OPTIONS


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for o in reversed(OPTIONS):
        fn = click.option(f"--{o.name}", type=o.type, default=o.default, show_default=True, help=o.help)(fn)
    return fn


def progress_bar(enabled: bool) -> tuple[Any, Callable[[int, int, str], None] | None]:
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("checking", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label[:60])

    return bar, update
