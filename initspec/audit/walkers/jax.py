"""The JAX walker: under ``--convention jax`` the target is ``f(key) -> pytree of arrays``.

This covers JAX libraries whose modules are pytrees (an Equinox module built from a key) and
transform-style libraries through a factory (``lambda key: model.init(key, x)``).  Each instance
is ``f(jax.random.key(seed))``.  Parameters are the array leaves of
``jax.tree_util.tree_flatten_with_path`` (other leaves are left out; the audit skips non-float arrays,
PRNG keys among them, with a note), paths dotted from the key
path (``{"params": {"Dense_0": {"kernel"}}}`` -> ``Dense_0.kernel``: a leading ``params`` is
dropped as for linen; ``layers[0].weight`` -> ``layers.0.weight``).  The owner is the class of
the object holding the leaf.  A pytree says nothing about layouts: ``layout`` is None and the
fans come from the shape with ``--layout`` (default ``tf``: ``(*k, in, out)``, the JAX/Flax
convention; a 1-D shape has fan_in = fan_out = n).  One array object at two paths is tied.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from initspec.audit.walkers import Param
from initspec.errors import InputError

FRAMEWORK = "jax"


def recognizes(obj: Any) -> bool:
    """A pytree with at least one JAX array leaf (checked through ``sys.modules``)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    return any(isinstance(x, jax.Array) for x in jax.tree_util.tree_leaves(obj))


def build(factory: Callable[[Any], Any], seed: int, **options: Any) -> Any:
    """``factory(jax.random.key(seed))``; InputError when the result holds no JAX array."""
    from initspec.frameworks.jax import import_jax

    jax = import_jax()
    tree = factory(jax.random.key(seed))
    if not recognizes(tree):
        raise InputError(f"under --convention jax the target must return a pytree of arrays, got "
                         f"{type(tree).__name__} with no JAX array leaf")
    return tree


def _part(k: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _parent(tree: Any, keys: tuple) -> Any:
    node = tree
    for k in keys[:-1]:
        try:
            node = getattr(node, k.name) if hasattr(k, "name") else node[k.key if hasattr(k, "key") else k.idx]
        except (AttributeError, KeyError, IndexError, TypeError):
            return None
    return node


def walk(model: Any) -> Iterator[Param]:
    """Every array leaf under its dotted tree path; layout and fans left to the audit (``--layout``)."""
    import jax

    from initspec.frameworks.jax import to_numpy

    leaves, _ = jax.tree_util.tree_flatten_with_path(model)
    for keys, x in leaves:
        if not isinstance(x, (jax.Array, np.ndarray)):
            continue
        parts = [_part(k) for k in keys]
        if len(parts) > 1 and parts[0] == "params":
            parts = parts[1:]
        parent = _parent(model, keys)
        owner = type(parent).__name__ if parent is not None and type(parent) not in (dict, list, tuple) else ""
        try:
            dtype = str(np.dtype(x.dtype))
        except TypeError:  # a typed PRNG key array (key<fry>): the audit skips it with a note
            dtype = str(x.dtype)
        yield Param(path=".".join(parts) or "<root>", shape=tuple(int(d) for d in x.shape),
                    dtype=dtype, values=(lambda x=x: to_numpy(x)), owner=owner,
                    role=parts[-1] if parts else "", layout=None, storage=("jax", id(x)))


def release(model: Any) -> None:
    """Drop the instance and collect."""
    del model
    gc.collect()
