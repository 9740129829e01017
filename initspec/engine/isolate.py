"""Run a command's model-facing work in a child process: what no in-process guard can contain is
reported by the parent.

In-process, :func:`~initspec.engine.guard.call_user` catches what a call does while it runs.  What
the code leaves behind after it returned acts on the process itself: a thread that later calls
``os._exit``, an ``atexit`` handler that replaces the exit code, a non-daemon thread that never
ends, a C extension that crashes or never returns to Python.  :func:`run_isolated` runs
``fn(*args)`` in a fresh interpreter (a new session: never a fork of a process that imported torch
or TF, which can deadlock) while the parent, which imports no framework, decides the exit code:

- the child's stdout and stderr go to a file the parent replays on its stderr once the child is
  gone, without the frameworks' C++ log lines (stdout carries only initspec's report);
- each call into user code tells the parent its time limit; a call that overruns it (C code the
  alarm cannot interrupt) is ended by killing the child;
- a child that dies before it delivers the result is reported with what it was doing (the call
  it was in, or the thread that ended it);
- after the result the child runs its ``atexit`` handlers under the guard and ends itself with the
  real ``os._exit``: a handler that exits is reported, non-daemon threads are not waited for;
- at the end the child's process group is killed: nothing it started keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from initspec.engine.guard import UserCodeError, describe
from initspec.engine.logs import replay
from initspec.errors import one_line

#: seconds a call may overrun its limit in the child before the parent ends the child (the child's
#: own alarm fires first whenever the code runs Python)
GRACE = 5.0
#: seconds between looks at whether the child still runs
POLL = 1.0
#: seconds the child may take after its result (its atexit handlers) before it is ended
AFTER = 30.0


class AfterResultError(UserCodeError):
    """The child delivered its result, then the code it ran misbehaved (``value`` is the result)."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), self.value))


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session: its group is its pid
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()


_BOOT = ("import sys, os\n"
         "from multiprocessing.connection import Connection\n"
         "c = Connection(int(sys.argv[1]))\n"
         "sys.path[:] = c.recv()\n"
         "from initspec.engine.isolate import _child\n"
         "_child(c, Connection(int(sys.argv[2])))\n")


def run_isolated(fn: Callable[..., Any], *args: Any, what: str, timeout: float | None = None,
                 option: str = "--timeout", progress: Callable[..., None] | None = None) -> Any:
    """``fn(*args)`` in a child process (``fn`` and ``args`` picklable, ``fn`` importable by name).
    With ``progress``, ``fn(*args, progress=update)``: each ``update(...)`` in the child calls
    ``progress(...)`` here (a progress bar on the parent's terminal).

    Returns its value or raises what it raised (InputError stays bad input).  Raises
    :class:`UserCodeError` naming what ended or hung the child (``what`` names the work), and
    :class:`AfterResultError` (carrying the value) when the child misbehaved after delivering it.
    ``timeout``/``option`` are the child's :func:`~initspec.engine.guard.time_limit`.
    """
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    with tempfile.NamedTemporaryFile("wb", prefix="initspec-child-", delete=False) as log:
        log_path = log.name
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", _BOOT, str(to_child_r), str(from_child_w)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                pass_fds=(to_child_r, from_child_w))
    os.close(to_child_r)
    os.close(from_child_w)
    send, recv = Connection(to_child_w), Connection(from_child_r)
    try:
        try:
            send.send(list(sys.path))
            send.send((fn, args, timeout, option, progress is not None))
        except OSError:  # the child is gone already: _watch says how it ended
            pass
        return _watch(proc, recv, what, progress)
    finally:
        _kill_group(proc)
        send.close()
        recv.close()
        replay(log_path)
        os.unlink(log_path)


_NOTHING = object()


def _watch(proc: subprocess.Popen, conn: Connection, what: str, progress: Callable[..., None] | None) -> Any:
    call: tuple[str, float | None, float] | None = None   # (what, seconds, started) of the current call
    last = ""
    value: Any = _NOTHING
    after = died = ""
    done = False
    ends = 0.0  # when the child must have ended, once it delivered its result
    while True:
        if call is not None and call[1]:
            left = call[2] + call[1] + min(max(GRACE, 0.25 * call[1]), 60.0) - time.monotonic()
        elif value is not _NOTHING:
            left = ends - time.monotonic()
        else:
            left = None
        # at most a second at a time: a grandchild holding the pipe open would hide the child's end
        ready = wait([conn], POLL if left is None else min(max(left, 0.0), POLL))
        if not ready:
            if left is not None and left <= POLL:
                if call is not None:
                    raise UserCodeError(one_line(f"{call[0]} took longer than the time limit ({call[1]:g} s) and "
                                                 "never returned to Python: its process was ended"))
                break  # after the result: the exit handlers hang; the child is killed
            if proc.poll() is not None and not conn.poll():
                break
            continue
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        except Exception as e:  # noqa: BLE001 - a message this process cannot unpickle
            raise UserCodeError(one_line(f"{what}: the child's message could not be read "
                                         f"({type(e).__name__}: {e})")) from None
        kind = msg[0]
        if kind == "begin":
            call = (msg[1], msg[2], time.monotonic())
        elif kind == "end":
            last, call = call[0] if call else last, None
        elif kind == "progress" and progress is not None:
            progress(*msg[1:])
        elif kind == "result":
            value, ends = msg[1], time.monotonic() + AFTER
        elif kind == "raise":
            raise msg[1]
        elif kind == "died":
            died = msg[1]
        elif kind == "after":
            after = msg[1]
        elif kind == "done":
            done = True
            break
    if value is _NOTHING:
        code = proc.wait()
        if died:
            raise UserCodeError(one_line(f"{what}: {died}"))
        if call is not None:
            raise UserCodeError(one_line(f"{call[0]} ended its process ({_exit_text(code)})"))
        since = f"after {last} returned" if last else "before it called the model"
        raise UserCodeError(one_line(f"{what}: the process ended ({_exit_text(code)}) {since} "
                                     "(a thread, signal or C extension the model left behind?)"))
    if not done and not died and not after:
        try:
            code = proc.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        after = (f"the process ended ({_exit_text(code)}) after it delivered the result (an atexit handler or "
                 "a thread the model left behind?)" if code is not None else
                 f"the process did not end within {AFTER:g} s of delivering the result")
    if died or after:
        raise AfterResultError(one_line(f"{what}: {died or after}"), value)
    return value


# --- the child ------------------------------------------------------------------------------


def _child(conn: Connection, out: Connection) -> None:
    """The child's main: run the work, send the result, run the exit handlers, end."""
    from initspec.engine import guard

    real_exit = os._exit
    lock = threading.Lock()

    def send(msg: tuple) -> None:
        with lock:
            out.send(msg)

    guard.set_monitor(lambda *m: send(m))
    # for the child's whole life, os._exit is an exception: in a thread the model left running it
    # ends that thread, and the hook below reports it and ends the child
    guard._every_thread[0] = True
    os._exit = guard._no_os_exit
    default_hook = threading.excepthook

    def thread_died(a: threading.ExceptHookArgs) -> None:
        if isinstance(a.exc_value, guard._OsExit):
            name = a.thread.name if a.thread else "?"
            send(("died", f"a thread the model started ({name}) {describe(a.exc_value)}"))
            sys.stdout.flush()
            sys.stderr.flush()
            real_exit(70)
        default_hook(a)

    threading.excepthook = thread_died
    fn, args, timeout, option, progress = conn.recv()
    extra = {"progress": lambda *a: send(("progress", *a))} if progress else {}
    try:
        with guard.time_limit(timeout, option):
            msg: tuple = ("result", fn(*args, **extra))
    except BaseException as e:  # noqa: BLE001 - every outcome goes to the parent
        msg = ("raise", e)
    try:
        send(msg)
    except Exception as e:  # noqa: BLE001 - an unpicklable exception: its words still go back
        send(("raise", RuntimeError(f"{type(msg[1]).__name__}: {msg[1]} (and it could not be sent: {e})")))
    problem = _exit_handlers()
    if problem:
        send(("after", problem))
    send(("done",))
    sys.stdout.flush()
    sys.stderr.flush()
    real_exit(0)


def _exit_handlers() -> str:
    """Run the atexit handlers now, under the guard: what one that exits or hangs did, or ''."""
    import atexit

    from initspec.engine import guard

    hidden: list[BaseException] = []
    old = sys.unraisablehook

    def unraisable(u: Any) -> None:
        if isinstance(u.exc_value, (guard._OsExit, SystemExit)) or not isinstance(u.exc_value, Exception):
            hidden.append(u.exc_value)
        else:
            old(u)

    sys.unraisablehook = unraisable
    try:
        guard.guarded(atexit._run_exitfuncs, timeout=AFTER / 2, what="an atexit handler")
    except BaseException as e:  # noqa: BLE001 - a hang, or what got through
        return str(e) if isinstance(e, guard.DrawError) else f"an atexit handler {describe(e)}"
    finally:
        sys.unraisablehook = old
    if hidden:
        return f"an atexit handler the model registered {describe(hidden[0])}"
    return ""
