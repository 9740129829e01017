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
frame outside the excluded packages (JAX, Flax, initspec; :mod:`.sites`); seed-independent values
are computed by :mod:`.jaxeval`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from initspec.audit.trace import Write
from initspec.audit.trace import laws as L
from initspec.audit.trace.jaxeval import MOVES, evaluate
from initspec.audit.trace.sites import LazySite

#: a seed-independent array with more elements (and not all equal) is not computed: ``fixed``
KNOWN_CAP = 1 << 16
#: ops kept per value (a loop of a thousand scalings would otherwise grow without bound)
MAX_OPS = 64

KNOWN, FIXED, KEY, BITS, RANDOM = "known", "fixed", "key", "bits", "random"

#: primitives that move or copy elements without changing them (the law of each element stays)
SHAPE_OPS = MOVES
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
                out = evaluate(e, [np.asarray(v.value) for v in ins], avals, scalar=True)
            except Exception:  # noqa: BLE001 - a primitive that needs its shapes: computed below if small
                out = None
            if out is not None:
                return [Val(KNOWN, tuple(int(d) for d in avals[0].shape), value=out, splat=True, ops=ops, site=site)]
        if sum(math.prod(a.shape) for a in avals) > KNOWN_CAP or sum(v.size for v in ins) > 16 * KNOWN_CAP:
            return fixed
        try:
            outs = evaluate(e, [np.broadcast_to(v.value, v.shape) if v.splat else v.value for v in ins], avals)
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
