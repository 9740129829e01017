"""The Flax recorder: nnx and linen modules, traced without drawing (the JAX recorder's jaxpr walk).

- nnx: the module is built inside ``jax.make_jaxpr`` with ``rngs=nnx.Rngs(key)``, ``key`` the
  jaxpr's input (the audit builds it with ``nnx.Rngs(seed)``: the same stream); a constructor
  that takes no ``rngs`` is called as it is, and every draw it makes ignores the run's seed.
- linen: ``module.init(key, jnp.ones(input_shape))`` inside the same trace (``--input-shape``).

Parameters are listed by the Flax walker (``initspec.audit.walkers.flax``) on the traced module,
so paths, owners and fans are the drawn audit's; each walker parameter's ``storage`` names the
object holding its array (an nnx Variable, a linen leaf), which finds its output in the jaxpr.
Provenance is the first frame outside JAX, Flax and initspec: the line of the model that built
the layer (``self.fc = nnx.Linear(...)``, ``nn.Dense(32)(x)``), not Flax's own.
"""

from __future__ import annotations

from typing import Any

from initspec.audit.trace import NotThisFramework, Recording
from initspec.audit.trace.jax import record
from initspec.audit.walkers import Param

FRAMEWORK = "flax"


def _nnx_arrays(model: Any) -> dict[int, Any]:
    from flax import nnx

    out = {}
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Variable):
            out[id(node)] = node.get_value() if hasattr(node, "get_value") else node.value
    return out


def trace(target: Any, seed: int = 0, input_shape: tuple[int, ...] | None = None, **options: Any) -> Recording:
    """The traced laws of a Flax target (an AuditTarget or ``MODULE:ATTR`` text): nnx or linen."""
    import jax

    from initspec.audit.targets import parse_audit_target
    from initspec.audit.walkers import flax as walker

    tgt = parse_audit_target(target) if isinstance(target, str) else target
    callee = getattr(tgt.factory, "callee", None)

    def build(key: Any) -> tuple[list[Param], list[Any]]:
        if callee is not None and walker._takes_rngs(callee):
            from flax import nnx

            obj = tgt.factory(rngs=nnx.Rngs(key))
        else:
            obj = tgt.factory()
        nn = walker._linen()
        if nn is not None and isinstance(obj, nn.Module):
            model = walker.init_linen(obj, key, input_shape)
            arrays = {id(x): x for x in jax.tree_util.tree_leaves(model.variables)}
        elif walker.recognizes(obj):
            model, arrays = obj, _nnx_arrays(obj)
        else:  # another framework's model: the audit asks that framework's recorder
            raise NotThisFramework(f"{type(obj).__module__}.{type(obj).__name__}")
        params = list(walker.walk(model))
        return params, [arrays[p.storage[1]] for p in params]

    return record(FRAMEWORK, build, seed, tgt.text)
