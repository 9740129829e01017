"""The statistical tests, their sample sizes and Holm's correction.

Every test here returns a p-value that is uniform on (0, 1) when the samples follow the
reference (exactly for KS and the bounds test; asymptotically, n >= 10^4, for the z-tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: the smallest error in std the default sample size is sized to catch, and with what power
STD_ERROR = 0.01
POWER = 0.99


@dataclass
class Moments:
    """Streaming float64 moments of a sample (mean, M2, extremes), mergeable chunk by chunk.

    Each chunk is summed about a fixed ``shift`` (the reference mean), so one pass gives the
    sum and one BLAS dot the sum of squares; chunks merge by Chan et al.'s update.
    """

    shift: float = 0.0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, x: np.ndarray) -> tuple[float, float]:
        """Merge a chunk; returns the chunk's (min, max)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return math.inf, -math.inf
        cmin, cmax = float(x.min()), float(x.max())
        d = x - self.shift if self.shift else x
        s1 = float(d.sum())
        mb = s1 / d.size
        # einsum, not BLAS: a threaded dot spin-waits on 2 cores shared with the framework
        m2b = max(float(np.einsum("i,i->", d, d)) - s1 * mb, 0.0)
        mb += self.shift
        n = self.n + d.size
        delta = mb - self.mean
        self.mean += delta * d.size / n
        self.m2 += m2b + delta**2 * self.n * d.size / n
        self.n = n
        self.minimum = min(self.minimum, cmin)
        self.maximum = max(self.maximum, cmax)
        return cmin, cmax

    @property
    def var(self) -> float:
        """The unbiased sample variance."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan


def variance_test(m: Moments, var: float, mu4: float) -> tuple[float, float]:
    """z-test of the sample variance, standard error from the reference's fourth moment.

    Var(s²) = (mu4 - var² (n-3)/(n-1)) / n exactly for i.i.d. samples.
    """
    n = m.n
    se = math.sqrt(max(mu4 - var**2 * (n - 3) / (n - 1), 0.0) / n)
    if se == 0.0:
        return (0.0, 1.0) if m.var == var else (math.inf, 0.0)
    z = (m.var - var) / se
    return z, float(2 * special.ndtr(-abs(z)))


def mean_test(m: Moments, mean: float, var: float) -> tuple[float, float]:
    """z-test of the sample mean."""
    if var == 0.0:
        return (0.0, 1.0) if m.mean == mean else (math.inf, 0.0)
    z = (m.mean - mean) / math.sqrt(var / m.n)
    return z, float(2 * special.ndtr(-abs(z)))


def ks_uniform(u: np.ndarray, presorted: bool = False) -> tuple[float, float]:
    """One-sample KS of PIT values against U(0, 1): (D, p).

    One sort; the p-value from the exact Kolmogorov law (``kstwo``, scipy.stats.kstest's
    method="exact") up to 10,000 values and from its limit (``scipy.special.kolmogorov``, what
    ``kstwobign.sf`` computes without its per-call overhead; method="asymp";
    conservative by 0.4% at p = 0.02 for n = 55,000) above, where the exact law costs ~60 ms.
    ``presorted``: u is already ascending (the PIT of a sorted sample under a continuous law).
    """
    u = np.asarray(u, dtype=np.float64) if presorted else np.sort(np.asarray(u, dtype=np.float64))
    n = u.size
    i = np.arange(1, n + 1, dtype=np.float64)
    d = max(float((i / n - u).max()), float((u - (i - 1) / n).max()))
    p = stats.kstwo.sf(d, n) if n <= 10_000 else special.kolmogorov(d * math.sqrt(n))
    return d, float(min(max(p, 0.0), 1.0))


def bounds_reached_test(p_at_most_max: float, p_at_least_min: float, n: int) -> float:
    """p-value that the sample extremes stay this far inside a bounded support.

    P(max of n <= M) = P(X <= M)^n and P(min of n >= m) = P(X >= m)^n are each U(0, 1) under
    the null and (for large n) independent, so the smaller one, m, has P(m <= t) = 1 - (1 - t)²:
    the p-value 1 - (1 - m)² is exactly uniform for continuous laws, conservative for rounded ones.
    """
    p_hi = math.exp(n * math.log(max(p_at_most_max, 1e-300)))
    p_lo = math.exp(n * math.log(max(p_at_least_min, 1e-300)))
    return 1.0 - (1.0 - min(p_hi, p_lo)) ** 2


def fan_law_test(z_values: list[float]) -> tuple[float, float]:
    """Joint test that the variance follows the claimed law on every shape: sum of z² ~ chi²(k)."""
    chi2 = float(sum(z * z for z in z_values))
    return chi2, float(stats.chi2.sf(chi2, len(z_values)))


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down method: which hypotheses are rejected at family-wise level alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m = len(p_values)
    rejected = [False] * m
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected


def samples_for_power(kurtosis: float, alpha_each: float, std_error: float = STD_ERROR,
                      power: float = POWER) -> int:
    """Samples for the variance z-test to catch a relative std error with the given power.

    With k = mu4/var², Var(s²) ≈ (k - 1) var⁴ / n.  A std off by a factor (1 ± e) moves
    the variance by r = (1 ± e)² - 1 and its standard error by (1 ± e)².  The test
    rejects with probability `power` when |r| >= z_(1-alpha/2) SE0 + z_power SE1, so
    n = (k - 1) (z_a + z_b (1 ± e)²)² / r²; the larger of the two directions is returned.
    """
    za = stats.norm.isf(alpha_each / 2)
    zb = stats.norm.isf(1 - power)
    need = 0.0
    for sign in (1, -1):
        f = (1 + sign * std_error) ** 2
        need = max(need, (kurtosis - 1) * (za + zb * f) ** 2 / (f - 1) ** 2)
    return math.ceil(need)


def variance_power(n: int, kurtosis: float, alpha_each: float, std_error: float = STD_ERROR) -> float:
    """Power of the variance z-test at n samples against a std off by (1 - std_error)."""
    if n < 2:
        return 0.0
    za = -special.ndtri(alpha_each / 2)
    f = (1 - std_error) ** 2
    se0 = math.sqrt((kurtosis - 1) / n)
    return float(special.ndtr(-(za * se0 - (1 - f)) / (se0 * f)))


def _family_distance() -> float:
    """sup |F - G| between N(0, 1) and the ±2σ truncated normal of the same variance.

    The smallest difference between the families the specs use (0.0167): the KS sample is
    sized to see it.
    """
    t = stats.truncnorm(-2, 2, scale=1 / float(stats.truncnorm(-2, 2).std()))
    x = np.linspace(-4, 4, 200_001)
    return float(np.abs(stats.norm.cdf(x) - t.cdf(x)).max())


FAMILY_DISTANCE = 0.0166  # _family_distance() = 0.016665, rounded down (tested)


def ks_samples_for_power(alpha_each: float, distance: float = FAMILY_DISTANCE, power: float = POWER) -> int:
    """Samples for the KS test to detect a CDF distance with the given power.

    Under the alternative, sqrt(n) (D_n - distance) is about normal with sd <= 1/2 (the
    binomial sd of the empirical CDF at the maximizing point), and the test rejects when
    sqrt(n) D_n exceeds Kolmogorov's quantile c_alpha, so
    n = ((c_alpha + z_power / 2) / distance)².
    """
    c = stats.kstwobign.isf(alpha_each)
    return math.ceil(((c + stats.norm.isf(1 - power) / 2) / distance) ** 2)
