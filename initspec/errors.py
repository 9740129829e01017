"""The one exception the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: a spec, manifest, scheme expression, shape, dtype or target.

    The message is the whole story (what is wrong and where); no traceback is shown.
    """


def closest(name: str, choices: list[str], n: int = 3) -> str:
    """A ' (did you mean ...?)' suffix naming the closest choices, or ''."""
    import difflib

    hits = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    return f" (did you mean {', '.join(hits)}?)" if hits else ""


#: characters of user input an error line echoes; longer input is cut and its length said
ECHO_LIMIT = 60
#: characters of one error line (the message after ``initspec: error: ``)
LINE_LIMIT = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` (user input, not repr'd) cut to ``limit`` characters, saying how long it was."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """A message as one line of at most ``limit`` characters: line breaks become ``; `` and an
    over-long line keeps a third from its start (where) and the rest from its end (the reason)."""
    text = "; ".join(s.strip() for s in str(text).strip().splitlines() if s.strip())
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} ... {text[-(limit - head - 5):]}"


def clip_path(path: object, limit: int = 100) -> str:
    """A file path for an error line: its last ``limit`` characters (the file's own name is there)."""
    text = str(path)
    return text if len(text) <= limit else "..." + text[-limit:]
