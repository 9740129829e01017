"""The libraries a scan knows: each lists its architectures (in the parent process) and turns one
into an audit target small enough to build (in a worker process).

A library module has ``NAME``, ``FRAMEWORK``, ``version()``, ``architectures(options)`` -> names and
``resolve(name, options)`` -> :class:`Resolved`, raising :class:`CannotBuild` with a one-line reason.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from initspec.errors import InputError

#: the names ``initspec scan LIBRARY`` takes -> module under initspec.scan.libraries
LIBRARIES = {"hf": "hf", "transformers": "hf", "timm": "timm", "keras_hub": "keras_hub", "keras-hub": "keras_hub"}


class CannotBuild(Exception):
    """An architecture that cannot be built here: the message is its one-line reason."""


@dataclass
class Resolved:
    """One architecture as an audit target: the target text (``initspec audit TEXT`` repeats it),
    the target itself when it cannot be written as text, and what was shrunk."""

    text: str
    target: Any = None
    params: int | None = None
    notes: list[str] = field(default_factory=list)


def library(name: str) -> ModuleType:
    """The library module for ``initspec scan NAME`` (InputError for an unknown name)."""
    key = LIBRARIES.get(name)
    if key is None:
        raise InputError(f"scan: unknown library {name!r} (known: hf, timm, keras_hub)")
    return importlib.import_module(f"initspec.scan.libraries.{key}")


def first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(e).__name__}: {text}".rstrip(": ")
