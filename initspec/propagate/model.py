"""Real models: per-leaf-layer forward statistics and gradient second moments (torch, Keras, Flax).

``--model MODULE:ATTR[(literal args)]`` (the targets of ``initspec audit``, parsed with ast, never
evaluated) names a model class or factory; it is built under the guard after the framework's seed
(``torch.manual_seed``, ``keras.utils.set_random_seed``, ``nnx.Rngs(seed)`` or
``jax.random.key(seed)`` for linen), fed N(0, 1) inputs of ``--input-shape`` (batch first), and the
output of every leaf layer is recorded.  Gradients are those of a random projection <r, y> of the
output with respect to each leaf's output:

- torch: forward hooks and ``register_full_backward_hook``'s grad_output;
- Keras: each leaf layer's ``call`` is wrapped for the run (Sequential, functional and subclassed
  models alike); the backward pass adds a zero probe to each leaf output and differentiates with
  respect to the probes through the backend's autograd (tensorflow ``GradientTape``, ``jax.grad``,
  torch autograd; the numpy backend has none: forward only);
- Flax nnx: the same probes on every leaf ``nnx.Module`` (its class swapped, for the run, for a
  subclass whose ``__call__`` records), ``jax.grad`` over the probes; linen: ``nn.intercept_methods``
  on every leaf module's ``__call__``.

Real models are not meant to be preserving everywhere: by default this is a report; ``--max-growth``
/ ``--min-shrink`` over the whole depth make it a check.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from initspec.errors import InputError


def _np_stats(h: np.ndarray, channel_axis: int) -> dict[str, float]:
    h = np.asarray(h, dtype=np.float64)
    if h.ndim < 2:
        h = h.reshape(-1, 1)
        channel_axis = 1
    axes = tuple(i for i in range(h.ndim) if i != channel_axis % h.ndim)
    m = h.mean(axis=axes)
    sq = (h * h).mean(axis=axes)
    return {"second_moment": float(sq.mean()), "variance": float((sq - m * m).mean()), "sq_mean": float((m * m).mean())}


def _stats(t: Any) -> dict[str, float]:
    return _np_stats(t.detach().double().cpu().numpy(), 1)


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else ""


def _rejects(target: str, input_shape: tuple[int, ...], e: Exception) -> InputError:
    return InputError(f"--input-shape {tuple(input_shape)}: {target} rejects it: {type(e).__name__}: {_first_line(e)}")


def _build(target: str, fn: Callable[[], Any]) -> Any:
    from initspec.audit.targets import build_model

    return build_model(target, fn)


def _seed_frameworks(seed: int) -> frozenset[str]:
    """Seed the frameworks imported so far (torch, Keras); which ones."""
    seeded = set()
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
        seeded.add("torch")
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        seeded.add("keras")
    return frozenset(seeded)


def model_stats(target: str, input_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Load ``target``, build it seeded, and measure it: the dict ``--json`` writes (any framework)."""
    from initspec.audit.targets import parse_audit_target
    from initspec.audit.walkers.flax import _takes_rngs

    t = parse_audit_target(target)
    callee = getattr(t.factory, "callee", None)
    if t.framework == "flax" or (t.framework is None and callee is not None and _takes_rngs(callee)):
        # the constructor takes rngs=: an nnx module, seeded through it (flax imported here when the
        # target's module imports it lazily)
        try:
            from flax import nnx
        except ImportError:
            raise InputError(f"--model {target!r} takes rngs= (a Flax nnx module) but flax is not installed") from None

        return flax_model(_build(target, lambda: t.factory(rngs=nnx.Rngs(seed))), target, input_shape, seed)
    seeded = _seed_frameworks(seed)
    obj = _build(target, t.factory)
    if {"torch", "keras"} & set(sys.modules) - seeded:  # the factory imported its framework: an unseeded build
        _seed_frameworks(seed)
        obj = _build(target, t.factory)
    from initspec.audit.walkers import flax as flax_walker
    from initspec.audit.walkers import keras as keras_walker

    if keras_walker.recognizes(obj):  # first: on Keras' torch backend a Keras layer is an nn.Module too
        return keras_model(obj, target, input_shape, seed)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return torch_model(obj, target, input_shape, seed)
    if flax_walker.recognizes(obj):
        return flax_model(obj, target, input_shape, seed)
    raise InputError(f"--model {target!r} returned {type(obj).__module__}.{type(obj).__name__}, "
                     "not a torch, Keras or Flax model")


def _result(target: str, framework: str, version: str, input_shape: tuple[int, ...],
            records: list[dict[str, Any]], backend: str | None = None) -> dict[str, Any]:
    fw = [rec["forward"]["second_moment"] for rec in records]
    bw = [rec["backward"]["second_moment"] for rec in records if rec["backward"]]
    growth_f = fw[-1] / fw[0] if fw and fw[0] > 0 else math.nan
    growth_b = bw[0] / bw[-1] if bw and bw[-1] > 0 else math.nan
    out = {"model": target, "framework": framework, "version": version, "input_shape": list(input_shape),
           "layers": records, "growth": {"forward": growth_f, "backward": growth_b}}
    if backend is not None:
        out["backend"] = backend
    return out


def torch_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Per-leaf statistics of one built torch model (forward and full backward hooks)."""
    import torch

    records: list[dict[str, Any]] = []
    index: dict[int, dict[str, Any]] = {}
    handles = []
    for name, mod in model.named_modules():
        if list(mod.children()):
            continue
        name = name or type(mod).__name__  # the model is itself one leaf

        def fwd(m: Any, inp: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                rec = {"index": len(records) + 1, "name": name, "type": type(m).__name__,
                       "shape": list(out.shape[1:]), "forward": _stats(out), "backward": None}
                params = dict(m.named_parameters(recurse=False))
                w = params.get("weight")
                if w is not None and w.dim() >= 2:
                    rf = int(np.prod(w.shape[2:])) if w.dim() > 2 else 1
                    rec["fan_in"], rec["fan_out"] = int(w.shape[1] * rf), int(w.shape[0] * rf)
                records.append(rec)
                index[id(m)] = rec

        def bwd(m: Any, gin: Any, gout: Any) -> None:
            rec = index.get(id(m))
            g = gout[0] if gout else None
            if rec is not None and g is not None:
                rec["backward"] = {"second_moment": float(g.detach().double().pow(2).mean())}

        handles.append(mod.register_forward_hook(fwd))
        handles.append(mod.register_full_backward_hook(bwd))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(*input_shape, generator=gen, requires_grad=True)
    model.eval()  # batch-norm and dropout as at inference: the init's own signal
    try:
        try:
            y = model(x)
        except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
            raise _rejects(target, input_shape, e) from None
        if isinstance(y, (tuple, list)):
            y = y[0]
        if not isinstance(y, torch.Tensor):
            y = getattr(y, "logits", None) or getattr(y, "last_hidden_state", None)
            if y is None:
                raise InputError(f"--model {target!r}: its output is not a tensor")
        r = torch.randn(y.shape, generator=gen)
        (y * r).sum().backward()
    finally:
        for h in handles:
            h.remove()
    return _result(target, "torch", torch.__version__, input_shape, records)


class _Probe:
    """Records each leaf output (pass 1) or adds a zero probe to it (pass 2, for its gradient)."""

    def __init__(self, is_float: Callable[[Any], bool], to_numpy: Callable[[Any], np.ndarray]) -> None:
        self.is_float, self.to_numpy = is_float, to_numpy
        self.records: list[dict[str, Any]] = []
        self.shapes: list[tuple[int, ...]] = []  # each recorded output's full shape: its probe's
        self.probes: list[Any] | None = None
        self.k = 0
        self.counts: dict[str, int] = {}

    def __call__(self, name: str, type_name: str, fans: tuple[int, int] | None, out: Any) -> Any:
        if not self.is_float(out):
            return out
        if self.probes is None:
            h = self.to_numpy(out)
            n = self.counts[name] = self.counts.get(name, 0) + 1
            rec: dict[str, Any] = {"index": len(self.records) + 1, "name": name if n == 1 else f"{name}#{n}",
                                   "type": type_name, "shape": list(h.shape[1:]),
                                   "forward": _np_stats(h, -1), "backward": None}  # channels last
            if fans is not None:
                rec["fan_in"], rec["fan_out"] = fans
            self.records.append(rec)
            self.shapes.append(tuple(h.shape))
            return out
        if self.k >= len(self.probes) or tuple(out.shape) != tuple(self.probes[self.k].shape):
            raise InputError("the model's leaf layers ran in a different order on the second pass")
        p = self.probes[self.k]
        self.k += 1
        return out + p

    def set_grads(self, grads: list[Any] | None) -> None:
        for rec, g in zip(self.records, grads or [], strict=False):
            if g is not None:
                rec["backward"] = {"second_moment": float(np.mean(np.asarray(g, dtype=np.float64) ** 2))}


def _kernel_fans(kernel: Any) -> tuple[int, int] | None:
    """(fan_in, fan_out) of a channels-last kernel (..., in, out), as Keras and Flax compute them."""
    shape = tuple(int(s) for s in getattr(kernel, "shape", ()))
    if len(shape) < 2:
        return None
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf


def keras_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Per-leaf statistics of one Keras model or layer, on the current Keras backend."""
    import keras

    backend = keras.backend.backend()
    rng = np.random.default_rng(seed + 1)
    x_np = rng.standard_normal(tuple(input_shape)).astype("float32")

    def is_float(out: Any) -> bool:  # symbolic KerasTensors (a build) and integer outputs are not recorded
        return bool(keras.ops.is_tensor(out)) and "float" in str(keras.backend.standardize_dtype(out.dtype))

    probe = _Probe(is_float, keras.ops.convert_to_numpy)
    if not model.built:
        try:
            model.build(tuple(input_shape))
        except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
            raise _rejects(target, input_shape, e) from None
    leaves = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
              if not list(layer._flatten_layers(include_self=False, recursive=False))
              and not isinstance(layer, keras.layers.InputLayer)]
    saved = []
    for layer in leaves:
        orig = layer.call
        fans = _kernel_fans(getattr(layer, "kernel", None)) if hasattr(layer, "kernel") else None

        def call(*args: Any, _orig: Any = orig, _layer: Any = layer, _fans: Any = fans, **kwargs: Any) -> Any:
            return probe(_layer.name, type(_layer).__name__, _fans, _orig(*args, **kwargs))

        saved.append((layer, "call" in layer.__dict__, orig))
        object.__setattr__(layer, "call", call)  # Keras' own __setattr__ would track the function

    def run(x: Any) -> Any:
        y = model(x, training=False)  # batch-norm and dropout as at inference: the init's own signal
        if isinstance(y, (list, tuple)):
            y = y[0]
        if isinstance(y, dict):
            y = next(iter(y.values()))
        return y

    try:
        try:
            y = run(keras.ops.convert_to_tensor(x_np))
        except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
            raise _rejects(target, input_shape, e) from None
        r_np = rng.standard_normal(tuple(y.shape)).astype("float32")
        probe.set_grads(_keras_grads(backend, run, x_np, r_np, probe.shapes, probe))
    finally:
        for layer, had, orig in saved:
            if had:
                object.__setattr__(layer, "call", orig)
            else:
                object.__delattr__(layer, "call")
    return _result(target, "keras", keras.__version__, input_shape, probe.records, backend)


def _keras_grads(backend: str, run: Callable[[Any], Any], x_np: np.ndarray, r_np: np.ndarray,
                 shapes: list[tuple[int, ...]], probe: _Probe) -> list[Any] | None:
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


def _jax_probe() -> _Probe:
    import jax.numpy as jnp

    def is_float(out: Any) -> bool:
        return hasattr(out, "dtype") and hasattr(out, "shape") and bool(jnp.issubdtype(out.dtype, jnp.floating))

    return _Probe(is_float, lambda a: np.asarray(a))


def _jax_grads(probe: _Probe, run: Callable[[Any], Any], x: Any, r: Any) -> list[Any]:
    """d<r, y>/d(leaf output) through ``jax.grad`` over zero probes added to the leaf outputs."""
    import jax
    import jax.numpy as jnp

    def loss(probes: list[Any]) -> Any:
        probe.probes, probe.k = probes, 0
        return jnp.sum(run(x).astype(jnp.float32) * r)

    return [np.asarray(g) for g in jax.grad(loss)([jnp.zeros(s, jnp.float32) for s in probe.shapes])]


def _first_array(y: Any) -> Any:
    while isinstance(y, (list, tuple)) and y:
        y = y[0]
    if isinstance(y, dict) and y:
        y = next(iter(y.values()))
    return y


def flax_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Per-leaf statistics of one Flax module: an nnx module as built, or a linen module (init under seed)."""
    import flax
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed + 1)
    x = jnp.asarray(rng.standard_normal(tuple(input_shape)).astype("float32"))
    probe = _jax_probe()
    nn = sys.modules.get("flax.linen")
    if nn is not None and isinstance(model, nn.Module):
        run, kind = _linen_runner(model, target, x, seed, probe), "linen"
    else:
        run, kind = _nnx_runner(model, probe), "nnx"
    try:
        try:
            y = _first_array(run(x))
        except (InputError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
            raise _rejects(target, input_shape, e) from None
        r = jnp.asarray(rng.standard_normal(tuple(y.shape)).astype("float32"))
        probe.set_grads(_jax_grads(probe, lambda a: _first_array(run(a)), x, r))
    finally:
        restore = getattr(run, "restore", None)
        if restore is not None:
            restore()
    return _result(target, "flax", f"{flax.__version__} (jax {jax.__version__})", input_shape, probe.records, kind)


def _nnx_runner(model: Any, probe: _Probe) -> Callable[[Any], Any]:
    """Every leaf nnx.Module's class swapped, for the run, for a subclass whose __call__ feeds the probe."""
    from flax import nnx

    leaves = [(path, m) for path, m in nnx.iter_modules(model) if len(list(nnx.iter_modules(m))) == 1]
    subclasses: dict[type, type] = {}
    names: dict[int, tuple[str, tuple[int, int] | None]] = {}
    swapped = []
    for path, m in leaves:
        cls = type(m)
        if cls not in subclasses:
            def __call__(self: Any, *args: Any, _cls: type = cls, **kwargs: Any) -> Any:
                out = _cls.__call__(self, *args, **kwargs)
                name, fans = names[id(self)]
                return probe(name, _cls.__name__, fans, out)

            subclasses[cls] = type(cls.__name__, (cls,), {"__call__": __call__, "__slots__": (),
                                                          "__module__": cls.__module__})
        kernel = getattr(m, "kernel", None)
        names[id(m)] = (".".join(map(str, path)) or cls.__name__,
                        _kernel_fans(kernel) if kernel is not None else None)
        object.__setattr__(m, "__class__", subclasses[cls])
        swapped.append((m, cls))
    if hasattr(model, "eval"):
        model.eval()  # deterministic dropout, batch-norm on its running averages: the init's own signal

    def run(x: Any) -> Any:
        return model(x)

    def restore() -> None:
        for m, cls in swapped:
            object.__setattr__(m, "__class__", cls)

    run.restore = restore  # type: ignore[attr-defined]
    return run


def _linen_runner(model: Any, target: str, x: Any, seed: int, probe: _Probe) -> Callable[[Any], Any]:
    """A linen module initialized under ``jax.random.key(seed)``, applied with every leaf's __call__ intercepted."""
    import jax
    from flax import linen as nn

    try:
        variables = _build(target, lambda: model.init(jax.random.key(seed), x))
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - init is the model's first call on the input
        raise _rejects(target, tuple(x.shape), e) from None
    stack: list[bool] = []

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        if stack:
            stack[-1] = True  # the caller has a child: it is no leaf
        stack.append(False)
        try:
            out = next_fun(*args, **kwargs)
        finally:
            has_children = stack.pop()
        if has_children:
            return out
        m = context.module
        kernel = m.variables.get("params", {}).get("kernel") if m.scope is not None else None
        name = "/".join(m.scope.path) if m.scope is not None and m.scope.path else type(m).__name__
        return probe(name, type(m).__name__, _kernel_fans(kernel) if kernel is not None else None, out)

    mutable = [k for k in variables if k != "params"]

    def run(a: Any) -> Any:
        with nn.intercept_methods(interceptor):
            y = model.apply(variables, a, rngs={"dropout": jax.random.key(seed + 2)}, mutable=mutable or False)
        return y[0] if mutable else y

    return run


def check_growth(result: dict[str, Any], max_growth: float | None, min_shrink: float | None) -> list[str]:
    """The bounds violated over the whole depth (empty: within them, or none declared)."""
    bad = []
    for d, g in result["growth"].items():
        if max_growth is not None and not g <= max_growth:
            bad.append(f"{d} grows ×{g:.4g} over the depth (> --max-growth {max_growth:g})")
        if min_shrink is not None and not g >= min_shrink:
            bad.append(f"{d} shrinks to ×{g:.4g} over the depth (< --min-shrink {min_shrink:g})")
    return bad


def render(result: dict[str, Any]) -> str:
    fw = result["framework"] + (f"/{result['backend']}" if result.get("backend") else "")
    lines = [f"initspec propagate --model {result['model']} ({fw} {result['version']}), input "
             f"{tuple(result['input_shape'])} N(0, 1)",
             f"{'#':>3}  {'layer':<28} {'type':<16} {'fwd E[h²]':>11} {'variance':>11} {'sq_mean':>11} "
             f"{'bwd E[g²]':>11}"]
    for r in result["layers"]:
        f, b = r["forward"], r["backward"]
        lines.append(f"{r['index']:>3}  {r['name'][:28]:<28} {r['type'][:16]:<16} {f['second_moment']:>11.4g} "
                     f"{f['variance']:>11.4g} {f['sq_mean']:>11.4g} {b['second_moment'] if b else math.nan:>11.4g}")
    g = result["growth"]
    lines.append(f"whole depth: forward ×{g['forward']:.4g}, backward ×{g['backward']:.4g} (last/first layer)")
    return "\n".join(lines)
