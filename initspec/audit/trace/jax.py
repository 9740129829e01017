"""The JAX recorder: a pytree target ``f(key) -> pytree`` (``--convention jax``), traced without drawing.

``jax.make_jaxpr(f)(jax.random.key(seed))`` runs ``f`` on abstract values: nothing is allocated,
however large the arrays, and every primitive it applies is recorded with the Python line that
applied it.  The run's key is the jaxpr's input, so which draws follow the seed is read off the
graph: a draw whose key does not descend from that input (``jax.random.key(0)`` inside ``f``)
ignores the seed whatever the seed is (``seed_follows=False``).  :mod:`.jaxpr` turns each output
into a law; :mod:`.named` says which ``jax.nn.initializers`` closure returned it (the declared
scheme, kept where it gives the traced law on the parameter's fans).  Two outputs with the same
expression (one key used for two parameters) are identical draws: ``copy_of``.

:func:`record` is shared with the Flax recorder (``initspec.audit.trace.flax``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from initspec.audit.trace import NotThisFramework, Recording, Traced, Write
from initspec.audit.trace import laws as L
from initspec.audit.trace.jaxpr import BITS, KEY, RANDOM, Interpreter, Val, leaf_law
from initspec.audit.trace.sites import excluded_dirs
from initspec.audit.walkers import Param
from initspec.errors import InputError

FRAMEWORK = "jax"
#: scheme kinds with no elementwise law: named where the trace is opaque (as the torch recorder does)
STRUCTURED = ("orthogonal", "identity", "dirac", "sparse")


def _unallocated(path: str) -> Callable[[], Any]:
    def values() -> Any:
        raise RuntimeError(f"{path}: traced, not allocated (the trace has no values)")
    return values


def fans(p: Param, layout: str = "tf") -> tuple[float, float]:
    """The parameter's fans: the walker's, else the layout's (as the audit computes them)."""
    from initspec.spec.fans import get_layout

    if p.fan_in is not None and p.fan_out is not None:
        return float(p.fan_in), float(p.fan_out)
    if len(p.shape) >= 2:
        fi, fo = get_layout(p.layout or layout).fans(p.shape)
        return float(fi), float(fo)
    n = float(max(math.prod(p.shape), 1))
    return n, n


def _declared(expr: str | None, law: L.Law, p: Param, layout: str) -> str | None:
    """``expr`` when it is the traced law on this parameter's fans (else the name would mislead).

    Constants computed in the parameter's own dtype round to it (JAX's ``variance_scaling`` computes
    its scale in ``dtype``: a bfloat16 ``he_uniform`` limit is 0.30664 for sqrt(6/64) = 0.30619), so
    the comparison allows that dtype's epsilon."""
    from initspec.spec.reference import FLOAT_DTYPES, eps
    from initspec.spec.schemes import resolve

    if not expr:
        return None
    try:
        if not law.exact:  # a structured scheme (orthogonal) has no elementwise law to compare
            return expr if law.kind == "opaque" and resolve(expr).kind in STRUCTURED else None
        rtol = max(L.RTOL, eps(p.dtype)) if p.dtype in FLOAT_DTYPES else L.RTOL
        return expr if L.same_law(L.from_scheme(expr, *fans(p, layout)), law, rtol=rtol) else None
    except Exception:  # noqa: BLE001 - a name the spec cannot resolve is not shown
        return None


def record(framework: str, build: Callable[[Any], tuple[list[Param], list[Any]]], seed: int, what: str,
           packages: tuple[str, ...] = ("flax",), layout: str = "tf") -> Recording:
    """Trace ``build(key) -> (params, arrays)`` (one array per parameter) under ``jax.make_jaxpr``
    with the run's key as its input, and say what each parameter holds.  The model's own code
    failing is a BuildError (``what`` names it), bad input an InputError."""
    from initspec.audit.targets import build_model
    from initspec.audit.trace.named import capture
    from initspec.frameworks.jax import import_jax

    jax = import_jax()
    box: dict[str, list[Param]] = {}

    def fn(key: Any) -> list[Any]:  # a new function per trace: make_jaxpr caches by function
        params, arrays = build(key)
        box["params"] = params
        return arrays

    def trace_it() -> Any:
        try:  # an abstract key: the seed's value never matters to the trace (eager jax.random.key would compile)
            return jax.make_jaxpr(fn)(jax.eval_shape(jax.random.key, seed))
        except NotThisFramework as e:  # not the model's failure: the audit asks the next recorder
            return e

    with capture() as named, _short_tracer_errors():
        closed = build_model(what, trace_it)
    if isinstance(closed, NotThisFramework):
        raise closed
    interp = Interpreter(named, excluded_dirs("jax", "jaxlib", *packages))
    seed_key = Val(KEY, (), seeded=True, node=interp.node("the run's key"))
    outs = interp.run(closed.jaxpr, list(closed.consts), [seed_key])
    params = [replace(p, values=_unallocated(p.path)) for p in box["params"]]
    traced: dict[str, Traced] = {}
    first: dict[int, Param] = {}
    for p, v in zip(params, outs, strict=True):
        law = leaf_law(v)
        if v.kind in (RANDOM, BITS) and v.unknown and law.kind != "opaque":
            law = L.opaque(f"the algebra does not know {', '.join(v.unknown)}")
        declared = _declared(v.declared, law, p, layout)
        if law.kind == "opaque" and v.declared and not declared:  # what the code named, not claimed as the law
            law = L.opaque(f"{law.why}; the code called {v.declared}")
        site = v.site.resolve() if v.site is not None else None
        write = Write(law, site, v.ops, declared, named=(v.declared,) if v.declared else ())
        t = Traced(p.path, law, [write, *v.regions])
        if v.kind in (RANDOM, BITS) and law.kind != "constant":
            t.seed_follows = v.seeded
            twin = first.setdefault(v.node, p)
            if twin is not p and twin.storage != p.storage:
                t.copy_of = twin.path
        traced[p.path] = t
    notes = [f"traced with jax.make_jaxpr: {len(closed.jaxpr.eqns)} top-level equations, nothing allocated"]
    return Recording(framework, params, traced, lost=interp.lost(), notes=notes)


@contextmanager
def _short_tracer_errors() -> Iterator[None]:
    """Tracers' error messages without their origin while tracing.

    ``getattr(tracer, "sharding", None)`` raises an AttributeError whose message JAX builds by
    walking every equation traced so far back to the tracer's origin (jax/_src/core.py:1040-1047,
    ``DynamicJaxprTracer._origin_msg`` -> ``find_progenitors``); Flax's ``Variable.set_value`` asks it
    on every RNG count update (flax/nnx/variablelib.py:1712-1719, flax 0.12.8), so building a model
    with N draws costs O(N^2): 12.7 s for a Llama-70B-shaped nnx model, 1.85 s without it.  The message
    only ever reaches a user when the model's own code fails (a BuildError's first line)."""
    try:
        from jax._src.interpreters import partial_eval as pe
        tracer = pe.DynamicJaxprTracer
        original = tracer._origin_msg
    except (ImportError, AttributeError):  # another JAX: nothing to shorten
        yield
        return
    tracer._origin_msg = lambda self: ""
    try:
        yield
    finally:
        tracer._origin_msg = original


def _ids(tree: Any) -> dict[int, Any]:
    import jax

    return {id(x): x for x in jax.tree_util.tree_leaves(tree)}


def trace(target: Any, seed: int = 0, layout: str | None = None, **options: Any) -> Recording:
    """The traced laws of a pytree target ``f(key)`` (an AuditTarget or ``MODULE:ATTR`` text)."""
    from initspec.audit.targets import parse_audit_target
    from initspec.audit.walkers import jax as walker

    tgt = parse_audit_target(target, "jax") if isinstance(target, str) else target
    if tgt.framework != "jax":  # f(key) is the --convention jax target; the drawn audit builds no other pytree
        raise NotThisFramework(f"{tgt.text} (not a --convention jax target)")

    def build(key: Any) -> tuple[list[Param], list[Any]]:
        tree = tgt.factory(key)
        if not walker.recognizes(tree):
            raise InputError(f"under --convention jax the target must return a pytree of arrays, got "
                             f"{type(tree).__name__} with no JAX array leaf")
        params = list(walker.walk(tree))
        ids = _ids(tree)
        return params, [ids[p.storage[1]] for p in params]

    return record(FRAMEWORK, build, seed, tgt.text, layout=layout or "tf")


def trace_initializer(init: Callable[..., Any], shape: tuple[int, ...], dtype: str = "float32",
                      fans_: tuple[float, float] | None = None) -> Traced:
    """What ``init(key, shape, dtype)`` (a ``jax.nn.initializers`` initializer, or any function of that
    form) draws, traced: its law, the line, the scheme it named (checked on ``fans_``, default the tf
    layout's fans of ``shape``)."""
    from initspec.frameworks.jax import jax_dtype

    shape = tuple(int(d) for d in shape)
    fi, fo = fans_ if fans_ is not None else (None, None)
    param = Param("init", shape, dtype, _unallocated("init"), layout="tf",
                  fan_in=None if fi is None else int(fi), fan_out=None if fo is None else int(fo))

    def build(key: Any) -> tuple[list[Param], list[Any]]:
        return [param], [init(key, shape, jax_dtype(dtype))]

    return record(FRAMEWORK, build, 0, getattr(init, "__qualname__", "the initializer")).traced["init"]
