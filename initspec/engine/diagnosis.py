"""Name the likely mistake behind a failed result.

Structural failures (shape, dtype, non-finite values, determinism, seed) name their
mistake directly.  Statistical failures are explained by a table of hypotheses: each known
mistake, given the claimed scheme and one shape's fans, predicts an exact alternative law
(the variance squared, the fans swapped, the truncation uncorrected, another family of the
same variance, ...).  Every hypothesis is scored on all shapes of the group at once: the
observed variance and mean by their z-distance from its prediction (standard errors from
the alternative's own fourth moment), the sample by a KS test against its law (the exact
rounded law for 16-bit dtypes) and, for a bounded law, whether the extremes reach its
bounds.  Each check's parts add up over the shapes to a chi-square statistic; a hypothesis
is consistent with the data when every check has p >= FIT_P (Bonferroni over the checks).
The consistent hypotheses are the diagnoses, their confidences the weights exp(-BIC/2)
among them.  When none is consistent the diagnosis is ``unknown`` and names the closest;
when the claim itself is consistent, the failure is called a chance failure.

Each diagnosis is ``{"id", "confidence", "message"}``; ids are stable (see CATALOGUE).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import stats

from initspec.engine import stats as st
from initspec.errors import InputError
from initspec.spec.fans import LAYOUTS, Layout
from initspec.spec.reference import QUANTIZED, Reference, _grid, build, eps
from initspec.spec.schemes import Scheme

#: a hypothesis is consistent with the evidence when each check, pooled over the shapes, has p >= FIT_P
FIT_P = 1e-6
#: hypotheses whose moment fit alone has a smaller p-value get no KS test (they cannot win)
KS_SCREEN_P = 1e-12
#: support_violation models a few stray values; beyond this fraction it is another law (a normal
#: read as a ±2 std truncated normal has 4.6% of its values outside, and inside it is exactly that law)
MAX_STRAY = 0.01


@dataclass(frozen=True)
class Mistake:
    """One entry of the catalogue: what the mistake is and how it is recognized."""

    id: str
    explanation: str
    recognized_by: str


CATALOGUE: dict[str, Mistake] = {m.id: m for m in (
    Mistake("std_as_variance", "the variance's value passed where the std belongs, e.g. normal(0, 2/n) "
            "instead of normal(0, sqrt(2/n))", "observed var ≈ expected var², on every shape"),
    Mistake("variance_as_std", "the std's value used as the variance (a square root taken twice)",
            "observed var ≈ sqrt(expected var), on every shape"),
    Mistake("fan_swapped", "fan_in and fan_out exchanged", "var follows scale/fan_out where the claim says "
            "scale/fan_in (or back) across shapes with fan_in != fan_out"),
    Mistake("wrong_fan_mode", "another fan mode (fan_in, fan_out, fan_avg, fan_geo_avg) than the claim's",
            "var follows scale/n of the other mode across shapes"),
    Mistake("receptive_field_ignored", "convolution fans counted from the channels only (3 instead of 75 "
            "for a 5x5 kernel over 3 channels)", "var follows scale/n with n divided by the receptive field "
            "on kernels while 2-D shapes conform"),
    Mistake("wrong_gain", "the variance off by a known gain factor: another activation's gain² (1, 2, "
            "25/9, 9/16, 1/3), a gain applied twice or missing, the gain not squared",
            "observed/expected var ≈ that factor on every shape, the family right"),
    Mistake("truncation_uncorrected", "a truncated normal without the variance correction (std not divided "
            "by 0.8796 for ±2), or corrected where the claim has no correction",
            "var ≈ 0.774 × expected (±2 bounds) and the sample fits the other truncated law"),
    Mistake("truncation_absolute_bounds", "truncation bounds in std units taken as absolute values or back "
            "(torch trunc_normal_'s a, b are absolute: trunc_normal_(std=0.02) is not truncated at all)",
            "extremes, variance and KS fit the law cut at the other bounds"),
    Mistake("uniform_limit_missing_sqrt3", "a uniform drawn on ±sqrt(var) instead of ±sqrt(3 var)",
            "a uniform sample with var ≈ expected / 3"),
    Mistake("wrong_distribution", "the right mean and variance in another family (normal, truncated "
            "normal, uniform)", "variance conforms, KS rejects the claimed family and accepts another; "
            "sample kurtosis 3 (normal), 2.37 (truncated at ±2), 1.8 (uniform)"),
    Mistake("layout_mismatch", "fans read with the other weight layout (torch (out, in, *k) vs "
            "tf (*k, in, out))", "var follows the other layout's fans; on kernels unlike a fan swap"),
    Mistake("mean_shift", "the law shifted, e.g. an uncentered uniform U(0, 2l)",
            "the mean test fails and the claimed law shifted by the observed mean fits"),
    Mistake("support_violation", "values outside the law's support (truncation or limits not enforced for "
            "some values), or a bound of the support never drawn", "the support or bounds_reached test fails "
            "while the values inside the support follow the claim"),
    Mistake("non_finite", "NaN or infinite values", "the finite check"),
    Mistake("dtype_changed", "an output dtype other than the one asked for", "the dtype check"),
    Mistake("shape_changed", "an output shape other than the one asked for", "the shape check"),
    Mistake("not_deterministic", "two draws with the same seed differ (an unseeded or global generator)",
            "the deterministic check"),
    Mistake("seed_ignored", "different seeds give identical output (a fixed internal seed)",
            "the seed_sensitive check"),
    Mistake("unknown", "no mistake of the catalogue is consistent with the evidence",
            "every hypothesis is rejected (p < FIT_P); the closest is named"),
)}

#: failed structural test -> mistake id (each one certain)
_STRUCTURAL = {"shape": "shape_changed", "dtype": "dtype_changed", "finite": "non_finite",
               "deterministic": "not_deterministic", "seed_sensitive": "seed_ignored"}
#: tests whose failure calls for the statistical hypotheses
_STATISTICAL = ("variance", "mean", "ks", "support", "bounds_reached", "fan_law")

#: the usual gains², named (spec/gains.toml: linear, relu, tanh, selu, torch's leaky_relu(a=sqrt(5)))
GAIN2 = {1.0: "1 (linear)", 2.0: "2 (relu)", 25 / 9: "25/9 (tanh)", 9 / 16: "9/16 (selu)",
         1 / 3: "1/3 (leaky_relu a=sqrt(5))"}
_FAMILIES = {"normal": "normal", "truncated_normal": "truncated normal (±2 std, same variance)",
             "uniform": "uniform"}


def _diag(id_: str, confidence: float, message: str) -> dict[str, Any]:
    return {"id": id_, "confidence": round(float(confidence), 3), "message": message}


def _g(x: float) -> str:
    return f"{x:.3g}"


def _frac(x: float) -> str:
    f = Fraction(x).limit_denominator(100)
    return str(f) if abs(float(f) - x) <= 1e-9 * abs(x) else f"{x:.4g}"


# --- one shape's evidence -------------------------------------------------------------


@dataclass(eq=False)
class Shape:
    """What one result of the group offers: the claim's reference, observed moments, sample."""

    result: Any
    ref: Reference
    layout: Layout | None
    sample: np.ndarray
    n: int
    mean: float
    var: float
    lo: float
    hi: float

    @property
    def scheme(self) -> Scheme:
        return self.ref.scheme

    @property
    def dtype(self) -> str:
        return self.ref.dtype

    @functools.cached_property
    def continuous(self) -> Reference:
        """The claim's reference without the 16-bit rounding."""
        if self.dtype not in QUANTIZED:
            return self.ref
        return build(self.scheme, self.ref.fan_in, self.ref.fan_out, "float64")

    @property
    def claim_var(self) -> float:
        """The claim's continuous (pre-rounding) variance."""
        return float(self.ref.law.var())

    @property
    def claim_mean(self) -> float:
        return float(self.ref.law.mean())


def _shape_of(r: Any) -> Shape | None:
    ev = r.evidence
    if ev is None or ev.reference is None or ev.sample is None or not r.observed.get("n"):
        return None
    o = r.observed
    # sorted once: the PIT of a sorted sample under a continuous law is sorted, so each
    # hypothesis' KS skips its sort
    return Shape(r, ev.reference, ev.layout, np.sort(np.asarray(ev.sample, dtype=np.float64)), int(o["n"]),
                 float(o["mean"]), float(o["var"]), float(o["min"]), float(o["max"]))


# --- alternative laws -----------------------------------------------------------------

Alt = tuple[Scheme, float, float]  # a scheme and the fans to evaluate it at


def _alt(s: Scheme, label: str, kind: str | None = None, **params: Any) -> Scheme:
    p = dict(s.params) if kind in (None, s.kind) else {}
    p.update(params)
    return Scheme(name=s.name, kind=kind or s.kind, params=p, expr=label)


def _fans(sh: Shape) -> tuple[float, float]:
    return sh.ref.fan_in, sh.ref.fan_out


def _scaled(sh: Shape, factor: float, label: str) -> Alt:
    """The claimed law stretched about its mean so that its variance is ``factor`` times larger."""
    s, k = sh.scheme, math.sqrt(factor)
    p = s.params
    if s.kind == "variance_scaling":
        alt = _alt(s, label, scale=p["scale"] * factor)
    elif s.kind in ("normal", "sparse"):
        alt = _alt(s, label, std=p["std"] * k)
    elif s.kind == "truncated_normal":
        extra = {}
        if p["bounds"] == "absolute":
            extra = {b: p["mean"] + (p[b] - p["mean"]) * k for b in ("lower", "upper")}
        alt = _alt(s, label, std=p["std"] * k, **extra)
    else:  # uniform
        mid, half = (p["low"] + p["high"]) / 2, (p["high"] - p["low"]) / 2
        alt = _alt(s, label, low=mid - half * k, high=mid + half * k)
    return (alt, *_fans(sh))


def _shifted(sh: Shape, delta: float, label: str) -> Alt:
    """The claimed law moved by ``delta``."""
    s = sh.scheme
    p = s.params
    if s.kind == "uniform":
        alt = _alt(s, label, low=p["low"] + delta, high=p["high"] + delta)
    elif s.kind == "truncated_normal" and p["bounds"] == "absolute":
        alt = _alt(s, label, mean=p["mean"] + delta, lower=p["lower"] + delta, upper=p["upper"] + delta)
    else:
        alt = _alt(s, label, mean=p.get("mean", 0.0) + delta)
    return (alt, *_fans(sh))


def _family(sh: Shape, family: str) -> Alt:
    """A law of ``family`` with the claim's mean and variance."""
    m, v = sh.claim_mean, sh.claim_var
    s = sh.scheme
    if family == "normal":
        alt = _alt(s, "normal", "normal", mean=m, std=math.sqrt(v))
    elif family == "uniform":
        half = math.sqrt(3 * v)
        alt = _alt(s, "uniform", "uniform", low=m - half, high=m + half)
    else:
        sd = math.sqrt(v) / float(stats.truncnorm(-2, 2).std())
        alt = _alt(s, "truncated_normal", "truncated_normal", mean=m, std=sd, lower=-2.0, upper=2.0, bounds="std")
    return (alt, *_fans(sh))


def _cell(x: float, dtype: str) -> tuple[float, float]:
    """The interval of values that round to x in a 16-bit dtype."""
    grid = _grid(dtype)
    i = int(np.clip(np.searchsorted(grid, x), 0, len(grid) - 1))
    lo = (grid[i - 1] + grid[i]) / 2 if i > 0 else -math.inf
    hi = (grid[i] + grid[i + 1]) / 2 if i + 1 < len(grid) else math.inf
    return float(lo), float(hi)


def _shift(sh: Shape) -> float:
    """The fitted shift.  A bounded law is placed on the extremes (their error shrinks as 1/n,
    so the shifted law still reaches them): from the midrange, or for a 16-bit dtype inside
    the rounding cells of both extremes (a midrange off by half a coarse top cell would put
    mass on the fine cells near 0 where none is).  An unbounded law moves by its mean."""
    c = sh.continuous
    if not c.bounded:
        return sh.mean - c.mean
    if sh.dtype not in QUANTIZED:
        return (sh.lo + sh.hi) / 2 - (c.lower + c.upper) / 2
    (a_lo, b_lo), (a_hi, b_hi) = _cell(sh.lo, sh.dtype), _cell(sh.hi, sh.dtype)
    a, b = max(a_lo - c.lower, a_hi - c.upper), min(b_lo - c.lower, b_hi - c.upper)
    return (a + b) / 2  # no shift fits both cells when a > b: the support check then rejects it


def _claimed_family(s: Scheme) -> str:
    if s.kind == "variance_scaling":
        return s.params["distribution"]
    return {"sparse": "normal"}.get(s.kind, s.kind)


# --- the hypotheses -------------------------------------------------------------------


@dataclass(frozen=True)
class Hypothesis:
    """One way the claim can be broken: a predicted law per shape (None: as claimed)."""

    id: str
    label: str
    predict: Callable[[Shape], Alt | None]
    fitted: int = 0  # parameters fitted to each shape (degrees of freedom lost)
    stray: bool = False  # scored on the values inside the claimed support only


def _fan_hypotheses(s: Scheme, layout: Layout | None) -> Iterator[Hypothesis]:
    if s.kind != "variance_scaling":
        return
    mode = s.params["mode"]
    swap = {"fan_in": "fan_out", "fan_out": "fan_in"}.get(mode)
    for other in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
        if other == mode:
            continue
        mid = "fan_swapped" if other == swap else "wrong_fan_mode"
        yield Hypothesis(mid, f"mode {other} instead of {mode}",
                         lambda sh, o=other: (_alt(sh.scheme, o, mode=o), *_fans(sh)))

    def channels_only(sh: Shape) -> Alt | None:
        if sh.layout is None or len(sh.result.shape) < 3:
            return None
        fi, fo = _fans(sh)
        rf = fi / sh.result.shape[sh.layout.in_axis]
        return (sh.scheme, fi / rf, fo / rf) if rf > 1 else None

    yield Hypothesis("receptive_field_ignored", "fans from channels only", channels_only)
    if layout is None:
        return
    other_layout = LAYOUTS["tf" if layout.name == "torch" else "torch"]

    def other_fans(sh: Shape) -> Alt | None:
        try:
            fi, fo = other_layout.fans(sh.result.shape)
        except InputError:
            return None
        return (sh.scheme, fi, fo)

    yield Hypothesis("layout_mismatch", f"fans of the {other_layout.name} layout", other_fans)


def _gain_hypotheses(s: Scheme) -> Iterator[Hypothesis]:
    if s.kind != "variance_scaling":
        return
    scale = s.params["scale"]
    options: dict[float, str] = {}
    for g2, name in GAIN2.items():
        options.setdefault(g2, f"scale {name} instead of {_frac(scale)}")
    for g2, name in GAIN2.items():
        if g2 != 1.0:
            options.setdefault(scale * g2, f"gain² {name} applied on top of scale {_frac(scale)}")
            options.setdefault(scale / g2, f"gain² {name} missing from scale {_frac(scale)}")
    options.setdefault(math.sqrt(scale), f"the gain not squared (scale {_frac(math.sqrt(scale))} "
                                         f"instead of {_frac(scale)})")
    options.setdefault(scale * scale, f"the gain² squared again (scale {_frac(scale * scale)})")
    uniform = s.params["distribution"] == "uniform"
    for new, label in options.items():
        if abs(new / scale - 1) < 1e-3 or (uniform and abs(new * 3 / scale - 1) < 1e-9):
            continue  # no change, or the same law as uniform_limit_missing_sqrt3
        yield Hypothesis("wrong_gain", label, lambda sh, f=new / scale, lab=label: _scaled(sh, f, lab))


def _truncation_hypotheses(s: Scheme) -> Iterator[Hypothesis]:
    p = s.params
    if s.kind == "variance_scaling" and p["distribution"] == "truncated_normal":
        for tc in ("exact", "none"):
            if p["truncation_correction"] != tc:
                yield Hypothesis("truncation_uncorrected", f"truncation_correction={tc}",
                                 lambda sh, tc=tc: (_alt(sh.scheme, f"truncation_correction={tc}",
                                                         truncation_correction=tc), *_fans(sh)))

        def absolute(sh: Shape) -> Alt:
            q = sh.scheme.params
            sigma = float(sh.ref.law.kwds["scale"])  # the claim's pre-truncation std, bounds taken as values
            alt = _alt(sh.scheme, "absolute bounds", "truncated_normal", mean=q["mean"], std=sigma,
                       lower=q["mean"] + q["lower"], upper=q["mean"] + q["upper"], bounds="absolute")
            return (alt, *_fans(sh))

        yield Hypothesis("truncation_absolute_bounds", f"cut at absolute [{p['lower']:g}, {p['upper']:g}]",
                         absolute)
    elif s.kind == "truncated_normal":
        if p["bounds"] == "std":
            t = float(stats.truncnorm(p["lower"], p["upper"]).std())
            yield Hypothesis("truncation_uncorrected", "std taken as the truncated law's std",
                             lambda sh: (_alt(sh.scheme, "corrected", std=sh.scheme.params["std"] / t), *_fans(sh)))
            yield Hypothesis("truncation_absolute_bounds", f"cut at absolute [{p['lower']:g}, {p['upper']:g}]",
                             lambda sh: (_alt(sh.scheme, "absolute", lower=p["mean"] + p["lower"],
                                              upper=p["mean"] + p["upper"], bounds="absolute"), *_fans(sh)))
        else:
            yield Hypothesis("truncation_absolute_bounds",
                             f"cut at mean + [{p['lower']:g}, {p['upper']:g}] std instead of absolute",
                             lambda sh: (_alt(sh.scheme, "std units", bounds="std"), *_fans(sh)))


def _other_hypotheses(s: Scheme) -> Iterator[Hypothesis]:
    if s.kind == "variance_scaling" and s.params["distribution"] == "uniform":
        yield Hypothesis("uniform_limit_missing_sqrt3", "limit sqrt(var) instead of sqrt(3 var)",
                         lambda sh: _scaled(sh, 1 / 3, "limit sqrt(var)"))
    yield Hypothesis("std_as_variance", "the variance used as the std",
                     lambda sh: _scaled(sh, sh.claim_var, "std = var"))
    yield Hypothesis("variance_as_std", "the std used as the variance",
                     lambda sh: _scaled(sh, 1 / math.sqrt(sh.claim_var), "var = std"))
    own = _claimed_family(s)
    for fam in ("normal", "truncated_normal", "uniform"):
        if fam != own:
            yield Hypothesis("wrong_distribution", _FAMILIES[fam], lambda sh, f=fam: _family(sh, f))
    yield Hypothesis("mean_shift", "shifted by the observed mean", lambda sh: _shifted(sh, _shift(sh), "shifted"),
                     fitted=1)
    yield Hypothesis("support_violation", "stray values or unreached bounds", lambda sh: None, fitted=1, stray=True)


#: generators of hypotheses, in order of precedence on ties
_GENERATORS: tuple[Callable[[Scheme, Layout | None], Iterator[Hypothesis]], ...] = (
    lambda s, lay: _other_hypotheses(s),
    _fan_hypotheses,
    lambda s, lay: _gain_hypotheses(s),
    lambda s, lay: _truncation_hypotheses(s),
)
_NULL = Hypothesis("as_claimed", "the claim itself", lambda sh: None)


def hypotheses(scheme: Scheme, layout: Layout | None = None) -> list[Hypothesis]:
    """Every hypothesis that applies to a claimed scheme (the claim itself first)."""
    out = [_NULL]
    for gen in _GENERATORS:
        out += list(gen(scheme, layout))
    order = list(CATALOGUE)
    return sorted(out, key=lambda h: -1 if h is _NULL else order.index(h.id))


# --- scoring --------------------------------------------------------------------------


@dataclass(eq=False)
class Fit:
    """How well one hypothesis explains the group.

    ``refs`` are the continuous laws (float64 references: their moments differ from the
    16-bit rounded ones by far less than a standard error); the KS uses the exact reference
    of the dtype, built only for the hypotheses that reach the KS stage.
    """

    hypothesis: Hypothesis
    alts: list[Alt | None]
    refs: list[Reference] = field(default_factory=list)
    deviance: float = 0.0  # sum of the parts' chi-square statistics
    dof: int = 0
    families: dict[str, list[float]] = field(default_factory=dict)  # check -> [deviance, dof] over shapes
    ks_done: bool = False
    stray: list[int] = field(default_factory=list)

    def add(self, family: str, deviance: float, dof: int) -> None:
        """One part: a z² (1 dof) or a -2 ln p (2 dof) of one check on one shape."""
        self.deviance += deviance
        self.dof += dof
        acc = self.families.setdefault(family, [0.0, 0])
        acc[0] += deviance
        acc[1] += dof

    def add_z(self, family: str, z: float) -> None:
        self.add(family, z * z, 1)

    @property
    def p(self) -> float:
        return float(stats.chi2.sf(self.deviance, max(self.dof, 1)))

    @property
    def consistent(self) -> bool:
        """Each check jointly over the shapes (as the runner's fan-law test pools the variance),
        Bonferroni over the checks: evidence that rejects the claim in one check is not diluted
        by the checks that fit."""
        if not self.ks_done:
            return False
        k = len(self.families)
        return all(float(stats.chi2.sf(dev, dof)) * k >= FIT_P for dev, dof in self.families.values())


def _continuous_ref(alt: Alt | None, sh: Shape) -> Reference:
    if alt is None:
        return sh.continuous
    return build(alt[0], alt[1], alt[2], "float64")


def _same(a: Reference, b: Reference) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-300) or x == y for x, y in
               ((a.mean, b.mean), (a.var, b.var), (a.mu4, b.mu4), (a.lower, b.lower), (a.upper, b.upper)))


def _inside(x: np.ndarray | float, ref: Reference, dtype: str) -> Any:
    """Within the support, allowing the rounding of ``dtype`` at the law's scale (a bound
    near 0 of a shifted law is only known to the rounding of the other bound)."""
    tol = 2 * eps(dtype) * max(abs(ref.lower), abs(ref.upper))
    return (x >= ref.lower - tol) & (x <= ref.upper + tol)


def _ks(u: np.ndarray, presorted: bool = False) -> tuple[float, float]:
    """KS distance of PIT values from U(0, 1) and its p-value (the runner's own test)."""
    return st.ks_uniform(u, presorted=presorted)


def _ks_deviance(d: float, p: float, n: int) -> float:
    """-2 ln p of a KS test; the Kolmogorov tail 2 exp(-2 n D²) where p underflows."""
    return -2 * math.log(p) if p > 0 else 4 * n * d * d - 2 * math.log(2)


def _p_deviance(p: float) -> float:
    return -2 * math.log(max(p, 1e-300))


def _unreached(sh: Shape) -> bool:
    return any(t.name == "bounds_reached" and t.passed is False for t in sh.result.tests)


def _score_moments(h: Hypothesis, shapes: list[Shape]) -> Fit | None:
    fit = Fit(h, [])
    for sh in shapes:
        alt = h.predict(sh)
        ref = _continuous_ref(alt, sh)
        if h.stray:
            keep = _inside(sh.sample, ref, sh.dtype)
            fit.stray.append(int(sh.sample.size - keep.sum()))
            x = sh.sample[keep]
            if x.size < 2 or fit.stray[-1] > MAX_STRAY * sh.sample.size:
                return None
            m = st.Moments()
            m.add(x)
        else:
            if not (_inside(sh.lo, ref, sh.dtype) and _inside(sh.hi, ref, sh.dtype)):
                return None  # the hypothesis cannot produce the observed extremes
            m = st.Moments(n=sh.n, mean=sh.mean, m2=sh.var * (sh.n - 1))
        fit.add_z("variance", st.variance_test(m, ref.var, ref.mu4)[0])
        if h.stray or not h.fitted or sh.ref.bounded:  # a shift fitted to the mean explains it by construction
            fit.add_z("mean", st.mean_test(m, ref.mean, ref.var)[0])
        fit.alts.append(alt)
        fit.refs.append(ref)
    if h.stray and not any(fit.stray) and not any(map(_unreached, shapes)):
        return None  # nothing stray, every bound reached: the plain claim says the same
    return fit


def _score_ks(fit: Fit, shapes: list[Shape]) -> None:
    """The KS of each shape's sample against the exact law of its dtype; for a bounded law
    also whether the extremes reach its bounds (as the runner's bounds_reached test)."""
    rng = np.random.default_rng(20240601)  # the randomized PIT of 16-bit dtypes, reproducibly
    for sh, alt, ref in zip(shapes, fit.alts, fit.refs, strict=True):
        exact = sh.ref if alt is None else build(*alt, sh.dtype) if sh.dtype in QUANTIZED else ref
        x = sh.sample[_inside(sh.sample, ref, sh.dtype)] if fit.hypothesis.stray else sh.sample
        d, p = _ks(exact.pit(x, rng), presorted=exact.grid is None)
        fit.add("ks", _ks_deviance(d, p, x.size), 2)
        if fit.hypothesis.stray:  # strays or unreached bounds are what this hypothesis allows
            continue
        if exact.grid is not None and (sh.lo < exact.lower or sh.hi > exact.upper):
            fit.add("support", math.inf, 1)  # a 16-bit value in no cell of the law: impossible
        if exact.bounded:
            p = st.bounds_reached_test(exact.prob_at_most(sh.hi), exact.prob_at_least(sh.lo), sh.n)
            fit.add("bounds_reached", _p_deviance(p), 2)
    fit.ks_done = True


def rank(shapes: list[Shape]) -> list[Fit]:
    """Every applicable hypothesis scored on the group, best first (the claim included)."""
    first = shapes[0]
    fits: list[Fit] = []
    for h in hypotheses(first.scheme, first.layout):
        fit = _score_moments(h, shapes)
        if fit is None:
            continue
        if h is not _NULL and not h.stray and all(_same(a, s.continuous) for a, s in zip(fit.refs, shapes,
                                                                                          strict=True)):
            continue  # predicts exactly the claim
        fits.append(fit)
    by_moments = sorted(fits, key=lambda f: f.deviance)
    for i, f in enumerate(by_moments):
        if i < 3 or f.p >= KS_SCREEN_P:
            _score_ks(f, shapes)
    # KS-scored fits first (their deviance is complete), then by p and deviance; the sort is
    # stable, so hypotheses predicting the same law keep the catalogue's precedence
    best: dict[str, Fit] = {}
    for f in sorted(fits, key=lambda f: (not f.ks_done, -f.p, f.deviance)):
        best.setdefault(f.hypothesis.id, f)
    return list(best.values())


# --- messages -------------------------------------------------------------------------


def _kurtosis(x: np.ndarray) -> float:
    d = x - x.mean()
    v = float((d * d).mean())
    return float((d**4).mean() / v**2) if v > 0 else math.nan


def _message(fit: Fit, shapes: list[Shape], i: int) -> str:
    """The hypothesis in numbers of shape ``i``."""
    h, sh, ref, k = fit.hypothesis, shapes[i], fit.refs[i], len(shapes)
    o, v, pv = sh.var, sh.ref.var, ref.var
    n_shapes = f" (on {k} shapes)" if k > 1 else ""
    if h.id == "std_as_variance":
        return f"observed var {_g(o)} ≈ expected var² ({_g(v)}² = {_g(pv)})"
    if h.id == "variance_as_std":
        return f"observed var {_g(o)} ≈ sqrt(expected var) (sqrt({_g(v)}) = {_g(pv)})"
    if h.id in ("fan_swapped", "wrong_fan_mode", "receptive_field_ignored", "layout_mismatch"):
        return (f"observed var {_g(o)} ≈ {_g(pv)} with {h.label} (fan_in {ref.fan_in:g}, fan_out {ref.fan_out:g}), "
                f"expected {_g(v)}{n_shapes}")
    if h.id in ("wrong_gain", "uniform_limit_missing_sqrt3", "truncation_uncorrected"):
        return f"observed var {_g(o)} ≈ {_g(pv)} = {_frac(pv / v)} × expected {_g(v)}: {h.label}{n_shapes}"
    if h.id == "truncation_absolute_bounds":
        return (f"values in [{_g(sh.lo)}, {_g(sh.hi)}], var {_g(o)}: fit the law {h.label} "
                f"(var {_g(pv)}, bounds [{_g(ref.lower)}, {_g(ref.upper)}]), not [{_g(sh.ref.lower)}, "
                f"{_g(sh.ref.upper)}]")
    if h.id == "wrong_distribution":
        own = _FAMILIES.get(_claimed_family(sh.scheme), _claimed_family(sh.scheme))
        return (f"var {_g(o)} ≈ expected {_g(v)} but the sample (kurtosis {_kurtosis(sh.sample):.2f}) is "
                f"{h.label} (kurtosis {ref.kurtosis:.2f}), not {own} ({sh.ref.kurtosis:.2f})")
    if h.id == "mean_shift":
        return (f"the law shifted by {_g(ref.mean - sh.continuous.mean)}: observed mean {_g(sh.mean)}, range "
                f"[{_g(sh.lo)}, {_g(sh.hi)}], expected mean {_g(sh.ref.mean)} (std {_g(math.sqrt(v))}); "
                f"otherwise as claimed")
    if h.id == "support_violation":
        if not fit.stray[i]:
            t = next((t for t in sh.result.tests if t.name == "bounds_reached"), None)
            detail = f"{t.detail}, p = {t.p_value:.2g}" if t and t.p_value is not None else ""
            return (f"the extremes stay inside the support and never reach its bounds ({detail}); "
                    f"otherwise as claimed")
        return (f"{fit.stray[i]} of {sh.sample.size} sampled values (observed range [{_g(sh.lo)}, {_g(sh.hi)}]) "
                f"outside [{_g(ref.lower)}, {_g(ref.upper)}]; the rest follow the claim")
    return h.label


# --- entry points ---------------------------------------------------------------------


def _statistical(shapes: list[Shape]) -> tuple[list[Fit], Fit | None]:
    """The consistent fits with their confidences, or ([], closest) when none is consistent."""
    fits = rank(shapes)
    scored = [f for f in fits if f.ks_done]
    ok = [f for f in scored if f.consistent]
    if not ok:
        rivals = [f for f in scored or fits if f.hypothesis is not _NULL]
        return [], rivals[0] if rivals else None
    return ok, None


def _weights(fits: list[Fit], shapes: list[Shape]) -> list[float]:
    """Posterior-like weights exp(-BIC/2): a fitted parameter costs ln(n) per shape, so a
    hypothesis that fits the mean (or the strays) of every shape does not beat the plain
    claim on noise alone."""
    penalty = sum(math.log(sh.n) for sh in shapes)
    score = [f.deviance + f.hypothesis.fitted * penalty for f in fits]
    best = min(score)
    w = [math.exp(-0.5 * (x - best)) for x in score]
    total = sum(w)
    return [x / total for x in w]


def diagnose_group(results: list[Any]) -> None:
    """Fill ``diagnosis`` of each failed result of one initializer and dtype (all its shapes)."""
    for r in results:
        r.diagnosis = []
    failed = [r for r in results if r.verdict == "fail" and not r.error]
    if not failed:
        return
    shapes = [sh for sh in map(_shape_of, results) if sh is not None]
    names = sorted({t.name for r in failed for t in r.failed_tests if t.name in _STATISTICAL})
    fits: list[Fit] = []
    closest: Fit | None = None
    crash = ""
    if shapes and names:
        try:
            fits, closest = _statistical(shapes)
        except Exception as e:  # noqa: BLE001 - a diagnosis must never stop the run
            crash = f"diagnosis failed: {type(e).__name__}: {e}"
    by_result = {id(sh.result): sh for sh in shapes}
    for r in failed:
        out = [_diag(_STRUCTURAL[t.name], 1.0, t.detail or f"{t.name} check failed")
               for t in r.failed_tests if t.name in _STRUCTURAL]
        sh = by_result.get(id(r))
        if any(t.name in _STATISTICAL for t in r.failed_tests) and shapes and (sh is not None or not out):
            if crash:
                out.append(_diag("unknown", 0.0, crash))
            else:
                out += _statistical_diagnoses(sh or shapes[0], shapes, fits, closest, names)
        if not out:
            listed = ", ".join(t.name for t in r.failed_tests)
            out = [_diag("unknown", 1.0, f"no known mistake explains the failed checks: {listed}")]
        r.diagnosis = out


def _statistical_diagnoses(sh: Shape, shapes: list[Shape], fits: list[Fit], closest: Fit | None,
                           names: list[str]) -> list[dict[str, Any]]:
    """Up to three diagnoses of one shape, from the group's ranking, messages with its numbers."""
    k, i = len(shapes), shapes.index(sh)
    if not fits:
        near = ""
        if closest is not None:
            near = (f"; closest: {closest.hypothesis.id} ({closest.hypothesis.label}, p = {closest.p:.2g}): "
                    f"{_message(closest, shapes, i)}")
        return [_diag("unknown", 1.0, f"no known mistake explains the failed checks ({', '.join(names)}){near}")]
    out = []
    for f, w in zip(fits, _weights(fits, shapes), strict=True):
        if f.hypothesis is _NULL:
            out.append(_diag("unknown", w, f"the samples are consistent with the claim (p = {f.p:.2g}) on "
                             f"{k} shapes: a chance failure? rerun with another --seed"))
        else:
            j = i
            if f.alts[i] is None or _same(f.refs[i], sh.continuous):  # this shape conforms: show one that does not
                j = next((j for j, other in enumerate(shapes) if f.alts[j] is not None
                          and not _same(f.refs[j], other.continuous)), i)
            where = "" if j == i else f"on {'x'.join(map(str, shapes[j].result.shape))}: "
            out.append(_diag(f.hypothesis.id, w, where + _message(f, shapes, j)))
    return sorted(out, key=lambda d: -d["confidence"])[:3]


def diagnose(result: Any) -> list[dict[str, Any]]:
    """Diagnoses for one result on its own, most likely first."""
    diagnose_group([result])
    return result.diagnosis
