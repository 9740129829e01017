"""The sharded audit: a model initialized across ranks (torch.distributed: FSDP2, tensor parallel,
DTensor; JAX: ``jit`` with ``out_shardings``) audited where it lives, shard by shard.

- :func:`audit_world` -- ``initspec audit TARGET --world-size N``: starts the ranks, builds,
  parallelizes, initializes and audits (``launch.py``, ``rank.py``; JAX: ``jax.py``);
- :func:`audit_sharded` -- on ranks a training codebase has already set up (``loop.py``);
- :func:`mark_unwritten` -- after ``to_empty``, before the init: what the init never writes is
  then reported as ``uninitialized``.

Evidence is framework-neutral (``merge.py``), findings across ranks are ``findings.py``'s, the
groups, verdicts and report are the single-process audit's.
"""

from __future__ import annotations

import sys
from typing import Any

from initspec.audit.report import DEFAULT_ALPHA, DEFAULT_MAX_SEEDS
from initspec.errors import InputError

DEFAULT_RANK_TIMEOUT = 300.0

__all__ = ["DEFAULT_RANK_TIMEOUT", "audit_sharded", "audit_world", "mark_unwritten"]


def audit_sharded(model: Any, **kwargs: Any) -> Any:
    """See :func:`initspec.audit.shards.loop.audit_sharded`."""
    from initspec.audit.shards.loop import audit_sharded as run

    return run(model, **kwargs)


def mark_unwritten(model: Any) -> int:
    """See :func:`initspec.audit.shards.local.mark_unwritten`."""
    from initspec.audit.shards.local import mark_unwritten as mark

    return mark(model)


def _framework(tgt: Any) -> str:
    """torch, flax or jax: from the target's kind, the class it names, or one build on ``meta``."""
    from initspec.audit.targets import build_model
    from initspec.audit.walkers import walker_for

    if tgt.framework:
        return tgt.framework
    callee = getattr(tgt.factory, "callee", None)
    torch = sys.modules.get("torch")
    if isinstance(callee, type) and torch is not None and issubclass(callee, torch.nn.Module):
        return "torch"

    def once() -> Any:
        if torch is None:
            return tgt.factory()
        with torch.device("meta"):  # a torch model costs nothing there; another framework ignores it
            return tgt.factory()

    obj = build_model(tgt.text, once)
    walker = walker_for(obj)
    if walker is None:
        raise InputError(f"target {tgt.text!r} returned {type(obj).__module__}.{type(obj).__name__}, "
                         "not a torch, Flax or JAX model")
    if walker.FRAMEWORK == "keras":
        raise InputError(f"target {tgt.text!r}: --world-size audits torch, Flax and JAX models, not Keras")
    return walker.FRAMEWORK


def audit_world(target: str, *, world_size: int, parallelize: str | None = None, mesh: str | None = None,
                init: str | None = None, init_before_shard: bool = False, compare_unsharded: bool = False,
                rank_timeout: float = DEFAULT_RANK_TIMEOUT, spec: Any = None, seed: int = 0,
                seeds: int | None = None, max_seeds: int = DEFAULT_MAX_SEEDS, alpha: float = DEFAULT_ALPHA,
                layout: str | None = None, convention: str | None = None, strict: bool = False,
                input_shape: tuple[int, ...] | None = None) -> Any:
    """Audit ``target`` initialized across ``world_size`` ranks (torch) or devices (JAX).

    Raises InputError on bad input, BuildError when the model's code fails in this process, and
    :class:`~initspec.audit.shards.launch.RankFailure` (one line) when a rank fails.
    """
    from initspec.audit.shards.launch import check_settings, launch
    from initspec.audit.shards.loop import Settings
    from initspec.audit.shards.parallel import check_parallelize, parse_mesh
    from initspec.audit.shards.rank import Job, flow
    from initspec.audit.targets import parse_audit_target

    check_settings(world_size, rank_timeout)
    if seeds is not None and seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    shape = parse_mesh(mesh, world_size)
    tgt = parse_audit_target(target, convention)
    framework = _framework(tgt)
    if framework in ("jax", "flax"):
        from initspec.audit.shards.jax import audit_world_jax

        if parallelize or mesh or init or init_before_shard or compare_unsharded:
            raise InputError("--parallelize, --mesh, --init, --init-before-shard and --compare-unsharded are torch "
                             "options; a JAX target is sharded by jit's out_shardings over its devices and always "
                             "compared with its unsharded initialization")
        settings = Settings(target, spec, seed, seeds, max_seeds, alpha, layout, strict,
                            [f"sharded: {world_size} devices, jit with out_shardings (the last axis divisible by "
                             f"{world_size}, else the first, else replicated)"],
                            {"world_size": world_size, "flow": "jit(init, out_shardings)"})
        return audit_world_jax(target, world_size=world_size, settings=settings, convention=convention,
                               input_shape=input_shape, rank_timeout=rank_timeout)
    check_parallelize(parallelize, shape)
    job = Job(target, convention, parallelize, shape, init, init_before_shard, rank_timeout)
    job.settings = Settings(target, spec, seed, seeds, max_seeds, alpha, layout, strict,
                            [f"sharded: {world_size} ranks, mesh {'x'.join(map(str, shape))}; {flow(job)}"],
                            {"world_size": world_size, "mesh": list(shape), "parallelize": parallelize or "fsdp",
                             "flow": flow(job)})
    rep = launch(job, world_size)
    if compare_unsharded:
        from initspec.audit.shards.compare import compare

        compare(rep, job)
    return rep
