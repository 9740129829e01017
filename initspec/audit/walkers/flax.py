"""The Flax walker: nnx modules and linen modules, parameters by tree path, fans from the owning layer.

Flax is only touched when ``flax.nnx`` / ``flax.linen`` is already in ``sys.modules``.

- nnx: the module is built with ``rngs=nnx.Rngs(seed)`` when its constructor (or the target's
  factory function) takes ``rngs``; a factory without ``rngs`` is called as it is (its own seed:
  the audit then reports ``fixed_seed``, ``seed_ignored`` where a spec declares the law).
  Parameters are the ``nnx.Variable`` nodes of ``nnx.iter_graph`` (RNG state left out), each under
  its attribute path (``layers.0.kernel``), owned by the nearest enclosing module.  A Variable
  shared by two modules is visited once (``iter_graph`` visits repeated nodes once), so nnx ties
  are not listed.
- linen: ``module.init(jax.random.key(seed), jnp.ones(input_shape))`` (``--input-shape``, the
  batch dimension included, float32); paths drop the ``params`` collection
  (``params/Dense_0/kernel`` -> ``Dense_0.kernel``) and keep any other (``batch_stats.BatchNorm_0.mean``);
  owners come from a method interceptor during ``init``.

Layouts (the tf layout; fans as ``jax.nn.initializers`` compute them): Dense/Linear kernel
``(in, out)``, Conv ``(*k, in/groups, out)``, ConvTranspose ``(*k, in, out)``, DenseGeneral /
LinearGeneral ``(*in, *features)`` flattened to ``(prod(in), prod(features))`` the way Flax's
kernel_init wrapper does, Embed ``(num, features)`` with ``out_axis=0``: fan_in = fan_out =
features.  Defaults (flax/linen/linear.py, normalization.py; flax/nnx/nn/*): kernels
``lecun_normal()`` (a truncated normal with variance 1/fan_in: ``flax_dense_default``),
biases zeros, Embed ``variance_scaling(1, fan_in, normal, out_axis=0)``, norm scales ones,
norm biases and batch means zeros, batch variances ones.
"""

from __future__ import annotations

import gc
import inspect
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from initspec.audit.walkers import Param
from initspec.errors import InputError

FRAMEWORK = "flax"

_KERNEL_OWNERS = ("Dense", "Linear", "Conv", "ConvTranspose", "ConvLocal", "DenseGeneral", "LinearGeneral",
                  "Einsum")
# variance_scaling(1, fan_in, normal, out_axis=0) on the fans (features, features) given here: lecun_normal
_EMBED_DEFAULT = "lecun_normal"


@dataclass
class Linen:
    """An initialized linen module: the module, its variables, and the owner of each module path."""

    module: Any
    variables: Any
    owners: dict[tuple[str, ...], tuple[str, Any]]


def _nnx() -> Any:
    return sys.modules.get("flax.nnx")


def _linen() -> Any:
    return sys.modules.get("flax.linen")


def recognizes(obj: Any) -> bool:
    """A flax nnx or linen module (or an initialized linen module), via ``sys.modules`` only."""
    if isinstance(obj, Linen):
        return True
    nnx, nn = _nnx(), _linen()
    return (nnx is not None and isinstance(obj, nnx.Module)) or (nn is not None and isinstance(obj, nn.Module))


def _takes_rngs(fn: Any) -> bool:
    try:  # a class by its __init__ (nnx's metaclass hides the constructor's signature)
        return "rngs" in inspect.signature(fn.__init__ if isinstance(fn, type) else fn).parameters
    except (TypeError, ValueError):
        return False


def build(factory: Callable[..., Any], seed: int, input_shape: tuple[int, ...] | None = None,
          **options: Any) -> Any:
    """An nnx module built with ``nnx.Rngs(seed)``, or a linen module initialized under ``jax.random.key(seed)``."""
    from initspec.frameworks.jax import import_jax

    jax = import_jax()
    callee = getattr(factory, "callee", None)
    if callee is not None and _takes_rngs(callee):
        from flax import nnx

        obj = factory(rngs=nnx.Rngs(seed))
    else:
        obj = factory()
    nn = _linen()
    if nn is not None and isinstance(obj, nn.Module):
        return init_linen(obj, jax.random.key(seed), input_shape)
    if not recognizes(obj):
        raise InputError(f"the target returned {type(obj).__name__}, not a flax nnx or linen module")
    return obj


def init_linen(module: Any, key: Any, input_shape: tuple[int, ...] | None) -> Linen:
    """``module.init(key, jnp.ones(input_shape))``, recording the owner of each module path."""
    import jax.numpy as jnp

    nn = _linen()
    if input_shape is None:
        raise InputError(f"the linen {type(module).__name__} needs --input-shape (the dummy input, batch "
                         "dimension included, e.g. 1,28,28,1)")
    owners: dict[tuple[str, ...], tuple[str, Any]] = {}

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:
        m = context.module
        if m.scope is not None:
            owners.setdefault(tuple(m.scope.path), (type(m).__name__, getattr(m, "features", None)))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        variables = module.init(key, jnp.ones(tuple(input_shape), jnp.float32))
    return Linen(module, variables, owners)


def _fans(owner: str, role: str, shape: tuple[int, ...], features: Any) -> tuple[int, int]:
    if len(shape) < 2:
        n = max(math.prod(shape), 1)
        return n, n
    if owner == "Embed":
        return shape[-1], shape[-1]
    if owner in ("DenseGeneral", "LinearGeneral") and role == "kernel":
        k = len(features) if isinstance(features, (tuple, list)) else 1
        return math.prod(shape[:-k]), math.prod(shape[-k:])
    rf = math.prod(shape[:-2])  # jax's _compute_fans with in_axis=-2, out_axis=-1
    return shape[-2] * rf, shape[-1] * rf


def _default(owner: str, role: str, collection: str) -> str | None:
    if collection == "batch_stats":
        return {"mean": "zeros", "var": "ones"}.get(role)
    if role == "bias":
        return "zeros"
    if owner == "Embed" and role == "embedding":
        return _EMBED_DEFAULT
    if owner in _KERNEL_OWNERS and role == "kernel":
        return "flax_dense_default"
    if owner.endswith("Norm") and role == "scale":
        return "ones"
    return None


def _param(path: str, role: str, x: Any, owner: str, features: Any, collection: str, storage: Any,
           trainable: bool) -> Param:
    from initspec.frameworks.jax import to_numpy

    shape = tuple(int(d) for d in x.shape)
    fan_in, fan_out = _fans(owner, role, shape, features)
    return Param(path=path, shape=shape, dtype=str(np.dtype(x.dtype)), values=lambda: to_numpy(x), owner=owner,
                 role=role, layout="tf", fan_in=fan_in, fan_out=fan_out,
                 default=_default(owner, role, collection), storage=storage, trainable=trainable)


def _walk_linen(m: Linen) -> Iterator[Param]:
    from flax.core import meta

    def rec(node: Any, keys: tuple[str, ...], collection: str) -> Iterator[Param]:
        if isinstance(node, meta.AxisMetadata):  # boxed (nn.Partitioned): unbox the leaf, keep the dict order
            node = node.unbox()
        if isinstance(node, dict) or (hasattr(node, "items") and not hasattr(node, "shape")):
            for k in node:
                yield from rec(node[k], (*keys, str(k)), collection)
            return
        if not hasattr(node, "shape"):
            return
        owner, features = m.owners.get(keys[:-1], ("", None))
        prefix = () if collection == "params" else (collection,)
        yield _param(".".join((*prefix, *keys)), keys[-1], node, owner, features, collection,
                     ("flax", id(node)), collection == "params")

    for coll in m.variables:
        yield from rec(m.variables[coll], (), str(coll))


def _walk_nnx(model: Any) -> Iterator[Param]:
    from flax import nnx

    nodes = [(tuple(path), node) for path, node in nnx.iter_graph(model)]
    modules = {path: node for path, node in nodes if isinstance(node, nnx.Module)}  # children may come first
    for path, node in nodes:
        if not isinstance(node, nnx.Variable) or isinstance(node, nnx.RngState):
            continue
        owner = next((modules[path[:i]] for i in range(len(path) - 1, -1, -1) if path[:i] in modules), None)
        x = node.get_value() if hasattr(node, "get_value") else node.value
        if not hasattr(x, "shape"):
            continue
        features = getattr(owner, "out_features", None)
        collection = "batch_stats" if isinstance(node, nnx.BatchStat) else "params"
        yield _param(".".join(str(p) for p in path), str(path[-1]), x, type(owner).__name__ if owner else "",
                     features, collection, ("flax", id(node)), isinstance(node, nnx.Param))


def walk(model: Any) -> Iterator[Param]:
    """Every parameter (and batch statistic) of an nnx module or an initialized linen module."""
    if isinstance(model, Linen):
        yield from _walk_linen(model)
    else:
        yield from _walk_nnx(model)


def release(model: Any) -> None:
    """Drop the instance (arrays are freed with their last reference) and collect."""
    del model
    gc.collect()
