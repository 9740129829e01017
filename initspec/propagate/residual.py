"""Residual branches: what each branch adds to the stream at init, measured and predicted, and the verdict.

A residual add is ``stream + branch``.  The framework bindings find them (``torch_residual``: an add
inside a block whose one operand is the block's own input, or the result of an earlier residual add
in that block; ``keras_residual``: a two-input ``Add`` layer one of whose operands the other is
computed from), measure E[stream²] and E[branch²] at the add, and predict E[branch²] from the
stream's measured second moment through the branch's recorded ops (``meanfield.predict``).  This
module turns those records into the report: per branch the ratio branch/stream measured and
predicted with its band, the stream's growth over the depth, and the branches that dominate their
stream at init (ratio > 1).
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from initspec.propagate.meanfield import Value

#: family-wise false-alarm rate of the measured-vs-predicted comparisons of one model (Bonferroni over
#: its predicted branches), the 0.1 % of the synthetic stacks' band (verdict.Z = 3.29 for one comparison)
ALPHA = 0.001

RULE = {
    "torch": "an add (x + y, torch.add, +=) inside a module that has submodules (or one --blocks matches), of two "
             "floating tensors of one shape, one of which is the module's own input or the result of an earlier "
             "residual add in the same call: that operand is the stream, the other the branch",
    "keras": "a two-input Add layer one of whose operands is computed from the other (the stream); the other operand "
             "is the branch",
}


def branch_record(label: str, block: str, path: list[str], shape: tuple[int, ...], q_stream: float, q_branch: float,
                  pred: Value) -> dict[str, Any]:
    """One residual add as measured, with its prediction (or the reason it has none)."""
    ratio = q_branch / q_stream if q_stream > 0 else math.nan
    rec: dict[str, Any] = {"label": label, "block": block, "path": path, "shape": list(shape),
                           "stream": q_stream, "branch": q_branch, "ratio": ratio,
                           "predicted_branch": None, "predicted_ratio": None, "band_sd": None, "opaque": pred.opaque}
    if pred.opaque is None and math.isfinite(pred.q):
        rec["predicted_branch"] = pred.q
        rec["predicted_ratio"] = pred.q / q_stream if q_stream > 0 else math.nan
        rec["band_sd"] = math.sqrt(max(pred.v, 0.0))
    return rec


def _agrees(rec: dict[str, Any], z: float) -> bool:
    meas, pred = rec["branch"], rec["predicted_branch"]
    if pred == 0 or meas == 0:
        return pred == meas  # a zero-initialized branch adds exactly nothing: exact, no band
    if not (meas > 0 and pred > 0 and math.isfinite(meas)):
        return False
    return abs(math.log(meas / pred)) <= z * rec["band_sd"]


def summarize(branches: list[dict[str, Any]], framework: str, max_ratio: float | None = None,
              error: str | None = None) -> dict[str, Any]:
    """The residual section of a ``--model`` report: verdicts per branch, stream growth, dominating branches."""
    predicted = [b for b in branches if b["predicted_branch"] is not None]
    m = max(len(predicted), 1)
    z = float(stats.norm.isf(ALPHA / (2 * m)))
    for b in branches:
        b["agrees"] = _agrees(b, z) if b["predicted_branch"] is not None else None
        b["dominates"] = bool(b["ratio"] > 1)
    first = branches[0]["stream"] if branches else math.nan
    last = branches[-1]["stream"] + branches[-1]["branch"] if branches else math.nan
    growth_pred = math.prod(1 + b["predicted_ratio"] for b in predicted) if len(predicted) == len(branches) \
        else math.nan
    bad = [b["label"] for b in branches if max_ratio is not None and not b["ratio"] <= max_ratio]
    return {"rule": RULE[framework], "z": z, "alpha": ALPHA, "branches": branches,
            "stream": {"first": first, "last": last, "growth": last / first if first > 0 else math.nan,
                       "predicted_growth_additive": growth_pred},
            "dominating": [b["label"] for b in branches if b["dominates"]],
            "disagreeing": [b["label"] for b in branches if b["agrees"] is False],
            "max_ratio": max_ratio, "exceeding": bad, "recording_stopped": error}


def _g(x: Any) -> str:
    return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x))


def render(res: dict[str, Any]) -> list[str]:
    """Terminal lines of the residual section."""
    bs = res["branches"]
    stopped = [f"residual recording stopped (initspec's own error, not the model's): {res['recording_stopped']}"] \
        if res.get("recording_stopped") else []
    if not bs:
        return [*stopped, "residual branches: none found (rule: " + res["rule"] + ")"]
    lines = [f"residual branches ({len(bs)}; band ±{res['z']:.3g}σ in log, Bonferroni over the predicted ones):",
             f"  {'branch (through)':<44} {'E[stream²]':>11} {'E[branch²]':>11} {'ratio':>10} {'predicted':>10} "
             f"{'band ×':>7}"]
    for b in bs:
        band = f"{math.exp(res['z'] * b['band_sd']):.3g}" if b["band_sd"] is not None else "-"
        note = ("agrees" if b["agrees"] else "DIFFERS") if b["agrees"] is not None else f"opaque: {b['opaque']}"
        name = f"{b['label']} ({'→'.join(b['path'])})" if b["path"] else b["label"]
        lines.append(f"  {name[:44]:<44} {_g(b['stream']):>11} {_g(b['branch']):>11} {_g(b['ratio']):>10} "
                     f"{_g(b['predicted_ratio']):>10} {band:>7}  {note[:70]}")
    st = res["stream"]
    lines.append(f"stream: E[x²] {_g(st['first'])} at the first add → {_g(st['last'])} after the last "
                 f"(×{_g(st['growth'])}; Π(1 + predicted ratio) ×{_g(st['predicted_growth_additive'])}, the stream's "
                 "growth when nothing but the adds acts on it)")
    if res["dominating"]:
        names = ", ".join(res["dominating"][:8]) + (f", ... ({len(res['dominating'])})" if len(res["dominating"]) > 8
                                                    else "")
        lines.append(f"branch dominates its stream at init (ratio > 1): {names}")
    else:
        lines.append("no branch dominates its stream at init (every ratio ≤ 1)")
    return lines + stopped
