"""The law algebra: what a sequence of initializing operations leaves in a tensor, exactly.

Every recorder (torch dispatch, a JAX jaxpr, Keras initializers) turns what the code did into
calls of these functions on :class:`Law` values.  A law is a fully known distribution of one
element -- a normal, a uniform, a normal cut at two bounds, a constant -- or it says why it is
not one: ``deterministic`` (computed from no random draw: a sinusoid table, ``log(arange)``),
``opaque`` (an operation the algebra does not know: a QR, a clamp that cuts a normal into a
censored law), ``unwritten`` (storage never written).  Nothing is fitted or guessed: each rule
below is an identity of distributions.

The rules:

- ``affine``: X ↦ a·X + b maps N(μ, σ²) to N(aμ + b, a²σ²), U(l, h) to U(al + b, ah + b) (ends
  sorted), a cut normal to the cut normal of the mapped parameters and bounds; a = 0 is the
  constant b.
- ``erfinv``: for U ~ U(l, h) with -1 ≤ l < h ≤ 1, erfinv(U) = Z/√2 where Z is N(0, 1) cut at
  √2·erfinv(l), √2·erfinv(h) (the inverse-CDF sampler torch's ``trunc_normal_`` and JAX's
  ``truncated_normal`` use), since erfinv(2Φ(z) - 1) = z/√2; U(-1, 1) gives the plain normal.
  An end within float32 rounding of ±1 is ±1 (JAX's ``normal`` draws U(nextafter(-1, 0), 1):
  the float32 grid's own end, not a cut).
- ``clamp``: a no-op when the law's support lies within the clamp's bounds (to float32
  rounding: the inverse-CDF samplers clamp to repair rounding at the ends); a cut normal whose
  bounds stray past the clamp by rounding takes the clamp's bounds; otherwise the result is
  a censored law, which the vocabulary has no name for: ``opaque``.
- a cut (or a clamp) at more than :data:`FAR` standard deviations is no cut: no float32 sampler reaches it
  (a float32 uniform has 2^-24 resolution; its inverse normal CDF stops near 5.4σ), so
  ``trunc_normal_(std=0.02)`` with the default ±2 bounds *is* ``normal(std=0.02)``.

Laws compare with :func:`same_law` to a relative :data:`RTOL` (float32 rounding of the
constants a framework computes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

#: relative tolerance of two laws' parameters: constants a framework computes in float32 (JAX's
#: jaxpr literals) round at 6e-8; fans and gains computed in Python floats agree to 1e-15
RTOL = 1e-6
#: a truncation beyond this many standard deviations cuts nothing a float32 sampler can draw
FAR = 10.0

RANDOM = ("normal", "uniform", "truncated_normal")
KINDS = (*RANDOM, "constant", "deterministic", "opaque", "unwritten")


@dataclass(frozen=True)
class Law:
    """The law of every element of a tensor (or why it has none in the spec vocabulary).

    ``normal``: N(mean, std²); ``uniform``: U(low, high); ``truncated_normal``: N(mean, std²) cut at
    the absolute bounds low..high (std the pre-truncation std); ``constant``: every element
    ``value``; ``deterministic``, ``opaque``, ``unwritten``: ``why`` says what happened.
    """

    kind: str
    mean: float = 0.0
    std: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    value: float = math.nan
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown law kind {self.kind!r}")

    @property
    def random(self) -> bool:
        return self.kind in RANDOM

    @property
    def exact(self) -> bool:
        """A law of the spec vocabulary (random or constant)."""
        return self.kind in (*RANDOM, "constant")

    def support(self) -> tuple[float, float]:
        if self.kind == "constant":
            return self.value, self.value
        if self.kind in ("uniform", "truncated_normal"):
            return self.low, self.high
        return -math.inf, math.inf

    def scheme(self) -> str | None:
        """The law as a spec expression (:func:`initspec.spec.schemes.resolve` reads it), or None.

        Numbers are written exactly (Python's shortest round-trip repr)."""
        law = canonical(self)
        if law.kind == "constant":
            return "zeros" if law.value == 0 else "ones" if law.value == 1 else f"constant(value={law.value!r})"
        if law.kind == "normal":
            return f"normal({_mean(law)}std={law.std!r})"
        if law.kind == "uniform":
            return f"uniform(low={law.low!r}, high={law.high!r})"
        if law.kind == "truncated_normal":
            return f"trunc_normal({_mean(law)}std={law.std!r}, a={law.low!r}, b={law.high!r})"
        return None

    def __str__(self) -> str:
        text = self.scheme()
        if text:
            return text
        return f"{self.kind}: {self.why}" if self.why else self.kind


def _mean(law: Law) -> str:
    return f"mean={law.mean!r}, " if law.mean != 0 else ""


def normal(mean: float, std: float) -> Law:
    """``normal_(mean, std)``: N(mean, std²); std 0 is the constant ``mean``."""
    if std == 0:
        return constant(mean)
    return Law("normal", mean=float(mean), std=abs(float(std)))


def uniform(low: float, high: float) -> Law:
    """``uniform_(low, high)``: U(low, high); equal ends are the constant."""
    low, high = float(low), float(high)
    if low == high:
        return constant(low)
    return Law("uniform", low=min(low, high), high=max(low, high))


def truncated_normal(mean: float, std: float, low: float, high: float) -> Law:
    """N(mean, std²) cut at the absolute bounds ``low``..``high``."""
    if std == 0:
        return constant(mean)
    return Law("truncated_normal", mean=float(mean), std=abs(float(std)), low=float(low), high=float(high))


def constant(value: float) -> Law:
    return Law("constant", value=float(value))


def deterministic(why: str) -> Law:
    """Values computed from no random draw (``why``: the operations, e.g. ``arange, sin``)."""
    return Law("deterministic", why=why)


def opaque(why: str) -> Law:
    """An operation the algebra does not know turned a law into something it cannot name."""
    return Law("opaque", why=why)


UNWRITTEN = Law("unwritten", why="allocated, never written")


def affine(law: Law, scale: float = 1.0, shift: float = 0.0, op: str = "affine") -> Law:
    """The law of ``scale * X + shift`` (``mul_``, ``div_``, ``add_``, ``sub_`` with a number)."""
    scale, shift = float(scale), float(shift)
    if not (math.isfinite(scale) and math.isfinite(shift)):
        return opaque(f"{op} by a non-finite number")
    if law.kind == "constant":
        return constant(scale * law.value + shift)
    if law.kind in ("deterministic", "opaque"):
        return law
    if law.kind == "unwritten":
        return opaque(f"{op} of never-written storage")
    if scale == 0:
        return constant(shift)
    if law.kind == "normal":
        return normal(scale * law.mean + shift, scale * law.std)
    lo, hi = sorted((scale * law.low + shift, scale * law.high + shift))
    if law.kind == "uniform":
        return uniform(lo, hi)
    return truncated_normal(scale * law.mean + shift, scale * law.std, lo, hi)


def erfinv(law: Law) -> Law:
    """The law of ``erfinv(X)``: a uniform on [-1, 1] becomes a (cut) normal; see the module doc."""
    if law.kind == "constant":
        return constant(float(special.erfinv(law.value)))
    if law.kind in ("deterministic", "opaque"):
        return law
    if law.kind == "uniform" and _within(law.low, -1.0, below=True) and _within(law.high, 1.0, below=False):
        # an end within float32 rounding of -1 or 1 is that end: JAX's normal sampler draws U(nextafter(-1, 0), 1)
        # to keep erfinv finite (jax/_src/random/core.py:968-974, _normal_real), a cut at 5.4 std no float32
        # inverse-CDF sampler can pass (see FAR)
        lo = -1.0 if _near(law.low, -1.0) else law.low
        hi = 1.0 if _near(law.high, 1.0) else law.high
        lo, hi = float(special.erfinv(lo)), float(special.erfinv(hi))
        return canonical(truncated_normal(0.0, math.sqrt(0.5), lo, hi))
    return opaque(f"erfinv of {law.scheme() or law.kind}" + (" (beyond [-1, 1])" if law.kind == "uniform" else ""))


def clamp(law: Law, low: float | None, high: float | None) -> Law:
    """The law of ``clamp(X, low, high)``: see the module doc (a censored law is opaque)."""
    lo = -math.inf if low is None else float(low)
    hi = math.inf if high is None else float(high)
    if law.kind == "constant":
        return constant(min(max(law.value, lo), hi))
    if law.kind in ("deterministic", "opaque"):
        return law
    if law.kind == "unwritten":
        return opaque("clamp of never-written storage")
    s_lo, s_hi = law.support()
    if law.kind in ("normal", "truncated_normal"):  # a bound FAR std away cuts nothing drawable
        s_lo = max(s_lo, law.mean - FAR * law.std) if lo <= law.mean - FAR * law.std else s_lo
        s_hi = min(s_hi, law.mean + FAR * law.std) if hi >= law.mean + FAR * law.std else s_hi
    if _within(s_lo, lo, below=True) and _within(s_hi, hi, below=False):
        # an end within rounding of the clamp's bound takes the bound: the clamp's bounds are the exact ones
        new_lo = lo if _near(law.low, lo) or law.low < lo else law.low
        new_hi = hi if _near(law.high, hi) or law.high > hi else law.high
        if law.kind == "uniform":
            return uniform(new_lo, new_hi)
        return canonical(truncated_normal(law.mean, law.std, new_lo, new_hi))
    return opaque(f"clamp to [{lo:g}, {hi:g}] cuts {law.scheme() or law.kind} (a censored law)")


def _slack(end: float, bound: float) -> float:
    return 4 * 2.0**-23 * max(abs(end), abs(bound), 1e-30)  # a few float32 ulps


def _within(end: float, bound: float, below: bool) -> bool:
    """Whether a support end lies inside a clamp bound, allowing float32 rounding."""
    if math.isinf(bound):
        return True
    if math.isinf(end):
        return False
    return end >= bound - _slack(end, bound) if below else end <= bound + _slack(end, bound)


def _near(end: float, bound: float) -> bool:
    return math.isfinite(end) and math.isfinite(bound) and abs(end - bound) <= _slack(end, bound)


def canonical(law: Law) -> Law:
    """A cut normal whose bounds are both beyond :data:`FAR` standard deviations is the plain normal."""
    if law.kind != "truncated_normal":
        return law
    a, b = (law.low - law.mean) / law.std, (law.high - law.mean) / law.std
    if a <= -FAR and b >= FAR:
        return normal(law.mean, law.std)
    return law


def from_scheme(expr: str, fan_in: float, fan_out: float) -> Law:
    """The exact law a spec scheme gives on these fans (``opaque`` for structured kinds such as
    ``orthogonal``, whose elements have no law of their own)."""
    from initspec.spec.reference import continuous_law
    from initspec.spec.schemes import resolve

    scheme = resolve(expr)
    if scheme.kind == "constant":
        return constant(scheme.params["value"])
    law = continuous_law(scheme, fan_in, fan_out)
    if law is None:
        return opaque(f"{scheme.kind} has no elementwise law")
    loc, scale = float(law.kwds.get("loc", 0.0)), float(law.kwds.get("scale", 1.0))
    name = law.dist.name
    if name == "norm":
        return normal(loc, scale)
    if name == "uniform":
        return uniform(loc, loc + scale)
    a, b = (float(v) for v in law.args)
    return canonical(truncated_normal(loc, scale, loc + a * scale, loc + b * scale))


def same_law(x: Law, y: Law, rtol: float = RTOL) -> bool:
    """Whether two laws are the same distribution (parameters equal to ``rtol``; see the module doc)."""
    x, y = canonical(x), canonical(y)
    if x.kind != y.kind or not x.exact:
        return False
    if x.kind == "constant":
        return _close(x.value, y.value, rtol, 0.0)
    if x.kind == "normal":
        return _close(x.std, y.std, rtol, 0.0) and _close(x.mean, y.mean, rtol, rtol * x.std)
    if x.kind == "uniform":
        width = x.high - x.low
        return _close(x.low, y.low, rtol, rtol * width) and _close(x.high, y.high, rtol, rtol * width)
    scale = x.std
    return (_close(x.std, y.std, rtol, 0.0) and _close(x.mean, y.mean, rtol, rtol * scale)
            and _close(x.low, y.low, rtol, rtol * scale) and _close(x.high, y.high, rtol, rtol * scale))


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def ratio(observed: Law, expected: Law) -> float | None:
    """The variance ratio of two random laws of one family (a scale that differs), else None."""
    if observed.kind != expected.kind or observed.kind not in RANDOM:
        return None
    o, e = _var(observed), _var(expected)
    return o / e if e > 0 else None


def _var(law: Law) -> float:
    if law.kind == "normal":
        return law.std**2
    if law.kind == "uniform":
        return (law.high - law.low) ** 2 / 12
    a, b = (law.low - law.mean) / law.std, (law.high - law.mean) / law.std
    from scipy import stats

    return float(stats.truncnorm(a, b, loc=law.mean, scale=law.std).var())
