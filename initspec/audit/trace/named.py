"""The scheme the code named: which ``jax.nn.initializers`` closure returned a value, with its arguments.

``variance_scaling(1.0, "fan_in", "truncated_normal")`` and ``lecun_normal()`` return the same
closure (jax/_src/nn/initializers.py:282-372; the presets at :375-597 are one call each), so its
arguments -- the closure's free variables ``scale``, ``mode``, ``distribution`` -- are what the code
declared.  While a trace runs, :func:`capture` puts a thin proxy in place of the ``random`` module
that ``jax._src.nn.initializers`` samples through (its ``from jax._src import random``): when a
sampler is called from one of the initializer closures, the closure's frame is read, and its
return value (a tracer) is matched to its jaxpr variable when the frame returns.  Everything
else passes through untouched.  A JAX that samples differently just yields no names: a
declared name is only shown where it gives the traced law (the recorder checks), never guessed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: JAX's presets (jax/_src/nn/initializers.py:375-597) in the spec vocabulary: JAX's *_normal are
#: truncated normals (as adapters/jax.toml claims them)
JAX_PRESETS = {
    (1.0, "fan_avg", "truncated_normal"): "glorot_truncated_normal",
    (1.0, "fan_avg", "uniform"): "glorot_uniform",
    (1.0, "fan_in", "truncated_normal"): "lecun_truncated_normal",
    (1.0, "fan_in", "uniform"): "lecun_uniform",
    (2.0, "fan_in", "truncated_normal"): "he_truncated_normal",
    (2.0, "fan_in", "uniform"): "he_uniform",
}
_SAMPLERS = ("normal", "uniform", "truncated_normal", "orthogonal")


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):  # a traced or array argument: no literal to name
        return None


def expression(kind: str, local: dict[str, Any]) -> str | None:
    """The spec expression of an initializer closure of ``kind`` from its frame's variables."""
    if kind == "variance_scaling":
        scale, mode, dist = _number(local.get("scale")), local.get("mode"), local.get("distribution")
        if scale is None or mode not in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg") or dist not in (
                "normal", "truncated_normal", "uniform"):
            return None
        return JAX_PRESETS.get((scale, mode, dist)) or f"variance_scaling(scale={scale!r}, mode={mode}, " \
                                                       f"distribution={dist})"
    if kind == "normal":
        std = _number(local.get("stddev"))
        return None if std is None else f"normal(std={std!r})"
    if kind == "uniform":
        scale = _number(local.get("scale"))
        return None if scale is None else f"uniform(low=0.0, high={scale!r})"
    if kind == "truncated_normal":
        std, lo, hi = (_number(local.get(k)) for k in ("stddev", "lower", "upper"))
        if None in (std, lo, hi):
            return None
        return f"truncated_normal(std={std!r}, lower={lo!r}, upper={hi!r})"
    if kind == "orthogonal":
        scale = _number(local.get("scale"))
        return None if scale is None else "orthogonal" if scale == 1 else f"orthogonal(gain={scale!r})"
    return None


class _Random:
    """``jax._src.random`` as the initializers see it, with the samplers wrapped."""

    def __init__(self, real: Any, wrap: Any) -> None:
        self._real = real
        for name in _SAMPLERS:
            if hasattr(real, name):
                setattr(self, name, wrap(getattr(real, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def capture() -> Iterator[dict[Any, str]]:
    """While tracing: {jaxpr variable: scheme expression} of every value an initializer closure returned."""
    from jax._src.nn import initializers as ji  # the closures' module: no public API names them

    codes: dict[Any, str] = {}
    for kind, make in (("variance_scaling", lambda: ji.variance_scaling(1.0, "fan_in", "normal")),
                       ("normal", ji.normal), ("uniform", ji.uniform), ("truncated_normal", ji.truncated_normal),
                       ("orthogonal", ji.orthogonal)):
        codes[make().__code__] = kind
    found: dict[Any, str] = {}

    def on_return(frame: Any, expr: str) -> None:
        """Profile the rest of the closure's body (a multiply or two) to catch its return value."""
        prev = sys.getprofile()
        if prev is not None and not hasattr(prev, "prev"):  # someone else's profiler (cProfile): leave it be
            return

        def hook(f: Any, event: str, arg: Any) -> None:
            if f is frame and event == "return":
                sys.setprofile(prev)
                var = getattr(arg, "val", None)  # a tracer's jaxpr variable
                if var is not None and type(var).__name__ == "Var":
                    found[var] = expr
            elif prev is not None:
                prev(f, event, arg)

        hook.prev = prev  # type: ignore[attr-defined]
        sys.setprofile(hook)

    def wrap(sampler: Any) -> Any:
        def sample(*args: Any, **kwargs: Any) -> Any:
            out = sampler(*args, **kwargs)
            frame = sys._getframe(1)
            kind = codes.get(frame.f_code)
            if kind is not None:
                expr = expression(kind, frame.f_locals)
                if expr is not None:
                    on_return(frame, expr)
            return out
        return sample

    real = ji.random
    ji.random = _Random(real, wrap)
    try:
        yield found
    finally:
        ji.random = real
        while hasattr(sys.getprofile(), "prev"):  # a closure that never returned (it raised mid-trace)
            sys.setprofile(sys.getprofile().prev)
