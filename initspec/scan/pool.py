"""Worker processes for a scan: one task at a time per worker, each under a wall-clock timeout.

A task that overruns its timeout, or whose worker dies (a crash, ``os._exit``, memory), costs that
worker (killed by its own pid and replaced) and gives a row with the reason; the other workers go
on.  Workers are started with ``spawn`` (a forked child of a process that imported torch can
deadlock) and keep their imports from task to task, so a library is imported once per worker.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

#: a task: (dotted function name, its argument); the function returns a JSON-able dict
Task = tuple[str, Any]


def _orphan_watch(parent: int) -> None:
    """End this worker when the scan that started it is gone (killed before it could stop us)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _worker(conn: Connection, env: dict[str, str], quiet: bool, parent: int) -> None:
    import threading

    # the parent's pid from the parent: a worker slow to start may already be an orphan here
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    os.environ.update(env)
    if quiet:  # the libraries' warnings and progress bars would bury the scan's own lines
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    while True:
        try:
            task = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if task is None:
            return
        fn_name, arg = task
        module, _, attr = fn_name.rpartition(".")
        try:
            out = getattr(importlib.import_module(module), attr)(arg)
        except BaseException as e:  # noqa: BLE001 - the task function catches its own; this is the last guard
            out = {"error": f"{type(e).__name__}: {e}"[:300]}
        try:
            conn.send(out)
        except (BrokenPipeError, KeyboardInterrupt):
            return


@dataclass
class _Slot:
    process: Any
    conn: Connection
    index: int = -1
    started: float = 0.0


def run_tasks(tasks: list[Task], *, workers: int = 1, timeout: float | None = None,
              on_lost: Callable[[Task, str], dict[str, Any]],
              progress: Callable[[int, int, str], None] | None = None, env: dict[str, str] | None = None,
              quiet: bool = True, label: Callable[[Task], str] = lambda t: str(t[1]),
              on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every task in ``workers`` processes; ``on_lost(task, reason)`` makes the row of a task that
    timed out or whose worker died; ``on_result(row)`` sees each row as it comes.  Results come back
    in the tasks' order."""
    ctx = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    pending = deque(range(len(tasks)))
    slots: list[_Slot] = []
    done = 0

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, dict(env or {}), quiet, os.getpid()), daemon=True)
        p.start()
        child.close()
        return _Slot(p, parent)

    def stop(slot: _Slot) -> None:
        if slot.process.is_alive():
            slot.process.kill()  # this worker, by its own pid: it is ours
        slot.process.join(5)
        slot.conn.close()

    def finish(slot: _Slot, row: dict[str, Any]) -> None:
        nonlocal done
        results[slot.index] = row
        done += 1
        if on_result:
            on_result(row)
        if progress:
            progress(done, len(tasks), label(tasks[slot.index]))
        slot.index = -1

    try:
        slots = [start() for _ in range(max(1, min(workers, len(tasks))))]
        if progress:
            progress(0, len(tasks), "starting")
        while pending or any(s.index >= 0 for s in slots):
            for s in slots:
                if s.index < 0 and pending:
                    s.index, s.started = pending.popleft(), time.monotonic()
                    s.conn.send(tasks[s.index])
            busy = [s for s in slots if s.index >= 0]
            left = [s.started + timeout - time.monotonic() for s in busy] if timeout else []
            ready = wait([s.conn for s in busy], timeout=max(0.0, min(left)) if left else None)
            for s in busy:
                if s.conn in ready:
                    try:
                        row = s.conn.recv()
                    except (EOFError, OSError):
                        s.process.join(5)
                        code = s.process.exitcode
                        finish(s, on_lost(tasks[s.index], f"the worker process died (exit code {code})"))
                        stop(s)
                        slots[slots.index(s)] = start()
                        continue
                    finish(s, row)
                elif timeout and time.monotonic() - s.started > timeout:
                    finish(s, on_lost(tasks[s.index], f"timed out after {timeout:g} s (--timeout)"))
                    stop(s)
                    slots[slots.index(s)] = start()
    finally:
        for s in slots:
            try:
                if s.process.is_alive() and s.index < 0:
                    s.conn.send(None)
            except OSError:
                pass
            s.process.join(2)
            stop(s)
    return [r if r is not None else on_lost(tasks[i], "not run") for i, r in enumerate(results)]
