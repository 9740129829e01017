"""Run options defined once, shared by the CLI (``--seed``) and the pytest plugin (``--initspec-seed``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from initspec.engine.runner import DEFAULT_ALPHA, DEFAULT_MAX_DRAWS, DEFAULT_SEED


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str


OPTIONS = (
    Option("seed", int, DEFAULT_SEED, "run seed; draw k of a shape and dtype is seeded with a hash of "
                                      "(seed, shape, dtype, k)"),
    Option("alpha", float, DEFAULT_ALPHA, "family-wise false-alarm rate of the whole run (Holm)"),
    Option("samples", int, None, "values per shape and dtype (default: derived to catch a 1% std error "
                                 "with power 0.99)"),
    Option("max-draws", int, DEFAULT_MAX_DRAWS, "most tensors drawn per shape and dtype"),
)


def add_options(addoption: Any, prefix: str = "") -> None:
    """Register the options with an ``addoption(name, type=, default=, help=)`` callable."""
    for o in OPTIONS:
        addoption(f"--{prefix}{o.name}", type=o.type, default=o.default, help=o.help)
