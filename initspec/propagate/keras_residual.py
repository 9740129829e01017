"""Residual branches of a Keras model: its ``Add`` layers, and the layers between stream and branch as mean-field ops.

Each leaf layer's call is recorded (the wrapped ``call`` of ``model.keras_model``) with the
tensors it took and gave.  A two-input ``Add`` whose one operand is computed (through recorded
layers) from the other is a residual add: the ancestor is the stream, the other operand the
branch.  The branch is predicted from the stream's measured E[x²] through the layers between them
as ``meanfield`` rules: Dense and Conv (with their ``activation``), BatchNormalization on its moving
statistics (``training=False``, as measured), LayerNormalization, Activation and ReLU, Dropout and
reshapes; any other layer on the branch makes it opaque.  An ``x + y`` written as a tensor operation
(not a layer) is no layer call: it is not seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from initspec.propagate import meanfield
from initspec.propagate.meanfield import Op
from initspec.propagate.residual import branch_record

_SHAPE = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout",
          "Identity", "Flatten", "Reshape", "Permute", "InputLayer"}
_ACTS = {"relu": "relu", "gelu": "gelu", "silu": "silu", "swish": "silu", "tanh": "tanh", "sigmoid": "sigmoid",
         "elu": "elu", "selu": "selu", "softplus": "softplus", "leaky_relu": "leaky_relu(0.2)"}


def _act(fn: Any) -> str | None:
    """The activation table's name of a Keras activation function; '' for linear, None when unknown."""
    name = getattr(fn, "__name__", None)
    if name in (None, "linear"):
        return "" if name == "linear" or fn is None else None
    return _ACTS.get(name)


def _same_tap(size: int, k: int, stride: int, dilation: int) -> float:
    """TensorFlow's 'same' padding (Keras on every backend): the extra row goes to the bottom/right."""
    span = dilation * (k - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return meanfield.valid_tap_fraction(size, k, stride, total // 2, total - total // 2, dilation)


class KerasGraph:
    """The layer calls of one forward pass, as mean-field ops, and the residual Adds among them."""

    def __init__(self, to_numpy: Callable[[Any], np.ndarray]) -> None:
        self.to_numpy = to_numpy
        self.ops: list[Op] = []
        self.keep: list[Any] = []
        self.producer: dict[int, tuple[str, list[int]]] = {}
        self.adds: list[tuple[str, Any, Any, float, float]] = []
        self._fresh = 0

    def _ms(self, t: Any) -> float:
        a = np.asarray(self.to_numpy(t), dtype=np.float64)
        return float(np.mean(a * a)) if a.size else math.nan

    def _w2(self, v: Any) -> float:
        return 0.0 if v is None else self._ms(v)

    def _mid(self) -> tuple[str, int]:
        self._fresh += 1
        return ("mid", self._fresh)

    def record(self, layer: Any, inputs: Any, out: Any) -> None:
        """One call of a leaf layer: its rule as ops, and (for a two-input Add) the operands' second moments."""
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not all(hasattr(t, "shape") for t in xs) or not hasattr(out, "shape"):
            return
        self.keep.extend([*xs, out])
        ins, o = [id(t) for t in xs], id(out)
        self.producer[o] = (layer.name, ins)
        cls = type(layer).__name__
        if cls == "Add" and len(xs) == 2 and tuple(xs[0].shape) == tuple(xs[1].shape):
            self.adds.append((layer.name, xs[0], xs[1], self._ms(xs[0]), self._ms(xs[1])))
        try:
            self.ops.extend(self._ops(layer, cls, xs, ins, o))
        except (AttributeError, TypeError, ValueError, IndexError) as e:
            self.ops.append(Op("opaque", tuple(ins), (o,), {"reason": f"{cls}: {type(e).__name__}"}))

    def _ops(self, layer: Any, cls: str, xs: list, ins: list[int], o: int) -> list[Op]:
        x = xs[0]
        if cls in _SHAPE:
            return [Op("shape", (ins[0],), (o,))]
        if cls == "Add":
            return [Op("add", tuple(ins), (o,))]
        if cls == "Dense" or (cls[:4] == "Conv" and cls[4:] in ("1D", "2D", "3D")):
            k = np.asarray(self.to_numpy(layer.kernel), dtype=np.float64)
            tap = 1.0
            if cls != "Dense":
                if getattr(layer, "data_format", "channels_last") != "channels_last":
                    return [Op("opaque", (ins[0],), (o,), {"reason": f"{cls} channels_first"})]
                spatial = tuple(x.shape[1:-1])
                ks = k.shape[:-2]
                st, dil = tuple(layer.strides), tuple(layer.dilation_rate)
                for i, size in enumerate(spatial):
                    tap *= (_same_tap(int(size), int(ks[i]), int(st[i]), int(dil[i])) if layer.padding == "same"
                            else 1.0 if layer.padding == "valid" else math.nan)
            act = _act(layer.activation)
            mid = self._mid() if act else o
            lin = Op("linear", (ins[0],), (mid,), {"fan_in": int(np.prod(k.shape[:-1])), "w2": float(np.mean(k * k)),
                                                    "b2": self._w2(getattr(layer, "bias", None)),
                                                    "n": int(k.shape[-1]), "tap": tap})
            if act is None:
                return [lin, Op("opaque", (mid,), (o,), {"reason": f"{cls}'s activation {layer.activation}"})]
            return [lin] + ([Op("act", (mid,), (o,), {"name": act, "n": int(k.shape[-1])})] if act else [])
        if cls == "BatchNormalization":
            n = int(x.shape[-1] if layer.axis in (-1, len(x.shape) - 1) else x.shape[layer.axis])
            return [Op("norm", (ins[0],), (o,), {
                "kind": "batch_running", "eps": float(layer.epsilon),
                "gamma": self._arr(getattr(layer, "gamma", None), 1.0, n),
                "beta": self._arr(getattr(layer, "beta", None), 0.0, n),
                "mean": self._arr(layer.moving_mean, 0.0, n), "var": self._arr(layer.moving_variance, 1.0, n)})]
        if cls == "LayerNormalization":
            n = int(x.shape[-1])
            rms = bool(getattr(layer, "rms_scaling", False))
            return [Op("norm", (ins[0],), (o,), {
                "kind": "rms" if rms else "layer", "eps": float(layer.epsilon),
                "gamma": self._arr(getattr(layer, "gamma", None), 1.0, n),
                "beta": self._arr(getattr(layer, "beta", None), 0.0, n)})]
        if cls in ("Activation", "ReLU"):
            if cls == "ReLU":
                plain = layer.max_value is None and float(layer.threshold) == 0.0
                slope = float(layer.negative_slope)
                act = (f"leaky_relu({slope!r})" if slope else "relu") if plain else None
            else:
                act = _act(layer.activation)
            if act is None:
                return [Op("opaque", (ins[0],), (o,), {"reason": f"{cls} {getattr(layer, 'activation', '')}"})]
            return [Op("act", (ins[0],), (o,), {"name": act, "n": int(x.shape[-1])})] if act else \
                [Op("shape", (ins[0],), (o,))]
        return [Op("opaque", tuple(ins), (o,), {"reason": f"no mean-field rule for {cls}"})]

    def _arr(self, v: Any, fill: float, n: int) -> np.ndarray:
        return np.full(n, fill) if v is None else np.asarray(self.to_numpy(v), dtype=np.float64).reshape(-1)

    def _ancestors(self, key: int) -> dict[int, str]:
        """Every tensor the tensor ``key`` is computed from, with the layer that computed it."""
        seen: dict[int, str] = {}
        todo = [key]
        while todo:
            k = todo.pop()
            if k not in self.producer:
                continue
            name, ins = self.producer[k]
            for i in ins:
                if i not in seen:
                    seen[i] = name
                    todo.append(i)
        return seen

    def branches(self) -> list[dict[str, Any]]:
        """One record per residual Add, in call order."""
        out = []
        for name, a, b, qa, qb in self.adds:
            ka, kb = id(a), id(b)
            if ka in self._ancestors(kb):
                (ks, qs), (br, kbr, qbr) = (ka, qa), (b, kb, qb)
            elif kb in self._ancestors(ka):
                (ks, qs), (br, kbr, qbr) = (kb, qb), (a, ka, qa)
            else:
                continue  # two branches summed (a projection shortcut): no stream operand
            path = self._path(ks, kbr)
            pred = meanfield.predict(self.ops, ks, qs, kbr)
            out.append(branch_record(name, name, path, tuple(br.shape[1:]), qs, qbr, pred))
        return out

    def _path(self, stream: int, branch: int) -> list[str]:
        """The layers between the stream and the branch, first and last (the layers of the branch)."""
        names = []
        k = branch
        while k in self.producer and k != stream:
            name, ins = self.producer[k]
            names.append(name)
            k = next((i for i in ins if i == stream or stream in self._ancestors(i)), None)
            if k is None:
                break
        names.reverse()
        return names if len(names) <= 2 else [names[0], names[-1]]
