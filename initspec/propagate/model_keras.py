"""``--model`` on a Keras model or layer: every leaf layer's ``call`` wrapped for the run, probes for gradients.

The backward pass adds a zero probe to each leaf output and differentiates the projection with
respect to the probes through the backend's own autograd (tensorflow ``GradientTape``, ``jax.grad``,
torch autograd; the numpy backend has none: forward only).  The first (recording) pass also records
each layer call for the residual branches (``keras_residual``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from initspec.propagate import leaves
from initspec.propagate.leaves import ModelError, Probe


def keras_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0, *,
                timeout: float | None = leaves.DEFAULT_TIMEOUT, residual: bool = True,
                backward: bool = True) -> dict[str, Any]:
    """Per-leaf statistics of one Keras model or layer, on the current Keras backend."""
    import keras

    from initspec.propagate.keras_residual import KerasGraph

    backend = keras.backend.backend()
    rng = np.random.default_rng(seed + 1)
    x_np = rng.standard_normal(tuple(input_shape)).astype("float32")
    what = leaves.short(target)

    def is_float(out: Any) -> bool:  # symbolic KerasTensors (a build) and integer outputs are not recorded
        return bool(keras.ops.is_tensor(out)) and "float" in str(keras.backend.standardize_dtype(out.dtype))

    probe = Probe(is_float, keras.ops.convert_to_numpy)
    graph = KerasGraph(keras.ops.convert_to_numpy) if residual else None
    if not model.built:
        leaves.forward(target, input_shape, model.build, tuple(input_shape), timeout=timeout)
    leaves_ = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
               if not list(layer._flatten_layers(include_self=False, recursive=False))
               and not isinstance(layer, keras.layers.InputLayer)]
    saved = []
    for layer in leaves_:
        orig = layer.call
        fans = leaves.kernel_fans(getattr(layer, "kernel", None)) if hasattr(layer, "kernel") else None

        def call(*args: Any, _orig: Any = orig, _layer: Any = layer, _fans: Any = fans, **kwargs: Any) -> Any:
            out = _orig(*args, **kwargs)
            if graph is not None and probe.probes is None and args and is_float(out):
                graph.record(_layer, args[0], out)
            return probe(_layer.name, type(_layer).__name__, _fans, out)

        saved.append((layer, "call" in layer.__dict__, orig))
        object.__setattr__(layer, "call", call)  # Keras' own __setattr__ would track the function

    def run(x: Any) -> Any:
        y = leaves.first_leaf(model(x, training=False))  # batch-norm and dropout as at inference: the init's own signal
        if not is_float(y) or not int(np.prod(y.shape)):
            raise ModelError(f"--model {what}: its output is {leaves.describe(y)}, not a non-empty floating tensor")
        return y

    try:
        y = leaves.forward(target, input_shape, run, keras.ops.convert_to_tensor(x_np), timeout=timeout)
        r_np = rng.standard_normal(tuple(y.shape)).astype("float32")
        grads = None if not backward else leaves.backward(what, _keras_grads, backend, run, x_np, r_np, probe.shapes,
                                                          probe, timeout=timeout)
        probe.set_grads(grads)
    finally:
        for layer, had, orig in saved:
            if had:
                object.__setattr__(layer, "call", orig)
            else:
                object.__delattr__(layer, "call")
    out = leaves.result(target, "keras", keras.__version__, input_shape, probe.records, backend)
    if graph is not None:
        out["residual_branches"] = graph.branches()
    return out


def _keras_grads(backend: str, run: Callable[[Any], Any], x_np: np.ndarray, r_np: np.ndarray,
                 shapes: list[tuple[int, ...]], probe: Probe) -> list[Any] | None:
    """d<r, y>/d(leaf output) for every recorded leaf, through the backend's autograd (None on numpy)."""
    if backend == "tensorflow":
        import tensorflow as tf

        probes = [tf.zeros(s, tf.float32) for s in shapes]
        probe.probes, probe.k = probes, 0
        with tf.GradientTape() as tape:
            tape.watch(probes)
            loss = tf.reduce_sum(tf.cast(run(tf.constant(x_np)), tf.float32) * r_np)
        return [None if g is None else g.numpy() for g in tape.gradient(loss, probes)]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(probes: list[Any]) -> Any:
            probe.probes, probe.k = probes, 0
            return jnp.sum(run(jnp.asarray(x_np)).astype(jnp.float32) * r_np)

        return [np.asarray(g) for g in jax.grad(loss)([jnp.zeros(s, jnp.float32) for s in shapes])]
    if backend == "torch":
        import torch

        probes = [torch.zeros(s, requires_grad=True) for s in shapes]
        probe.probes, probe.k = probes, 0
        (run(torch.from_numpy(x_np)).float() * torch.from_numpy(r_np)).sum().backward()
        return [None if p.grad is None else p.grad.numpy() for p in probes]
    return None
