"""Seed-independent values of a jaxpr, computed: numpy for the common primitives, JAX for the rest.

An eager JAX call compiles each primitive once per signature (about 0.1 s each): the fans, scales
and bounds of an initialization are a handful of scalar operations, so numpy computes those (in
float32 for bfloat16 and float16, then rounded to the result's dtype, as XLA's CPU does) and JAX
runs only the rare rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: primitives that move or copy elements without changing them: an all-equal array stays all-equal
MOVES = frozenset({"reshape", "squeeze", "expand_dims", "transpose", "rev", "slice", "copy", "copy_p",
                   "stop_gradient", "optimization_barrier", "reduce_precision", "dynamic_slice",
                   "device_put", "sharding_constraint", "mesh_cast", "reshard"})


def _ufuncs() -> dict[str, Any]:
    from scipy import special

    return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
            "neg": np.negative, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "exp": np.exp, "log": np.log,
            "pow": np.power, "square": np.square, "abs": np.abs, "sign": np.sign, "erf": special.erf,
            "erf_inv": special.erfinv, "tanh": np.tanh, "logistic": special.expit, "sin": np.sin, "cos": np.cos,
            "floor": np.floor, "ceil": np.ceil, "nextafter": np.nextafter, "expm1": np.expm1, "log1p": np.log1p,
            "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
            "ge": np.greater_equal, "stop_gradient": lambda x: x, "copy": lambda x: x, "copy_p": lambda x: x,
            "exp2": np.exp2, "cbrt": np.cbrt, "is_finite": np.isfinite}


_UFUNCS: dict[str, Any] = {}


def _numpy(e: Any, vals: list[np.ndarray], avals: list[Any]) -> list[np.ndarray] | None:
    """The common seed-independent primitives in numpy (an eager JAX call compiles each one: 0.1 s)."""
    if not _UFUNCS:
        _UFUNCS.update(_ufuncs())
    name, p = e.primitive.name, e.params
    dtype = np.dtype(avals[0].dtype) if len(avals) == 1 else None
    vals = [np.asarray(v) for v in vals]
    # bfloat16 and float16 computed in float32, then rounded to the result's dtype (as XLA's CPU does)
    vals = [v.astype(np.float32) if v.dtype.kind == "V" or v.dtype == np.float16 else v for v in vals]
    floats = all(v.dtype.kind == "f" for v in vals)
    with np.errstate(all="ignore"):
        if name in _UFUNCS and (floats or name not in ("sqrt", "rsqrt", "exp", "log", "erf", "erf_inv", "pow")):
            out = _UFUNCS[name](*vals)
        elif name == "div" and floats:
            out = np.true_divide(*vals)
        elif name == "integer_pow":
            out = np.power(vals[0], p["y"]) if floats else None
        elif name in ("and", "or", "not") and all(np.asarray(v).dtype.kind in "biu" for v in vals):
            out = {"and": np.bitwise_and, "or": np.bitwise_or, "not": np.invert}[name](*vals)
        elif name == "convert_element_type":
            out = np.asarray(vals[0]).astype(p["new_dtype"])
        elif name == "select_n":
            out = np.choose(np.asarray(vals[0]).astype(np.int64), vals[1:])
        elif name == "clamp":
            out = np.clip(vals[1], vals[0], vals[2])
        elif name == "reshape":
            out = np.reshape(vals[0], p["new_sizes"])
        elif name == "squeeze":
            out = np.squeeze(vals[0], tuple(p["dimensions"]))
        elif name == "expand_dims":
            out = np.expand_dims(vals[0], tuple(p["dimensions"]))
        elif name == "transpose":
            out = np.transpose(vals[0], p["permutation"])
        elif name == "rev":
            out = np.flip(vals[0], tuple(p["dimensions"]))
        elif name == "broadcast_in_dim" and len(vals) == 1:
            x, shape = np.asarray(vals[0]), tuple(p["shape"])
            expanded = np.reshape(x, [x.shape[p["broadcast_dimensions"].index(i)] if i in p["broadcast_dimensions"]
                                      else 1 for i in range(len(shape))])
            out = np.broadcast_to(expanded, shape)
        elif name == "iota":
            shape, dim = tuple(p["shape"]), p["dimension"]
            out = np.broadcast_to(np.arange(shape[dim]).reshape([-1 if i == dim else 1 for i in range(len(shape))]),
                                  shape)
        elif name == "concatenate":
            out = np.concatenate(vals, axis=p["dimension"])
        elif name == "slice" and p.get("strides") in (None, (1,) * len(p["start_indices"])):
            out = np.asarray(vals[0])[tuple(slice(a, b) for a, b in zip(p["start_indices"], p["limit_indices"],
                                                                          strict=True))]
        else:
            return None
    if out is None or dtype is None:
        return None
    return [np.asarray(out).astype(dtype, copy=False)]


def evaluate(e: Any, vals: list[Any], avals: list[Any], scalar: bool = False) -> Any:
    """Run one primitive on small numpy values (``scalar``: on 0-d stand-ins for all-equal arrays):
    in numpy when it is a common one, else eagerly in JAX."""
    import jax

    name = e.primitive.name
    if scalar:
        if name == "broadcast_in_dim" or name in MOVES:
            return np.asarray(vals[0])
        out = _numpy(e, vals, avals)
        return None if out is None else out[0].reshape(())
    out = _numpy(e, vals, avals)
    if out is not None:
        return out
    with jax.ensure_compile_time_eval():
        res = e.primitive.bind(*vals, **e.params)
    return [np.asarray(o) for o in (res if e.primitive.multiple_results else [res])]
