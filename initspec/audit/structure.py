"""Facts about a parameter's values beside its law: constant rows inside a random tensor, and what a
deterministic (computed, seed-independent) tensor looks like.

Both are plain data on the :class:`~initspec.audit.report.Group` (``rows``, ``looks_like``), whatever
the evidence that found them: the draws read them from the values (here), a trace could state them
from the code that wrote them.  Row facts are also what a spec declares after the law, parsed here,
never evaluated: ``"normal(std=0.02); row 0 zeros"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from initspec.errors import InputError

#: a row (or column) holds one value when the tensor has at most this many such rows, fewer than half
#: of them, of at least MIN_ROW values each: a padding row, not a constant tensor (a row of >= 4
#: values of a continuous law is never constant by chance; a 16-bit draw of 2 values can be)
MAX_ROWS = 16
MIN_ROW = 4
_AXIS_NAMES = {0: "row", -1: "column"}


@dataclass(frozen=True)
class RowFact:
    """Rows (``axis`` 0: ``x[i, ...]``) or columns (``axis`` -1: ``x[..., i]``) that hold one value."""

    axis: int
    indices: tuple[int, ...]
    value: float

    def text(self) -> str:
        word = _AXIS_NAMES[self.axis] + ("s" if len(self.indices) > 1 else "")
        v = self.value
        what = "zeros" if v == 0 else "ones" if v == 1 else f"constant(value={v!r})"
        return f"{word} {', '.join(map(str, self.indices))} {what}"


def rows_text(rows: tuple[RowFact, ...]) -> str:
    """``row 0 zeros; column 3 ones`` (as a spec writes it after the law)."""
    return "; ".join(r.text() for r in rows)


def find_rows(x: np.ndarray) -> tuple[RowFact, ...]:
    """The constant rows and columns of a tensor whose other values vary (none for a constant tensor)."""
    if x.ndim < 2 or x.size == 0:
        return ()
    out = []
    for axis in (0, -1):
        m = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        if m.shape[1] < MIN_ROW or m.shape[0] < 2:
            continue
        const = np.flatnonzero((m == m[:, :1]).all(axis=1))
        if not 0 < const.size <= MAX_ROWS or 2 * const.size >= m.shape[0]:
            continue
        by_value: dict[float, list[int]] = {}
        for i in const:
            by_value.setdefault(float(m[i, 0]), []).append(int(i))
        out += [RowFact(axis, tuple(ix), v) for v, ix in by_value.items() if math.isfinite(v)]
    return tuple(out)


def without_rows(x: np.ndarray, rows: tuple[RowFact, ...]) -> np.ndarray:
    """The values the law is about: ``x`` with the fact rows and columns taken out."""
    for axis in (0, -1):
        drop = sorted({i for r in rows if r.axis == axis for i in r.indices if i < x.shape[axis]})
        if drop:
            x = np.delete(x, drop, axis=axis)
    return x


def rows_hold(x: np.ndarray, rows: tuple[RowFact, ...]) -> bool:
    """Whether every fact row of ``x`` holds its value (in another instance than the one that found it)."""
    for r in rows:
        m = np.moveaxis(x, r.axis, 0)
        if any(i >= m.shape[0] or not np.all(m[i] == r.value) for i in r.indices):
            return False
    return True


_ROW_SPEC = re.compile(r"^(rows?|columns?)\s+(-?\d+(?:\s*,\s*-?\d+)*)\s+(zeros|ones|constant\(\s*(?:value\s*=\s*)?"
                       r"([-+0-9.eE]+)\s*\))$")


def parse_rows(text: str, where: str) -> tuple[RowFact, ...]:
    """``row 0 zeros``, ``rows 0, 5 ones``, ``column -1 constant(value=0.5)`` (``;``-separated) as row facts."""
    out = []
    for part in (p.strip() for p in text.split(";")):
        m = _ROW_SPEC.match(part)
        if not m:
            raise InputError(f"{where}: {part[:60]!r} is not a row fact (e.g. 'row 0 zeros', 'rows 0, 5 ones', "
                             "'column -1 constant(value=0.5)')")
        word, idx, what, value = m.groups()
        try:
            v = 0.0 if what == "zeros" else 1.0 if what == "ones" else float(value)
        except ValueError:
            raise InputError(f"{where}: {value!r} is not a number") from None
        if not math.isfinite(v):
            raise InputError(f"{where}: {value!r} is not a finite number")
        out.append(RowFact(0 if word.startswith("row") else -1, tuple(int(i) for i in idx.split(",")), v))
    return tuple(out)


_REGION = re.compile(r"^rows? (\d+)(?:\.\.(\d+))?$")


def rows_from_regions(regions: list[tuple[str | None, float | None]]) -> tuple[RowFact, ...]:
    """Row facts from another source's writes to parts of a tensor (the trace's ``row 1``, ``rows 0..2``
    regions), each ``(region, the constant written or None)``; writes of another kind are no row fact."""
    by_value: dict[float, list[int]] = {}
    for region, value in regions:
        m = _REGION.match(region or "")
        if m is None or value is None or not math.isfinite(value):
            continue
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last - first >= MAX_ROWS:
            continue
        by_value.setdefault(float(value), []).extend(range(first, last + 1))
    return tuple(RowFact(0, tuple(sorted(set(ix))), v) for v, ix in by_value.items())


def normalized(rows: tuple[RowFact, ...], shape: tuple[int, ...]) -> frozenset[tuple[int, int, float]]:
    """Row facts as a set of (axis, non-negative index, value), for comparing declared with found."""
    out = set()
    for r in rows:
        n = shape[r.axis] if shape else 0
        out |= {(r.axis, i % n if n else i, r.value) for i in r.indices}
    return frozenset(out)


# --- deterministic tensors: what they look like ----------------------------------------------------


def looks_like(x: np.ndarray) -> str:
    """What a tensor computed without randomness looks like, when it can be said; else ''."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 or not np.isfinite(x).all():
        return ""
    for test in (_sinusoid, _log_arange, _ramp, _few_values):
        text = test(x)
        if text:
            return text
    return ""


def _sinusoid(x: np.ndarray) -> str:
    """A position table: (positions, channels) with sin and cos of the same frequency in two halves
    (Whisper, Marian, Pegasus) or interleaved (the original Transformer): sin² + cos² = 1."""
    if x.ndim != 2 or x.shape[1] % 2 or x.shape[0] < 2 or np.abs(x).max() > 1 + 1e-6:
        return ""
    h = x.shape[1] // 2
    if np.allclose(x[:, :h] ** 2 + x[:, h:] ** 2, 1.0, atol=1e-4):
        return "sinusoid table (sin | cos halves)"
    if np.allclose(x[:, 0::2] ** 2 + x[:, 1::2] ** 2, 1.0, atol=1e-4):
        return "sinusoid table (sin, cos interleaved)"
    return ""


def _log_arange(x: np.ndarray) -> str:
    """log(1..N) along the last axis, the same in every row (Mamba's A_log)."""
    n = x.shape[-1]
    ref = np.log(np.arange(1, n + 1, dtype=np.float64))
    if n >= 2 and np.allclose(x.reshape(-1, n), ref, rtol=1e-5, atol=1e-6):
        return f"log(arange(1, {n + 1})) along the last axis"
    return ""


def _ramp(x: np.ndarray) -> str:
    """Monotone along its longest axis in every line (a computed schedule: RWKV's time_decay, time_mix)."""
    v = np.squeeze(x)
    if v.ndim == 0 or v.shape[-1] < 4:
        return ""
    d = np.diff(v.reshape(-1, v.shape[-1]), axis=-1)
    if not ((d >= 0).all() or (d <= 0).all()) or not np.any(d):
        return ""
    kind = "linear ramp" if np.allclose(d, d.reshape(-1)[0], rtol=1e-4, atol=1e-7) else "monotone ramp"
    return f"{kind} from {float(v.min()):.4g} to {float(v.max()):.4g} along the last axis"


def _few_values(x: np.ndarray) -> str:
    """A pattern of a few values (a zigzag, a mask)."""
    if x.size < 16:
        return ""
    u = np.unique(x)
    if u.size <= 8:
        shown = ", ".join(f"{float(a):.4g}" for a in u[:4]) + (", ..." if u.size > 4 else "")
        return f"{u.size} distinct values ({shown})"
    return ""
