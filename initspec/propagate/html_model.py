"""``--html`` for real models: the per-layer signal and residual branches (``--model``), and the coordinate check
as a picture (``--model --widths``): one self-contained page each, PNGs from matplotlib's Agg canvas.

The coordinate check page draws, per time (init, after the steps), every layer's RMS against width
on log-log axes (points: the seeds' geometric mean, bars: their spread) with the fitted line
RMS = e^a · width^k and k in the legend; a flat line is width-stable.  It is mup's
``plot_coord_data`` (one panel per t, log-log) with the fitted slopes and the verdict added.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initspec.reports.html import _e, _img, _mpl, _png

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} td:nth-child(2){{text-align:left}}
.bad{{color:#c22;font-weight:bold}}</style>
</head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _f(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else ("-" if x is None else _e(str(x)))


def _pos(values: list[Any]) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


def model_figure(result: dict[str, Any]) -> Any:
    """Forward E[h²] and backward E[g²] per leaf (log scale); with residual branches, their ratio panel."""
    mpl = _mpl()
    res = result.get("residual") or {}
    branches = res.get("branches") or []
    fig = mpl.Figure(figsize=(10, 7.5 if branches else 4))
    rows = 2 if branches else 1
    idx = np.array([r["index"] for r in result["layers"]])
    for k, (key, title) in enumerate((("forward", "forward E[h²] per leaf"), ("backward", "backward E[g²] per leaf"))):
        ax = fig.add_subplot(rows, 2, k + 1)
        y = _pos([(r[key] or {}).get("second_moment") for r in result["layers"]])
        ax.plot(idx, y, "o-", ms=3, color="tab:red" if key == "forward" else "tab:purple")
        ax.set_yscale("log")
        ax.set_xlabel("leaf (call order)")
        ax.set_title(title, fontsize=9)
    if branches:
        ax = fig.add_subplot(rows, 1, 2)
        x = np.arange(1, len(branches) + 1)
        meas = _pos([b["ratio"] for b in branches])
        pred = _pos([b["predicted_ratio"] for b in branches])
        sd = np.array([b["band_sd"] if b["band_sd"] is not None else np.nan for b in branches], dtype=float)
        z = res["z"]
        ok = np.isfinite(pred)
        lo, hi = pred[ok] * (1 - np.exp(-z * sd[ok])), pred[ok] * (np.exp(z * sd[ok]) - 1)
        ax.errorbar(x[ok], pred[ok], yerr=[lo, hi], fmt="_", ms=14, color="tab:blue", capsize=3,
                    label=f"predicted (mean field), band ±{z:.3g}σ")
        ax.plot(x, meas, "o", ms=4, color="tab:red", label="measured")
        zero = np.array([b["ratio"] == 0 for b in branches])
        if zero.any():
            ax.plot(x[zero], np.full(zero.sum(), np.nanmin(np.r_[meas, pred, [1.0]]) / 10), "v", color="tab:green",
                    label="exactly 0 (zero-initialized branch)")
        ax.axhline(1.0, color="#888", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([b["label"] for b in branches], rotation=60, fontsize=6, ha="right")
        ax.set_title("residual branches: E[branch²] / E[stream²] at each residual add (dashed: branch = stream)",
                     fontsize=9)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def model_page(result: dict[str, Any]) -> str:
    """The ``--model --html`` page: header, plots, the per-leaf table and the residual table."""
    mpl = _mpl()
    title = f"initspec propagate --model {result['model']}"
    rows = "\n".join(
        f"<tr><td>{r['index']}</td><td>{_e(r['name'])}</td><td>{_e(r['type'])}</td>"
        f"<td>{_e('x'.join(map(str, r['shape'])))}</td><td>{_f(r['forward']['second_moment'])}</td>"
        f"<td>{_f(r['forward']['variance'])}</td><td>{_f(r['forward']['sq_mean'])}</td>"
        f"<td>{_f((r['backward'] or {}).get('second_moment'))}</td></tr>" for r in result["layers"])
    g = result["growth"]
    body = [f"<p>{_e(result['framework'])} {_e(result['version'])}, input {_e(str(tuple(result['input_shape'])))} "
            f"N(0, 1); whole depth: forward ×{_f(g['forward'])}, backward ×{_f(g['backward'])}</p>",
            _img(_png(model_figure(result), mpl), "per-leaf signal and residual branches")]
    res = result.get("residual")
    if res and res["branches"]:
        brows = "\n".join(
            f"<tr><td>{i}</td><td>{_e(b['label'])}</td><td>{_e(' → '.join(b['path']))}</td><td>{_f(b['stream'])}</td>"
            f"<td>{_f(b['branch'])}</td><td>{_f(b['ratio'])}</td><td>{_f(b['predicted_ratio'])}</td>"
            f"<td>{'' if b['agrees'] is None else ('agrees' if b['agrees'] else '<span class=bad>DIFFERS</span>')}"
            f"{_e(b['opaque'] or '')}</td></tr>" for i, b in enumerate(res["branches"], 1))
        dom = ", ".join(res["dominating"]) or "none"
        body.append(f"<h2>Residual branches</h2><p>rule: {_e(res['rule'])}</p><p>branch dominates its stream at init "
                    f"(ratio &gt; 1): <b>{_e(dom)}</b></p><table><tr><th>#</th><th>branch</th><th>through</th>"
                    f"<th>E[stream²]</th><th>E[branch²]</th><th>ratio</th><th>predicted</th><th></th></tr>"
                    f"{brows}</table>")
    body.append("<h2>Leaves</h2><table><tr><th>#</th><th>layer</th><th>type</th><th>shape</th><th>fwd E[h²]</th>"
                f"<th>variance</th><th>sq_mean</th><th>bwd E[g²]</th></tr>{rows}</table>")
    return _PAGE.format(title=_e(title), body="\n".join(body))


def draw_width(ax: Any, result: dict[str, Any], t: str, max_layers: int = 20) -> None:
    """One panel of the coordinate check on ``ax``: every layer's RMS against width at time ``t``, log-log,
    the seeds' geometric mean and spread, and the fitted line with its exponent in the legend."""
    from matplotlib import colormaps

    colors = colormaps["tab20"]
    w = np.asarray(result["widths"], dtype=float)
    for i, layer in enumerate(result["layers"][:max_layers]):
        f = layer["times"][t]
        if f["exponent"] is None:
            continue
        c = colors(i % 20)
        lr = np.log(np.asarray(f["rms"], dtype=float))
        mean, sd = lr.mean(axis=0), lr.std(axis=0, ddof=1)
        bad = f["state"] != "stable"
        ax.errorbar(w, np.exp(mean), yerr=[np.exp(mean) - np.exp(mean - sd), np.exp(mean + sd) - np.exp(mean)],
                    fmt="o", ms=3, color=c, capsize=2)
        ax.plot(w, np.exp(f["intercept"] + f["exponent"] * np.log(w)), "-", color=c, lw=2.2 if bad else 1.0,
                label=f"{layer['name'][:14]} {layer['type'][:10]}: k {f['exponent']:+.2f}" + (" ✗" if bad else ""))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel("RMS of the layer's output")
    ax.set_title("at init (t=0)" if t == "0" else f"after {t} {result['optimizer']} steps (lr {result['lr']:g})",
                 fontsize=9)
    ax.legend(fontsize=6, loc="best")


def width_figure(result: dict[str, Any], max_layers: int = 20) -> Any:
    """The coordinate check: RMS against width per layer, log-log, with the fitted slopes; one panel per time."""
    mpl = _mpl()
    times = [str(t) for t in result["times"]]
    fig = mpl.Figure(figsize=(5.2 * len(times), 4.6))
    for k, t in enumerate(times):
        draw_width(fig.add_subplot(1, len(times), k + 1), result, t, max_layers)
    fig.suptitle(f"coordinate check: {result['model'][:60]} — " + ("width-stable" if result["verdict"]["ok"]
                                                                   else "NOT width-stable"), fontsize=10)
    fig.tight_layout()
    return fig


def width_page(result: dict[str, Any]) -> str:
    """The ``--model --widths --html`` page: the picture and the table of exponents."""
    from initspec.propagate.widthfit import cell

    mpl = _mpl()
    times = [str(t) for t in result["times"]]
    head = "".join(f"<th>t={t}</th>" for t in times)
    rows = "\n".join(
        f"<tr><td>{i}</td><td>{_e(layer['name'])}</td><td>{_e(layer['type'])}</td>"
        + "".join(f"<td>{_e(cell(layer['times'][t]))}</td>" for t in times) + "</tr>"
        for i, layer in enumerate(result["layers"], 1))
    v = result["verdict"]
    body = [f"<p>{_e(str(result['framework']))}; widths {_e(', '.join(map(str, result['widths'])))}; "
            f"{result['seeds']} seeds; band ±t·SE, t = {result['t']:.3g} ({1 - result['alpha']:.4g} family-wise over "
            f"{result['fits']} fits)</p>",
            f"<p><b>{'width-stable: PASS' if v['ok'] else 'NOT width-stable: ' + _e(', '.join(v['unstable']))}</b></p>",
            _img(_png(width_figure(result), mpl), "coordinate check: RMS against width, log-log, fitted slopes"),
            f"<table><tr><th>#</th><th>layer</th><th>type</th>{head}</tr>{rows}</table>"]
    return _PAGE.format(title=_e(f"initspec propagate --widths: {result['model']}"), body="\n".join(body))
