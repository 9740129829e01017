"""Identify which scheme an unknown initializer implements.

Draw a sample on several shapes, then rank candidate schemes by how well they explain all
shapes at once: a grid of fan modes x common scales (gains² and their usual slips) x
distributions, the same modes and distributions with the scale fitted to the data, and
fixed-scale schemes (normal, truncated normal, uniform) fitted to the data.  The score is
the exact log-likelihood of the sample under each candidate's law (computed from per-shape
sufficient statistics: sum, sum of squares, extremes), penalized by BIC for every fitted
parameter; a value outside a candidate's support rules it out.  The best candidate is then
tested like a claim (variance z-test and KS per shape) and printed as an inline scheme
expression with the presets that mean the same law.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import special, stats

from initspec.engine import stats as st
from initspec.errors import InputError
from initspec.spec.fans import n_of
from initspec.spec.reference import QUANTIZED, Reference, _grid, build, eps, law_params, np_dtype
from initspec.spec.schemes import MODES, Scheme, presets, resolve

DEFAULT_SAMPLES = 200_000
DEFAULT_ALPHA = 1e-4
#: variance factors tried on every mode: the usual gains² (linear 1, relu 2, tanh 25/9, selu
#: 9/16, torch's leaky_relu(a=sqrt(5)) 1/3) and the slips around them
SCALES = (1.0, 2.0, 1 / 3, 25 / 9, 9 / 16, 0.5, 3.0, 2 / 3, 1 / 6, 6.0, 4.0, 0.25, math.sqrt(2), 5 / 3, 0.75)
#: distribution -> extra scheme arguments and the variance per unit scale
DISTRIBUTIONS: dict[str, tuple[str, float]] = {
    "normal": ("distribution=normal", 1.0),
    "uniform": ("distribution=uniform", 1.0),
    "truncated_normal": ("distribution=truncated_normal", 1.0),
    "truncated_normal_uncorrected": ("distribution=truncated_normal, truncation_correction=none",
                                     float(stats.truncnorm(-2, 2).var())),
    "truncated_normal_tf1": ("distribution=truncated_normal, truncation_correction=1.3",
                             1.3 * float(stats.truncnorm(-2, 2).var())),
}


@dataclass
class ShapeSample:
    """What was drawn at one shape: sufficient statistics and the values (for the KS)."""

    shape: tuple[int, ...]
    fan_in: float
    fan_out: float
    values: np.ndarray
    dtype: str

    def __post_init__(self) -> None:
        x = self.values
        self.n = int(x.size)
        self.s1 = float(x.sum())
        self.s2 = float((x * x).sum())
        self.lo = float(x.min())
        self.hi = float(x.max())
        self.mean = self.s1 / self.n
        self.var = float(x.var(ddof=1)) if self.n > 1 else 0.0
        self.cells: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if self.dtype in QUANTIZED:
            # A 16-bit value stands for its rounding cell: the likelihood is the cell's
            # probability.  A density would reward laws whose bounds shrink into the rounding.
            grid = _grid(self.dtype)
            edges = np.concatenate([[-np.inf], (grid[1:] + grid[:-1]) / 2.0, [np.inf]])
            values, counts = np.unique(x, return_counts=True)
            i = np.searchsorted(grid, values)
            self.cells = (edges[i], edges[i + 1], counts.astype(np.float64))

    def sum_sq(self, mu: float) -> float:
        """Sum of (x - mu)²."""
        return self.s2 - 2 * mu * self.s1 + self.n * mu * mu

    def inside(self, lo: float, hi: float) -> bool:
        tol = 2 * eps(self.dtype) * max(abs(lo), abs(hi))
        return self.lo >= lo - tol and self.hi <= hi + tol


@dataclass
class Candidate:
    """A scheme and how well it explains the samples."""

    expr: str
    scheme: Scheme
    fitted: int = 0
    loglik: float = -math.inf
    bic: float = math.inf
    note: str = ""
    #: as a spec writes it (arithmetic the audit spec reduces: ``normal(std=1 / sqrt(128))``); default ``expr``
    text: str = ""
    #: among the laws the data cannot reject, the simplest is named: 0 a preset's common gain or small
    #: integers (U(0, 1)), 1 one significant digit (0.02), 2 1/sqrt(n), a fraction, tanh's and selu's
    #: gains, 3 two significant digits or an odd factor (5/3), 4 fitted decimals (see PINNED)
    simplicity: int = 4
    #: the Bonferroni p-value of its tests on the data (variance, mean, KS, bounds), when it was tested
    p_value: float | None = None

    def __post_init__(self) -> None:
        self.text = self.text or self.expr


@dataclass
class ShapeEvidence:
    shape: tuple[int, ...]
    fan_in: float
    fan_out: float
    n: int
    var_observed: float
    var_expected: float
    p_var: float
    p_ks: float


@dataclass
class Identification:
    """The ranking, the best candidate's per-shape evidence and whether it is consistent."""

    target: str
    layout: str
    dtype: str
    seed: int
    ranked: list[Candidate]
    evidence: list[ShapeEvidence] = field(default_factory=list)
    alpha: float = DEFAULT_ALPHA
    problem: str = ""
    #: every candidate the data cannot reject at PREFER_ALPHA (aliases of one law included), simplest first
    accepted: list[Candidate] = field(default_factory=list)
    #: every candidate tested (p_value set), whatever its p-value
    tested: list[Candidate] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    @property
    def consistent(self) -> bool:
        """The best candidate passes every per-shape test at alpha (Bonferroni over the tests)."""
        if self.problem or not self.evidence:
            return False
        cut = self.alpha / (2 * len(self.evidence))
        return all(e.p_var >= cut and e.p_ks >= cut for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "layout": self.layout, "dtype": self.dtype, "seed": self.seed,
                "problem": self.problem, "consistent": self.consistent,
                "best": self.best.expr if self.best else None,
                "same_as": same_presets(self.best.scheme) if self.best else [],
                "candidates": [{"expr": c.expr, "loglik": c.loglik, "bic": c.bic, "fitted": c.fitted}
                               for c in self.ranked[:20]],
                "evidence": [vars(e) for e in self.evidence]}


# --- likelihood -----------------------------------------------------------------------


def loglik(law: Any, s: ShapeSample) -> float:
    """Log-likelihood of a shape's values under a law: a frozen scipy norm/uniform/truncnorm, or its
    ``(name, a, b, loc, scale)`` from :func:`~initspec.spec.reference.law_params` (of their rounding
    cells for 16-bit dtypes)."""
    if isinstance(law, tuple):
        name, a, b, loc, scale = law
    else:
        name = law.dist.name
        loc, scale = law.kwds.get("loc", 0.0), law.kwds.get("scale", 1.0)
        a, b = law.args if name == "truncnorm" else (0.0, 0.0)
    if s.cells is not None:
        frozen = law if not isinstance(law, tuple) else (
            stats.norm(loc=loc, scale=scale) if name == "norm" else stats.uniform(loc=loc, scale=scale)
            if name == "uniform" else stats.truncnorm(a, b, loc=loc, scale=scale))
        cdf = Reference(None, s.dtype, s.fan_in, s.fan_out, law=frozen).cdf  # type: ignore[arg-type]
        lo, hi, counts = s.cells
        prob = cdf(hi) - cdf(lo)
        if (prob <= 0).any():
            return -math.inf
        return float(counts @ np.log(prob))
    if name == "uniform":
        return -s.n * math.log(scale) if s.inside(loc, loc + scale) else -math.inf
    if name not in ("norm", "truncnorm"):
        raise ValueError(f"no likelihood for {name}")
    ll = -s.n * (math.log(scale) + 0.5 * math.log(2 * math.pi)) - s.sum_sq(loc) / (2 * scale * scale)
    if name == "truncnorm":
        if not s.inside(loc + a * scale, loc + b * scale):
            return -math.inf
        ll -= s.n * math.log(special.ndtr(b) - special.ndtr(a))
    return ll


def _score(c: Candidate, samples: list[ShapeSample]) -> Candidate:
    total = 0.0
    for s in samples:
        total += loglik(law_params(c.scheme, s.fan_in, s.fan_out), s)
        if total == -math.inf:
            break
    c.loglik = total
    n = sum(s.n for s in samples)
    c.bic = -2 * total + c.fitted * math.log(n) if math.isfinite(total) else math.inf
    return c


# --- candidates -----------------------------------------------------------------------


def snap(x: float, rel_tol: float) -> float:
    """The simplest number within ``rel_tol`` of x: a fraction with a small denominator,
    else x rounded to as few significant digits as the tolerance allows."""
    if x == 0:
        return 0.0
    for den in (1, 2, 3, 4, 6, 8, 9, 12, 16):  # the denominators of gains² and their slips
        f = float(Fraction(x).limit_denominator(den))
        if f != 0 and abs(f / x - 1) <= rel_tol:
            return f
    for digits in range(1, 10):
        r = float(f"{x:.{digits}g}")
        if abs(r / x - 1) <= rel_tol:
            return r
    return x


def _fmt(x: float) -> str:
    return repr(float(x))


#: integers a code base writes under a square root (1/sqrt(n)): powers of two times 1, 3 or 5
#: (hidden sizes 768 = 3·2⁸, 5120 = 5·2¹⁰) and powers of ten
NICE_N = sorted({m * 2**k for m in (1, 3, 5) for k in range(40)} | {10**k for k in range(12)})


def round_values(x: float) -> list[tuple[float, str, int]]:
    """Simple numbers next to ``x`` that a code base would write, each as ``(value, text, simplicity)``:
    a small integer (1, U(0, 1): simplicity 0), one significant digit on either side (0.02, 0.03: 1),
    1/sqrt(n) for the nice n on either side of 1/x² (1 / sqrt(128): 2), a fraction with denominator
    2, 3 or 4 (1 / 3: 2) and two significant digits (0.015: 3).  The data decides which of them, if
    any, it cannot reject."""
    if x == 0 or not math.isfinite(x):
        return [(0.0, "0", 0)] if x == 0 else []
    a = abs(x)
    out: dict[float, tuple[str, int]] = {}
    e = math.floor(math.log10(a))
    m = a / 10.0**e
    for d in (math.floor(m), math.floor(m) + 1):
        v = float(f"{d}e{e}")
        out.setdefault(v, (repr(v), 0 if v == int(v) and v <= 10 else 1))
    v2 = float(f"{a:.2g}")
    out.setdefault(v2, (repr(v2), 3))
    f = Fraction(a).limit_denominator(4)
    if f.denominator > 1 and f.numerator and abs(float(f) / a - 1) < 0.1:
        out.setdefault(float(f), (f"{f.numerator} / {f.denominator}", 2))
    if 1e-7 < a * a < 1:
        import bisect

        i = bisect.bisect_left(NICE_N, 1 / (a * a))
        for n in NICE_N[max(i - 1, 0):i + 1]:
            out.setdefault(1 / math.sqrt(n), (f"1 / sqrt({n})", 2))
    if x > 0:
        return [(v, t, c) for v, (t, c) in out.items()]
    return [(-v, f"-{t}" if " " not in t else f"-({t})", c) for v, (t, c) in out.items()]


def _short(x: float) -> str:
    """A fitted number as the report shows it (4 significant digits; the expression keeps them all)."""
    return repr(float(f"{x:.4g}"))


#: variance factors a code base writes with any fan mode (simplicity 0: linear and relu gains², as
#: kaiming_normal_(mode='fan_out') writes them; other presets, torch's default U(±1/sqrt(fan_in)) = 1/3
#: fan_in uniform, are 0 too); 2: tanh and selu gains²; the other SCALES are the slips around them (3)
_SCALE_SIMPLICITY = {1.0: 0, 2.0: 0, 25 / 9: 2, 9 / 16: 2}
#: the simplest a law may be and still be pinned by a lockfile; past it (fitted decimals) a law is an
#: estimate, which a re-draw of the same model fails now and then
PINNED = 3
_SCALE_TEXT = {1 / 3: "1 / 3", 25 / 9: "25 / 9", 9 / 16: "9 / 16", 2 / 3: "2 / 3", 1 / 6: "1 / 6", 5 / 3: "5 / 3",
               math.sqrt(2): "sqrt(2)"}


@functools.lru_cache(maxsize=4096)
def _resolved(expr: str) -> Scheme:
    """``resolve`` of a grid expression (~0.5 ms a call; the grid is the same for every group)."""
    return resolve(expr)


def _vs(scale: float, mode: str, dist: str, simplicity: int | None = None) -> Candidate:
    expr = f"variance_scaling(scale={_fmt(scale)}, mode={mode}, {DISTRIBUTIONS[dist][0]})"
    text = expr.replace(f"scale={_fmt(scale)}", f"scale={_SCALE_TEXT[scale]}") if scale in _SCALE_TEXT else expr
    if simplicity is None:
        simplicity = _grid_simplicity(expr, scale, mode)
    return Candidate(expr, _resolved(expr), text=text, simplicity=simplicity)


@functools.lru_cache(maxsize=4096)
def _grid_simplicity(expr: str, scale: float, mode: str) -> int:
    if same_presets(_resolved(expr)):
        return 0
    unusual = 2 * (mode == "fan_geo_avg") + ("truncation_correction" in expr)  # TF1's 1.3, or none
    return min(_SCALE_SIMPLICITY.get(scale, 3) + unusual, 3)


def _plain(kind: str, args: list[tuple[str, float, str]], fitted: int, simplicity: int, note: str) -> Candidate | None:
    """``kind(name=value, ...)`` with ``args`` as (name, value, text); None when the law is void."""
    expr = f"{kind}({', '.join(f'{k}={_fmt(v)}' for k, v, _ in args)})"
    try:
        scheme = resolve(expr)
    except InputError:  # a zero std, low >= high: no law
        return None
    text = f"{kind}({', '.join(f'{k}={t}' for k, _, t in args)})"
    return Candidate(expr, scheme, fitted=fitted, note=note, text=text, simplicity=simplicity)


def candidates(samples: list[ShapeSample], fitted_scale: bool = True) -> list[Candidate]:
    """The grid, the fitted-scale variance scalings (unless ``fitted_scale`` is False: on one
    shape they only rename a fitted std), fixed laws with round parameters and the fitted fixed laws."""
    out: dict[str, Candidate] = {}

    def add(c: Candidate | None) -> None:
        if c is not None and (c.expr not in out or (out[c.expr].simplicity, out[c.expr].fitted)
                              > (c.simplicity, c.fitted)):
            out[c.expr] = c

    n_total = sum(s.n for s in samples)
    rel_se = 3 * math.sqrt(2.0 / n_total)  # ~3 standard errors of a pooled variance
    for mode in MODES:
        for dist, (_, unit) in DISTRIBUTIONS.items():
            for scale in SCALES:
                add(_vs(scale, mode, dist))
            fitted = sum(s.n * s.var * n_of(mode, s.fan_in, s.fan_out) for s in samples) / n_total / unit
            if fitted > 0 and fitted_scale:
                c = _vs(snap(fitted, rel_se), mode, dist, simplicity=4)
                c.fitted, c.note = 1, "scale fitted"
                add(c)
    pooled_var = sum(s.n * s.var for s in samples) / n_total
    pooled_mean = sum(s.s1 for s in samples) / n_total
    if not pooled_var > 0:
        return list(out.values())
    std = math.sqrt(pooled_var)
    shifted = abs(pooled_mean) > 4 * std / math.sqrt(n_total)
    k = 1 + shifted
    means = [(0.0, "0", 0)]
    if shifted:
        fitted_mean = snap(pooled_mean, 3 * std / math.sqrt(n_total) / abs(pooled_mean))
        means = [*round_values(pooled_mean), (fitted_mean, _short(fitted_mean), 4)]
    t = float(stats.truncnorm(-2, 2).std())
    for mean, mean_text, mean_c in means:
        m_arg = [("mean", mean, mean_text)] if shifted else []
        for kind, sd in (("normal", std), ("truncated_normal", std / t)):
            fit = snap(sd, rel_se / 2)
            for v, text, c in [*round_values(sd), (fit, _short(fit), 4)]:
                add(_plain(kind, [*m_arg, ("std", v, text)], k, max(c, mean_c), "std fitted" if c == 4 else
                           "std rounded"))
    half = math.sqrt(3 * pooled_var)
    m = snap(pooled_mean, rel_se) if shifted else 0.0
    lo_f, hi_f = snap(m - half, rel_se), snap(m + half, rel_se)
    add(_plain("uniform", [("low", lo_f, _short(lo_f)), ("high", hi_f, _short(hi_f))], k, 4, "limits fitted"))
    lo, hi = min(s.lo for s in samples), max(s.hi for s in samples)
    add(_plain("uniform", [("low", lo, _short(lo)), ("high", hi, _short(hi))], 2, 4, "limits at the extremes"))
    # round limits just outside the extremes: U(0, 1), U(±0.1), U(±1 / sqrt(512))
    lows = [r for r in round_values(lo) if r[0] <= lo] + ([(0.0, "0", 0)] if 0 <= lo < 0.1 * (hi - lo) else [])
    highs = [r for r in round_values(hi) if r[0] >= hi] + ([(0.0, "0", 0)] if 0 >= hi > -0.1 * (hi - lo) else [])
    for a, at, ac in lows:
        for b, bt, bc in highs:
            add(_plain("uniform", [("low", a, at), ("high", b, bt)], 2, max(ac, bc), "limits rounded"))
    for b, bt, bc in round_values(max(-lo, hi)):
        if b >= max(-lo, hi):
            add(_plain("uniform", [("low", -b, f"-{bt}" if " " not in bt else f"-({bt})"), ("high", b, bt)], 1, bc,
                       "limits rounded"))
    return list(out.values())


def same_presets(scheme: Scheme) -> list[str]:
    """Preset names whose resolved law is exactly this scheme's."""
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b

    out = []
    for p in presets():
        s = resolve(p.name)
        if s.kind == scheme.kind and s.params.keys() == scheme.params.keys() and all(
                same(s.params[k], scheme.params[k]) for k in s.params):
            out.append(p.name)
    return out


# --- drawing --------------------------------------------------------------------------


def draw_samples(drawer: Callable[..., np.ndarray], entry: Any, dtype: str, seed: int,
                 samples: int) -> tuple[list[ShapeSample], str]:
    """Draw ``samples`` values per shape (draw k with seed + k); a problem string if it misbehaves."""
    out = []
    want = np_dtype(dtype)
    for case in entry.cases:
        size = max(math.prod(case.shape), 1)
        chunks = []
        for k in range(max(1, math.ceil(samples / size))):
            from initspec.engine.guard import DEFAULT_DRAW_TIMEOUT, guarded

            try:  # the initializer's failure is the identification's problem, not a crash
                x = guarded(drawer, case, dtype, seed + k, timeout=DEFAULT_DRAW_TIMEOUT, what=f"draw {k}")
            except Exception as e:  # noqa: BLE001 - DrawError or whatever the initializer raised
                text = str(e) if type(e).__name__ == "DrawError" else f"raised {type(e).__name__}: {e}"
                return out, f"shape {case.shape}: {text[:300]}"
            if not isinstance(x, np.ndarray) or x.shape != case.shape or x.dtype != want:
                got = f"{getattr(x, 'shape', '?')} {getattr(x, 'dtype', type(x).__name__)}"
                return out, f"shape {case.shape}: expected a {case.shape} {dtype} array, got {got}"
            v = x.astype(np.float64).ravel()
            if not np.isfinite(v).all():
                return out, f"shape {case.shape}: non-finite values"
            chunks.append(v)
        fi, fo = entry.layout.fans(case.shape) if len(case.shape) >= 2 or entry.layout.small == "keras" else (1, 1)
        out.append(ShapeSample(case.shape, fi, fo, np.concatenate(chunks), dtype))
    return out, ""


def _structured(samples: list[ShapeSample], layout: Any) -> Candidate | None:
    """constant(value=v) when every value is the same; orthogonal(gain=g) when each first
    draw has orthonormal rows/columns times g."""
    values = {float(s.values[0]) for s in samples}
    if all(s.lo == s.hi for s in samples) and len(values) == 1:
        expr = f"constant(value={_fmt(values.pop())})"
        return Candidate(expr, resolve(expr), note="every value equal")
    gains = []
    for s in samples:
        rows, cols = layout.matrix(s.shape) if len(s.shape) >= 2 else (1, 1)
        if min(rows, cols) < 2:  # one row or column is "orthogonal" up to its norm whatever its values
            return None
        if s.values.size < rows * cols:  # a subsample (the audit's, of a large tensor): no whole matrix
            return None
        w = s.values[: rows * cols].reshape(rows, cols)
        gram = w @ w.T if rows <= cols else w.T @ w
        g2 = float(np.mean(np.diag(gram)))
        if g2 <= 0 or np.abs(gram - g2 * np.eye(gram.shape[0])).max() > 1e-3 * g2 + 8 * eps(s.dtype) * g2:
            return None
        gains.append(math.sqrt(g2))
    g = snap(float(np.mean(gains)), 1e-3)
    expr = f"orthogonal(gain={_fmt(g)})"
    return Candidate(expr, resolve(expr), note="W Wᵀ = gain² I on every shape")


def identify(target: str | Callable[..., Any], *, convention: str = "numpy", layout: str = "torch",
             shapes: Iterable[Any] | None = None, dtype: str = "float32", seed: int = 0,
             samples: int = DEFAULT_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Identification:
    """Rank candidate schemes for an initializer (a ``MODULE:ATTR(args)`` string or a callable)."""
    from initspec.frameworks.target import entry_for
    from initspec.spec import validate

    validate.integer(samples, "--samples", low=1000, high=validate.MAX_ELEMENTS)
    np_dtype(dtype)
    from initspec.engine.guard import DEFAULT_DRAW_TIMEOUT, build_guarded

    # (the claim is unused); a factory that fails is the identification's problem (exit 1)
    entry, drawer = entry_for(target, "normal", convention, layout, shapes, [dtype],
                              build=lambda b: build_guarded(b, DEFAULT_DRAW_TIMEOUT))
    for case in entry.cases:  # as `check` does: a shape the layout has no fans for is bad input
        entry.layout.fans(case.shape)
    name = target if isinstance(target, str) else entry.call
    drawn, problem = draw_samples(drawer, entry, dtype, seed, samples)
    if problem:
        return Identification(name, layout, dtype, seed, [], alpha=alpha, problem=problem)
    return rank_samples(drawn, entry.layout, name=name, seed=seed, alpha=alpha)


#: a candidate is "not rejected" when its tests' Bonferroni p-value is at least this: strict enough
#: that a law it lets through sits within ~2.6 standard errors of the data (a lockfile that pins it
#: holds on a re-draw), loose enough that the true law passes 99% of the time
PREFER_ALPHA = 0.01
#: a preset (or a layer default) is a priori what code writes, and there are few of them on a shape:
#: they are not rejected down to this p-value (the true law then fails it 0.1% of the time, not 1-3%)
PRESET_ALPHA = 1e-3
#: candidates more than this many nats below the best log-likelihood are rejected without a test
#: (a variance ~5 standard errors off already costs 12 nats)
WINDOW = 12.0
#: values the KS of the acceptance test reads (a random subset beyond): the check's own KS size at
#: alpha 1e-6 is ~35 000
KS_CAP = 50_000
_FAMILY_ORDER = {"normal": 0, "variance_scaling": 1, "uniform": 2, "truncated_normal": 3}


def rank_samples(drawn: list[ShapeSample], layout: Any, *, name: str = "", seed: int = 0,
                 alpha: float = DEFAULT_ALPHA, fitted_scale: bool = True) -> Identification:
    """Rank candidate schemes for samples already drawn (one ShapeSample per shape, fans set);
    ``layout`` is a :class:`~initspec.spec.fans.Layout` (for the orthogonal flattening).

    The best is the simplest law the data cannot reject (see :data:`PREFER_ALPHA`): a preset's
    common gain, then round parameters, then odd factors, then fitted decimals, BIC breaking ties;
    when none passes, the best BIC.  ``accepted`` lists every law that passed, aliases included
    (the audit chooses among them across a model's groups)."""
    result = Identification(name, layout.name, drawn[0].dtype, seed, [], alpha=alpha)
    special = _structured(drawn, layout)
    if special is not None:
        special.loglik = special.bic = 0.0
        special.simplicity, special.p_value = 0, 1.0
        result.ranked = [special]
        result.accepted = [special]
        result.evidence = [ShapeEvidence(s.shape, s.fan_in, s.fan_out, s.n, s.var, s.var, 1.0, 1.0) for s in drawn]
        return result
    scored = sorted((_score(c, drawn) for c in candidates(drawn, fitted_scale)), key=lambda c: (c.bic, c.fitted))
    top = scored[0].loglik if scored else -math.inf
    by_law: dict[tuple[Any, ...], list[Candidate]] = {}
    for c in scored:
        by_law.setdefault(_law_key(c.scheme, drawn), []).append(c)
    rng = np.random.default_rng([seed, 7])
    ks = [s.values if s.values.size <= KS_CAP else s.values[np.sort(rng.choice(s.values.size, KS_CAP, replace=False))]
          for s in drawn]
    for same in by_law.values():
        c = same[0]
        if math.isfinite(c.loglik) and c.loglik >= top - WINDOW:
            p = _acceptance(c.scheme, drawn, ks, seed)
            for alias in same:
                alias.p_value = p
    result.tested = [c for c in scored if c.p_value is not None]
    result.accepted = sorted((c for c in result.tested if c.p_value >= (PRESET_ALPHA if c.simplicity <= 0 else
                                                                          PREFER_ALPHA)), key=_simplest)
    first = result.accepted[0] if result.accepted else (scored[0] if scored else None)
    seen: set[tuple[Any, ...]] = set()
    for c in ([first] if first else []) + sorted(scored, key=lambda c: (c.bic, c.simplicity, c.fitted)):
        key = _law_key(c.scheme, drawn)
        if key in seen or not (math.isfinite(c.bic) or not result.ranked):
            continue
        seen.add(key)  # one expression per law: the simplest of its aliases
        result.ranked.append(min(by_law[key], key=_simplest) if c is not first else c)
    result.evidence = _evidence(result.ranked[0], drawn, seed)
    return result


def _simplest(c: Candidate) -> tuple[Any, ...]:
    return (c.simplicity, _FAMILY_ORDER.get(c.scheme.kind, 4), c.fitted, c.bic)


def _acceptance(scheme: Scheme, drawn: list[ShapeSample], ks: list[np.ndarray], seed: int) -> float:
    """The Bonferroni p-value of the audit's own tests of ``scheme`` on the drawn values: variance,
    mean, KS and, for a bounded law, the support and that the extremes come as close to the bounds as
    they should."""
    rng = np.random.default_rng([seed, 104729])
    ps = []
    for s, values in zip(drawn, ks, strict=True):
        ref = build(scheme, s.fan_in, s.fan_out, s.dtype)
        m = st.Moments(n=s.n, mean=s.mean, m2=s.var * (s.n - 1), minimum=s.lo, maximum=s.hi)
        ps += [st.variance_test(m, ref.var, ref.mu4)[1], st.mean_test(m, ref.mean, ref.var)[1],
               st.ks_uniform(ref.pit(values, rng))[1]]
        if ref.bounded:
            if not s.inside(ref.lower, ref.upper):
                return 0.0  # a value outside the support
            ps.append(st.bounds_reached_test(ref.prob_at_most(s.hi), ref.prob_at_least(s.lo), s.n))
    return min(1.0, min(ps) * len(ps))


def _law_key(scheme: Scheme, drawn: list[ShapeSample]) -> tuple[Any, ...]:
    """The candidate's laws on the drawn shapes, rounded: equal keys mean the same laws."""
    key = []
    for s in drawn:
        name, a, b, loc, scale = law_params(scheme, s.fan_in, s.fan_out)
        nums = [a, b, loc, scale] if name == "truncnorm" else [loc, scale]
        key.append((name, *(float(f"{x:.10g}") for x in nums)))
    return tuple(key)


def _evidence(best: Candidate, drawn: list[ShapeSample], seed: int) -> list[ShapeEvidence]:
    rng = np.random.default_rng([seed, 104729])
    out = []
    for s in drawn:
        ref = build(best.scheme, s.fan_in, s.fan_out, s.dtype)
        m = st.Moments(n=s.n, mean=s.mean, m2=s.var * (s.n - 1))
        _, p_var = st.variance_test(m, ref.var, ref.mu4)
        _, p_ks = st.ks_uniform(ref.pit(s.values, rng))
        out.append(ShapeEvidence(s.shape, s.fan_in, s.fan_out, s.n, s.var, ref.var, p_var, p_ks))
    return out


def format_identification(ident: Identification, top: int = 5) -> str:
    """The best candidate with its evidence, then the runners-up."""
    if ident.problem:
        return f"cannot identify {ident.target}: {ident.problem}"
    best = ident.ranked[0]
    same = same_presets(best.scheme)
    lines = [f"best: {best.expr}" + (f"  (= {', '.join(same)})" if same else "")]
    from initspec.spec.schemes import formula

    lines.append(f"  {formula(best.scheme)}" + (f"; {best.note}" if best.note else ""))
    for e in ident.evidence:
        fans = f"fan_in {e.fan_in:g}, fan_out {e.fan_out:g}"
        if not e.var_expected:
            lines.append(f"  shape {'x'.join(map(str, e.shape))} ({fans}): n {e.n}")
            continue
        lines.append(f"  shape {'x'.join(map(str, e.shape))} ({fans}): var {e.var_observed:.4g} "
                     f"(expected {e.var_expected:.4g}, ratio {e.var_observed / e.var_expected:.4f}, p {e.p_var:.2g}), "
                     f"KS p {e.p_ks:.2g}, n {e.n}")
    if ident.consistent:
        lines.append(f"  consistent with every shape (alpha {ident.alpha:g}, {ident.dtype}, seed {ident.seed})")
    else:
        lines.append(f"  NOT consistent at alpha {ident.alpha:g}: no candidate explains the samples; this is the "
                     f"closest (another --layout?)")
    if len(ident.ranked) > 1:
        lines.append("runners-up (Δ log-likelihood vs the best; BIC penalty per fitted parameter):")
        for c in ident.ranked[1:top + 1]:
            delta = c.loglik - best.loglik
            tie = "  (the same likelihood on these shapes)" if abs(delta) < 1e-9 * max(abs(best.loglik), 1) else ""
            note = f"  [{c.note}]" if c.note else ""
            lines.append(f"  {delta:+.4g}  {c.expr}{note}{tie}")
    return "\n".join(lines)
