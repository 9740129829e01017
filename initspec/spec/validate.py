"""One validation layer for the numbers users give: scheme parameters, options, manifest fields.

Every check converts first and tests after (``1e400`` is a valid literal that converts to
``inf``; a 400-digit int overflows ``float``), and every message names the value, where it came
from and the accepted range, so all commands refuse the same nonsense with the same words.
Public: the audit/propagate commands call these too.
"""

from __future__ import annotations

import math
from typing import Any

from initspec.errors import InputError

#: magnitudes of scales, stds and gains: their squares (variances) stay finite normal floats
TINY, HUGE = 1e-150, 1e150
#: least standard-normal mass a truncation interval may hold (about 6 std into one tail):
#: beyond it neither scipy's truncnorm moments nor any sampler's float arithmetic are exact
MIN_TRUNCATED_MASS = 1e-9
MIN_TRUNCATED_WIDTH = 0.01

_SHOW_LIMIT = 60  # characters of a value echoed in a message


def show(value: Any) -> str:
    """``repr(value)`` cut short: an error line never echoes a huge input whole."""
    text = repr(value)
    return text if len(text) <= _SHOW_LIMIT else f"{text[:_SHOW_LIMIT]}... ({len(text)} characters)"


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{lo}, {hi}"


def number(value: Any, name: str, *, where: str = "", low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, describe: str = "") -> float:
    """``value`` as a finite float within the range; InputError naming the range otherwise.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``describe`` ("positive")
    reads before the range in the message.
    """
    prefix = f"{where}: " if where else ""
    want = f"a finite {describe + ' ' if describe else ''}number in {_interval(low, high, low_open, high_open)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{prefix}{name} must be {want}, got {show(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise InputError(f"{prefix}{name} must be {want}, got an integer of {len(str(abs(value)))} digits") from None
    below = low is not None and (x <= low if low_open else x < low)
    above = high is not None and (x >= high if high_open else x > high)
    if not math.isfinite(x) or below or above:
        raise InputError(f"{prefix}{name} must be {want}, got {show(value)}")
    return x


def magnitude(value: Any, name: str, *, where: str = "") -> float:
    """A positive scale-like number (std, scale, gain) whose square is a normal float."""
    return number(value, name, where=where, low=TINY, high=HUGE, describe="positive")


def location(value: Any, name: str, *, where: str = "") -> float:
    """A finite location-like number (mean, value, low, high) of at most HUGE in magnitude."""
    return number(value, name, where=where, low=-HUGE, high=HUGE)


def integer(value: Any, name: str, *, where: str = "", low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int within [low, high]; InputError naming the range otherwise."""
    prefix = f"{where}: " if where else ""
    rng = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{prefix}{name} must be an integer in {rng}, got {show(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{prefix}{name} must be an integer in {rng}, got {show(value)}")
    return value


def probability(value: Any, name: str, *, where: str = "") -> float:
    """A number strictly between 0 and 1 (an alpha)."""
    return number(value, name, where=where, low=0.0, high=1.0, low_open=True, high_open=True)


#: most values of one tensor: 2^32 float32 values are 16 GiB.  The draw itself is the memory a
#: check needs (its statistics stream 2^22 values at a time): a 2^31-value tensor is checked
#: with 67 MiB beyond it (bench/run.py)
MAX_ELEMENTS = 1 << 32
#: most dimensions of a shape (numpy's own limit is 64)
MAX_DIMS = 32


def shape_size(shape: tuple[int, ...], *, where: str = "") -> int:
    """The number of values of ``shape``; InputError (with the memory it would need) beyond the caps."""
    prefix = f"{where}: " if where else ""
    if len(shape) > MAX_DIMS:
        raise InputError(f"{prefix}a shape of {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        shown = "x".join(map(str, shape))
        raise InputError(f"{prefix}shape {shown[:60]} has {size:.3g} values; one draw needs "
                         f"{_bytes(4 * size)} as float32 (the limit is {MAX_ELEMENTS:.3g} values, "
                         f"{_bytes(4 * MAX_ELEMENTS)})")
    return size


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} ZB"


def truncation(lower: float, upper: float, *, where: str = "", unit: str = "std") -> None:
    """Standardized truncation bounds: lower < upper, and an interval with exact moments.

    The interval must hold at least MIN_TRUNCATED_MASS of N(0, 1) and be MIN_TRUNCATED_WIDTH
    wide: far-tail slivers (``lower=1000, upper=1001``) have no float64-exact reference.
    """
    from scipy import stats

    prefix = f"{where}: " if where else ""
    if not lower < upper:
        raise InputError(f"{prefix}lower ({lower:g}) must be below upper ({upper:g})")
    # the mass from whichever tail is nearer: sf/cdf keep their precision there
    n = stats.norm
    mass = (n.sf(lower) - n.sf(upper)) if lower > 0 else (n.cdf(upper) - n.cdf(lower))
    if upper - lower < MIN_TRUNCATED_WIDTH:
        raise InputError(f"{prefix}the truncation [{lower:g}, {upper:g}] ({unit} units) is {upper - lower:.3g} wide; "
                         f"it must be at least {MIN_TRUNCATED_WIDTH:g} wide")
    if not mass >= MIN_TRUNCATED_MASS:  # beyond about 6 std from the mean
        raise InputError(f"{prefix}the truncation [{lower:g}, {upper:g}] ({unit} units) holds {mass:.3g} of the "
                         f"normal; it must hold at least {MIN_TRUNCATED_MASS:g}")


#: the largest run seed: every framework takes seeds in [0, 2^32 - 1] (Keras's set_random_seed and
#: numpy's legacy seed refuse more, torch and JAX take less than 2^64), and initspec derives further
#: seeds by adding offsets below 2^31 (seed + k per draw, seed + 1,000,003 for diff's second side)
MAX_SEED = 2**31 - 1
#: most model instances one audit builds
MAX_SEEDS = 10_000


def seed(value: Any, name: str = "--seed", *, count: int = 1) -> int:
    """A run seed in [0, MAX_SEED]; with ``count`` seeds ``value .. value + count - 1``, the last too."""
    s = integer(value, name, low=0, high=MAX_SEED)
    if s + count - 1 > MAX_SEED:
        raise InputError(f"{name} {s} with {count} seeds reaches {s + count - 1}; seeds must lie in [0, {MAX_SEED}]")
    return s


#: bytes of a spec or manifest file: real ones have a few kB, the largest built-in manifest 40 kB
MAX_FILE_BYTES = 4 << 20


def text_file(path: Any, option: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; InputError (one line) for an empty
    path, a missing file, a directory, a device or FIFO (``/dev/zero`` never ends, a FIFO blocks
    the open) or a file too large -- checked with ``stat`` before anything is opened."""
    import os
    import stat as st

    text = str(path)
    where = f"{option} {show(text)}"
    if not text.strip():
        raise InputError(f"{option}: the path is empty (give a file name)")
    try:
        info = os.stat(text)
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except OSError as e:
        raise InputError(f"{where}: cannot be read: {e.strerror or e}") from None
    except ValueError as e:  # a NUL byte in the path
        raise InputError(f"{where}: {e}") from None
    if st.S_ISDIR(info.st_mode):
        raise InputError(f"{where}: is a directory; give a file")
    if not st.S_ISREG(info.st_mode):
        raise InputError(f"{where}: not a regular file (a device, FIFO or socket)")
    if info.st_size > max_bytes:
        raise InputError(f"{where}: {_bytes(info.st_size)}; at most {_bytes(max_bytes)} are read")
    try:
        with open(text, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"{where}: cannot be read: {e.strerror or e}") from None
    if len(data) > max_bytes:  # it grew after the stat
        raise InputError(f"{where}: more than {_bytes(max_bytes)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte {e.start}: {e.reason})") from None
