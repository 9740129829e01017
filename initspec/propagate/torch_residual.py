"""Residual branches of a torch model: a ``TorchFunctionMode`` that sees every op of a forward pass.

Blocks are the modules that have submodules (or, with ``--blocks GLOB``, the modules whose dotted
name matches).  While a block runs, every torch function is recorded as a mean-field op
(``meanfield.Op``) over keys (id, version) of the tensors it passes; an add of two floating tensors
of one shape, one of which is the block's input (or the result of an earlier residual add in the
same call), is a residual add: E[stream²] and E[branch²] are measured before the add runs (an
in-place ``out += identity`` included), and E[branch²] is predicted from the block input's measured
E[x²] through the recorded ops.  Ops run inside an op (``F.layer_norm``'s own calls) are not seen: the
mode is off while it handles one.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.propagate import meanfield
from initspec.propagate.meanfield import Op
from initspec.propagate.residual import branch_record

_SHAPE = {"view", "reshape", "transpose", "permute", "contiguous", "flatten", "unflatten", "squeeze", "unsqueeze",
          "split", "chunk", "unbind", "__getitem__", "clone", "to", "float", "half", "bfloat16", "type_as", "expand",
          "expand_as", "narrow", "t", "detach", "movedim", "swapaxes", "split_with_sizes", "view_as", "reshape_as",
          "tensor_split"}
_ADD = {"add", "add_", "__add__", "__iadd__", "__radd__"}
_MUL = {"mul", "mul_", "__mul__", "__imul__", "__rmul__"}
_DIV = {"div", "div_", "__truediv__", "__itruediv__"}
_ACT = {"relu": "relu", "relu_": "relu", "silu": "silu", "tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid",
        "sigmoid_": "sigmoid", "selu": "selu", "gelu": "gelu", "leaky_relu": "leaky_relu", "elu": "elu",
        "softplus": "softplus"}


@dataclass
class _Frame:
    name: str
    raw: str                    # the dotted name as named_modules gives it ('' for the model itself)
    module: Any
    x: Any                      # the block's input (the stream at entry), or None: not a float tensor
    x_key: Any = None
    q_x: float = math.nan
    start: int = 0              # index of the block's first op in the recorder's list
    stream: set = field(default_factory=set)
    path: list[str] = field(default_factory=list)   # direct children called since the last residual add
    adds: int = 0


class Recorder:
    """Records residual adds (``branches``) of the blocks of one torch model during its forward pass."""

    def __init__(self, model: Any, blocks: str | None = None) -> None:
        import torch

        self.torch = torch
        self.names = {id(m): n for n, m in model.named_modules()}
        self.pattern = blocks
        self.frames: list[_Frame] = []
        self.ops: list[Op] = []
        self.keep: list[Any] = []   # the tensors the ops name stay alive: their ids stay theirs
        self.made: set = set()      # keys of tensors computed inside a block (the rest are weights, constants)
        self.units: dict[Any, int] = {}
        self.branches: list[dict[str, Any]] = []
        self.paused = False
        self.error: str | None = None  # the recorder's own failure, if any: the recording stopped there
        self.handles: list[Any] = []
        self.mode = _mode_class()(self)
        self._w2: dict[tuple[int, int], float] = {}

    # -- hooks ------------------------------------------------------------------------------------
    def is_block(self, name: str, module: Any) -> bool:
        if self.pattern is not None:
            return fnmatch.fnmatchcase(name, self.pattern)
        return next(iter(module.children()), None) is not None

    def attach(self, model: Any) -> None:
        for name, mod in model.named_modules():
            self.handles.append(mod.register_forward_pre_hook(self._pre, with_kwargs=True))
            if self.is_block(name, mod):
                self.handles.append(mod.register_forward_hook(self._post, always_call=True))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _pre(self, module: Any, args: Any, kwargs: Any) -> None:
        name = self.names.get(id(module), "?")
        if self.frames and name and self._parent(name) == self.frames[-1].raw:
            self.frames[-1].path.append(name.rsplit(".", 1)[-1] or name)
        if not self.is_block(name, module):
            return
        x = next((a for a in (*args, *kwargs.values()) if isinstance(a, self.torch.Tensor)), None)
        frame = _Frame(name or type(module).__name__, name, module, None, start=len(self.ops))
        if x is not None and x.is_floating_point() and x.numel() > 0:
            self.paused = True
            try:
                frame.x, frame.x_key, frame.q_x = x, self.key(x), _ms(x)
            finally:
                self.paused = False
            frame.stream.add(frame.x_key)
            self.keep.append(x)
        self.frames.append(frame)

    def _post(self, module: Any, args: Any, out: Any) -> None:
        if self.frames and self.frames[-1].module is module:
            frame = self.frames.pop()
            if frame.adds > 1:  # more than one residual add in one call: numbered in order
                mine = [b for b in self.branches[len(self.branches) - frame.adds:]]
                for i, b in enumerate(mine, 1):
                    b["label"] = f"{frame.name}[{i}]"
        if not any(f.x is not None for f in self.frames):  # no block with a stream is running: forget its ops
            self.ops.clear()
            self.keep.clear()
            self.made.clear()
            self.units.clear()

    @staticmethod
    def _parent(name: str) -> str:
        return name.rsplit(".", 1)[0] if "." in name else ""

    def alias(self, old: Any, new: Any) -> None:
        """A hook replaced ``old`` by ``new`` (its gradient probe added): the same value for the mean field."""
        if self.frames and any(f.x is not None for f in self.frames):
            k0, k1 = self.key(old), self.key(new)
            self.ops.append(Op("shape", (k0,), (k1,)))
            self.keep.append(new)
            if k0 in self.made:
                self.made.add(k1)
            if k0 in self.units:
                self.units[k1] = self.units[k0]

    # -- the mode's callback ------------------------------------------------------------------------
    def key(self, t: Any) -> tuple[int, int]:
        return (id(t), t._version)

    def handle(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Run ``func`` as the model asked; record it around the call.  The model's own errors pass through
        untouched; an error of the recording itself stops the recording (``error``), never the model."""
        if self.paused or self.error is not None or not any(f.x is not None for f in self.frames):
            return func(*args, **kwargs)
        try:
            before = self._before(func, args, kwargs)
        except Exception as e:  # noqa: BLE001 - the recorder's own failure: stop recording, run the model
            self.error = f"{type(e).__name__}: {e}"[:200]
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            self._after(func, args, kwargs, out, before)
        except Exception as e:  # noqa: BLE001 - as above
            self.error = f"{type(e).__name__}: {e}"[:200]
        return out

    def _before(self, func: Any, args: tuple, kwargs: dict) -> tuple:
        """What must be read before the op runs (it may be in place): a residual add's operands and second
        moments, or the keys of the op's input tensors."""
        T = self.torch.Tensor
        name = getattr(func, "__name__", "")
        frame = next(f for f in reversed(self.frames) if f.x is not None)
        if name in _ADD and len(args) >= 2 and isinstance(args[0], T) and isinstance(args[1], T) \
                and kwargs.get("alpha", 1) == 1:
            a, b = args[0], args[1]
            ka, kb = self.key(a), self.key(b)
            if (ka in frame.stream or kb in frame.stream) and a.shape == b.shape and a.is_floating_point() \
                    and b.is_floating_point():
                (s, ks), (br, kbr) = ((a, ka), (b, kb)) if ka in frame.stream else ((b, kb), (a, ka))
                if not isinstance(br, self.torch.nn.Parameter):
                    self.paused = True
                    try:
                        q_s, q_b = _ms(s), _ms(br)
                    finally:
                        self.paused = False
                    return ("residual", frame, s, ks, br, kbr, q_s, q_b)
        tensors = [t for t in _flat((args, kwargs)) if isinstance(t, T)]
        return ("op", frame, name, tensors, [self.key(t) for t in tensors])

    def _after(self, func: Any, args: tuple, kwargs: dict, out: Any, before: tuple) -> None:
        if before[0] == "residual":
            _, frame, s, ks, b, kb, q_s, q_b = before
            ko = self.key(out)
            self.ops.append(Op("add", (ks, kb), (ko,)))
            self.keep.extend([s, b, out])
            self.made.add(ko)
            frame.stream.add(ko)
            frame.adds += 1
            pred = meanfield.predict(self.ops[frame.start:], frame.x_key, frame.q_x, kb)
            self.branches.append(branch_record(frame.name, frame.name, list(frame.path), tuple(b.shape[1:]), q_s,
                                               q_b, pred))
            frame.path = []
            return
        _, frame, name, tensors, in_keys = before
        outs = [t for t in _flat(out) if isinstance(t, self.torch.Tensor)]
        if not outs:
            return
        out_keys = tuple(self.key(t) for t in outs)
        op = self._op(func, name, args, kwargs, tensors, in_keys, outs, out_keys)
        self.ops.append(op)
        self.keep.extend(tensors)
        self.keep.extend(outs)
        if any(k in self.made or k in frame.stream for k in op.inputs):
            self.made.update(out_keys)

    # -- ops as mean-field rules --------------------------------------------------------------------
    def _derived(self, k: Any) -> bool:
        return k in self.made or any(k in f.stream for f in self.frames)

    def _n(self, t: Any, k: Any) -> int:
        return self.units.get(k) or (int(t.shape[-1]) if t.dim() else 1)

    def w2(self, t: Any) -> float:
        k = (id(t), t._version)
        if k not in self._w2:
            self._w2[k] = _ms(t)
        return self._w2[k]

    def _op(self, func: Any, name: str, args: tuple, kwargs: dict, tensors: list, in_keys: list, outs: list,
            out_keys: tuple) -> Op:
        torch, F = self.torch, self.torch.nn.functional
        T = torch.Tensor
        x = args[0] if args and isinstance(args[0], T) else None
        kx = self.key(x) if x is not None and x is not outs[0] else (in_keys[0] if in_keys else None)
        if x is not None and x is outs[0]:
            kx = in_keys[0]  # in place: the input's key from before the op

        def rule(r: str, units: int | None = None, **params: Any) -> Op:
            if units is not None:
                for k in out_keys:
                    self.units[k] = units
            elif kx in self.units:
                for k in out_keys:
                    self.units[k] = self.units[kx]
            return Op(r, (kx,), out_keys, params)

        def arg(i: int, kw: str, default: Any = None) -> Any:
            return args[i] if len(args) > i else kwargs.get(kw, default)

        try:
            if func is F.linear:
                w, b = arg(1, "weight"), arg(2, "bias")
                return rule("linear", int(w.shape[0]), fan_in=int(w.shape[1]), w2=self.w2(w),
                            b2=0.0 if b is None else self.w2(b), n=int(w.shape[0]))
            if func in (F.conv1d, F.conv2d, F.conv3d):
                w, b = arg(1, "weight"), arg(2, "bias")
                tap = _conv_tap(x.shape[2:], w.shape[2:], arg(3, "stride", 1), arg(4, "padding", 0),
                                arg(5, "dilation", 1))
                return rule("linear", int(w.shape[0]), fan_in=int(np.prod(w.shape[1:])), w2=self.w2(w),
                            b2=0.0 if b is None else self.w2(b), n=int(w.shape[0]), tap=tap)
            if func is torch.addmm and len(tensors) >= 3 and not self._derived(in_keys[2]):
                bias, mat, w = args[0], args[1], args[2]
                kx = self.key(mat)
                return rule("linear", int(w.shape[1]), fan_in=int(w.shape[0]), w2=self.w2(w), b2=self.w2(bias),
                            n=int(w.shape[1]))
            if name in ("matmul", "__matmul__") and len(tensors) == 2:
                if self._derived(in_keys[0]) and not self._derived(in_keys[1]) and tensors[1].dim() == 2:
                    w = tensors[1]
                    return rule("linear", int(w.shape[1]), fan_in=int(w.shape[0]), w2=self.w2(w), b2=0.0,
                                n=int(w.shape[1]))
                return Op("opaque", tuple(in_keys), out_keys, {"reason": "a product of two activations (matmul)"})
            if func in (F.layer_norm, F.group_norm, F.batch_norm) or name == "rms_norm":
                return rule("norm", **_norm_params(func, F, args, kwargs, x))
            if func is F.scaled_dot_product_attention:
                return self._attention(args, kwargs, in_keys, out_keys)
            if func in (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout):
                p, training = arg(1, "p", 0.5), arg(2, "training", True)
                if not training:
                    return rule("shape")
                if func is F.dropout and p < 1:
                    return rule("scale", c2=1.0 / (1.0 - p))
                return Op("opaque", tuple(in_keys), out_keys, {"reason": f"{name} in training mode"})
            if name in _ACT:
                return rule("act", name=_act_name(func, F, name, args, kwargs), n=self._n(x, kx))
            if name in _SHAPE or (func is F.pad and arg(2, "mode", "constant") == "circular"):
                return rule("shape")
            if name in _ADD | _MUL | _DIV and x is not None and x.is_floating_point():
                return self._arith(name, args, kwargs, rule, in_keys, out_keys)
        except (TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
            return Op("opaque", tuple(in_keys), out_keys, {"reason": f"{name}: {type(e).__name__}"})
        return Op("opaque", tuple(in_keys), out_keys, {"reason": f"no mean-field rule for {name or func}"})

    def _arith(self, name: str, args: tuple, kwargs: dict, rule: Any, in_keys: list, out_keys: tuple) -> Op:
        other = args[1] if len(args) > 1 else kwargs.get("other")
        T = self.torch.Tensor
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            if name in _ADD:
                return rule("shape") if other == 0 else Op("opaque", tuple(in_keys), out_keys,
                                                          {"reason": "a constant added"})
            c = float(other) if name in _MUL else (1.0 / float(other) if other else math.inf)
            return rule("scale", c2=c * c)
        if isinstance(other, T) and not self._derived(self.key(other)) and kwargs.get("alpha", 1) == 1:
            if name in _ADD:
                return rule("bias", b2=self.w2(other))
            if name in _MUL:
                return rule("scale", c2=self.w2(other))
        if isinstance(other, T) and name in _ADD and self._derived(self.key(other)):
            return Op("add", tuple(in_keys[:2]), out_keys)
        return Op("opaque", tuple(in_keys), out_keys, {"reason": f"{name} of two activations"})

    def _attention(self, args: tuple, kwargs: dict, in_keys: list, out_keys: tuple) -> Op:
        q, k, v = args[0], args[1], args[2]
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        causal = bool(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
        scale = args[6] if len(args) > 6 else kwargs.get("scale")
        d = int(q.shape[-1])
        s2 = (1.0 / d) if scale is None else float(scale) ** 2
        m = None
        if mask is not None:
            if mask.dtype != self.torch.bool:
                if bool((mask != 0).any()):
                    return Op("opaque", tuple(in_keys[:3]), out_keys, {"reason": "a float attention mask"})
            else:
                m = mask.detach().cpu().numpy()
        c = meanfield.attention_factor(int(q.shape[-2]), int(k.shape[-2]), causal, m)
        n = int(v.shape[-1]) * (int(v.shape[-3]) if v.dim() >= 3 else 1)
        for key in out_keys:
            self.units[key] = n
        if not math.isfinite(c):
            return Op("opaque", tuple(in_keys[:3]), out_keys, {"reason": "a query that attends to no key"})
        return Op("attention", tuple(in_keys[:3]), out_keys, {"c": c, "s2": s2, "d": d, "n": n})


def _ms(t: Any) -> float:
    return float(t.detach().double().pow(2).mean())


def _flat(obj: Any) -> list:
    if isinstance(obj, (list, tuple)):
        return [y for x in obj for y in _flat(x)]
    if isinstance(obj, dict):
        return [y for x in obj.values() for y in _flat(x)]
    return [obj]


def _pair(v: Any, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _conv_tap(spatial: Any, kernel: Any, stride: Any, padding: Any, dilation: Any) -> float:
    n = len(kernel)
    st, dil = _pair(stride, n), _pair(dilation, n)
    tap = 1.0
    for i in range(n):
        k, size = int(kernel[i]), int(spatial[i])
        if padding == "valid":
            lo = hi = 0
        elif padding == "same":
            total = dil[i] * (k - 1)
            lo, hi = total // 2, total - total // 2
        else:
            lo = hi = int(_pair(padding, n)[i])
        tap *= meanfield.valid_tap_fraction(size, k, int(st[i]), lo, hi, int(dil[i]))
    return tap


def _norm_params(func: Any, F: Any, args: tuple, kwargs: dict, x: Any) -> dict[str, Any]:
    import torch

    def arg(i: int, kw: str, default: Any = None) -> Any:
        return args[i] if len(args) > i else kwargs.get(kw, default)

    def arr(t: Any, fill: float, n: int) -> np.ndarray:
        return np.full(n, fill) if t is None else t.detach().double().cpu().numpy().reshape(-1)

    if func is F.batch_norm:
        rm, rv, w, b = arg(1, "running_mean"), arg(2, "running_var"), arg(3, "weight"), arg(4, "bias")
        training, eps = arg(5, "training", False), arg(7, "eps", 1e-5)
        n = int(x.shape[1])
        kind = "batch_stats" if training or rm is None else "batch_running"
        out = {"kind": kind, "gamma": arr(w, 1.0, n), "beta": arr(b, 0.0, n), "eps": float(eps)}
        if kind == "batch_running":
            out.update(mean=arr(rm, 0.0, n), var=arr(rv, 1.0, n))
        return out
    if func is F.group_norm:
        w, b, eps = arg(2, "weight"), arg(3, "bias"), arg(4, "eps", 1e-5)
        n = int(x.shape[1])
        return {"kind": "group", "gamma": arr(w, 1.0, n), "beta": arr(b, 0.0, n), "eps": float(eps)}
    if func is F.layer_norm:
        shape, w, b, eps = arg(1, "normalized_shape"), arg(2, "weight"), arg(3, "bias"), arg(4, "eps", 1e-5)
        n = int(np.prod(shape))
        return {"kind": "layer", "gamma": arr(w, 1.0, n), "beta": arr(b, 0.0, n), "eps": float(eps)}
    shape, w, eps = arg(1, "normalized_shape"), arg(2, "weight"), arg(3, "eps")
    n = int(np.prod(shape))
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    return {"kind": "rms", "gamma": arr(w, 1.0, n), "beta": np.zeros(1), "eps": float(eps)}


def _act_name(func: Any, F: Any, name: str, args: tuple, kwargs: dict) -> str:
    base = _ACT[name]
    if base == "gelu":
        approx = args[1] if len(args) > 1 else kwargs.get("approximate", "none")
        return "gelu_tanh" if approx == "tanh" else "gelu"
    if base == "leaky_relu":
        return f"leaky_relu({float(args[1] if len(args) > 1 else kwargs.get('negative_slope', 0.01))!r})"
    if base == "elu":
        return f"elu({float(args[1] if len(args) > 1 else kwargs.get('alpha', 1.0))!r})"
    if base == "softplus":
        beta = args[1] if len(args) > 1 else kwargs.get("beta", 1.0)
        if beta != 1:
            raise ValueError("softplus with beta != 1")
    return base


def _mode_class() -> type:
    from torch.overrides import TorchFunctionMode

    class _Mode(TorchFunctionMode):
        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            self.recorder = recorder

        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            return self.recorder.handle(func, args, kwargs or {})

    return _Mode
