"""A progress bar on stderr for runs long enough to want one.

``with progress_bar("checking numpy", unit="results", enabled=...) as update:`` yields
``update(done, total, label)`` (the runner's :data:`~initspec.engine.runner.Progress` callback) or
``None`` when there is to be no bar: stderr is not a terminal, or the caller turned it off
(``--no-progress``, ``--quiet``).  The bar appears only once the run has taken ``delay`` seconds
(default 2, ``INITSPEC_PROGRESS_DELAY`` overrides it), so a short run prints exactly what it printed
before; it is transient (gone when the run ends) and never touches stdout, so a report written to
``-`` stays clean.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: seconds a run must last before its bar appears
DEFAULT_DELAY = 2.0

Update = Callable[[int, "int | None", str], None]


def wanted(enabled: bool = True, stream: Any = None) -> bool:
    """A bar only on a terminal, and only when the caller has not turned it off."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(enabled) and stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _delay() -> float:
    text = os.environ.get("INITSPEC_PROGRESS_DELAY")
    try:
        return max(float(text), 0.0) if text else DEFAULT_DELAY
    except ValueError:
        return DEFAULT_DELAY


class _Bar:
    """A rich Progress that starts itself from a timer after the delay, unless the run ended first."""

    def __init__(self, description: str, unit: str, delay: float) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # no stdout/stderr redirection: the bar starts from a timer thread, and the run's own
        # guard (engine.guard) must see the process's real streams
        self.bar = Progress(TextColumn("{task.fields[what]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(unit), TimeElapsedColumn(), TextColumn("{task.description}"),
                            console=Console(stderr=True), transient=True, redirect_stdout=False,
                            redirect_stderr=False)
        self.task = self.bar.add_task("", total=None, what=description)
        self.lock = threading.Lock()
        self.started = self.closed = False
        self.timer = threading.Timer(delay, self._start)
        self.timer.daemon = True
        if delay > 0:
            self.timer.start()
        else:  # no delay: drawn now, however short the run
            self._start()

    def _start(self) -> None:
        with self.lock:
            if not self.closed:
                self.bar.start()
                self.started = True

    def update(self, done: int, total: int | None, label: str) -> None:
        self.bar.update(self.task, completed=done, total=total, description=label[:60])

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.timer.cancel()
            if self.started:
                self.bar.stop()


@contextmanager
def progress_bar(description: str, *, unit: str = "", enabled: bool = True,
                 delay: float | None = None) -> Iterator[Update | None]:
    """Yield an ``update(done, total, label)`` callback drawing a bar on stderr, or None when
    stderr is not a terminal or ``enabled`` is False.  ``total`` None means not known yet."""
    if not wanted(enabled):
        yield None
        return
    bar = _Bar(description, unit, _delay() if delay is None else delay)
    try:
        yield bar.update
    finally:
        bar.close()
