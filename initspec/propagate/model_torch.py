"""``--model`` on a torch ``nn.Module``: forward hooks on the leaves, gradient probes, residual branches.

Each leaf's floating output is recorded by a forward hook, which returns it plus a zero probe
(``zeros_like(out, requires_grad=True)``): the probe's gradient is d<r, y>/d(leaf output).  Probes
instead of ``register_full_backward_hook``: the latter wraps a module's inputs and outputs in views
that an in-place op (``nn.ReLU(inplace=True)``, torchvision's ResNets) may not modify, so a model
that runs fine on its own failed under initspec.  The input needs no gradient (an in-place op on it
would be refused too).  While the model runs, ``torch_residual.Recorder``'s function mode records
its residual branches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from initspec.propagate import leaves
from initspec.propagate.leaves import ModelError


def _stats(t: Any) -> dict[str, float]:
    return leaves.np_stats(t.detach().double().cpu().numpy(), 1)


def output(y: Any, target: str) -> Any:
    """The tensor the gradient is taken of: the output, its first element, or a transformers output's
    ``logits`` (else ``last_hidden_state``, else its first tensor); ModelError when there is none to use."""
    import torch

    for _ in range(100):  # nested tuples and dicts, bounded
        if isinstance(y, torch.Tensor):
            break
        if isinstance(y, Mapping) and y:
            y = next((y[k] for k in ("logits", "last_hidden_state") if isinstance(y.get(k), torch.Tensor)),
                     next(iter(y.values())))
        elif isinstance(y, (tuple, list)) and y:
            y = y[0]
        else:
            raise ModelError(f"--model {leaves.short(target)}: its output is {leaves.describe(y)}, not a tensor: "
                             "nothing to take the gradient of")
    if not isinstance(y, torch.Tensor):
        raise ModelError(f"--model {leaves.short(target)}: its output is nested too deep")
    if not y.is_floating_point():
        raise ModelError(f"--model {leaves.short(target)}: its output is a {y.dtype} tensor, not a real floating one")
    if y.numel() == 0:
        raise ModelError(f"--model {leaves.short(target)}: its output is an empty tensor {tuple(y.shape)}")
    if not y.requires_grad:
        raise ModelError(f"--model {leaves.short(target)}: its output is detached from the input (no gradient flows "
                         "through it)")
    return y


def torch_model(model: Any, target: str, input_shape: tuple[int, ...], seed: int = 0, *,
                timeout: float | None = leaves.DEFAULT_TIMEOUT, blocks: str | None = None,
                residual: bool = True) -> dict[str, Any]:
    """Per-leaf statistics of one built torch model, and its residual branches (``"residual"``)."""
    import torch

    from initspec.propagate.torch_residual import Recorder

    records: list[dict[str, Any]] = []
    probes: list[tuple[dict[str, Any], Any]] = []
    rec = Recorder(model, blocks) if residual else None
    handles = []
    for name, mod in model.named_modules():
        if next(iter(mod.children()), None) is not None:
            continue
        name = name or type(mod).__name__  # the model is itself one leaf

        def fwd(m: Any, inp: Any, out: Any, name: str = name) -> Any:
            if not (isinstance(out, torch.Tensor) and out.is_floating_point()):
                return None
            if rec is not None:
                rec.paused = True
            try:
                r: dict[str, Any] = {"index": len(records) + 1, "name": name, "type": type(m).__name__,
                                     "shape": list(out.shape[1:]), "forward": _stats(out), "backward": None}
                w = dict(m.named_parameters(recurse=False)).get("weight")
                if w is not None and w.dim() >= 2:
                    rf = int(w[0, 0].numel())
                    r["fan_in"], r["fan_out"] = int(w.shape[1] * rf), int(w.shape[0] * rf)
                records.append(r)
                e = torch.zeros_like(out, requires_grad=True)  # d<r, y>/de at e = 0 is d<r, y>/d(out)
                new = out + e
                probes.append((r, e))
                if rec is not None:
                    rec.alias(out, new)
                return new
            finally:
                if rec is not None:
                    rec.paused = False

        handles.append(mod.register_forward_hook(fwd))
    if rec is not None:
        rec.attach(model)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(*input_shape, generator=gen)
    what = leaves.short(target)
    try:
        # batch-norm and dropout as at inference: the init's own signal
        leaves.call(model.eval, what=f"{what}.eval()", timeout=timeout)

        def run() -> Any:
            if rec is None:
                return model(x)
            with rec.mode:
                return model(x)

        y = output(leaves.forward(target, input_shape, run, timeout=timeout), target)
        r = torch.randn(y.shape, generator=gen)

        def backward() -> None:
            (y * r).sum().backward()

        leaves.backward(what, backward, timeout=timeout)  # a custom autograd Function may fail here
        for r_, e in probes:
            if e.grad is not None:
                r_["backward"] = {"second_moment": float(e.grad.double().pow(2).mean())}
    finally:
        for h in handles:
            h.remove()
        if rec is not None:
            rec.detach()
    out = leaves.result(target, "torch", torch.__version__, input_shape, records)
    if rec is not None:
        out["residual_branches"] = rec.branches
        out["residual_error"] = rec.error
    return out
