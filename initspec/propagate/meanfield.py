"""Mean-field prediction of a residual branch from its stream: a small op graph, evaluated on second moments.

A framework binding records what a branch computes as :class:`Op` nodes (``linear``, ``norm``,
``act``, ``attention``, ``shape``, ``scale``, ``bias``, ``add``, ``opaque``) over keys of the
tensors it passes, then :func:`predict` seeds the stream with its measured second moment
q = E[x²] and carries (q, V) through the ops to the branch.  The rules (zero-mean inputs, weights
independent of the activations, as at init):

- ``linear`` (dense or conv): q' = fan_in · mean(W²) · tap · q + mean(b²), exact in expectation over
  W for any input (E_W[(Σ_j W_ij x_j)²] = E[W²] Σ_j x_j²); ``tap`` is the fraction of a kernel's taps
  that fall inside a zero-padded image (1 for dense layers).  mean(W²) is the drawn weight's own.
- ``norm``: LayerNorm / RMSNorm / GroupNorm / BatchNorm with batch statistics normalize:
  q' = mean(γ²) · q/(q + ε) + mean(β²); BatchNorm on running statistics is affine per channel:
  q' = mean_c(γ_c² (q + μ_c²)/(σ_c² + ε) − 2 γ_c β_c μ_c/√(σ_c² + ε) + β_c²).
- ``act``: q' = E[φ(√q z)²] (Gauss–Hermite, ``theory.gauss_expect``), h Gaussian as after a linear layer.
- ``attention`` (softmax attention at init): when the logits' predicted variance s²·d·q_q·q_k is at
  most ``SMALL_LOGITS`` the softmax is uniform to first order and each query averages the values
  it attends to: q' = c · q_v, c = mean over queries of 1/(number of keys attended), the values of
  different tokens independent.  Larger logits: opaque.
- ``add``: q' = Σ q_i (independent terms); ``bias``: q + mean(b²); ``scale``: c² q; ``shape``: q.
- anything else is ``opaque``: no prediction, and the reason is carried to the branch.

The band (log scale, as in ``verdict.py``): V accumulates the finite-width fluctuation of each
step, 2/n for a linear layer's n outputs (a χ² of n degrees of freedom: no credit for the batch),
(κ − 1)/n for an activation (κ = E[φ⁴]/E[φ²]²) and e²·V for what came before (e = d log q'/d log q),
2/n for attention's average; a normalization resets V to 0 (its output's scale is fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.propagate.activations import get_activation
from initspec.propagate.theory import gauss_expect

#: attention counts as uniform at init when its logits' variance is below this (sd 0.1: the
#: softmax weights are uniform to ~1 %, and so is the averaging factor c)
SMALL_LOGITS = 0.01

Key = Any


@dataclass
class Op:
    """One step of a branch: ``rule`` applied to the tensors ``inputs``, giving ``outputs``."""

    rule: str
    inputs: tuple[Key, ...]
    outputs: tuple[Key, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """A predicted second moment and its band's log-variance, or the reason there is none."""

    q: float = math.nan
    v: float = 0.0
    opaque: str | None = None


def _act_map(name: str, q: float) -> tuple[float, float, float]:
    """(E[φ²] at q, elasticity d log E[φ²]/d log q, κ = E[φ⁴]/E[φ²]²)."""
    act = get_activation(name)
    m2 = gauss_expect(lambda x: act.phi(x) ** 2, q, split=act.kinked)
    if not (m2 > 0 and math.isfinite(m2)):
        return m2, 1.0, 1.0
    m4 = gauss_expect(lambda x: act.phi(x) ** 4, q, split=act.kinked)
    up = gauss_expect(lambda x: act.phi(x) ** 2, q * 1.001, split=act.kinked)
    e = math.log(up / m2) / math.log(1.001) if up > 0 else 1.0
    return m2, e, m4 / (m2 * m2)


def _norm(p: dict[str, Any], q: float, v: float) -> tuple[float, float]:
    g, b, eps = np.asarray(p["gamma"], float), np.asarray(p["beta"], float), float(p["eps"])
    if p["kind"] != "batch_running":
        return float(np.mean(g * g)) * q / (q + eps) + float(np.mean(b * b)), 0.0
    mu, var = np.asarray(p["mean"], float), np.asarray(p["var"], float)
    s = np.sqrt(var + eps)
    scaled = float(np.mean(g * g * (q + mu * mu) / (s * s)))
    out = scaled - float(np.mean(2 * g * b * mu / s)) + float(np.mean(b * b))
    frac = scaled / out if out > 0 else 0.0
    return out, frac * frac * v


def _apply(op: Op, ins: list[Value]) -> Value:
    p = op.params
    if op.rule == "opaque":
        return Value(opaque=p.get("reason", "an operation the mean field has no rule for"))
    for x in ins:
        if x.opaque is not None:
            return x
    if op.rule == "shape":
        return ins[0]
    if op.rule == "scale":
        return Value(p["c2"] * ins[0].q, ins[0].v)
    if op.rule == "bias":
        q = ins[0].q + p["b2"]
        frac = ins[0].q / q if q > 0 else 0.0
        return Value(q, frac * frac * ins[0].v)
    if op.rule == "add":
        q = sum(x.q for x in ins)
        return Value(q, sum(x.q * x.q * x.v for x in ins) / (q * q) if q > 0 else 0.0)
    if op.rule == "linear":
        gain = p["fan_in"] * p["w2"] * p.get("tap", 1.0)
        q = gain * ins[0].q + p["b2"]
        frac = gain * ins[0].q / q if q > 0 else 0.0
        return Value(q, frac * frac * (ins[0].v + 2.0 / p["n"]))
    if op.rule == "norm":
        q, v = _norm(p, ins[0].q, ins[0].v)
        return Value(q, v)
    if op.rule == "act":
        q, e, kappa = _act_map(p["name"], ins[0].q)
        return Value(q, e * e * ins[0].v + (kappa - 1.0) / p["n"])
    if op.rule == "attention":
        qq, qk, qv = ins[0].q, ins[1].q, ins[2].q
        logits = p["s2"] * p["d"] * qq * qk
        if not logits <= SMALL_LOGITS:
            return Value(opaque=f"attention logits not small at init (variance {logits:.3g} > {SMALL_LOGITS:g})")
        return Value(p["c"] * qv, ins[2].v + 2.0 / p["n"])
    raise ValueError(f"unknown rule {op.rule!r}")


def predict(ops: list[Op], source: Key, q_source: float, target: Key) -> Value:
    """The predicted (q, V) of ``target``, from ``source`` with second moment ``q_source`` through ``ops``
    (in the order they ran).  Tensors that do not descend from the source are not predicted: an op
    that uses one (other than weights, which the rules hold) makes its outputs opaque."""
    env: dict[Key, Value] = {source: Value(q_source, 0.0)}
    for op in ops:
        if not any(k in env for k in op.inputs):
            continue  # not on the branch
        missing = [k for k in op.inputs if k not in env]
        if missing and op.rule != "opaque":
            out = Value(opaque=f"{op.params.get('what', op.rule)} uses a tensor not computed from the stream")
        else:
            out = _apply(op, [env[k] for k in op.inputs if k in env])
        for k in op.outputs:
            env[k] = out
    return env.get(target, Value(opaque="the branch is not computed from the stream by recorded operations"))


def valid_tap_fraction(size: int, kernel: int, stride: int = 1, pad_lo: int = 0, pad_hi: int | None = None,
                       dilation: int = 1) -> float:
    """The fraction of a kernel's taps that land inside the (zero-padded) input along one axis,
    averaged over the output positions: what padding costs a conv's output second moment."""
    pad_hi = pad_lo if pad_hi is None else pad_hi
    span = dilation * (kernel - 1) + 1
    n_out = (size + pad_lo + pad_hi - span) // stride + 1
    if n_out < 1:
        return math.nan
    start = np.arange(n_out)[:, None] * stride - pad_lo + np.arange(kernel)[None, :] * dilation
    return float(np.mean((start >= 0) & (start < size)))


def attention_factor(t_q: int, t_k: int, causal: bool, mask: np.ndarray | None = None) -> float:
    """c = mean over queries of 1/(keys attended): the uniform softmax's averaging factor."""
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask, bool), (*np.shape(mask)[:-2], t_q, t_k)).reshape(-1, t_q, t_k)
        counts = m.sum(axis=-1)
        return math.nan if (counts == 0).any() else float(np.mean(1.0 / counts))
    if not causal:
        return 1.0 / t_k
    # torch's is_causal is the top-left aligned lower triangle: query i sees keys 0..i
    counts = np.minimum(np.arange(1, t_q + 1), t_k)
    return float(np.mean(1.0 / counts))
