"""The progress bar: on stderr when it is a terminal (checked through a real pseudo-terminal), never
when it is not, never with --no-progress, and only once a run has lasted the delay."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from initspec.reports.progress import progress_bar, wanted

ROOT = Path(__file__).resolve().parent.parent
BAR = "━"  # rich's bar glyph: only a drawn bar writes it
CHECK = ["check", "numpy", "--only", "normal", "--samples", "20000"]
PROPAGATE = ["propagate", "he_normal", "-a", "relu", "--depth", "5", "--width", "64", "--batch", "8", "--seeds", "3"]


def _env(delay: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), INITSPEC_PROGRESS_DELAY=delay, TERM="xterm-256color",
               COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    return env


def _under_pty(args: list[str], delay: str = "0") -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal; everything it wrote, and its exit code."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "initspec", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=_env(delay), cwd=ROOT, close_fds=True)
    os.close(slave)
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError as e:  # EIO: the child closed its end
            if e.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), out.decode("utf-8", "replace")


def test_the_bar_shows_on_a_terminal():
    code, out = _under_pty(CHECK)
    assert code == 0
    assert BAR in out and "check numpy" in out and "results" in out
    assert "1 passed" in out or "passed" in out.splitlines()[-1]  # the report still follows


def test_no_bar_with_no_progress_even_on_a_terminal():
    code, out = _under_pty([*CHECK, "--no-progress"])
    assert code == 0 and BAR not in out and "passed" in out


def test_no_bar_when_stderr_is_not_a_terminal():
    proc = subprocess.run([sys.executable, "-m", "initspec", *CHECK], capture_output=True, text=True,
                          env=_env("0"), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert BAR not in proc.stderr and BAR not in proc.stdout and proc.stderr == ""


def test_propagate_shows_its_seeds():
    code, out = _under_pty(PROPAGATE)
    assert code == 0 and BAR in out and "seeds" in out and "PASS" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_waits_for_the_delay(monkeypatch):
    """A run shorter than the delay prints nothing at all; past the delay the bar is drawn."""
    fake = _Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    assert wanted(True) and not wanted(False)
    with progress_bar("quick", unit="results", delay=60) as update:
        assert update is not None
        update(1, 2, "first")
    assert fake.getvalue() == ""
    with progress_bar("slow", unit="results", delay=0) as update:
        import time

        update(1, 2, "first")
        deadline = time.monotonic() + 10
        while BAR not in fake.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert BAR in fake.getvalue() and "slow" in fake.getvalue()


def test_no_callback_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bar("x") as update:
        assert update is None

