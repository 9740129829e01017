"""Synthetic stacks measured: a deep MLP or KxK conv stack, N(0, 1) inputs, per-layer statistics.

Weights come from the scheme's numpy reference sampler, a real initializer (``--target`` in any
convention of ``check``) or a manifest entry (``torch:kaiming_normal_``), always in torch layout
(out, in, *kernel) here.  The convolution is circular ('same' size, wrapped), so every position
sees a full receptive field and the statistics are stationary over the image.  Forward: per layer
the second moment E[h²], the per-unit variance averaged over units, and the average channel squared
mean (timm's ``avg_sq_mean``).  Backward: E[g²] of g_l = ∂<r, h_L>/∂h_l, r ~ N(0, 1) — by hand in
numpy, through autograd in torch and JAX (imported only when asked for).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.propagate.activations import Activation
from initspec.propagate.theory import LayerShape

Weights = Callable[[tuple[int, ...], int], np.ndarray]  # (torch-layout shape, seed) -> array
BACKENDS = ("numpy", "torch", "jax")
SPATIAL = 8  # image side of conv stacks: 8x8 wraps a 3x3 or 5x5 kernel without repeating a tap


def mlp_layers(widths: list[int]) -> list[LayerShape]:
    """Dense layers n_0 -> n_1 -> ... (torch layout (out, in))."""
    return [LayerShape(f"dense{k}", (o, i), i, o, o) for k, (i, o) in enumerate(itertools.pairwise(widths), 1)]


def conv_layers(depth: int, channels: int, kernel: int, in_channels: int | None = None) -> list[LayerShape]:
    """depth KxK conv layers over `channels` channels (the first from in_channels)."""
    rf = kernel * kernel
    out = []
    for k in range(1, depth + 1):
        c_in = in_channels if (k == 1 and in_channels) else channels
        out.append(LayerShape(f"conv{k}", (channels, c_in, kernel, kernel), c_in * rf, channels * rf, channels))
    return out


def scheme_weights(expr: str) -> Weights:
    """Weights from the scheme's numpy reference sampler."""
    from initspec.frameworks.numpy_reference import from_scheme

    init = from_scheme(expr, layout="torch")

    def draw(shape: tuple[int, ...], seed: int) -> np.ndarray:
        return np.asarray(init(np.random.default_rng(seed), shape, "float32"), dtype=np.float32)

    return draw


def _to_torch_layout(w: np.ndarray, layout: str, shape: tuple[int, ...]) -> np.ndarray:
    if layout == "torch" or w.ndim < 2:
        return w.reshape(shape)
    # (*k, in, out) -> (out, in, *k)
    return np.transpose(w, (w.ndim - 1, w.ndim - 2, *range(w.ndim - 2))).reshape(shape)


def _from_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    return shape if layout == "torch" or len(shape) < 2 else (*shape[2:], shape[1], shape[0])


def target_weights(target: str | Callable[..., Any], convention: str | None, scheme: str,
                   timeout: float | None = None) -> tuple[Weights, str]:
    """Weights from a manifest entry (FRAMEWORK:ENTRY_ID) or a MODULE:ATTR target; and its label.

    The target's factory and every draw run under the engine's guard with ``timeout``: an
    initializer that raises, exits or overruns is a failed run (``leaves.ModelError``, exit 1)."""
    from initspec.engine.guard import build_guarded
    from initspec.frameworks import FRAMEWORKS
    from initspec.frameworks.manifest import Case
    from initspec.propagate.leaves import ModelError, call, short

    entry, drawer = None, None
    if isinstance(target, str) and convention is None:
        fw, _, entry_id = target.partition(":")
        if fw not in FRAMEWORKS or not entry_id:
            raise InputError(f"--target {target!r}: give --convention for a MODULE:ATTR target, or name a "
                             f"manifest entry FRAMEWORK:ENTRY_ID (frameworks: {', '.join(FRAMEWORKS)})")
        from initspec.engine.compare import find_entry
        from initspec.engine.runner import _Prepared

        entry = find_entry(fw, entry_id)
        prepared = _Prepared({})
        drawer = prepared.get(entry, timeout)
        if drawer is None:
            raise InputError(f"--target {target!r}: {prepared.errors[entry.id]}")
        layout, conv = entry.layout.name, entry.convention
    else:
        from initspec.frameworks.target import entry_for

        conv = convention or "numpy"
        layout = {"torch": "torch", "torch_module": "torch", "numpy": "torch"}.get(conv, "tf")
        entry, drawer = entry_for(target, scheme, conv, layout, None, ["float32"],
                                  build=lambda b: build_guarded(b, timeout))

    def draw(shape: tuple[int, ...], seed: int) -> np.ndarray:
        native = _from_shape(shape, layout)
        if conv in ("torch_module", "keras_layer", "flax"):
            # a layer class: (in, out[, kernel]) as the manifest's module cases pass them
            args = (shape[1], shape[0]) + ((shape[2],) if len(shape) > 2 else ())
            case = Case(native, args=args, param=entry.cases[0].param if entry and entry.cases else "weight")
        else:
            case = Case(native)
        label = short(target if isinstance(target, str) else getattr(target, "__name__", target))
        try:
            w = np.asarray(call(drawer, case, "float32", seed, what=f"--target {label} drawing a {native} weight",
                                timeout=timeout), dtype=np.float32)
        except (InputError, ModelError):
            raise
        except Exception as e:  # noqa: BLE001 - a broken initializer is a failed run: said in one line
            raise ModelError(f"--target {label}: drawing a {native} weight raised {type(e).__name__}: "
                             f"{short(str(e).strip().splitlines()[0] if str(e).strip() else '', 120)}") from None
        if w.size != int(np.prod(shape)):
            raise ModelError(f"--target {label}: asked for shape {native}, got {w.shape}")
        return _to_torch_layout(w.reshape(w.shape), layout, shape)

    return draw, getattr(entry, "call", str(target))


def _stats(h: np.ndarray) -> tuple[float, float, float]:
    """(second moment, mean per-unit variance, average channel squared mean); axis 1 is the unit/channel."""
    axes = tuple(i for i in range(h.ndim) if i != 1)
    h64 = h.astype(np.float64, copy=False)
    m = h64.mean(axis=axes)
    sq = (h64 * h64).mean(axis=axes)
    return float(sq.mean()), float((sq - m * m).mean()), float((m * m).mean())


def _conv_np(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Circular cross-correlation, NCHW, torch weight (out, in, k, k)."""
    k = w.shape[-1]
    p = k // 2
    b, _, hh, ww = x.shape
    y = np.zeros((b, w.shape[0], hh, ww), dtype=x.dtype)
    for a in range(k):
        for d in range(k):
            xs = np.roll(x, shift=(p - a, p - d), axis=(2, 3))  # xs[..., i, j] = x[..., i + a - p, j + d - p]
            y += np.einsum("oc,bchw->bohw", w[:, :, a, d], xs, optimize=True)
    return y


def _conv_np_t(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The adjoint of _conv_np (its gradient with respect to the input)."""
    k = w.shape[-1]
    p = k // 2
    out = np.zeros((g.shape[0], w.shape[1], *g.shape[2:]), dtype=g.dtype)
    for a in range(k):
        for d in range(k):
            t = np.einsum("oc,bohw->bchw", w[:, :, a, d], g, optimize=True)
            out += np.roll(t, shift=(a - p, d - p), axis=(2, 3))
    return out


def _inputs(layers: list[LayerShape], batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 1])
    first, last = layers[0], layers[-1]
    conv = len(first.shape) == 4
    x = rng.standard_normal((batch, first.shape[1], SPATIAL, SPATIAL) if conv else (batch, first.shape[1]))
    r = rng.standard_normal((batch, last.shape[0], SPATIAL, SPATIAL) if conv else (batch, last.shape[0]))
    return x.astype(np.float32), r.astype(np.float32)


def draw_stack(layers: list[LayerShape], weights: Weights, bias_std: float,
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) per layer, W from `weights`, b ~ N(0, bias_std²); seeds differ per layer."""
    out = []
    rng = np.random.default_rng([seed, 2])
    for k, L in enumerate(layers):
        w = weights(L.shape, seed * 100_003 + k)
        b = (bias_std * rng.standard_normal(L.shape[0])).astype(np.float32)
        out.append((w, b))
    return out


def measure(layers: list[LayerShape], act: Activation, weights: Weights, *, bias_std: float = 0.0,
            batch: int = 256, seed: int = 0, backend: str = "numpy") -> list[dict[str, float]]:
    """Per-layer forward and backward statistics of one draw of the stack."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    params = draw_stack(layers, weights, bias_std, seed)
    x, r = _inputs(layers, batch, seed)
    run = {"numpy": _run_numpy, "torch": _run_torch, "jax": _run_jax}[backend]
    hs, gs = run(params, act, x, r)
    out = []
    for h, g in zip(hs, gs, strict=True):
        sm, var, sqm = _stats(h)
        out.append({"second_moment": sm, "variance": var, "sq_mean": sqm,
                    "grad_second_moment": float(np.mean(np.square(g.astype(np.float64))))})
    return out


def _run_numpy(params: list, act: Activation, x: np.ndarray, r: np.ndarray) -> tuple[list, list]:
    conv = x.ndim == 4
    hs = []
    with np.errstate(all="ignore"):  # an exploding stack overflows: inf is its measurement
        a = x
        for w, b in params:
            h = (_conv_np(a, w) + b[None, :, None, None]) if conv else (a @ w.T + b)
            hs.append(h)
            a = act.phi(h).astype(np.float32)
        gs = [r]
        for k in range(len(params) - 1, 0, -1):
            w = params[k][0]
            back = _conv_np_t(gs[0], w) if conv else gs[0] @ w
            gs.insert(0, (back * act.dphi(hs[k - 1])).astype(np.float32))
    return hs, gs


_TORCH_ACT = {"linear": "identity", "relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid",
              "selu": "selu", "elu": "elu", "gelu": "gelu", "gelu_tanh": "gelu", "silu": "silu",
              "softplus": "softplus"}


def _torch_phi(act: Activation) -> Callable[[Any], Any]:
    import torch
    import torch.nn.functional as F

    if act.base not in _TORCH_ACT:
        raise InputError(f"--activation {act.name!r} has no torch equivalent: use the numpy backend")
    if act.base == "linear":
        return lambda t: t
    if act.base == "leaky_relu":
        return lambda t: F.leaky_relu(t, act.params["a"])
    if act.base == "elu":
        return lambda t: F.elu(t, act.params["alpha"])
    if act.base == "gelu_tanh":
        return lambda t: F.gelu(t, approximate="tanh")
    if act.base in ("tanh", "sigmoid"):
        return getattr(torch, act.base)
    return getattr(F, act.base)


def _run_torch(params: list, act: Activation, x: np.ndarray, r: np.ndarray) -> tuple[list, list]:
    import torch
    import torch.nn.functional as F

    phi = _torch_phi(act)
    conv = x.ndim == 4
    a = torch.from_numpy(x)
    hs, eps = [], []
    for w, b in params:
        wt, bt = torch.from_numpy(w), torch.from_numpy(b)
        if conv:
            p = w.shape[-1] // 2
            h = F.conv2d(F.pad(a, (p, p, p, p), mode="circular"), wt, bt)
        else:
            h = F.linear(a, wt, bt)
        e = torch.zeros(h.shape, requires_grad=True)  # ∂L/∂e_l at e = 0 is ∂L/∂h_l
        eps.append(e)
        h = h + e
        hs.append(h)
        a = phi(h)
    grads = torch.autograd.grad((hs[-1] * torch.from_numpy(r)).sum(), eps)
    return [h.detach().numpy() for h in hs], [g.numpy() for g in grads]


def _run_jax(params: list, act: Activation, x: np.ndarray, r: np.ndarray) -> tuple[list, list]:
    import jax
    import jax.numpy as jnp

    if act.base not in _TORCH_ACT:
        raise InputError(f"--activation {act.name!r} has no JAX equivalent: use the numpy backend")
    phi = {"linear": lambda t: t, "leaky_relu": lambda t: jax.nn.leaky_relu(t, act.params["a"]),
           "elu": lambda t: jax.nn.elu(t, act.params["alpha"]), "gelu": lambda t: jax.nn.gelu(t, approximate=False),
           "gelu_tanh": lambda t: jax.nn.gelu(t, approximate=True),
           "tanh": jnp.tanh}.get(act.base) or getattr(jax.nn, act.base)
    conv = x.ndim == 4

    def forward(eps: list) -> tuple[Any, list]:
        a = jnp.asarray(x)
        hs = []
        for (w, b), e in zip(params, eps, strict=True):
            if conv:
                p = w.shape[-1] // 2
                a_p = jnp.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), mode="wrap")
                h = jax.lax.conv_general_dilated(a_p, jnp.asarray(w), (1, 1), "VALID") + b[None, :, None, None]
            else:
                h = a @ jnp.asarray(w).T + b
            h = h + e  # ∂L/∂e_l at e = 0 is ∂L/∂h_l
            hs.append(h)
            a = phi(h)
        return jnp.sum(hs[-1] * r), hs

    eps = [jnp.zeros((x.shape[0], w.shape[0], *x.shape[2:])) for w, _ in params]
    grads, hs = jax.grad(forward, has_aux=True)(eps)
    return [np.asarray(h) for h in hs], [np.asarray(g) for g in grads]
