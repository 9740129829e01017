"""``--model`` on a Flax module: nnx (leaf classes swapped for recording subclasses) or linen (intercept_methods).

nnx: for the run, each leaf ``nnx.Module`` has its class swapped for a subclass whose ``__call__``
records (restored afterwards); linen: ``nn.intercept_methods`` on every leaf module's ``__call__``,
after ``init`` under ``jax.random.key(seed)``.  Gradients through ``jax.grad`` over zero probes.
Residual branches are not traced in Flax (no op-level hook without tracing the jaxpr): the report
says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from initspec.propagate import leaves
from initspec.propagate.leaves import ModelError, Probe


def _jax_probe() -> Probe:
    import jax.numpy as jnp

    def is_float(out: Any) -> bool:
        return hasattr(out, "dtype") and hasattr(out, "shape") and bool(jnp.issubdtype(out.dtype, jnp.floating))

    return Probe(is_float, lambda a: np.asarray(a))


def _jax_grads(probe: Probe, run: Callable[[Any], Any], x: Any, r: Any) -> list[Any]:
    """d<r, y>/d(leaf output) through ``jax.grad`` over zero probes added to the leaf outputs."""
    import jax
    import jax.numpy as jnp

    def loss(probes: list[Any]) -> Any:
        probe.probes, probe.k = probes, 0
        return jnp.sum(run(x).astype(jnp.float32) * r)

    return [np.asarray(g) for g in jax.grad(loss)([jnp.zeros(s, jnp.float32) for s in probe.shapes])]


def flax_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0, *,
               timeout: float | None = leaves.DEFAULT_TIMEOUT, backward: bool = True) -> dict[str, Any]:
    """Per-leaf statistics of one Flax module: an nnx module as built, or a linen module (init under seed)."""
    import flax
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed + 1)
    x = jnp.asarray(rng.standard_normal(tuple(input_shape)).astype("float32"))
    probe = _jax_probe()
    what = leaves.short(target)
    nn = sys.modules.get("flax.linen")
    if nn is not None and isinstance(model, nn.Module):
        run, kind = _linen_runner(model, target, x, seed, probe, timeout), "linen"
    else:
        run, kind = _nnx_runner(model, probe, what, timeout), "nnx"

    def first(a: Any) -> Any:
        y = leaves.first_leaf(run(a))
        if not probe.is_float(y) or not int(np.prod(y.shape)):
            raise ModelError(f"--model {what}: its output is {leaves.describe(y)}, not a non-empty floating array")
        return y

    try:
        y = leaves.forward(target, input_shape, first, x, timeout=timeout)
        r = jnp.asarray(rng.standard_normal(tuple(y.shape)).astype("float32"))
        grads = None if not backward else leaves.backward(what, _jax_grads, probe, first, x, r, timeout=timeout)
        probe.set_grads(grads)
    finally:
        restore = getattr(run, "restore", None)
        if restore is not None:
            restore()
    out = leaves.result(target, "flax", f"{flax.__version__} (jax {jax.__version__})", input_shape, probe.records,
                        kind)
    out["residual_branches"] = None  # not traced in Flax
    return out


def _nnx_runner(model: Any, probe: Probe, what: str, timeout: float | None) -> Callable[[Any], Any]:
    """Every leaf nnx.Module's class swapped, for the run, for a subclass whose __call__ feeds the probe."""
    from flax import nnx

    leaves_ = [(path, m) for path, m in nnx.iter_modules(model) if len(list(nnx.iter_modules(m))) == 1]
    subclasses: dict[type, type] = {}
    names: dict[int, tuple[str, tuple[int, int] | None]] = {}
    swapped = []
    for path, m in leaves_:
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
                        leaves.kernel_fans(kernel) if kernel is not None else None)
        object.__setattr__(m, "__class__", subclasses[cls])
        swapped.append((m, cls))

    def restore() -> None:
        for m, cls in swapped:
            object.__setattr__(m, "__class__", cls)

    if hasattr(model, "eval"):
        # deterministic dropout, batch-norm on its running averages: the init's own signal
        try:
            leaves.call(model.eval, what=f"{what}.eval()", timeout=timeout)
        except BaseException:
            restore()
            raise

    def run(x: Any) -> Any:
        return model(x)

    run.restore = restore  # type: ignore[attr-defined]
    return run


def _linen_runner(model: Any, target: str, x: Any, seed: int, probe: Probe,
                  timeout: float | None) -> Callable[[Any], Any]:
    """A linen module initialized under ``jax.random.key(seed)``, applied with every leaf's __call__ intercepted."""
    import jax
    from flax import linen as nn

    variables = leaves.forward(target, tuple(x.shape), model.init, jax.random.key(seed), x, timeout=timeout)
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
        return probe(name, type(m).__name__, leaves.kernel_fans(kernel) if kernel is not None else None, out)

    mutable = [k for k in variables if k != "params"]

    def run(a: Any) -> Any:
        with nn.intercept_methods(interceptor):
            y = model.apply(variables, a, rngs={"dropout": jax.random.key(seed + 2)}, mutable=mutable or False)
        return y[0] if mutable else y

    return run
