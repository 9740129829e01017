"""The guard every initializer call runs under: whatever the initializer does, the run goes on.

An initializer is third-party code.  It may raise anything (``SystemExit`` from ``sys.exit``,
a bare ``BaseException``), call ``os._exit``, or never return.  :func:`guarded` turns each of
these into a :class:`DrawError` -- an ordinary ``Exception`` the runner records as the
result's error -- so the exit code of a run is decided by initspec, never by the initializer.
``KeyboardInterrupt`` is the user's, not the initializer's: it passes through.

What no in-process guard can catch: a C extension that calls ``exit()`` or crashes the
interpreter.  Under ``-j`` such a worker's death is caught by the runner (the batch is retried
alone and, if it kills its worker again, recorded as an error).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from initspec.errors import InputError

T = TypeVar("T")

#: seconds one draw (one initializer call) may take before it is an error result
DEFAULT_DRAW_TIMEOUT = 300.0


class DrawError(Exception):
    """An initializer call that did not return normally: its message is the result's error."""


class _Timeout(BaseException):
    """Raised inside the draw by the alarm (a BaseException, so the initializer's own
    ``except Exception`` cannot swallow it)."""


class _OsExit(BaseException):
    """Stands in for ``os._exit`` while a draw runs."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _no_os_exit(status: int = 0) -> None:
    raise _OsExit(status)


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """SIGALRM after `seconds` (main thread on POSIX only; elsewhere no limit, see guarded)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r})"
    if isinstance(e, _OsExit):
        return f"called os._exit({e.status})"
    text = str(e).strip()
    if len(text) > 300:  # an error line never echoes a huge input whole
        text = text[:300] + "..."
    return f"raised {type(e).__name__}: {text}".rstrip(": ")


def guarded(fn: Callable[..., T], *args: Any, timeout: float | None = None, what: str = "the draw",
            **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, with every way it can fail turned into :class:`DrawError`.

    ``timeout`` (seconds) bounds the call: a SIGALRM interrupts Python code and sleeps in the
    main thread; off the main thread the call runs in a daemon thread that is abandoned when
    it overruns (it cannot be killed, but the run goes on).
    """
    real_exit = os._exit
    os._exit = _no_os_exit  # os._exit skips every handler; during a draw it is an error instead
    try:
        if timeout and threading.current_thread() is not threading.main_thread():
            return _in_thread(fn, args, kwargs, timeout, what)
        with _alarm(timeout):
            return fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception:  # an ordinary exception keeps its type: the caller records it as the error
        raise
    except _Timeout:
        raise DrawError(f"{what} took longer than the draw timeout ({timeout:g} s; --draw-timeout)") from None
    except BaseException as e:  # noqa: BLE001 - SystemExit and bare BaseException included, by design
        raise DrawError(f"{what} {_describe(e)}") from None
    finally:
        os._exit = real_exit


def _in_thread(fn: Callable[..., T], args: tuple, kwargs: dict, timeout: float, what: str) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise DrawError(f"{what} took longer than the draw timeout ({timeout:g} s; --draw-timeout)")
    if "error" in box:
        raise box["error"]
    return box["value"]


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
        message = f"building the initializer raised {type(e).__name__}: {e}"[:500]

    def failed(*_: Any) -> Any:
        raise DrawError(message)

    return failed
