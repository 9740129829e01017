"""Provenance of a traced write: the first frame of the stack outside the framework and initspec.

A jaxpr equation carries the Python stack that applied it (``source_info``); :class:`LazySite`
resolves it only when a parameter asks (most equations are never asked), falling back on the
calling equation's site: an equation inside a JAX-internal ``jit`` (the samplers) has no frame of
its own, as its traceback stops at the jit boundary.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from initspec.audit.trace import Site


class LazySite:
    """An equation's provenance, resolved only when a parameter asks for it."""

    __slots__ = ("_done", "_site", "exclude", "parent", "src")

    def __init__(self, src: Any, parent: LazySite | None, exclude: tuple[str, ...]) -> None:
        self.src, self.parent, self.exclude = src, parent, exclude
        self._site: Site | None = None
        self._done = False

    def resolve(self) -> Site | None:
        if not self._done:
            self._done = True
            self._site = user_site(self.src, self.exclude)
            if self._site is None and self.parent is not None:
                self._site = self.parent.resolve()
        return self._site


def excluded_dirs(*packages: str) -> tuple[str, ...]:
    """The source folders of initspec and of these packages (those imported): frames there are not the user's."""
    out = []
    for name in ("initspec", *packages):
        mod = sys.modules.get(name)
        for path in getattr(mod, "__path__", None) or ():
            out.append(os.path.join(path, ""))
    return tuple(out)


def user_site(source_info: Any, exclude: tuple[str, ...]) -> Site | None:
    """The first frame of an equation's stack outside JAX, the stdlib and ``exclude``."""
    from jax._src import source_info_util as siu  # frames of a jaxpr equation: no public API

    tb = getattr(source_info, "traceback", None)
    if tb is None:
        return None
    for frame in siu.user_frames(tb):
        if not frame.file_name.startswith(exclude):
            return Site(frame.file_name, frame.start_line, frame.function_name)
    return None
