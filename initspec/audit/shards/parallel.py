"""The parallelization a sharded audit applies: a user's ``(model, mesh) -> model`` (the torchtitan
way) or a built-in: ``fsdp`` (FSDP2 ``fully_shard`` per block, then the root; on a 2-D mesh that is
HSDP: replicated over ``dp``, sharded over ``tp``), ``tp`` (``ColwiseParallel`` and ``RowwiseParallel``
on alternating ``nn.Linear`` layers, replicated over ``dp`` on a 2-D mesh) and ``tp+fsdp`` (tensor
parallel over ``tp``, then FSDP2 over ``dp``).  Plus the mesh and the init step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from initspec.errors import InputError

BUILTINS = ("fsdp", "tp", "tp+fsdp")


def parse_mesh(text: str | None, world: int) -> tuple[int, ...]:
    """``2x2`` -> (2, 2); None -> (world,).  Its product must be the world size."""
    if text is None:
        return (world,)
    if not re.fullmatch(r"\s*\d+(\s*x\s*\d+)?\s*", text):
        raise InputError(f"--mesh {text!r}: expected N or DPxTP, e.g. 2x2")
    shape = tuple(int(s) for s in text.replace(" ", "").split("x"))
    if any(s < 1 for s in shape) or math.prod(shape) != world:
        raise InputError(f"--mesh {text}: its {math.prod(shape)} ranks are not --world-size {world}")
    return shape


def check_parallelize(text: str | None, shape: tuple[int, ...]) -> None:
    """Bad input before any rank starts: an unknown built-in, a MODULE:ATTR that does not load."""
    if text is None or text in BUILTINS:
        if text == "tp+fsdp" and len(shape) != 2:
            raise InputError("--parallelize tp+fsdp needs a 2-D --mesh DPxTP, e.g. 2x2")
        return
    if ":" not in text:
        raise InputError(f"--parallelize {text!r}: expected {', '.join(BUILTINS)} or MODULE:ATTR, "
                         "a function (model, mesh) -> model")
    load_function(text)


def load_function(text: str) -> Callable[..., Any]:
    from initspec.frameworks.target import parse_target

    try:
        fn = parse_target(text).load()
    except InputError as e:
        raise InputError(str(e).replace("--target ", "--parallelize ", 1)) from None
    if not callable(fn):
        raise InputError(f"--parallelize {text}: {type(fn).__name__} is not callable")
    return fn


def mesh_names(shape: tuple[int, ...], parallelize: str | None) -> tuple[str, ...]:
    if len(shape) == 2:
        return ("dp", "tp")
    return ("tp",) if parallelize == "tp" else ("dp",)


def make_mesh(device: str, shape: tuple[int, ...], parallelize: str | None) -> Any:
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device, shape, mesh_dim_names=mesh_names(shape, parallelize))


def blocks(model: Any) -> list[Any]:
    """The blocks FSDP2 wraps one by one: the members of every ModuleList/ModuleDict with parameters
    (transformer layers), else the root's children with parameters."""
    from torch import nn

    found: list[tuple[str, Any]] = []
    for name, m in model.named_modules():
        inside = any(name == b or name.startswith(b + ".") for b, _ in found)
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)) and not inside:  # the outermost lists only
            found += [(f"{name}.{c}" if name else c, sub) for c, sub in m.named_children()
                      if any(True for _ in sub.parameters())]
    if found:
        return [m for _, m in found]
    return [c for c in model.children() if any(True for _ in c.parameters())]


def fsdp(model: Any, mesh: Any) -> Any:
    from torch.distributed.fsdp import fully_shard

    for b in blocks(model):
        fully_shard(b, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def tp(model: Any, mesh: Any) -> Any:
    from torch import nn
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError("--parallelize tp: the model has no nn.Linear layer to shard")
    plan = {name: ColwiseParallel() if i % 2 == 0 else RowwiseParallel() for i, name in enumerate(linears)}
    return parallelize_module(model, mesh, plan)


def apply(text: str | None, model: Any, mesh: Any) -> Any:
    """The parallelization named by ``text`` applied to ``model`` on ``mesh`` (2-D: dp x tp)."""
    two_d = mesh.ndim == 2
    if text is None or text == "fsdp":
        return fsdp(model, mesh)
    if text == "tp":
        return tp(model, mesh["tp"] if two_d else mesh)
    if text == "tp+fsdp":
        model = tp(model, mesh["tp"])
        return fsdp(model, mesh["dp"])
    out = load_function(text)(model, mesh)
    return model if out is None else out


def init_step(model: Any, method: str | None) -> tuple[Callable[[], Any], str]:
    """The init called after ``to_empty``: ``--init METHOD``, else the model's ``init_weights()``,
    else its ``reset_parameters()``, else every module's ``reset_parameters()``."""
    if method is not None:
        fn = getattr(model, method, None)
        if not callable(fn):
            raise InputError(f"--init {method}: {type(model).__name__} has no method {method}()")
        return fn, f"{method}()"
    for name in ("init_weights", "reset_parameters"):
        fn = getattr(model, name, None)
        if callable(fn):
            return fn, f"{name}()"

    def each() -> None:
        for m in model.modules():
            if m is not model and callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()

    return each, "reset_parameters() of every module"
