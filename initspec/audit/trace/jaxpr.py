"""The JAX recorder's core: what each output of an initialization's jaxpr holds, read off its equations.

``jax.make_jaxpr`` runs the initialization on abstract values (shapes and dtypes, nothing
allocated) and records every primitive it applies, each with the Python stack that applied it.
:class:`Interpreter` walks those equations once, giving every jaxpr variable an abstract value
(:class:`Val`):

- ``known``: no random ancestor, and computed (JAX's literals and the seed-independent
  arithmetic folded here, the way ``initspec.frameworks.jax.canonical_program`` lifts them: fans,
  scales, truncation bounds).  An array whose elements are all equal is kept as one number
  (``splat``), so ``jnp.zeros((10**6, 10**5))`` costs nothing; any other seed-independent array is
  computed only up to :data:`KNOWN_CAP` elements, else it is ``fixed`` (deterministic, not computed);
- ``key``: a PRNG key or key material, ``seeded`` when it descends from the run's key;
- ``bits``: raw random bits (``random_bits``), followed through JAX's uniform construction
  (shift right, or with the bits of 1.0, bitcast: U[1, 2) -- jax/_src/random/core.py:512-552,
  ``_uniform``);
- ``random``: a :class:`~initspec.audit.trace.laws.Law` every element follows, mapped through the
  algebra: ``mul``/``div``/``add``/``sub``/``neg`` by a known number -> ``affine``, ``erf_inv`` ->
  ``erfinv``, ``max``/``min``/``clamp`` by known numbers -> ``clamp``, shape-only operations keep
  the law.  Any other primitive on a random value makes it ``opaque``, naming the primitive.

Call-like equations (``jit``, ``custom_jvp_call``, ``remat``, ...) are entered; control flow
(``scan``, ``while``, ``cond``) on random values is opaque.  Identical draws (one key used twice)
have the same hash-consed ``node``.  Provenance: each equation's ``source_info`` names the first
frame outside the excluded packages (JAX, Flax, initspec); an equation inside a JAX-internal
``jit`` has none of its own (its traceback stops at the jit boundary) and takes the call's.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from initspec.audit.trace import Site, Write
from initspec.audit.trace import laws as L

#: a seed-independent array with more elements (and not all equal) is not computed: ``fixed``
KNOWN_CAP = 1 << 16
#: ops kept per value (a loop of a thousand scalings would otherwise grow without bound)
MAX_OPS = 64

KNOWN, FIXED, KEY, BITS, RANDOM = "known", "fixed", "key", "bits", "random"

#: primitives that move or copy elements without changing them (the law of each element stays)
SHAPE_OPS = frozenset({"reshape", "squeeze", "expand_dims", "transpose", "rev", "slice", "copy", "copy_p",
                       "stop_gradient", "optimization_barrier", "reduce_precision", "dynamic_slice",
                       "device_put", "sharding_constraint", "mesh_cast", "reshard"})
#: elementwise primitives whose value on an all-equal array is all-equal
ELEMENTWISE = frozenset({"add", "sub", "mul", "div", "max", "min", "neg", "sqrt", "rsqrt", "exp", "log", "pow",
                         "integer_pow", "square", "abs", "sign", "erf", "erf_inv", "tanh", "logistic", "sin",
                         "cos", "floor", "ceil", "round", "nextafter", "convert_element_type", "expm1", "log1p",
                         "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "select_n", "clamp", "rem",
                         "atan2", "exp2", "cbrt", "is_finite"})
#: seed-independent primitives left uncomputed (which platform runs: a question for the compiler)
NOT_FOLDED = frozenset({"platform_index"})
#: equations whose body is entered as if inlined
CALLS = frozenset({"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
                   "custom_vjp_call_jaxpr", "checkpoint", "remat", "remat2"})


class LazySite:
    """An equation's provenance, resolved only when a parameter asks for it."""

    __slots__ = ("_done", "_site", "exclude", "parent", "src")

    def __init__(self, src: Any, parent: LazySite | None, exclude: tuple[str, ...]) -> None:
        self.src, self.parent, self.exclude = src, parent, exclude
        self._site: Site | None = None
        self._done = False

    def resolve(self) -> Site | None:
        if not self._done:
            self._done = True
            self._site = user_site(self.src, self.exclude)
            if self._site is None and self.parent is not None:
                self._site = self.parent.resolve()
        return self._site


def excluded_dirs(*packages: str) -> tuple[str, ...]:
    """The source folders of initspec and of these packages (those imported): frames there are not the user's."""
    out = []
    for name in ("initspec", *packages):
        mod = sys.modules.get(name)
        for path in getattr(mod, "__path__", None) or ():
            out.append(os.path.join(path, ""))
    return tuple(out)


def user_site(source_info: Any, exclude: tuple[str, ...]) -> Site | None:
    """The first frame of an equation's stack outside JAX, the stdlib and ``exclude``."""
    from jax._src import source_info_util as siu  # frames of a jaxpr equation: no public API

    tb = getattr(source_info, "traceback", None)
    if tb is None:
        return None
    for frame in siu.user_frames(tb):
        if not frame.file_name.startswith(exclude):
            return Site(frame.file_name, frame.start_line, frame.function_name)
    return None


@dataclass(frozen=True, eq=False)
class Val:
    """The abstract value of one jaxpr variable (see the module doc)."""

    kind: str
    shape: tuple[int, ...]
    value: Any = None               # known: the array, or a 0-d array when every element is equal (splat)
    splat: bool = False
    law: L.Law | None = None        # random
    nbits: int = 0                  # bits: how many low bits are random
    orbits: int = 0                 # bits: the constant bits or-ed above them
    ops: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()   # primitives the algebra does not know that a random value went through
    seeded: bool = False
    node: int = 0                   # hash-consed expression: equal nodes are equal values
    site: LazySite | None = None
    declared: str | None = None     # the scheme the code named, while the value is what it returned
    regions: tuple[Write, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def scalar(self) -> float | None:
        """The number every element equals, when this is a known value that has one."""
        if self.kind != KNOWN:
            return None
        v = np.asarray(self.value)
        if self.splat or v.size == 1:
            return _num(v.reshape(-1)[0])
        if v.size and bool(np.all(v == v.reshape(-1)[0])):
            return _num(v.reshape(-1)[0])
        return None


def _known_key(v: Val) -> Any:
    """A seed-independent operand's identity in an expression: its value (its object, when large)."""
    arr = np.asarray(v.value)
    return ("known", v.shape, str(arr.dtype), arr.tobytes() if arr.size <= KNOWN_CAP else id(v.value))


@functools.lru_cache(maxsize=64)
def _floating(dtype: Any) -> bool:
    import jax.numpy as jnp

    return bool(jnp.issubdtype(dtype, jnp.floating))


def _num(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _is_key(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and _key_dtype(dtype)


@functools.lru_cache(maxsize=256)
def _key_dtype(dtype: Any) -> bool:
    import jax

    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))


def _sig(v: Any) -> Any:
    if hasattr(v, "eqns") or hasattr(v, "jaxpr") or callable(v):
        return id(v)
    text = repr(v)
    return text if len(text) < 400 else hash(text)


class Interpreter:
    """One walk over a jaxpr (and the jaxprs it calls); ``declared`` maps a variable to the scheme
    expression the code named for it (what a named initializer returned)."""

    def __init__(self, declared: dict[Any, str] | None = None, exclude: tuple[str, ...] = ()) -> None:
        from jax.extend import core as jcore

        self.declared = declared or {}
        self.exclude = exclude
        self._nodes: dict[Any, int] = {}
        self._literal = jcore.Literal

    def node(self, key: Any) -> int:
        return self._nodes.setdefault(key, len(self._nodes) + 1)

    # --- values ---------------------------------------------------------------------------

    def known(self, value: Any, aval: Any, site: LazySite | None = None) -> Val:
        shape = tuple(int(d) for d in aval.shape)
        if _is_key(aval):  # a key computed outside the trace (closed over): fixed, not the run's
            return Val(KEY, shape, node=self.node(("const-key", id(value))), site=site)
        arr = np.asarray(value)
        if arr.ndim == 0:
            return Val(KNOWN, shape, value=arr, splat=True, site=site)
        return Val(KNOWN, shape, value=arr, site=site)

    def literal_or_var(self, env: dict[Any, Val], v: Any) -> Val:
        if isinstance(v, self._literal):
            return self.known(np.asarray(v.val, dtype=v.aval.dtype) if not _is_key(v.aval) else v.val, v.aval)
        return env[v]

    # --- the walk -------------------------------------------------------------------------

    def run(self, jaxpr: Any, consts: list[Any], args: list[Val], outer: LazySite | None = None) -> list[Val]:
        """The abstract values of ``jaxpr``'s outputs, given its constants' values and its inputs'."""
        env: dict[Any, Val] = {}
        for v, c in zip(jaxpr.constvars, consts, strict=True):
            env[v] = c if isinstance(c, Val) else self.known(c, v.aval)
        for v, a in zip(jaxpr.invars, args, strict=True):
            env[v] = a
        for e in jaxpr.eqns:
            site = LazySite(e.source_info, outer, self.exclude)
            ins = [self.literal_or_var(env, v) for v in e.invars]
            outs = self.eqn(e, ins, site)
            for var, val in zip(e.outvars, outs, strict=True):
                if type(var).__name__ == "DropVar":
                    continue
                name = self.declared.get(var)
                env[var] = replace(val, declared=name) if name else val
        if outer is None:
            self.top = (jaxpr, env)
        return [self.literal_or_var(env, v) for v in jaxpr.outvars]

    def lost(self) -> list[Write]:
        """Writes into part of an array whose result no output uses: ``x.at[i].set(v)`` not assigned
        back (JAX arrays are immutable: the update is a new array, and this one was dropped)."""
        jaxpr, env = self.top
        live = {v for v in jaxpr.outvars if not isinstance(v, self._literal)}
        out = []
        for e in reversed(jaxpr.eqns):
            if any(v in live for v in e.outvars):
                live.update(v for v in e.invars if not isinstance(v, self._literal))
                continue
            if e.primitive.name not in ("scatter", "dynamic_update_slice"):
                continue
            ins = [self.literal_or_var(env, v) for v in e.invars]
            update = ins[-1] if e.primitive.name == "scatter" else ins[1]
            site = LazySite(e.source_info, None, self.exclude).resolve()
            region = _region_text(e, ins)
            out.append(Write(leaf_law(update), site, (*update.ops, e.primitive.name)[-MAX_OPS:], region=region,
                             target=f"a copy updated at {region} that was never assigned back"))
        return out[::-1]

    def eqn(self, e: Any, ins: list[Val], site: LazySite) -> list[Val]:
        name = e.primitive.name
        avals = [v.aval for v in e.outvars]
        if name in CALLS:
            sub = e.params.get("jaxpr", e.params.get("call_jaxpr"))
            if sub is not None:
                inner, consts = (sub.jaxpr, list(sub.consts)) if hasattr(sub, "consts") else (sub, [])
                if len(inner.invars) == len(ins):
                    return self.run(inner, consts, ins, site)
        kinds = {v.kind for v in ins}
        if name == "random_bits" and kinds == {KEY}:
            (key,) = ins
            shape = tuple(int(d) for d in avals[0].shape)
            node = self.node(("random_bits", key.node, _sig(e.params)))
            return [Val(BITS, shape, nbits=int(e.params["bit_width"]), ops=("random_bits",), seeded=key.seeded,
                        node=node, site=site)]
        if kinds <= {KNOWN, FIXED} and not any(_is_key(a) for a in avals):
            return self.fold(e, ins, avals, site)
        if len(avals) == 1 and (kinds & {BITS, RANDOM}) and not _is_key(avals[0]):
            return [self.random_rule(e, ins, avals, site)]
        return [self.mixed(e, ins, a, i, site) for i, a in enumerate(avals)]

    def mixed(self, e: Any, ins: list[Val], aval: Any, index: int, site: LazySite) -> Val:
        """One output of an equation on keys (or of several outputs on random values): a key, key
        material (integers made from a key), or a number drawn inside the equation -- opaque."""
        import jax.numpy as jnp

        name = e.primitive.name
        random = [v for v in ins if v.kind in (BITS, RANDOM)]
        if _is_key(aval) or (not random and not jnp.issubdtype(aval.dtype, jnp.floating)):
            return self.key_material(name, e.params, ins, aval, site)
        parts = tuple(_known_key(v) if v.kind == KNOWN else v.node for v in ins)
        common = dict(shape=tuple(int(d) for d in aval.shape), seeded=any(v.seeded for v in ins),
                      node=self.node((name, _sig(e.params), parts, index)), site=site,
                      ops=((random[0].ops if random else ()) + (name,))[-MAX_OPS:],
                      unknown=tuple(dict.fromkeys(u for v in random for u in v.unknown)))
        base = random[0] if random else Val(KEY, ())
        return self._opaque(name, common, base, f"{name} drawing from a key" if not random else None)

    def key_material(self, name: str, params: dict[str, Any], ins: list[Val], aval: Any, site: LazySite) -> Val:
        """A key, or data derived from one: its identity is the expression that made it."""
        parts = tuple(_known_key(v) if v.kind == KNOWN else v.node for v in ins)
        return Val(KEY, tuple(int(d) for d in aval.shape), seeded=any(v.seeded for v in ins),
                   node=self.node((name, _sig(params), parts)), site=site)

    # --- seed-independent values ----------------------------------------------------------

    def fold(self, e: Any, ins: list[Val], avals: list[Any], site: LazySite) -> list[Val]:
        """Compute a seed-independent equation where it is cheap; else its outputs are ``fixed``."""
        name = e.primitive.name
        ops = (*tuple(dict.fromkeys(op for v in ins for op in v.ops))[-MAX_OPS + 1:], name)
        fixed = [Val(FIXED, tuple(int(d) for d in a.shape), ops=ops, site=site, node=self.node(object()))
                 for a in avals]
        if any(v.kind == FIXED for v in ins) or name in NOT_FOLDED:
            return fixed
        shapes_only = name in SHAPE_OPS or name in ("broadcast_in_dim", "convert_element_type")
        if len(avals) == 1 and all(v.splat for v in ins) and (name in ELEMENTWISE or shapes_only):
            try:
                out = _bind(e, [np.asarray(v.value) for v in ins], avals, scalar=True)
            except Exception:  # noqa: BLE001 - a primitive that needs its shapes: computed below if small
                out = None
            if out is not None:
                return [Val(KNOWN, tuple(int(d) for d in avals[0].shape), value=out, splat=True, ops=ops, site=site)]
        if sum(math.prod(a.shape) for a in avals) > KNOWN_CAP or sum(v.size for v in ins) > 16 * KNOWN_CAP:
            return fixed
        try:
            outs = _bind(e, [np.broadcast_to(v.value, v.shape) if v.splat else v.value for v in ins], avals)
        except Exception:  # noqa: BLE001 - a primitive that will not run eagerly here: deterministic, not computed
            return fixed
        return [Val(KNOWN, tuple(int(d) for d in a.shape), value=o, ops=ops, site=site)
                for a, o in zip(avals, outs, strict=True)]

    # --- random values --------------------------------------------------------------------

    def random_rule(self, e: Any, ins: list[Val], avals: list[Any], site: LazySite) -> Val:
        """The algebra's rule for a primitive applied to random bits or a random law."""
        name = e.primitive.name
        shape = tuple(int(d) for d in avals[0].shape)
        rnd = [v for v in ins if v.kind in (BITS, RANDOM)]
        base = rnd[0]
        node = self.node((name, _sig(e.params), tuple(_known_key(v) if v.kind == KNOWN else v.node for v in ins)))
        ops = (*base.ops, name)[-MAX_OPS:]
        common = dict(shape=shape, seeded=any(v.seeded for v in ins), node=node, site=site, ops=ops,
                      unknown=tuple(dict.fromkeys(u for v in rnd for u in v.unknown)),
                      regions=base.regions)
        if name in ("scatter", "dynamic_update_slice") and ins[0].kind in (RANDOM, KNOWN) and len(ins) >= 2:
            return self._region(e, ins, common)
        if base.regions and name not in ("copy", "copy_p", "stop_gradient", "optimization_barrier"):
            return self._opaque(name, {**common, "regions": ()}, base, f"{name} after a write into part of the array")
        if base.kind == BITS:
            return self._bits(e, ins, avals[0], common)
        law = base.law
        shape_only = name in SHAPE_OPS or (name == "broadcast_in_dim" and math.prod(shape) == base.size)
        if len(rnd) == 1 and (shape_only or (name == "convert_element_type" and _floating(e.params["new_dtype"]))):
            return Val(RANDOM, law=law, declared=base.declared, **common)
        first_opaque = next((v for v in rnd if v.law is not None and v.law.kind == "opaque"), None)
        if first_opaque is not None:  # already no law: the first cause stays the reason
            return Val(RANDOM, law=first_opaque.law, **common)
        if len(rnd) > 1:
            if name == "concatenate" and all(v.kind == RANDOM and v.law is not None for v in ins) and all(
                    L.same_law(v.law, ins[0].law) for v in ins):
                return Val(RANDOM, law=ins[0].law, **common)
            return self._opaque(name, common, base, f"{name} of two random values")
        k = [v.scalar() for v in ins]
        i = ins.index(base)
        other = k[1 - i] if len(ins) == 2 else None
        if name == "convert_element_type":
            return self._opaque(name, common, base, "converted to a non-float type")
        if name == "neg":
            return Val(RANDOM, law=L.affine(law, -1.0, 0.0, "neg"), **common)
        if name in ("mul", "add", "sub", "div", "max", "min") and len(ins) == 2 and other is not None:
            if name == "mul":
                law = L.affine(law, other, 0.0, "mul")
            elif name == "add":
                law = L.affine(law, 1.0, other, "add")
            elif name == "sub":
                law = L.affine(law, 1.0, -other, "sub") if i == 0 else L.affine(law, -1.0, other, "sub")
            elif name == "div" and i == 0:
                law = L.affine(law, 1.0 / other if other else math.inf, 0.0, "div")
            elif name == "max":
                law = L.clamp(law, other, None)
            elif name == "min":
                law = L.clamp(law, None, other)
            else:
                return self._opaque(name, common, base, "a number divided by a random value")
            return Val(RANDOM, law=law, **common)
        if name == "clamp" and len(ins) == 3 and i == 1 and k[0] is not None and k[2] is not None:
            return Val(RANDOM, law=L.clamp(law, k[0], k[2]), **common)
        if name == "erf_inv":
            return Val(RANDOM, law=L.erfinv(law), **common)
        if name == "select_n" and ins[0].kind == KNOWN and k[0] is not None:
            chosen = ins[1 + int(k[0])]
            return replace(chosen, **{key: common[key] for key in ("site", "node", "ops")})
        why = f"{name} by an array of different values" if name in ("mul", "add", "sub", "div") else name
        return self._opaque(name, common, base, why)

    def _opaque(self, name: str, common: dict[str, Any], base: Val, why: str | None = None) -> Val:
        unknown = tuple(dict.fromkeys((*common["unknown"], why or name)))
        start = base.law.scheme() if base.law is not None and base.law.exact else None
        text = ", ".join(unknown) + (f" (after {start})" if start else "")
        return Val(RANDOM, law=L.opaque(f"the algebra does not know {text}"), **{**common, "unknown": unknown})

    def _bits(self, e: Any, ins: list[Val], aval: Any, common: dict[str, Any]) -> Val:
        """JAX's uniform construction on raw bits (jax/_src/random/core.py:536-552, ``_uniform``)."""
        import jax.numpy as jnp

        name = e.primitive.name
        bits = next(v for v in ins if v.kind == BITS)
        other = next((v.scalar() for v in ins if v is not bits), None)
        new = dict(kind=BITS, nbits=bits.nbits, orbits=bits.orbits, **common)
        if name == "convert_element_type" and jnp.issubdtype(aval.dtype, jnp.unsignedinteger) and (
                np.dtype(aval.dtype).itemsize * 8 >= bits.nbits and not bits.orbits):
            return Val(**new)
        if name == "shift_right_logical" and ins[0] is bits and other is not None and 0 <= other < bits.nbits \
                and not bits.orbits:
            return Val(**{**new, "nbits": bits.nbits - int(other)})
        if name == "or" and other is not None and int(other) >> bits.nbits << bits.nbits == int(other):
            return Val(**{**new, "orbits": int(other)})
        if name == "bitcast_convert_type" and jnp.issubdtype(aval.dtype, jnp.floating):
            dtype = np.dtype(aval.dtype)
            one = int(np.array(1.0, dtype).view(f"u{dtype.itemsize}"))
            if bits.orbits == one and bits.nbits == int(jnp.finfo(dtype).nmant):
                return Val(RANDOM, law=L.uniform(1.0, 2.0), **common)  # 1.0 + mantissa: U[1, 2)
        return self._opaque(name, common, bits, f"{name} of raw random bits")

    def _region(self, e: Any, ins: list[Val], common: dict[str, Any]) -> Val:
        """A write into part of an array (``x.at[i].set(v)``): the array's law, plus a region write."""
        operand, update = ins[0], ins[-1] if e.primitive.name == "scatter" else ins[1]
        where = _region_text(e, ins)
        law = leaf_law(update)
        write = Write(law, common["site"].resolve() if common["site"] else None, update.ops, region=where)
        return Val(RANDOM, **{**common, "law": leaf_law(operand), "regions": (*operand.regions, write)})


def _region_text(e: Any, ins: list[Val]) -> str:
    if e.primitive.name == "dynamic_update_slice":
        starts = [v.scalar() for v in ins[2:]]
        upd, full = ins[1].shape, ins[0].shape
        if all(s is not None for s in starts):
            parts = [":" if u == f else (f"{int(s)}" if u == 1 else f"{int(s)}:{int(s) + u}")
                     for s, u, f in zip(starts, upd, full, strict=False)]
            return f"[{', '.join(parts)}]"
        return "a dynamic slice"
    idx, update = ins[1], ins[-1]
    if idx.kind == KNOWN and np.asarray(idx.value).size <= 8:
        where = f"indices {np.asarray(np.broadcast_to(idx.value, idx.shape)).reshape(-1).tolist()}"
        return where + (f", update shape {update.shape}" if update.size > 1 else "")
    return f"indexed, update shape {update.shape}"


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


def _bind(e: Any, vals: list[Any], avals: list[Any], scalar: bool = False) -> Any:
    """Run one primitive on small numpy values (``scalar``: on 0-d stand-ins for all-equal arrays):
    in numpy when it is a common one, else eagerly in JAX."""
    import jax

    name = e.primitive.name
    if scalar:
        if name == "broadcast_in_dim" or name in SHAPE_OPS:
            return np.asarray(vals[0])
        out = _numpy(e, vals, avals)
        return None if out is None else out[0].reshape(())
    out = _numpy(e, vals, avals)
    if out is not None:
        return out
    with jax.ensure_compile_time_eval():
        res = e.primitive.bind(*vals, **e.params)
    return [np.asarray(o) for o in (res if e.primitive.multiple_results else [res])]


def leaf_law(v: Val) -> L.Law:
    """The law of every element of a value (see :mod:`initspec.audit.trace.laws`)."""
    if v.kind == RANDOM:
        return v.law if v.law is not None else L.opaque("no law")
    if v.kind == KNOWN:
        c = v.scalar()
        if c is not None:
            return L.constant(c)
        return L.deterministic(", ".join(v.ops) or "a computed array")
    if v.kind == FIXED:
        return L.deterministic(", ".join(v.ops) or "a computed array")
    if v.kind == BITS:
        return L.opaque("raw random bits")
    return L.opaque("key material, not a number drawn from it")
