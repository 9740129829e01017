"""One ``initspec propagate`` run: theory, measurement over seeds, verdict, as one JSON-able dict."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.propagate import stack, verdict
from initspec.propagate.activations import get_activation
from initspec.propagate.theory import predict
from initspec.spec.schemes import resolve

#: most seeds of one synthetic run
MAX_SEEDS = 1000


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    return value


def parse_widths(text: str) -> list[int]:
    """'784,512,512' -> [784, 512, 512] (InputError naming the bad item)."""
    out = []
    shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or len(item) > 12 or int(item) < 1:
            raise InputError(f"--widths {shown}: {item[:20]!r} is not a positive integer below 10^12")
        out.append(int(item))
    if len(out) < 2:
        raise InputError(f"--widths {shown}: give the input width and at least one layer, e.g. 784,512")
    return out


def parse_kernel(text: str) -> int:
    """'3x3' or '3' -> 3 (square, odd kernels only: the circular 'same' padding needs a centre)."""
    parts = text.lower().split("x")
    if not all(p.strip().isdigit() for p in parts) or len(parts) > 2 or len(set(parts)) != 1:
        raise InputError(f"--conv {text!r}: expected a square kernel KxK, e.g. 3x3")
    if len(parts[0].strip()) > 6:
        raise InputError(f"--conv {text[:60]!r}: the kernel side must be at most {stack.SPATIAL - 1}")
    k = int(parts[0])
    if k < 1 or k % 2 == 0:
        raise InputError(f"--conv {text!r}: the kernel side must be odd (1, 3, 5, ...)")
    if k >= stack.SPATIAL:
        raise InputError(f"--conv {text!r}: the kernel must fit the {stack.SPATIAL}x{stack.SPATIAL} circular image "
                         f"without wrapping onto itself: at most {stack.SPATIAL - 1}x{stack.SPATIAL - 1}")
    return k


#: bytes a layer costs beyond its arrays (its shape, theory row, statistics and JSON row), a bound
LAYER_OVERHEAD = 4096


def check_memory(depth: int, widths: list[int] | None, width: int, conv: int | None, channels: int,
                 batch: int) -> int:
    """The bytes a synthetic stack needs (float32 weights, the forward activations and the gradients kept per
    layer, float64 statistics, bookkeeping); InputError beyond the check's cap (``validate.MAX_ELEMENTS``
    float32 values, 16 GiB), computed before anything is allocated."""
    from initspec.spec import validate

    if conv is not None:
        spatial = stack.SPATIAL * stack.SPATIAL
        weights = depth * channels * channels * conv * conv
        acts = depth * batch * channels * spatial
        layers = depth
    elif widths is None:  # arithmetic, not a list: --depth 10^20 is refused, not allocated
        weights, acts, layers = depth * width * width, batch * width * (depth + 1), depth
    else:
        weights = sum(a * b for a, b in itertools.pairwise(widths))
        acts, layers = batch * sum(widths), len(widths) - 1
    need = 4 * weights + 4 * 4 * acts + LAYER_OVERHEAD * layers  # h, φ(h), g and a float64 copy for the moments
    cap = 4 * validate.MAX_ELEMENTS
    if need > cap:
        size = f"width {width}" if conv is None and widths is None else (
            f"{channels} channels, kernel {conv}x{conv}" if conv else f"widths {len(widths or [])}")
        raise InputError(f"the stack (depth {depth}, {size}, batch {batch}) needs {validate._bytes(need)}; "
                         f"the limit is {validate._bytes(cap)} ({validate.MAX_ELEMENTS:.3g} float32 values)")
    return need


def propagate(scheme: str, activation: str, *, depth: int = 50, width: int = 512, widths: list[int] | None = None,
              conv: int | None = None, channels: int = 64, bias_std: float = 0.0, batch: int = 256, seeds: int = 1,
              target: str | Any | None = None, convention: str | None = None, backend: str = "numpy",
              tolerance: float = verdict.TOLERANCE, timeout: float | None = None,
              progress: Any = None) -> dict[str, Any]:
    """Theory and measurement of one stack; the dict ``--json`` writes (``progress(done, total, label)``
    hears of each seed's measurement; ``timeout`` bounds each call into a ``target``'s code)."""
    if backend not in stack.BACKENDS:
        raise InputError(f"unknown backend {backend!r}: use one of {', '.join(stack.BACKENDS)}")
    sch = resolve(scheme)
    act = get_activation(activation)
    depth, batch = _positive_int(depth, "--depth"), _positive_int(batch, "--batch")
    seeds = _positive_int(seeds, "--seeds")
    if seeds > MAX_SEEDS:
        raise InputError(f"--seeds must be at most {MAX_SEEDS}, got {seeds!r}")
    if not (isinstance(bias_std, (int, float)) and math.isfinite(bias_std) and bias_std >= 0):
        raise InputError(f"--bias-std must be a finite number >= 0, got {bias_std!r}")
    if not tolerance > 1:
        raise InputError(f"tolerance must be > 1, got {tolerance!r}")
    if widths is None:
        _positive_int(width, "--width")
    check_memory(depth if widths is None else len(widths) - 1, widths, width, conv,
                 _positive_int(channels, "--channels"), batch)
    if conv is not None:
        layers = stack.conv_layers(depth, _positive_int(channels, "--channels"), conv)
    else:
        ws = widths or [_positive_int(width, "--width")] * (depth + 1)
        layers = stack.mlp_layers(ws)
    theory = predict(sch, act, layers, bias_std)
    if target is None:
        weights, source = stack.scheme_weights(sch.expr), f"numpy reference sampler of {sch.expr}"
    else:
        weights, source = stack.target_weights(target, convention, sch.expr, timeout)
    runs = []
    for s in range(seeds):
        if progress:
            progress(s, seeds, f"seed {s}: {len(layers)} layers forward and backward")
        runs.append(stack.measure(layers, act, weights, bias_std=bias_std, batch=batch, seed=s, backend=backend))
    keys = ("second_moment", "variance", "sq_mean", "grad_second_moment")
    with np.errstate(divide="ignore", invalid="ignore"):
        # seeds averaged in log (the band is a log band); the other columns arithmetically
        logged = ("second_moment", "grad_second_moment")
        mean = {k: [float(np.exp(np.mean(np.log([r[i][k] for r in runs])))) if k in logged
                    else float(np.mean([r[i][k] for r in runs])) for i in range(len(layers))] for k in keys}
    q = [p["q"] for p in theory["per_layer"]]
    g = [p["backward"] for p in theory["per_layer"]]
    vf, vb = verdict.band_variances(act, layers, q, seeds)
    fwd = verdict.direction(mean["second_moment"], q, vf, backward=False, tolerance=tolerance)
    bwd = verdict.direction(mean["grad_second_moment"], g, vb, backward=True, tolerance=tolerance)
    out_layers = []
    for i, L in enumerate(layers):
        out_layers.append({
            "index": i + 1, "name": L.name, "shape": list(L.shape), "fan_in": L.fan_in, "fan_out": L.fan_out,
            "forward": {"second_moment": mean["second_moment"][i], "variance": mean["variance"][i],
                        "sq_mean": mean["sq_mean"][i], "predicted": q[i], "band_sd": math.sqrt(vf[i])},
            "backward": {"second_moment": mean["grad_second_moment"][i], "predicted": g[i],
                         "band_sd": math.sqrt(vb[i])}})
    mid = layers[len(layers) // 2]
    fp = fwd["predicted_factor_per_layer"]
    ratio = fwd["factor_per_layer"] / fp if fp else math.nan
    cause = None
    if fwd["state"] != "preserved" or not fwd["agrees_with_theory"]:
        band_log = verdict.Z * fwd["band_sd"] / max(len(layers) - 1, 1)
        cause = verdict.likely_cause(theory["sigma_w2"], theory["gain_preserving"], ratio, mid.fan_in, conv,
                                     act.label, band_log)
    ok = all(d["state"] == "preserved" and d["agrees_with_theory"] for d in (fwd, bwd))
    return {"scheme": sch.expr, "activation": act.label, "weights": source, "backend": backend,
            "stack": {"kind": "conv" if conv else "mlp", "depth": len(layers), "batch": batch, "seeds": seeds,
                      "bias_std": bias_std, "kernel": conv, "spatial": stack.SPATIAL if conv else None,
                      "widths": [layers[0].shape[1], *[L.units for L in layers]]},
            "theory": {"q_star": theory["q_star"], "chi1": theory["chi1"], "chi1_fan_out": theory["chi1_fan_out"],
                       "sigma_w2": theory["sigma_w2"], "gain_preserving": theory["gain_preserving"],
                       "per_layer": theory["per_layer"]},
            "layers": out_layers,
            "verdict": {"forward": fwd["label"], "backward": bwd["label"], "ok": ok, "cause": cause,
                        "forward_detail": fwd, "backward_detail": bwd, "z": verdict.Z, "tolerance": tolerance},
            "factor_per_layer": {"forward": fwd["factor_per_layer"], "backward": bwd["factor_per_layer"]}}
