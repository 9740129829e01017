"""Framework log noise kept off initspec's stderr.

TensorFlow and XLA print absl/glog lines from C++ (``I0000 00:00:1796520478.713145  9585
port.cc:153] oneDNN custom operations are on...``), and absl's notice that it is not initialized,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says: a Keras run began with up to six of them before its one
error line.  The command's file descriptor 2 goes through a filter that drops them (live: other
output, a progress bar included, passes as it comes).  ``INITSPEC_FRAMEWORK_LOGS=1`` keeps them.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_NOISE = re.compile(rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |"
                    rb"WARNING: All log messages before absl::InitializeLog\(\) is called|"
                    # the second line of TensorFlow's cpu_feature_guard message
                    rb"To enable the following instructions: .* rebuild TensorFlow with)")
_HOLD = 100  # bytes of a partial line held back while it may still turn out to be noise


def keep_logs() -> bool:
    return os.environ.get("INITSPEC_FRAMEWORK_LOGS", "") not in ("", "0")


def framework_noise(line: str | bytes) -> bool:
    """Whether a stderr line is a framework's C++ log line."""
    return bool(_NOISE.match(line.encode() if isinstance(line, str) else line)) and not keep_logs()


def replay(path: str) -> None:
    """Copy a file (a child's captured output) to stderr without the framework log lines."""
    try:
        with open(path, "rb") as f:
            kept = [line for line in f if not framework_noise(line)]
    except OSError:
        return
    if kept:
        sys.stderr.flush()
        out = getattr(sys.stderr, "buffer", None)
        if out is not None:
            out.write(b"".join(kept))
        else:
            sys.stderr.write(b"".join(kept).decode("utf-8", "replace"))
        sys.stderr.flush()


def _forward(r: int, out: int, stop: threading.Event) -> None:
    """Copy ``r`` to ``out`` without the noise, until end of file -- or, once ``stop`` is set, until
    nothing more arrives for a moment (a process the run started, such as multiprocessing's
    resource tracker, may hold the write end for as long as it lives)."""
    import select

    buf, state = b"", ""  # state: "pass" (this line is being forwarded), "drop", or "" (undecided)
    while True:
        try:
            readable, _, _ = select.select([r], [], [], 0.05)
            if not readable:
                if stop.is_set():
                    break
                continue
            data = os.read(r, 65536)
        except OSError:
            break
        if not data:
            break
        buf += data
        sent = []
        while buf:
            nl = buf.find(b"\n")
            if nl < 0:
                if state == "pass" or (state == "" and (buf[:1] not in b"IWET" or len(buf) >= _HOLD)
                                       and not _NOISE.match(buf)):
                    sent.append(buf)
                    state = "pass"
                elif state == "" and len(buf) >= _HOLD:
                    state = "drop"
                if state:
                    buf = b""
                break
            line, buf = buf[:nl + 1], buf[nl + 1:]
            if state == "pass" or (state == "" and not _NOISE.match(line)):
                sent.append(line)
            state = ""
        if sent:
            try:
                os.write(out, b"".join(sent))
            except OSError:
                pass
    if buf and state != "drop" and not _NOISE.match(buf):
        os.write(out, buf)
    os.close(r)


def _channel() -> tuple[int, int]:
    """(read end, write end) for descriptor 2: a pipe, or a pseudo-terminal of the same size when
    stderr is a terminal (a progress bar draws only on a terminal; bytes pass unchanged)."""
    if not os.isatty(2):
        return os.pipe()
    import fcntl
    import termios

    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, fcntl.ioctl(2, termios.TIOCGWINSZ, b"\0" * 8))
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # no output processing: "\n" stays "\n"
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    except OSError:
        pass
    return master, slave


@contextmanager
def quiet_framework_logs() -> Iterator[None]:
    """Within the block, file descriptor 2 passes through the filter (a reader thread)."""
    if keep_logs():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        r, w = _channel()
    except OSError:  # no descriptor 2: nothing to filter
        yield
        return
    os.dup2(w, 2)
    os.close(w)
    stop = threading.Event()
    reader = threading.Thread(target=_forward, args=(r, saved, stop), name="initspec-stderr", daemon=True)
    reader.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # this process's write end closes: the reader drains the pipe and ends
        stop.set()
        reader.join(5.0)
        if not reader.is_alive():
            os.close(saved)
