"""Real models: per-leaf-layer forward statistics, gradient second moments and residual branches (torch, Keras, Flax).

``--model MODULE:ATTR[(literal args)]`` (the targets of ``initspec audit``, parsed with ast, never
evaluated) names a model class or factory; it is built under the guard after the framework's seed
(``torch.manual_seed``, ``keras.utils.set_random_seed``, ``nnx.Rngs(seed)`` or
``jax.random.key(seed)`` for linen), fed N(0, 1) inputs of ``--input-shape`` (batch first), and the
output of every leaf layer is recorded.  Gradients are those of a random projection <r, y> of the
output with respect to each leaf's output, through zero probes added to the leaf outputs
(``model_torch``, ``model_keras``, ``model_flax``).  Residual branches (torch, Keras): the ratio of
what each branch adds to the stream, measured and predicted (``residual``).

Real models are not meant to be preserving everywhere: by default this is a report; ``--max-growth``
/ ``--min-shrink`` over the whole depth and ``--max-branch-ratio`` make it a check.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from initspec.errors import InputError
from initspec.propagate import leaves, residual
from initspec.propagate.leaves import ModelError
from initspec.propagate.model_flax import flax_model
from initspec.propagate.model_keras import keras_model
from initspec.propagate.model_torch import torch_model

__all__ = ["ModelError", "check_growth", "flax_model", "keras_model", "load", "model_stats", "render", "torch_model"]


def load(target: str, extra: dict[str, Any] | None = None) -> Any:
    """Parse ``target``; with ``extra`` (``width=``), check the factory takes those keywords."""
    from initspec.audit.targets import _takes, parse_audit_target

    t = parse_audit_target(target)
    callee = getattr(t.factory, "callee", None)
    for k in extra or {}:
        if callee is None or not (_takes(callee, k) or _takes_var_kwargs(callee)):
            raise InputError(f"--widths: {leaves.short(target)} takes no {k}= parameter (the family is built as "
                             f"ATTR({k}=W) after the target's own arguments)")
        if k in _given_kwargs(target):
            raise InputError(f"--widths: {leaves.short(target)} already gives {k}=; leave it to --widths")
    return t


def _given_kwargs(target: str) -> dict[str, Any]:
    from initspec.frameworks.target import parse_target

    return dict(parse_target(target).kwargs) if ":" in target and not target.startswith(("hf:", "timm:")) else {}


def _takes_var_kwargs(fn: Any) -> bool:
    import inspect

    try:
        sig = inspect.signature(fn.__init__ if isinstance(fn, type) else fn)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _seed_frameworks(seed: int, dry: bool = False) -> tuple[bool, bool]:
    """Seed torch and Keras when imported (``dry``: only say which are); (torch seeded, keras seeded)."""
    torch, keras = sys.modules.get("torch"), sys.modules.get("keras")
    if not dry:
        if torch is not None:
            torch.manual_seed(seed)
        if keras is not None:
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
    return torch is not None, keras is not None


def build_seeded(target: str, seed: int = 0, extra: dict[str, Any] | None = None,
                 timeout: float | None = leaves.DEFAULT_TIMEOUT) -> tuple[Any, str]:
    """Build one instance under the framework's seed: (the model, its framework: torch, keras or flax)."""
    from initspec.audit.targets import _takes
    from initspec.audit.walkers import flax as flax_walker
    from initspec.audit.walkers import keras as keras_walker

    t = load(target, extra)
    extra = dict(extra or {})
    callee = getattr(t.factory, "callee", None)
    if t.framework == "flax" or (t.framework is None and callee is not None and _takes(callee, "rngs")):
        # the constructor takes rngs=: an nnx module, seeded through it (flax imported here when the
        # target's module imports it lazily)
        try:
            from flax import nnx
        except ImportError:
            raise InputError(f"--model {leaves.short(target)!r} takes rngs= (a Flax nnx module) but flax is not "
                             "installed") from None
        return leaves.build(target, lambda: t.factory(rngs=nnx.Rngs(seed), **extra), timeout), "flax"
    seeded = _seed_frameworks(seed)
    obj = leaves.build(target, lambda: t.factory(**extra), timeout)
    if _seed_frameworks(seed, dry=True) != seeded:
        # the factory imported torch or Keras itself, after the seed was set: its draws were unseeded;
        # seeded now, the second build draws what the seed says
        _seed_frameworks(seed)
        obj = leaves.build(target, lambda: t.factory(**extra), timeout)
    if keras_walker.recognizes(obj):  # first: on Keras' torch backend a Keras layer is an nn.Module too
        return obj, "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return obj, "torch"
    if flax_walker.recognizes(obj):
        return obj, "flax"
    raise InputError(f"--model {leaves.short(target)!r} returned {type(obj).__module__}.{type(obj).__name__}, "
                     "not a torch, Keras or Flax model")


def model_stats(target: str, input_shape: tuple[int, ...], seed: int = 0, *, extra: dict[str, Any] | None = None,
                timeout: float | None = leaves.DEFAULT_TIMEOUT, blocks: str | None = None,
                max_branch_ratio: float | None = None, residual_branches: bool = True,
                backward: bool = True) -> dict[str, Any]:
    """Load ``target``, build it seeded, and measure it: the dict ``--json`` writes (any framework)."""
    obj, framework = build_seeded(target, seed, extra, timeout)
    if blocks is not None and framework != "torch":
        raise InputError(f"--blocks chooses torch modules; {leaves.short(target)} is a {framework} model (Keras: its "
                         "Add layers are the residual adds)")
    if framework == "keras":
        out = keras_model(obj, target, input_shape, seed, timeout=timeout, residual=residual_branches,
                          backward=backward)
    elif framework == "torch":
        out = torch_model(obj, target, input_shape, seed, timeout=timeout, blocks=blocks, residual=residual_branches)
    else:
        out = flax_model(obj, target, input_shape, seed, timeout=timeout, backward=backward)
    branches, error = out.pop("residual_branches", None), out.pop("residual_error", None)
    if residual_branches:
        out["residual"] = None if branches is None else residual.summarize(branches, framework, max_branch_ratio,
                                                                            error)
    return out


def check_growth(result: dict[str, Any], max_growth: float | None, min_shrink: float | None) -> list[str]:
    """The bounds violated over the whole depth (empty: within them, or none declared)."""
    bad = []
    for d, g in result["growth"].items():
        if max_growth is not None and not g <= max_growth:
            bad.append(f"{d} grows ×{g:.4g} over the depth (> --max-growth {max_growth:g})")
        if min_shrink is not None and not g >= min_shrink:
            bad.append(f"{d} shrinks to ×{g:.4g} over the depth (< --min-shrink {min_shrink:g})")
    res = result.get("residual")
    if res and res.get("exceeding"):
        names = ", ".join(res["exceeding"][:5]) + ("..." if len(res["exceeding"]) > 5 else "")
        bad.append(f"{len(res['exceeding'])} residual branch(es) exceed --max-branch-ratio {res['max_ratio']:g}: "
                   f"{names}")
    return bad


def render(result: dict[str, Any]) -> str:
    fw = result["framework"] + (f"/{result['backend']}" if result.get("backend") else "")
    lines = [f"initspec propagate --model {result['model']} ({fw} {result['version']}), input "
             f"{tuple(result['input_shape'])} N(0, 1)",
             f"{'#':>3}  {'layer':<28} {'type':<16} {'fwd E[h²]':>11} {'variance':>11} {'sq_mean':>11} "
             f"{'bwd E[g²]':>11}"]
    for r in result["layers"]:
        f, b = r["forward"], r["backward"]
        lines.append(f"{r['index']:>3}  {r['name'][:28]:<28} {r['type'][:16]:<16} {f['second_moment']:>11.4g} "
                     f"{f['variance']:>11.4g} {f['sq_mean']:>11.4g} {b['second_moment'] if b else math.nan:>11.4g}")
    g = result["growth"]
    lines.append(f"whole depth: forward ×{g['forward']:.4g}, backward ×{g['backward']:.4g} (last/first layer)")
    if "residual" in result:
        res = result["residual"]
        lines += residual.render(res) if res is not None else \
            ["residual branches: not traced for Flax models (torch and Keras only)"]
    return "\n".join(lines)
