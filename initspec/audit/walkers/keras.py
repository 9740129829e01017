"""The Keras 3 walker: models and layers on any backend, variables by path, fans as Keras counts them.

Keras is only touched when it is already in ``sys.modules``.  Each instance is built after
``keras.backend.clear_session()`` (so auto-generated layer names, and hence paths, are the
same for every seed) under ``keras.utils.set_random_seed(seed)``; a model that is not built
yet is built with ``model.build(input_shape)`` when ``--input-shape`` is given (the full shape,
batch dimension included, as for linen), else it is bad input.

Paths are the variables' own ``path`` with ``/`` -> ``.`` and the root model's name dropped
(``sequential/dense_1/kernel`` -> ``dense_1.kernel``; a functional model's paths carry no
model name).  Fans are Keras's own ``compute_fans`` on the stored shape (the tf layout:
receptive field = prod(shape[:-2])), so a DepthwiseConv2D kernel ``(kh, kw, in, mult)`` has
fan_in ``kh*kw*in`` and fan_out ``kh*kw*mult`` and a ConvTranspose kernel ``(*k, out, in)`` reads
its filters as fan_in, exactly as Keras does; EinsumDense kernels use the input/output axes
EinsumDense hands its VarianceScaling initializer.  ``default`` is the owning class's
constructor default for that variable's initializer argument, as a scheme expression.
"""

from __future__ import annotations

import gc
import inspect
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from initspec.audit.walkers import Param
from initspec.errors import InputError

FRAMEWORK = "keras"

#: variable name -> the constructor arguments holding its initializer, tried in order
_INIT_ARGS = {
    "kernel": ("kernel_initializer", "depthwise_initializer"),  # DepthwiseConv2D names its kernel "kernel"
    "depthwise_kernel": ("depthwise_initializer",),
    "pointwise_kernel": ("pointwise_initializer",),
    "recurrent_kernel": ("recurrent_initializer",),
    "embeddings": ("embeddings_initializer",),
}

#: Keras initializer class -> scheme preset (Keras's "normal" presets are truncated normals)
_PRESETS = {
    "Zeros": "zeros", "Ones": "ones",
    "GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_truncated_normal",
    "HeUniform": "he_uniform", "HeNormal": "he_truncated_normal",
    "LecunUniform": "lecun_uniform", "LecunNormal": "lecun_truncated_normal",
}
_DISTRIBUTIONS = {"truncated_normal": "truncated_normal", "untruncated_normal": "normal", "uniform": "uniform",
                  "normal": "truncated_normal"}


def _keras() -> Any:
    return sys.modules.get("keras")


def recognizes(obj: Any) -> bool:
    """A Keras 3 layer or model (checked through ``sys.modules``; never imports Keras)."""
    keras = _keras()
    layer = getattr(keras, "Layer", None) if keras is not None else None
    return isinstance(layer, type) and isinstance(obj, layer)


def build(factory: Callable[[], Any], seed: int, input_shape: tuple[int, ...] | None = None,
          **options: Any) -> Any:
    """Clear the session, ``keras.utils.set_random_seed(seed)``, call the factory, build if needed."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = factory()
    if not recognizes(model):
        raise InputError(f"the target returned {type(model).__name__}, not a Keras model or layer")
    if not model.built:
        if input_shape is None:
            raise InputError(f"the Keras {type(model).__name__} is not built: give --input-shape "
                             "(batch dimension included, e.g. 1,32)")
        model.build(tuple(input_shape))
    return model


def _dotted(path: str, root: str) -> str:
    if path.startswith(root + "/"):
        path = path[len(root) + 1:]
    return path.replace("/", ".")


def compute_fans(shape: tuple[int, ...], input_axes: list[int] | None = None,
                 output_axes: list[int] | None = None) -> tuple[int, int]:
    """Keras's ``compute_fans`` (keras.src.initializers.random_initializers), same rules."""
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def _einsum_axes(layer: Any, shape: tuple[int, ...]) -> tuple[list[int], list[int]] | None:
    """EinsumDense's kernel axes: a kernel letter in the output is an output axis, else an input axis."""
    eq = getattr(layer, "equation", None)
    if not isinstance(eq, str) or "->" not in eq or "," not in eq:
        return None
    weight, out = eq.split(",", 1)[1].split("->")
    weight, out = weight.replace(".", ""), out.replace(".", "")
    if len(weight) != len(shape):
        return None
    return ([i for i, c in enumerate(weight) if c not in out], [i for i, c in enumerate(weight) if c in out])


def _num(v: Any) -> str:
    return f"{float(v):.10g}"


def scheme_of(initializer: Any) -> str | None:
    """A Keras initializer (name, config or instance) as a scheme expression, or None when unknown."""
    keras = _keras()
    if initializer is None or keras is None:
        return None
    try:
        init = keras.initializers.get(initializer)
    except (ValueError, TypeError):
        return None
    name = type(init).__name__
    if name in _PRESETS:
        return _PRESETS[name]
    if name == "VarianceScaling":
        dist = _DISTRIBUTIONS.get(getattr(init, "distribution", ""), None)
        if dist is None:
            return None
        return f"variance_scaling(scale={_num(init.scale)}, mode={init.mode}, distribution={dist})"
    cfg = init.get_config()
    if name == "Constant":
        return f"constant(value={_num(cfg['value'])})"
    if name in ("RandomNormal", "TruncatedNormal"):
        kind = "normal" if name == "RandomNormal" else "truncated_normal"
        mean = f"mean={_num(cfg['mean'])}, " if cfg.get("mean") else ""
        return f"{kind}({mean}std={_num(cfg['stddev'])})"
    if name == "RandomUniform":
        return f"uniform(low={_num(cfg['minval'])}, high={_num(cfg['maxval'])})"
    if name in ("Orthogonal", "OrthogonalInitializer"):
        gain = cfg.get("gain", 1.0)
        return "orthogonal" if gain == 1 else f"orthogonal(gain={_num(gain)})"
    return None


def _arg_names(role: str) -> tuple[str, ...]:
    return _INIT_ARGS.get(role, (f"{role}_initializer",))


def _class_default(cls: type, role: str) -> str | None:
    """The documented default: the first class in the MRO whose __init__ names the argument."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        for arg in _arg_names(role):
            p = params.get(arg)
            if p is not None and p.default is not inspect.Parameter.empty:
                return scheme_of(p.default)
    return None


def _values(v: Any) -> Callable[[], np.ndarray]:
    def get() -> np.ndarray:
        from initspec.frameworks.keras import to_numpy

        return to_numpy(v)
    return get


def _attr_name(layer: Any, v: Any) -> str:
    for k, val in vars(layer).items():
        if val is v and not k.startswith("__"):
            return k.lstrip("_") or k
    return v.name


def walk(model: Any) -> Iterator[Param]:
    """Every variable of every layer (trainable or not, seed-generator state left out), in layer order;
    a variable tracked by a second layer (tied) again under that layer's path, same ``storage``."""
    root = model.name
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    owned = [(layer, v) for layer in layers
             for v in list(layer._trainable_variables) + list(layer._non_trainable_variables)]
    creator: dict[int, Any] = {}
    for layer, v in owned:  # the layer that made it: its path is the layer's path plus its name
        if getattr(layer, "path", None) and v.path == f"{layer.path}/{v.name}":
            creator.setdefault(id(v), layer)
    for layer, v in owned:
        creator.setdefault(id(v), layer)
    seen: set[str] = set()
    for layer, v in owned:
        if creator[id(v)] is layer:
            path = _dotted(v.path, root)
        else:
            lpath = getattr(layer, "path", None)
            base = _dotted(lpath, root) if lpath and lpath != root else ""
            path = f"{base}.{_attr_name(layer, v)}" if base else _attr_name(layer, v)
        path0, k = path, 1
        while path in seen:  # two variables one path (a custom layer reusing a name): keep both apart
            k += 1
            path = f"{path0}#{k}"
        seen.add(path)
        owner = creator[id(v)]
        shape = tuple(int(d) for d in v.shape)
        axes = _einsum_axes(owner, shape) if type(owner).__name__ == "EinsumDense" and v.name == "kernel" else None
        fan_in, fan_out = compute_fans(shape, *(axes or (None, None)))
        yield Param(path=path, shape=shape, dtype=str(v.dtype), values=_values(v), owner=type(owner).__name__,
                    role=v.name, layout="tf", fan_in=fan_in, fan_out=fan_out,
                    default=_class_default(type(owner), v.name), storage=("keras", id(v)),
                    trainable=bool(v.trainable))


def release(model: Any) -> None:
    """Drop the instance and Keras's global state (names, graphs): ``clear_session`` and collect."""
    import keras

    del model
    keras.backend.clear_session()
    gc.collect()
