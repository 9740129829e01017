"""``initspec propagate --html``: signal-propagation plots of one synthetic stack, as one HTML file.

Two panels on a log scale over depth, forward E[h²] and backward E[g²]: the measurement (points)
against the mean-field prediction (line) and its finite-width band (shaded, ±Z band sd in log, the
band the verdict uses), then a per-layer table naming every layer.  PNG through matplotlib's Agg
canvas (no pyplot), embedded as base64 like the other reports.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initspec.reports.html import _e, _img, _mpl, _png


def figure(result: dict[str, Any]) -> Any:
    """The two-panel matplotlib Figure (forward, backward) of a ``propagate`` result."""
    mpl = _mpl()
    z = result["verdict"]["z"]
    layers = result["layers"]
    depth = np.array([r["index"] for r in layers])
    fig = mpl.Figure(figsize=(10, 4))
    for k, (key, title, detail) in enumerate((("forward", "forward E[h²]", "forward_detail"),
                                              ("backward", "backward E[g²]", "backward_detail"))):
        ax = fig.add_subplot(1, 2, k + 1)
        meas = np.array([r[key]["second_moment"] for r in layers], dtype=float)
        pred = np.array([r[key]["predicted"] for r in layers], dtype=float)
        sd = np.array([r[key]["band_sd"] for r in layers], dtype=float)
        ok = np.isfinite(pred) & (pred > 0)
        ax.fill_between(depth[ok], pred[ok] * np.exp(-z * sd[ok]), pred[ok] * np.exp(z * sd[ok]), alpha=0.25,
                        color="tab:blue", label=f"band ±{z:g}σ")
        ax.plot(depth[ok], pred[ok], color="tab:blue", label="predicted (mean field)")
        good = np.isfinite(meas) & (meas > 0)
        ax.plot(depth[good], meas[good], "o", ms=3, color="tab:red", label="measured")
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_title(f"{title}: {result['verdict'][key]}", fontsize=9)
        d = result["verdict"][detail]
        ax.text(0.02, 0.02, f"×{d['factor_per_layer']:.4g}/layer (predicted ×{d['predicted_factor_per_layer']:.4g})",
                transform=ax.transAxes, fontsize=8)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _f(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else _e(str(x))


def to_html(result: dict[str, Any]) -> str:
    """The page: header, verdict, the plots, the per-layer table."""
    mpl = _mpl()
    v, th, st = result["verdict"], result["theory"], result["stack"]
    title = f"initspec propagate: {result['scheme']} under {result['activation']}"
    rows = "\n".join(
        f"<tr><td>{r['index']}</td><td>{_e(r['name'])}</td><td>{_e('x'.join(map(str, r['shape'])))}</td>"
        f"<td>{r['fan_in']}</td><td>{r['fan_out']}</td><td>{_f(r['forward']['second_moment'])}</td>"
        f"<td>{_f(r['forward']['predicted'])}</td><td>{_f(r['forward']['variance'])}</td>"
        f"<td>{_f(r['forward']['sq_mean'])}</td><td>{_f(r['backward']['second_moment'])}</td>"
        f"<td>{_f(r['backward']['predicted'])}</td></tr>" for r in result["layers"])
    cause = f"<p>probably {_e(v['cause'])}</p>" if v["cause"] else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} td:nth-child(2){{text-align:left}}</style>
</head><body>
<h1>{_e(title)}</h1>
<p>weights from {_e(result['weights'])}; {_e(result['backend'])}; {_e(st['kind'])} depth {st['depth']},
batch {st['batch']}, seeds {st['seeds']}, bias std {st['bias_std']:g}</p>
<p>theory: σ_w² {_f(th['sigma_w2'])}, q* {_f(th['q_star'])}, χ₁ {_f(th['chi1'])}, preserving gain
{_f(th['gain_preserving'])}</p>
<p><b>forward: {_e(v['forward'])}; backward: {_e(v['backward'])} — {'PASS' if v['ok'] else 'FAIL'}</b></p>
{cause}
{_img(_png(figure(result), mpl), "signal propagation: measured against predicted, forward and backward")}
<table><tr><th>#</th><th>layer</th><th>shape</th><th>fan_in</th><th>fan_out</th><th>fwd E[h²]</th>
<th>predicted</th><th>variance</th><th>sq_mean</th><th>bwd E[g²]</th><th>predicted</th></tr>
{rows}
</table></body></html>
"""
