"""The width fit: log RMS = a + k·log(width) per layer, per seed, and a band for k from the seeds' spread.

For each layer and time, each seed s gives an exponent k_s (ordinary least squares of log RMS on
log width over the widths; the seed's models at every width share its input batch and seed).  The
seeds are independent draws of the whole family, so k̄ = mean(k_s) has the standard error
SE = sd(k_s)/√S whatever the noise does across widths (larger at small widths, correlated within a
seed), and a lack of fit (a curve, not a line) is common to every seed: it moves k̄, not the band.
The band is ±t·SE with Student's t on S − 1 degrees of freedom at 1 − α/(2m): α = 0.001 family-wise
over all m fitted (layer, time) pairs of the run (Bonferroni).  A layer is width-stable when
|k̄| is inside its band, otherwise it grows (k̄ > 0) or shrinks as width^k̄.  A layer that is exactly
zero at every width and seed (a zero-initialized readout at init) is width-stable without a fit;
zero or non-finite at only some is a failure in itself (``undetermined``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

#: family-wise false-alarm rate of one run's width verdicts (the 0.1 % of the other propagate bands)
ALPHA = 0.001


def slopes(log_rms: np.ndarray, widths: list[int]) -> np.ndarray:
    """Per-seed OLS exponents: ``log_rms`` is (seeds, widths)."""
    x = np.log(np.asarray(widths, dtype=float))
    xc = x - x.mean()
    return (log_rms - log_rms.mean(axis=1, keepdims=True)) @ xc / float(xc @ xc)


def fit_one(rms: np.ndarray, widths: list[int], t_quantile: float) -> dict[str, Any]:
    """The fit of one layer at one time: ``rms`` is (seeds, widths)."""
    out: dict[str, Any] = {"rms": rms.tolist(), "exponent": None, "se": None, "band": None, "intercept": None}
    if np.all(rms == 0):
        out.update(state="zero", label="zero at every width (width-stable)")
        return out
    bad = ~(np.isfinite(rms) & (rms > 0))
    if bad.any():
        where = [w for w, b in zip(widths, bad.any(axis=0), strict=True) if b]
        out.update(state="undetermined", label=f"zero or not finite at width {', '.join(map(str, where[:4]))}")
        return out
    lr = np.log(rms)
    ks = slopes(lr, widths)
    k = float(ks.mean())
    se = float(ks.std(ddof=1) / math.sqrt(len(ks)))
    band = t_quantile * se
    x = np.log(np.asarray(widths, dtype=float))
    out.update(exponent=k, se=se, band=band, per_seed=ks.tolist(), intercept=float(lr.mean() - k * x.mean()),
               mean_log_rms=lr.mean(axis=0).tolist())
    if abs(k) <= band:
        out.update(state="stable", label=f"width-stable (k {k:+.3f} ± {band:.3f})")
    else:
        out.update(state="grows" if k > 0 else "shrinks",
                   label=f"{'grows' if k > 0 else 'shrinks'} as width^{k:.3g} (± {band:.3g})")
    return out


def fit_all(runs: dict[int, list[dict[int, dict[str, tuple[str, float]]]]], widths: list[int], seeds: int,
            times: list[int]) -> dict[str, Any]:
    """Every layer present at every width and seed, fitted at every time; the run's verdict."""
    names: list[str] = []
    types: dict[str, str] = {}
    for run in runs[widths[0]]:
        for name, (typ, _) in run[times[0]].items():
            if name not in types:
                names.append(name)
                types[name] = typ
    common = [n for n in names if all(n in run[t] for w in widths for run in runs[w] for t in times)]
    dropped = [n for n in names if n not in common]
    m = max(len(common) * len(times), 1)
    tq = float(stats.t.ppf(1 - ALPHA / (2 * m), seeds - 1))
    layers, unstable = [], []
    for n in common:
        per_t = {}
        for t in times:
            rms = np.array([[runs[w][s][t][n][1] for w in widths] for s in range(seeds)], dtype=float)
            f = fit_one(rms, widths, tq)
            per_t[str(t)] = f
            if f["state"] not in ("stable", "zero"):
                unstable.append(f"{n} at t={t}")
        layers.append({"name": n, "type": types[n], "times": per_t})
    return {"times": times, "alpha": ALPHA, "fits": m, "t": tq, "layers": layers, "dropped": dropped,
            "verdict": {"ok": not unstable and bool(layers), "unstable": unstable}}


def cell(f: dict[str, Any]) -> str:
    """One terminal cell: the exponent and band, or the state."""
    if f["exponent"] is None:
        return f["state"]
    mark = {"stable": "stable", "grows": "GROWS", "shrinks": "SHRINKS"}[f["state"]]
    return f"k {f['exponent']:+.3f} ± {f['band']:.3f} {mark}"
