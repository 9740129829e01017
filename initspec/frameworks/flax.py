"""flax convention: a layer's default initializers, read off a freshly initialized layer.

``call`` names a module class (``flax.linen:Dense``, ``flax.nnx:Linear``); its literal
arguments, if any, are constructor arguments shared by every case.  Each case adds its own,
and ``param`` says which parameter to read ("/" or "." separate the path):

- linen: constructor keywords from ``kwargs``; ``args`` is ``[input_shape]`` or
  ``[input_shape, input_dtype]`` of the dummy input (default float32).  One draw is
  ``module.init(jax.random.key(seed), x)`` (recurrent cells: ``init(key, carry, x)`` with
  ``carry = initialize_carry(key, x.shape)``); ``param`` is a path into the variables, e.g.
  ``params/hi/kernel``.
- nnx: ``args``/``kwargs`` go to the constructor with ``rngs=nnx.Rngs(seed)``; ``param`` is an
  attribute path, e.g. ``hi.kernel``.

The dtype under test is passed as ``param_dtype``.  Draws are batched as in the jax binding:
``jit(vmap)`` over the seeds of the whole ``init`` (linen) or construction (nnx), the way a model
is initialized under ``jit``; ``--eager`` builds one module per seed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.frameworks.jax import batched, fast_eager_compiles, import_jax, jax_dtype, to_numpy

FRAMEWORK = "flax"
EXTRA = "flax"
CONVENTIONS = ("flax",)


def version() -> str:
    import_jax()
    import flax

    return flax.__version__


def _path(case: Any) -> list[str]:
    if not case.param:
        raise ValueError("the flax convention needs `param`, the parameter to read (e.g. params/kernel)")
    return [p for p in re.split(r"[/.]", case.param) if p]


def _linen_drawer(cls: Any, target: Any) -> Any:
    jax = import_jax()
    import flax.linen as nn
    import jax.numpy as jnp
    from flax.core import meta

    def one(case: Any, dtype: str) -> Any:
        """The parameter as a function of the seed (eager with an int, traced under jit(vmap))."""
        if not case.args:
            raise ValueError("a linen case needs args = [input_shape] (or [input_shape, input_dtype])")
        shape, in_dtype = case.args[0], case.args[1] if len(case.args) > 1 else "float32"
        module = cls(*target.args, **{**target.kwargs, **case.kwargs, "param_dtype": jax_dtype(dtype)})
        path = _path(case)

        def param(seed: Any) -> Any:
            key = jax.random.key(seed)
            x = jnp.ones(tuple(shape), in_dtype)
            if isinstance(module, nn.RNNCellBase):
                variables = module.init(key, module.initialize_carry(key, x.shape), x)
            else:
                variables = module.init(key, x)
            node = variables
            for part in path:
                if part not in node:
                    raise KeyError(f"{case.param!r}: no {part!r} among {sorted(node)}")
                node = node[part]
            return meta.unbox(node)

        return param

    return one


def _nnx_drawer(cls: Any, target: Any) -> Any:
    jax = import_jax()
    from flax import nnx

    def one(case: Any, dtype: str) -> Any:
        path = _path(case)

        def param(seed: Any) -> Any:
            # an int seed becomes jax.random.key(seed) inside Rngs; a traced one must be a key already
            rngs = nnx.Rngs(seed if isinstance(seed, int) else jax.random.key(seed))
            module = cls(*target.args, *case.args, **{**target.kwargs, **case.kwargs},
                         param_dtype=jax_dtype(dtype), rngs=rngs)
            node = module
            for part in path:
                if not hasattr(node, part):
                    raise AttributeError(f"{case.param!r}: {type(node).__name__} has no attribute {part!r}")
                node = getattr(node, part)
            return node.get_value() if isinstance(node, nnx.Variable) else node

        return param

    return one


def prepare(obj: Any, target: Any, convention: str):
    """A drawer building the module class ``obj`` per case and reading its ``param``."""
    import_jax()
    fast_eager_compiles()
    import flax.linen as nn
    from flax import nnx

    if isinstance(obj, type) and issubclass(obj, nn.Module):
        one = _linen_drawer(obj, target)
    elif isinstance(obj, type) and issubclass(obj, nnx.Module):
        one = _nnx_drawer(obj, target)
    else:
        raise InputError(f"--target {target.text!r}: the flax convention needs a flax.linen or flax.nnx "
                         f"Module class, got {type(obj).__name__}")

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        return to_numpy(one(case, dtype)(seed))

    draw.many = batched(one)
    draw.path = "jit(vmap)"
    return draw
