"""Fans and weight layouts.

A layout says which axis of a weight holds the input and which the output units; every
other axis (but batch axes) is receptive field.  ``torch``: ``(out, in, *kernel)``;
``tf`` (TF, Keras): ``(*kernel, in, out)``; ``jax``: like tf with JAX's own rule for < 2-D
shapes and configurable ``in_axis``/``out_axis``/``batch_axis``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from initspec.errors import InputError


@dataclass(frozen=True)
class Layout:
    """Which axes are fan-in and fan-out, and what a 0-D/1-D shape means."""

    name: str
    in_axis: int
    out_axis: int
    batch_axis: tuple[int, ...] = ()
    small: str = "refuse"  # "refuse" (torch, JAX) or "keras" (0-D: 1, 1; 1-D: n, n)

    def fans(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(fan_in, fan_out) of a weight of this shape."""
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            if self.small == "keras":
                n = shape[0] if shape else 1
                return n, n
            raise InputError(f"layout {self.name}: fans need a weight of at least 2 dimensions, got shape {shape}")
        given = (self.in_axis, self.out_axis, *self.batch_axis)
        bad = [a for a in given if not -len(shape) <= a < len(shape)]
        if bad:  # `a % len` would wrap it onto another axis and report an "overlap"
            raise InputError(f"layout {self.name}: axis {bad[0]} is out of range for the "
                             f"{len(shape)}-D shape {shape} (axes run from {-len(shape)} to {len(shape) - 1})")
        axes = [a % len(shape) for a in given]
        if len(set(axes)) != len(axes):
            raise InputError(f"layout {self.name}: in_axis, out_axis and batch_axis overlap for shape {shape}")
        receptive = math.prod(d for i, d in enumerate(shape) if i not in axes)
        return shape[axes[0]] * receptive, shape[axes[1]] * receptive

    def matrix(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, cols) of the layout's flattening for orthogonal checks."""
        if len(shape) < 2:
            raise InputError(f"layout {self.name}: a matrix needs at least 2 dimensions, got shape {shape}")
        if self.name == "torch":
            return shape[0], math.prod(shape[1:])
        return math.prod(shape[:-1]), shape[-1]

    def spec(self) -> str:
        if self.batch_axis or (self.in_axis, self.out_axis) not in ((1, 0), (-2, -1)):
            return f"{self.name}(in_axis={self.in_axis}, out_axis={self.out_axis}, batch_axis={self.batch_axis})"
        return self.name


LAYOUTS = {
    "torch": Layout("torch", in_axis=1, out_axis=0),
    "tf": Layout("tf", in_axis=-2, out_axis=-1, small="keras"),
    "jax": Layout("jax", in_axis=-2, out_axis=-1),
}


def get_layout(name: str, in_axis: int | None = None, out_axis: int | None = None,
               batch_axis: tuple[int, ...] | list[int] | int | None = None) -> Layout:
    """A named layout, optionally with JAX-style axes overridden."""
    if name not in LAYOUTS:
        raise InputError(f"unknown layout {name!r}: use one of {', '.join(LAYOUTS)}")
    base = LAYOUTS[name]
    if in_axis is None and out_axis is None and batch_axis is None:
        return base
    if isinstance(batch_axis, int):
        batch_axis = (batch_axis,)
    return Layout(name, base.in_axis if in_axis is None else int(in_axis),
                  base.out_axis if out_axis is None else int(out_axis),
                  tuple(batch_axis or ()), base.small)


def n_of(mode: str, fan_in: float, fan_out: float) -> float:
    """The n of Var = scale / n for a fan mode."""
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    if mode == "fan_geo_avg":
        return math.sqrt(fan_in * fan_out)
    raise InputError(f"unknown fan mode {mode!r}")


def parse_shape(text: str | list | tuple) -> tuple[int, ...]:
    """``'8,3,5,5'`` (or a list) -> ``(8, 3, 5, 5)``; raises InputError when malformed."""
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        s = text.strip().strip("()[]").strip().rstrip(",")
        parts = re.split(r"\s*[,x]\s*", s) if s else []
        if not parts:  # `--shape ''` would silently mean a scalar, or the defaults
            raise InputError(f"bad shape {text!r}: empty; expected comma-separated positive integers like 8,3,5,5")
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        raise InputError(f"bad shape {_short(text)}: expected comma-separated positive integers like 8,3,5,5") from None
    if any(d <= 0 for d in shape):
        raise InputError(f"bad shape {_short(text)}: every dimension must be a positive integer")
    from initspec.spec.validate import shape_size

    shape_size(shape, where=f"bad shape {_short(text)}")
    return shape


def _short(text: Any) -> str:
    r = repr(text)
    return r if len(r) <= 80 else f"{r[:80]}... ({len(r)} characters)"
