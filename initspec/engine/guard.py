"""The guard every call into code initspec does not own runs under: whatever that code does, the run goes on.

An initializer, a model's constructor, a walker's callback into a model (``named_modules``, Keras's
variable listing), a ``__del__`` run when an instance is released: all are third-party code.  Such
code may raise anything (``SystemExit`` from ``sys.exit``, a bare ``BaseException``), call
``os._exit``, or never return.  :func:`guarded` turns each of these into a :class:`DrawError`;
:func:`call_user` (the one entry point for new callers) also turns ordinary exceptions into a
one-line :class:`UserCodeError` naming what the code did, so the exit code of a run is decided by
initspec, never by that code.  ``KeyboardInterrupt`` is the user's, not the code's: it passes
through; so does :class:`~initspec.errors.InputError` (bad input stays exit 2).

Time limits: each call has one (``time_limit`` sets the command's; ``--draw-timeout`` for
initializer draws, ``--timeout`` for a model's calls).  A SIGALRM interrupts Python code and
sleeps in the main thread; a call nested in another runs under whichever limit ends sooner.
``os._exit`` is an exception in the thread that runs the call, while it runs.

What no in-process guard can catch: a C extension that calls ``exit()``, crashes the interpreter
or never returns to Python, and anything the code leaves behind (a thread or an ``atexit``
handler that calls ``os._exit``).  :mod:`initspec.engine.isolate` runs such work in a
child process and reports it from the parent; under ``check -j`` a worker's death is caught by
the runner (the batch is retried alone and, if it kills its worker again, recorded as an error).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from initspec.errors import InputError, one_line

T = TypeVar("T")

#: seconds one draw (one initializer call) may take before it is an error result
DEFAULT_DRAW_TIMEOUT = 300.0
#: seconds one call into a model's code (a constructor, a walk, a release) may take: generous, since
#: building a large model from its config on a CPU takes minutes
DEFAULT_TIMEOUT = 600.0


class DrawError(Exception):
    """An initializer call that did not return normally: its message is the result's error."""


class UserCodeError(DrawError):
    """A call into user code that failed: one line naming the call and what the code did."""


class _Timeout(BaseException):
    """Raised inside the call by the alarm (a BaseException, so the code's own ``except Exception``
    cannot swallow it); ``args[0]`` is the token of the alarm that fired."""


class _OsExit(BaseException):
    """Stands in for ``os._exit`` while user code runs."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_real_os_exit = os._exit
_guarded_threads: dict[int, int] = {}  # thread id -> depth of guarded calls running in it
_every_thread = [False]                # the isolated child: os._exit is an error in any thread


def _no_os_exit(status: int = 0) -> None:
    """os._exit while user code runs: an error in the thread that runs it (initspec's own threads,
    such as a worker's orphan watch, still end their process)."""
    if _every_thread[0] or threading.get_ident() in _guarded_threads:
        raise _OsExit(status)
    _real_os_exit(status)


@contextmanager
def _this_thread_guarded() -> Iterator[None]:
    me = threading.get_ident()
    _guarded_threads[me] = _guarded_threads.get(me, 0) + 1
    try:
        yield
    finally:
        _guarded_threads[me] -= 1
        if not _guarded_threads[me]:
            del _guarded_threads[me]


# the command's limit for call_user (seconds or None) and the option that sets it, for messages
_LIMIT: ContextVar[tuple[float | None, str]] = ContextVar("initspec_time_limit", default=(DEFAULT_TIMEOUT, "--timeout"))
_OPTION: ContextVar[str] = ContextVar("initspec_time_option", default="--draw-timeout")
_alarm_owner: list[bool] = []   # one entry per alarm set and not yet ended
_depth = [0]                    # nesting of call_user, for the monitor
_monitor: list[Callable[..., None]] = []


@contextmanager
def time_limit(seconds: float | None, option: str = "--timeout") -> Iterator[None]:
    """Within the block, :func:`call_user` gives each call ``seconds`` (None or 0: no limit), and
    time-limit messages name ``option``."""
    a, b = _LIMIT.set((seconds or None, option)), _OPTION.set(option)
    try:
        yield
    finally:
        _LIMIT.reset(a)
        _OPTION.reset(b)


def set_monitor(callback: Callable[..., None] | None) -> None:
    """``callback("begin", what, seconds)`` / ``callback("end")`` around each outermost
    :func:`call_user` (the isolation's watchdog in the parent process hears of them)."""
    _monitor[:] = [callback] if callback else []


def _limit_text(timeout: float) -> str:
    option = _OPTION.get()
    kind = "the draw timeout" if option == "--draw-timeout" else "the time limit"
    return f"{kind} ({timeout:g} s; {option})"


@contextmanager
def _alarm(seconds: float | None) -> Iterator[object | None]:
    """SIGALRM after `seconds` (main thread on POSIX only; elsewhere no limit, see guarded).

    Yields this alarm's token (the _Timeout it raises carries it), or None when it set none: no
    limit, or an outer call's alarm fires sooner.  A nested call with a shorter limit sets its own
    and gives the outer one back its remaining time when it ends.
    """
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield None
        return
    outer_left = signal.getitimer(signal.ITIMER_REAL)[0]
    if _alarm_owner and 0 < outer_left <= seconds:
        yield None
        return
    token = object()

    def fire(signum: int, frame: Any) -> None:
        raise _Timeout(token)

    old = signal.signal(signal.SIGALRM, fire)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    _alarm_owner.append(True)
    try:
        yield token
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        _alarm_owner.pop()
        if _alarm_owner and outer_left > 0:  # the outer call's alarm, with what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 1e-6))


def describe(e: BaseException) -> str:
    """What the code did, in words for one line: ``called sys.exit(3)``, ``raised KeyError: 'x'``."""
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r})"
    if isinstance(e, _OsExit):
        return f"called os._exit({e.status})"
    lines = str(e).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > 150:  # an error line never echoes a huge message whole
        text = text[:150] + "..."
    return f"raised {type(e).__name__}: {text}".rstrip(": ")


_describe = describe  # the name other modules used


def guarded(fn: Callable[..., T], *args: Any, timeout: float | None = None, what: str = "the draw",
            **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, with every way it can fail turned into :class:`DrawError`
    (ordinary exceptions keep their type: the caller records them).

    ``timeout`` (seconds) bounds the call: a SIGALRM interrupts Python code and sleeps in the
    main thread; off the main thread the call runs in a daemon thread that is abandoned when
    it overruns (it cannot be killed, but the run goes on).
    """
    real_exit = os._exit
    os._exit = _no_os_exit  # os._exit skips every handler; during the call it is an error instead
    owner = None
    try:
        if timeout and threading.current_thread() is not threading.main_thread():
            return _in_thread(fn, args, kwargs, timeout, what)
        with _alarm(timeout) as owner, _this_thread_guarded():
            return fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception:  # an ordinary exception keeps its type: the caller records it as the error
        raise
    except _Timeout as e:
        if owner is None or e.args[0] is not owner:  # an outer call's limit: it names itself
            raise
        raise DrawError(f"{what} took longer than {_limit_text(timeout)}") from None
    except BaseException as e:  # noqa: BLE001 - SystemExit and bare BaseException included, by design
        raise DrawError(f"{what} {describe(e)}") from None
    finally:
        os._exit = real_exit


def _in_thread(fn: Callable[..., T], args: tuple, kwargs: dict, timeout: float, what: str) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with _this_thread_guarded():
                box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise DrawError(f"{what} took longer than {_limit_text(timeout)}")
    if "error" in box:
        raise box["error"]
    return box["value"]


class _Default:
    pass


_DEFAULT: Any = _Default()


def call_user(fn: Callable[..., T], *args: Any, what: str, timeout: float | None = _DEFAULT,
              error: type[Exception] = UserCodeError) -> T:
    """``fn(*args)``: a call into code initspec does not own, under the guard and a time limit
    (``timeout``, default the command's :func:`time_limit`).

    InputError and KeyboardInterrupt pass through.  Anything else the code does -- raise,
    ``sys.exit``, ``os._exit``, a bare BaseException, overrun its limit, or raise from a
    ``__del__`` that the call's collection ran (Python only prints those) with ``os._exit`` or
    ``sys.exit`` -- raises ``error`` with one line: ``{what} called os._exit(3)``.
    """
    seconds = _LIMIT.get()[0] if timeout is _DEFAULT else (timeout or None)
    outer = _depth[0] == 0
    _depth[0] += 1
    if outer and _monitor:
        _monitor[0]("begin", what, seconds)
    hidden: list[BaseException] = []
    old_hook = sys.unraisablehook

    def unraisable(u: Any) -> None:  # a __del__'s exception is printed and dropped by Python
        if isinstance(u.exc_value, (_OsExit, SystemExit)) or not isinstance(u.exc_value, Exception):
            hidden.append(u.exc_value)
        else:
            old_hook(u)

    sys.unraisablehook = unraisable
    option = _OPTION.set(_LIMIT.get()[1])  # a model's calls are limited by --timeout, not --draw-timeout
    try:
        value = guarded(fn, *args, timeout=seconds, what=what)
    except (InputError, KeyboardInterrupt):
        raise
    except UserCodeError as e:  # a nested call's: already one line
        if isinstance(e, error):
            raise
        raise error(str(e)) from None
    except DrawError as e:
        raise error(one_line(str(e))) from None
    except Exception as e:  # noqa: BLE001 - the code's own failure, named in one line
        raise error(one_line(f"{what} {describe(e)}")) from None
    finally:
        _OPTION.reset(option)
        sys.unraisablehook = old_hook
        _depth[0] -= 1
        if outer and _monitor:
            _monitor[0]("end")
    if hidden:
        raise error(one_line(f"{what}: a __del__ {describe(hidden[0])}"))
    return value


def build_guarded(build: Callable[[], Any], timeout: float | None = None) -> Any:
    """``build()`` (a binding's prepare: the factory call) under the guard.  Bad input stays an
    InputError (exit 2); any other failure becomes a drawer whose every draw raises it, so the
    initializer gets an error result and the run goes on."""
    try:
        return guarded(build, timeout=timeout, what="building the initializer")
    except InputError:
        raise
    except DrawError as e:
        message = str(e)
    except Exception as e:  # noqa: BLE001 - a broken factory is the initializer's result, not a crash
        message = f"building the initializer {describe(e)}"

    def failed(*_: Any) -> Any:
        raise DrawError(message)

    return failed
