"""Model factories that try to end, hang or fool an audit (issue 25): ``tests.audit.hostile_models:NAME``.

Each is tiny (a few parameters) so a test of it costs the process start and little more.  torch is
imported lazily: the factories that misbehave before returning anything need no framework.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time


def sleeps(*_: object) -> None:
    """A constructor that never returns (in Python: a sleep the alarm interrupts)."""
    time.sleep(3600)


def busy_loop(*_: object) -> None:
    while True:
        pass


def exits_5(*_: object) -> None:
    sys.exit(5)


def blocks_alarm(*_: object) -> None:
    """Stands for C code that never returns to Python: SIGALRM blocked, the in-process alarm never
    fires, only the parent's watchdog can end the call."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    time.sleep(3600)


def leaves_a_process(pid_file: str) -> None:
    """Starts a process of its own (its pid written to ``pid_file``), then exits: nothing it
    started may outlive the audit."""
    import subprocess

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    with open(pid_file, "w") as f:
        f.write(str(p.pid))
    sys.exit(5)


def _torch_linear():
    from torch import nn

    return nn.Linear(4, 3)


def thread_exits_later(delay: float = 0.3):
    """Returns a model, then a background thread ends the process from under the audit."""
    def later() -> None:
        time.sleep(delay)
        os._exit(7)

    threading.Thread(target=later, daemon=True).start()
    return _torch_linear()


def atexit_exits():
    """Returns a model; at interpreter exit a handler replaces the exit code with 9."""
    atexit.register(os._exit, 9)
    return _torch_linear()


def thread_never_ends():
    """A non-daemon thread that never ends: a plain interpreter exit would wait for it forever."""
    threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()
    return _torch_linear()


def _module(**methods):
    from torch import nn

    return type("Hostile", (nn.Module,), {"__init__": lambda self: (nn.Module.__init__(self),
                                                                     setattr(self, "fc", nn.Linear(4, 3)))[0],
                                          **methods})()


def walk_exits():
    """``named_modules`` (what the torch walker calls) ends the process with sys.exit(5)."""
    return _module(named_modules=lambda self, *a, **k: sys.exit(5))


def walk_sleeps():
    return _module(named_modules=lambda self, *a, **k: time.sleep(3600))


def del_exits():
    """``__del__`` runs when the audit releases an instance: os._exit(3)."""
    return _module(__del__=lambda self: os._exit(3))


def raises_multiline():
    """A BaseException whose message spans lines must still give one error line."""
    raise BaseException("first line\nsecond line\nthird line\nfourth line")


def zero_size():
    """Two zero-size parameters (both have data_ptr 0: not a tie) beside a real one."""
    import torch
    from torch import nn

    m = nn.Module()
    m.fc = nn.Linear(8, 8)
    m.a = nn.Parameter(torch.empty(0, 4))
    m.b = nn.Parameter(torch.empty(0))
    return m


def two_linears():
    """Two independent layers of one shape (declaring them tied is false)."""
    from torch import nn

    return nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))


def truly_tied():
    """One Linear reused at two paths (a real tie)."""
    from torch import nn

    fc = nn.Linear(8, 8)
    m = nn.Module()
    m.a, m.b = fc, fc
    return m


# --- plain functions for run_isolated itself (no framework) -----------------------------------

def answer() -> int:
    return 42


def answer_then_atexit_exit() -> int:
    atexit.register(lambda: os._exit(9))  # looked up at exit: the guard's stand-in raises
    return 42


def thread_exits_during(delay: float = 0.2) -> None:
    threading.Thread(target=lambda: (time.sleep(delay), os._exit(7)), name="quitter", daemon=True).start()
    time.sleep(30)


def bad_input() -> None:
    from initspec.errors import InputError

    raise InputError("a bad input found in the child")
