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
