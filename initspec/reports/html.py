"""One self-contained HTML page: every result with its plots, failures first.

Per result (with a distribution sample): a histogram of the KS sample against the reference
PDF and a QQ plot against the reference quantiles.  For float16/bfloat16 the curves are the
continuous law before rounding (the tests use the rounded law; at 60 bins the difference does
not show).  Per initializer and dtype: the observed variance against the fan the claimed mode
uses, with the claimed law Var = c / n.  Images are PNG drawn with matplotlib's Agg canvas
(no pyplot, no global backend switch) and embedded as base64, so the page is one file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from initspec.errors import InputError
from initspec.reports import printable
from initspec.reports.markdown import headline
from initspec.spec.fans import n_of
from initspec.spec.reference import QUANTIZED

if TYPE_CHECKING:
    from initspec.engine.runner import Result
    from initspec.reports.report import Report

DPI = 80
BINS = 60
QQ_POINTS = 400
_ORDER = {"error": 0, "fail": 1, "xpass": 2, "xfail": 3, "pass": 4}
_N_LABEL = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in + fan_out) / 2",
            "fan_geo_avg": "√(fan_in · fan_out)"}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1.05em;margin:0 0 .3em}
section{border:1px solid #ddd;border-left:6px solid #2a2;border-radius:4px;padding:.6em .9em;margin:.8em 0}
section.fail{border-left-color:#c22}section.error{border-left-color:#a2a}section.xfail{border-left-color:#c90}
section.xpass{border-left-color:#29c}section.fan{border-left-color:#888}.badge{font-weight:bold;text-transform:uppercase;margin-right:.5em}
.fail .badge{color:#c22}.error .badge{color:#a2a}.xfail .badge{color:#c90}.xpass .badge{color:#29c}
.pass .badge{color:#2a2}table{border-collapse:collapse;margin:.4em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}tr.failed td{background:#fee}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap}.diag{background:#fff4e0;padding:.3em .6em}
.meta{color:#555}img{max-width:100%;display:block;margin-top:.4em}.grid{display:flex;gap:1em;flex-wrap:wrap}
"""


def _e(text: str) -> str:
    return html.escape(printable(text))


def _mpl() -> SimpleNamespace:
    """matplotlib's Figure, Agg canvas and tick formatters, imported only when a page is drawn."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        raise InputError("--html needs matplotlib, which is not installed: pip install 'initspec[report]'") from None
    except Exception as e:  # noqa: BLE001 - a broken install raises anything at import
        raise InputError(f"--html needs matplotlib, which failed to import: {type(e).__name__}") from None
    return SimpleNamespace(Figure=Figure, Canvas=FigureCanvasAgg, FuncFormatter=FuncFormatter,
                           NullFormatter=NullFormatter)


def _png(fig: Any, mpl: SimpleNamespace) -> str:
    """Base64 PNG of a figure, drawn by Agg; a 64-colour palette makes it 3x smaller, looking the same."""
    from PIL import Image  # a dependency of matplotlib

    canvas = mpl.Canvas(fig)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").quantize(colors=64)
    buf = io.BytesIO()
    image.save(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _plot_range(x: np.ndarray, law: Any) -> tuple[float, float]:
    """Covers the whole sample and the reference's central 99.9%."""
    lo = min(float(x.min()), float(law.ppf(0.0005)))
    hi = max(float(x.max()), float(law.ppf(0.9995)))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        c = float(np.median(x))
        lo, hi = c - 1.0, c + 1.0
    return lo, hi


def result_figure(r: Result, mpl: SimpleNamespace) -> Any | None:
    """Histogram vs reference PDF and QQ plot of a result's KS sample; None without a sample."""
    ev = r.evidence
    if ev is None or ev.reference is None or ev.reference.law is None or ev.sample is None or ev.sample.size < 2:
        return None
    x = np.asarray(ev.sample, dtype=np.float64)
    law = ev.reference.law
    continuous = " (continuous law)" if r.dtype in QUANTIZED else ""
    # fixed margins: constrained layout doubles the drawing time, which matters at ~1000 results
    fig = mpl.Figure(figsize=(8, 2.7), dpi=DPI)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.17, top=0.9, wspace=0.22)
    hist_ax, qq_ax = fig.subplots(1, 2)
    lo, hi = _plot_range(x, law)
    counts, edges = np.histogram(x, bins=BINS, range=(lo, hi), density=True)
    hist_ax.stairs(counts, edges, fill=True, color="#7a9cc6", label=f"observed, n={x.size}")
    grid = np.linspace(lo, hi, 400)
    hist_ax.plot(grid, law.pdf(grid), color="#c22", lw=1.5, label=f"reference PDF{continuous}")
    hist_ax.set_title("histogram vs reference" + (f" (before rounding to {r.dtype})" if continuous else ""),
                      fontsize=9)
    hist_ax.legend(fontsize=6, framealpha=0.8)
    k = min(x.size, QQ_POINTS)
    p = (np.arange(k) + 0.5) / k
    ref_q = law.ppf(p)
    qq_ax.plot(ref_q, np.quantile(x, p), ".", ms=3, color="#345")
    edges = [float(min(ref_q[0], x.min())), float(max(ref_q[-1], x.max()))]
    qq_ax.plot(edges, edges, color="#c22", lw=1, label="y = x")
    qq_ax.set_xlabel("reference quantile" + continuous, fontsize=8)
    qq_ax.set_ylabel("observed quantile", fontsize=8)
    qq_ax.set_title("QQ plot", fontsize=9)
    qq_ax.legend(fontsize=6)
    for ax in (hist_ax, qq_ax):
        ax.locator_params(nbins=5)  # tick labels are most of the drawing time
        ax.tick_params(labelsize=7)
    return fig


def fan_figure(results: list[Result], mpl: SimpleNamespace) -> Any | None:
    """Observed variance (95% interval) against n(mode), with the claimed Var = c / n; None if not fan-based."""
    pts = [r for r in results if r.evidence is not None and r.evidence.reference is not None
           and r.fan_in is not None and 0 < r.observed.get("var", math.nan) < math.inf]
    if not pts or pts[0].evidence.scheme.kind != "variance_scaling":
        return None
    mode = pts[0].evidence.scheme.params.get("mode")
    if mode not in _N_LABEL:
        return None
    n = np.array([n_of(mode, r.fan_in, r.fan_out) for r in pts])
    obs = np.array([r.observed["var"] for r in pts])
    # 95% interval of the observed variance: SE(s²) ≈ s² √((k - 1) / n), k the law's kurtosis (scale-free,
    # so it stays right when the observed variance is far from the claimed one)
    half = np.array([1.96 * v * math.sqrt(max(r.evidence.reference.kurtosis - 1, 0.0) / r.observed["n"])
                     for v, r in zip(obs, pts, strict=True)])
    # Var(n) = c / n exactly for the continuous law; c from any point (all share it)
    c = float(pts[0].evidence.reference.law.var()) * n[0]
    fig = mpl.Figure(figsize=(6, 3.2), dpi=DPI)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.9)
    ax = fig.subplots()
    nn = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    ax.plot(nn, c / nn, color="#c22", lw=1.2, label=f"claimed: Var = {c:.4g} / n")
    ax.errorbar(n, obs, yerr=[np.minimum(half, obs * 0.999), half], fmt="o", ms=4, color="#345", capsize=2,
                label="observed (95% interval)")
    for x, y, r in zip(n, obs, pts, strict=True):
        ax.annotate("x".join(map(str, r.shape)), (x, y),
                    textcoords="offset points", xytext=(4, 3), fontsize=6, color="#555")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = mpl.FuncFormatter(lambda v, _: f"{v:.3g}")  # "20", "0.06", not 2×10¹
    for axis, values in ((ax.xaxis, nn), (ax.yaxis, np.concatenate([obs, c / nn]))):
        axis.set_major_formatter(plain)
        # label the minor ticks only when the axis spans too little for major ones to tell the scale
        axis.set_minor_formatter(plain if values.max() / values.min() < 30 else mpl.NullFormatter())
    ax.set_xlabel(f"n = {_N_LABEL[mode]}", fontsize=8)
    ax.set_ylabel("variance", fontsize=8)
    ax.set_title(f"{pts[0].entry} ({pts[0].dtype}): variance against fan", fontsize=9)
    ax.tick_params(which="both", labelsize=7)
    ax.legend(fontsize=7)
    return fig


def _group(r: Result) -> tuple[str, str, str]:
    """One initializer and dtype (the target too: entry ids of separate API checks may repeat)."""
    return (r.entry, r.target, r.dtype)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return _e(str(v))


def _moments_table(r: Result) -> str:
    keys = list(dict.fromkeys([*r.expected, *r.observed]))
    if not keys:
        return ""
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_fmt(r.expected.get(k, ''))}</td>"
                   f"<td>{_fmt(r.observed.get(k, ''))}</td></tr>" for k in keys)
    return f"<table><tr><th></th><th>expected</th><th>observed</th></tr>{rows}</table>"


def _tests_table(r: Result) -> str:
    if not r.tests:
        return ""
    rows = []
    for t in r.tests:
        p = "" if t.p_value is None else f"{t.p_value:.3g}"
        stat = "" if t.statistic is None else f"{t.statistic:.4g}"
        verdict = {True: "pass", False: "FAIL", None: ""}[t.passed]
        cls = ' class="failed"' if t.passed is False else ""
        rows.append(f"<tr{cls}><td>{_e(t.name)}</td><td>{stat}</td><td>{p}</td><td>{verdict}</td>"
                    f"<td>{_e(t.detail)}</td></tr>")
    return ("<table><tr><th>test</th><th>statistic</th><th>p (Holm over the run)</th><th></th><th>detail</th></tr>"
            + "".join(rows) + "</table>")


def _no_image_reason(r: Result) -> str:
    if r.error:
        return "no sample to plot: the initializer raised before it could be sampled"
    structural = [t.name for t in r.failed_tests if t.p_value is None]
    if structural and not r.observed:
        return f"no sample to plot: the {structural[0]} check failed on the first draw"
    return f"no distribution to plot: {r.scheme} is checked exactly (values or orthogonality), not by its law"


def _result_section(i: int, r: Result, img: str | None, fan_anchor: str | None) -> str:
    e = _e
    fans = f", fan_in {r.fan_in:g}, fan_out {r.fan_out:g}" if r.fan_in is not None and r.fan_out is not None else ""
    meta = (f"<p class='meta'><code>{e(r.target)}</code> claims <code>{e(r.scheme)}</code>; "
            f"{e(r.layout)} layout, shape {e(str(r.shape))}, {e(r.dtype)}{fans}, seed {r.seed}"
            + (f" · <a href='#{fan_anchor}'>variance against fan</a>" if fan_anchor else "") + "</p>")
    parts = [f"<section class='{r.verdict}' id='r{i}'>",
             f"<h3><span class='badge'>{r.verdict}</span>{e(r.id)}</h3>", meta]
    if r.xfail:
        parts.append(f"<p>known deviation: {e(r.xfail)}</p>")
    if r.error:
        parts.append(f"<p>{e(r.error)}</p>")
    elif r.failed_tests:
        parts.append("<p>failed: " + e(", ".join(t.name for t in r.failed_tests)) + "</p>")
    if r.diagnosis:
        items = "".join(f"<li><b>{e(str(d['id']))}</b> (confidence {d.get('confidence', '')}): "
                        f"{e(str(d.get('message', '')))}</li>" for d in r.diagnosis)
        parts.append(f"<div class='diag'>diagnosis<ul>{items}</ul></div>")
    parts.append(f"<div class='grid'>{_moments_table(r)}{_tests_table(r)}</div>")
    if r.verdict != "pass":
        parts.append(f"<pre>reproduce: {e(r.repro)}</pre>")
    parts.append(img if img else f"<p class='meta'>{e(_no_image_reason(r))}</p>")
    parts.append("</section>")
    return "\n".join(parts)


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    from initspec import __version__

    mpl = _mpl()
    e = _e
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for r in report.results:
        groups.setdefault(_group(r), []).append(r)
    fan_imgs: dict[tuple[str, str, str], tuple[str, str]] = {}
    for j, (key, rs) in enumerate(groups.items()):
        fig = fan_figure(rs, mpl)
        if fig is not None:
            fan_imgs[key] = (f"fan{j}", _img(_png(fig, mpl), f"variance against fan of {key[0]} ({key[2]})"))
    order = sorted(range(len(report.results)), key=lambda i: _ORDER[report.results[i].verdict])
    sections, passed = [], []
    for i in order:
        r = report.results[i]
        fig = result_figure(r, mpl)
        img = _img(_png(fig, mpl), f"histogram and QQ plot of {r.id}") if fig is not None else None
        anchor = fan_imgs.get(_group(r), (None,))[0]
        (passed if r.verdict == "pass" else sections).append(_result_section(i, r, img, anchor))
    s = report.summary
    title = headline(report)
    body = [f"<h1>{e(title)}</h1>",
            f"<p class='meta'>initspec {e(__version__)} · seed {report.seed} · alpha {report.alpha:g} (family-wise, "
            f"Holm) · {len(report.results)} results: {s['passed']} passed, {s['failed']} failed, {s['errors']} "
            f"errors, {s['xfailed']} xfailed, {s['xpassed']} xpassed</p>"]
    if report.warnings:
        body.append("<ul>" + "".join(f"<li>warning: {e(w)}</li>" for w in report.warnings) + "</ul>")
    body.append("<h2>Results, failures first</h2>")
    body += sections
    if passed:
        body.append(f"<details><summary>{len(passed)} passed</summary>")
        body += passed
        body.append("</details>")
    if fan_imgs:
        body.append("<h2>Variance against fan, per initializer</h2>")
        for (entry, target, dtype), (anchor, img) in fan_imgs.items():
            body.append(f"<section class='fan' id='{anchor}'><h3>{e(entry)} ({e(dtype)})</h3>"
                        f"<p class='meta'><code>{e(target)}</code></p>{img}</section>")
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
