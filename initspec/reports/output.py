"""Output paths, checked before a run starts: a report that cannot be written is an input error.

``-`` means standard output.  Refused up front (exit 2): an empty path, a directory, a path in
a missing folder, a name the filesystem refuses (too long), a device other than /dev/null or
/dev/stdout/stderr (``/dev/full`` accepts the open and fails every write), and one path given
to two reports (the second would overwrite the first).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from initspec.errors import InputError

STDOUT = "-"
_DEVICES_OK = ("/dev/null", "/dev/stdout", "/dev/stderr")


def check_outputs(paths: dict[str, str | Path | None]) -> None:
    """Refuse every unusable output path; ``paths`` maps an option name (``--json``) to its value."""
    seen: dict[str, str] = {}
    stdout = [opt for opt, p in paths.items() if p is not None and str(p) == STDOUT]
    if len(stdout) > 1:
        raise InputError(f"{' and '.join(stdout)} both write to standard output (-): give one of them a file")
    for opt, p in paths.items():
        if p is None or str(p) == STDOUT:
            continue
        text = str(p)
        if not text.strip():
            raise InputError(f"{opt}: the path is empty (give a file name, or - for standard output)")
        key = _identity(Path(text))
        if key in seen:
            raise InputError(f"{seen[key]} and {opt} both write to {_short(text)}: one report would overwrite "
                             "the other")
        seen[key] = opt
        try:
            _check_one(opt, Path(text))
        except OSError as e:  # stat itself fails on a name too long, a loop of links, ...
            raise InputError(f"{opt} {_short(text)}: {e.strerror or e}") from None
        except ValueError as e:  # a NUL byte (the API can pass one; a command line cannot)
            raise InputError(f"{opt} {_short(text)}: {e}") from None


def _short(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:80]) + f"... ({len(text)} characters)"


def _identity(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError, ValueError):
        return str(path)


def _check_one(opt: str, path: Path) -> None:
    where = f"{opt} {_short(str(path))}"
    if path.is_dir():
        raise InputError(f"{where}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"{where}: the folder {str(path.parent)!r} does not exist")
    if path.exists():
        if not path.is_file() and str(path) not in _DEVICES_OK:
            raise InputError(f"{where}: not a regular file (only /dev/null and /dev/stdout are accepted devices)")
        if not os.access(path, os.W_OK):
            raise InputError(f"{where}: not writable")
        return
    try:  # create and remove: the only portable way to learn the name is acceptable (length, charset)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise InputError(f"{where}: cannot be created: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(path)


def write_text(path: str | Path, text: str, *, append: bool = False) -> None:
    """Write ``text`` to ``path`` (``-``: standard output); InputError when the write fails."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(path, "a" if append else "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
