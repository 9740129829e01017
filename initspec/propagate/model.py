"""Real models: per-leaf-layer forward statistics and gradient second moments (torch hooks).

``--model MODULE:ATTR[(literal args)]`` names an ``nn.Module`` class or factory (parsed with ast,
never evaluated); it is built after ``torch.manual_seed(seed)``, fed N(0, 1) inputs of
``--input-shape`` (batch first), and every leaf module's output is hooked (forward hooks; the
gradient of a random projection <r, y> of the output through ``register_full_backward_hook``'s
grad_output).  Real models are not meant to be preserving everywhere: by default this is a report;
``--max-growth`` / ``--min-shrink`` over the whole depth make it a check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initspec.errors import InputError


def _stats(t: Any) -> dict[str, float]:
    h = t.detach().double().cpu().numpy()
    if h.ndim < 2:
        h = h.reshape(-1, 1)
    axes = tuple(i for i in range(h.ndim) if i != 1)
    m = h.mean(axis=axes)
    sq = (h * h).mean(axis=axes)
    return {"second_moment": float(sq.mean()), "variance": float((sq - m * m).mean()), "sq_mean": float((m * m).mean())}


def torch_model(target: str, input_shape: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Per-leaf statistics of one torch model at init: the dict ``--json`` writes."""
    from initspec.frameworks import binding_for
    from initspec.frameworks.target import parse_target

    binding_for("torch")
    import torch

    t = parse_target(target)
    factory = t.load()
    torch.manual_seed(seed)
    try:
        model = factory(*t.args, **t.kwargs)
    except Exception as e:  # noqa: BLE001 - a model that cannot be built is bad input, in one line
        raise InputError(f"--model {target!r}: building it raised {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"--model {target!r}: returned {type(model).__name__}, not a torch.nn.Module")
    records: list[dict[str, Any]] = []
    index: dict[int, dict[str, Any]] = {}
    handles = []
    for name, mod in model.named_modules():
        if list(mod.children()):
            continue
        name = name or type(mod).__name__  # the model is itself one leaf

        def fwd(m: Any, inp: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                rec = {"index": len(records) + 1, "name": name, "type": type(m).__name__,
                       "shape": list(out.shape[1:]), "forward": _stats(out), "backward": None}
                params = dict(m.named_parameters(recurse=False))
                w = params.get("weight")
                if w is not None and w.dim() >= 2:
                    rf = int(np.prod(w.shape[2:])) if w.dim() > 2 else 1
                    rec["fan_in"], rec["fan_out"] = int(w.shape[1] * rf), int(w.shape[0] * rf)
                records.append(rec)
                index[id(m)] = rec

        def bwd(m: Any, gin: Any, gout: Any) -> None:
            rec = index.get(id(m))
            g = gout[0] if gout else None
            if rec is not None and g is not None:
                rec["backward"] = {"second_moment": float(g.detach().double().pow(2).mean())}

        handles.append(mod.register_forward_hook(fwd))
        handles.append(mod.register_full_backward_hook(bwd))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(*input_shape, generator=gen, requires_grad=True)
    model.eval()  # batch-norm and dropout as at inference: the init's own signal
    try:
        y = model(x)
    except Exception as e:  # noqa: BLE001 - the model rejects the input: one line, exit 2
        raise InputError(f"--input-shape {tuple(input_shape)}: {target} rejects it: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if isinstance(y, (tuple, list)):
        y = y[0]
    if not isinstance(y, torch.Tensor):
        y = getattr(y, "logits", None) or getattr(y, "last_hidden_state", None)
        if y is None:
            raise InputError(f"--model {target!r}: its output is not a tensor")
    r = torch.randn(y.shape, generator=gen)
    (y * r).sum().backward()
    for h in handles:
        h.remove()
    fw = [rec["forward"]["second_moment"] for rec in records]
    bw = [rec["backward"]["second_moment"] for rec in records if rec["backward"]]
    growth_f = fw[-1] / fw[0] if fw and fw[0] > 0 else math.nan
    growth_b = bw[0] / bw[-1] if bw and bw[-1] > 0 else math.nan
    return {"model": target, "framework": "torch", "version": torch.__version__, "input_shape": list(input_shape),
            "layers": records, "growth": {"forward": growth_f, "backward": growth_b}}


def check_growth(result: dict[str, Any], max_growth: float | None, min_shrink: float | None) -> list[str]:
    """The bounds violated over the whole depth (empty: within them, or none declared)."""
    bad = []
    for d, g in result["growth"].items():
        if max_growth is not None and not g <= max_growth:
            bad.append(f"{d} grows ×{g:.4g} over the depth (> --max-growth {max_growth:g})")
        if min_shrink is not None and not g >= min_shrink:
            bad.append(f"{d} shrinks to ×{g:.4g} over the depth (< --min-shrink {min_shrink:g})")
    return bad


def render(result: dict[str, Any]) -> str:
    lines = [f"initspec propagate --model {result['model']} (torch {result['version']}), input "
             f"{tuple(result['input_shape'])} N(0, 1)",
             f"{'#':>3}  {'layer':<28} {'type':<16} {'fwd E[h²]':>11} {'variance':>11} {'sq_mean':>11} "
             f"{'bwd E[g²]':>11}"]
    for r in result["layers"]:
        f, b = r["forward"], r["backward"]
        lines.append(f"{r['index']:>3}  {r['name'][:28]:<28} {r['type'][:16]:<16} {f['second_moment']:>11.4g} "
                     f"{f['variance']:>11.4g} {f['sq_mean']:>11.4g} {b['second_moment'] if b else math.nan:>11.4g}")
    g = result["growth"]
    lines.append(f"whole depth: forward ×{g['forward']:.4g}, backward ×{g['backward']:.4g} (last/first layer)")
    return "\n".join(lines)
