"""What every ``--model`` binding shares: per-leaf statistics, probes, the guard around model code, the result.

Every call into the model's own code (its constructor, ``eval()``, a Keras ``build``, the forward
and backward passes, an nnx ``__call__``) runs under ``engine.guard.guarded`` with the ``--timeout``:
``sys.exit``, ``os._exit``, a bare ``BaseException`` or a call that overruns its time is a
:class:`ModelError` (a failed run, exit 1, one line naming what the model did), never initspec's
exit code or a hang.  An ordinary exception in the forward pass is the model rejecting the input
(bad input, exit 2), as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from initspec.audit.targets import BuildError
from initspec.errors import InputError

T = TypeVar("T")

#: seconds one call into the model's code may take (``--timeout``; 0 or None: no limit)
DEFAULT_TIMEOUT = 300.0


class ModelError(BuildError):
    """The model's own code failed or misbehaved (exited, overran its time, returned nothing usable): exit 1."""


def short(text: Any, limit: int = 60) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + "..."


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return short(s.splitlines()[0], 200) if s else ""


def rejects(target: str, input_shape: tuple[int, ...], e: Exception) -> InputError:
    return InputError(f"--input-shape {tuple(input_shape)}: {short(target)} rejects it: "
                      f"{type(e).__name__}: {first_line(e)}")


def call(fn: Callable[..., T], *args: Any, what: str, timeout: float | None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` under the guard: exits, BaseExceptions and overruns are a ModelError; an
    ordinary exception keeps its type (the caller decides: rejected input, or a failed run)."""
    from initspec.engine.guard import DrawError, guarded

    try:
        return guarded(fn, *args, timeout=timeout or None, what=what, **kwargs)
    except DrawError as e:  # the guard's wording names check's option: propagate's is --timeout
        raise ModelError(str(e).replace("the draw timeout", "its time limit").replace("--draw-timeout", "--timeout")
                         ) from None


def build(target: str, fn: Callable[[], Any], timeout: float | None) -> Any:
    """The model's constructor under the guard, with the time limit (BuildError: exit 1)."""
    from initspec.audit.targets import build_model

    return build_model(short(target), lambda: call(fn, what=f"building {short(target)}", timeout=timeout))


def forward(target: str, input_shape: tuple[int, ...], fn: Callable[..., T], *args: Any,
            timeout: float | None) -> T:
    """The forward pass: an ordinary exception is the model rejecting the input (exit 2)."""
    try:
        return call(fn, *args, what=f"the forward pass of {short(target)}", timeout=timeout)
    except (InputError, ModelError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
        raise rejects(target, input_shape, e) from None


def backward(what: str, fn: Callable[..., T], *args: Any, timeout: float | None) -> T:
    """The backward pass of ``what``: any failure of the model's code there (a custom gradient, a
    hook) is a failed run (ModelError, exit 1), never bad input."""
    try:
        return call(fn, *args, what=f"the backward pass of {what}", timeout=timeout)
    except (ModelError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - the model's own code failed on the second pass
        raise ModelError(f"the backward pass of {what} raised {type(e).__name__}: {first_line(e)}") from None


def first_leaf(y: Any) -> Any:
    """The first element of nested tuples, lists and dicts (a model's output), at most 100 levels down."""
    for _ in range(100):
        if isinstance(y, (list, tuple)) and y:
            y = y[0]
        elif isinstance(y, dict) and y:
            y = next(iter(y.values()))
        else:
            break
    return y


def describe(y: Any) -> str:
    if y is None:
        return "None"
    if isinstance(y, (tuple, list)) and not y:
        return f"an empty {type(y).__name__}"
    return f"a {type(y).__module__}.{type(y).__name__}" if not hasattr(y, "dtype") else \
        f"a {getattr(y, 'dtype', '?')} array"


def np_stats(h: np.ndarray, channel_axis: int) -> dict[str, float]:
    h = np.asarray(h, dtype=np.float64)
    if h.ndim < 2:
        h = h.reshape(-1, 1)
        channel_axis = 1
    axes = tuple(i for i in range(h.ndim) if i != channel_axis % h.ndim)
    m = h.mean(axis=axes)
    sq = (h * h).mean(axis=axes)
    return {"second_moment": float(sq.mean()), "variance": float((sq - m * m).mean()), "sq_mean": float((m * m).mean())}


def kernel_fans(kernel: Any) -> tuple[int, int] | None:
    """(fan_in, fan_out) of a channels-last kernel (..., in, out), as Keras and Flax compute them."""
    shape = tuple(int(s) for s in getattr(kernel, "shape", ()))
    if len(shape) < 2:
        return None
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf


class Probe:
    """Records each leaf output (pass 1) or adds a zero probe to it (pass 2, for its gradient)."""

    def __init__(self, is_float: Callable[[Any], bool], to_numpy: Callable[[Any], np.ndarray]) -> None:
        self.is_float, self.to_numpy = is_float, to_numpy
        self.records: list[dict[str, Any]] = []
        self.shapes: list[tuple[int, ...]] = []  # each recorded output's full shape: its probe's
        self.probes: list[Any] | None = None
        self.k = 0
        self.counts: dict[str, int] = {}

    def __call__(self, name: str, type_name: str, fans: tuple[int, int] | None, out: Any) -> Any:
        if not self.is_float(out):
            return out
        if self.probes is None:
            h = self.to_numpy(out)
            n = self.counts[name] = self.counts.get(name, 0) + 1
            rec: dict[str, Any] = {"index": len(self.records) + 1, "name": name if n == 1 else f"{name}#{n}",
                                   "type": type_name, "shape": list(h.shape[1:]),
                                   "forward": np_stats(h, -1), "backward": None}  # channels last
            if fans is not None:
                rec["fan_in"], rec["fan_out"] = fans
            self.records.append(rec)
            self.shapes.append(tuple(h.shape))
            return out
        if self.k >= len(self.probes) or tuple(out.shape) != tuple(self.probes[self.k].shape):
            raise ModelError("the model's leaf layers ran in a different order on the second pass")
        p = self.probes[self.k]
        self.k += 1
        return out + p

    def set_grads(self, grads: list[Any] | None) -> None:
        for rec, g in zip(self.records, grads or [], strict=False):
            if g is not None:
                rec["backward"] = {"second_moment": float(np.mean(np.asarray(g, dtype=np.float64) ** 2))}


def result(target: str, framework: str, version: str, input_shape: tuple[int, ...],
           records: list[dict[str, Any]], backend: str | None = None) -> dict[str, Any]:
    fw = [rec["forward"]["second_moment"] for rec in records]
    bw = [rec["backward"]["second_moment"] for rec in records if rec["backward"]]
    growth_f = fw[-1] / fw[0] if fw and fw[0] > 0 else math.nan
    growth_b = bw[0] / bw[-1] if bw and bw[-1] > 0 else math.nan
    out = {"model": target, "framework": framework, "version": version, "input_shape": list(input_shape),
           "layers": records, "growth": {"forward": growth_f, "backward": growth_b}}
    if backend is not None:
        out["backend"] = backend
    return out
