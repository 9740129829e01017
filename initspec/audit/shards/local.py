"""What one torch rank holds: each parameter's local shard (a DTensor's ``to_local()``, or a plain
tensor every rank holds whole), where it sits in the global tensor, and its statistics, read chunk
by chunk without a copy.  Also the sentinel: a NaN bit pattern written into storage after
``to_empty`` and before the model's init, so that storage the init never wrote is seen as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from initspec.audit.shards.merge import CHUNK, SENTINEL, ShardRecord, stream

_INT_OF = {"float32": "int32", "float64": "int64", "float16": "int16", "bfloat16": "int16"}


def _dtype(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _is_dtensor(t: Any) -> bool:
    import sys

    tensor_mod = sys.modules.get("torch.distributed.tensor")
    return tensor_mod is not None and isinstance(t, tensor_mod.DTensor)


def _local(t: Any) -> Any:
    return t.to_local() if _is_dtensor(t) else t


def _is_shard(pl: Any) -> bool:
    # FSDP2 on a tensor-parallel mesh shards with _StridedShard, which is not a Shard subclass
    return bool(pl.is_shard()) or type(pl).__name__ == "_StridedShard"


def tensors(model: Any, buffers: bool = True) -> Iterator[tuple[str, str, Any]]:
    """(path, kind, tensor) for every parameter (tied ones once, under their first name) and, with
    ``buffers``, every floating-point buffer."""
    for path, p in model.named_parameters():
        yield path, "param", p
    if buffers:
        for path, b in model.named_buffers():
            if b is not None and b.is_floating_point():
                yield path, "buffer", b


def mark_unwritten(model: Any) -> int:
    """Fill every floating-point parameter and buffer of ``model`` with initspec's sentinel NaN
    pattern; call it after ``to_empty`` and before the init, and the sharded audit reports what
    the init never wrote as ``uninitialized``.  Returns the number of values marked."""
    import torch

    n = 0
    with torch.no_grad():
        for _, _, t in tensors(model):
            name = _dtype(t)
            if name not in SENTINEL or t.device.type == "meta":
                continue
            local = _local(t)
            local.view(getattr(torch, _INT_OF[name])).fill_(SENTINEL[name][1])  # every pattern < 2**(bits-1)
            n += local.numel()
    return n


def placement_of(t: Any, rank: int) -> tuple[tuple, str, str, tuple[int, ...] | None]:
    """(key, placements, mesh, offset) of the tensor on this rank.  The key holds the coordinates of
    the mesh dimensions the tensor is sharded on: equal keys are replicas of one block."""
    if not _is_dtensor(t):
        return (), "(whole on every rank)", "world", (0,) * t.dim()
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    mesh, placements = t.device_mesh, tuple(t.placements)
    coord = mesh.get_coordinate() or []
    names = mesh.mesh_dim_names or tuple(f"dim{i}" for i in range(mesh.ndim))
    key = tuple((names[i], int(coord[i])) for i, pl in enumerate(placements) if _is_shard(pl))
    mesh_text = " x ".join(f"{n}={s}" for n, s in zip(names, mesh.shape, strict=True))
    offset = None
    if all(pl.is_shard() or pl.is_replicate() for pl in placements):
        offset = tuple(int(o) for o in compute_local_shape_and_global_offset(t.shape, mesh, placements)[1])
    text = "(" + ", ".join(map(repr, placements)) + ("," if len(placements) == 1 else "") + ")"
    return key, text, mesh_text, offset


def chunks(local: Any) -> Iterator[np.ndarray]:
    """The local tensor's values in CHUNK-sized pieces, as numpy views in its own dtype."""
    flat = local.detach().reshape(-1)
    for j in range(0, flat.numel(), CHUNK):
        yield _numpy(flat[j:j + CHUNK])


def _numpy(t: Any) -> np.ndarray:
    import torch

    t = t.cpu().contiguous() if t.device.type != "cpu" else t.contiguous()
    if t.dtype == torch.bfloat16:
        from initspec.spec.reference import np_dtype

        return t.view(torch.int16).numpy().view(np_dtype("bfloat16"))
    return t.numpy()


def records(model: Any, rank: int) -> list[ShardRecord]:
    """One record per parameter and floating-point buffer of this rank's model."""
    out = []
    for path, kind, t in tensors(model):
        if t.device.type == "meta":
            rec = ShardRecord(path, rank, tuple(t.shape), _dtype(t), tuple(t.shape), None, "(meta)", "-", (),
                              kind=kind, size=0)
            rec.unwritten = -1  # never materialized at all
            out.append(rec)
            continue
        key, placements, mesh, offset = placement_of(t, rank)
        local = _local(t)
        rec = ShardRecord(path, rank, tuple(int(d) for d in t.shape), _dtype(t), tuple(int(d) for d in local.shape),
                          offset, placements, mesh, key, kind=kind)
        out.append(stream(rec, chunks(local)))
    return out


def sample(model: Any, wanted: dict[tuple[str, int], np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
    """The values at the given positions of each (parameter, this rank)'s local shard, as float64
    (the sentinel and non-finite values left out)."""
    import torch

    from initspec.audit.shards.merge import finite_written

    params = dict(model.named_parameters())
    out = {}
    for (path, rank), pos in wanted.items():
        local = _local(params[path]).detach().reshape(-1)
        x = _numpy(local[torch.as_tensor(pos, dtype=torch.long, device=local.device)])
        out[(path, rank)] = finite_written(x, _dtype(local))
    return out


def unseedable(model: Any) -> dict[str, str]:
    """path -> the cause of cloned shards torch itself gives, for DTensor parameters on a mesh whose
    device DTensor's RNG tracker refuses (``is_rng_supported_mesh``: CPU)."""
    import warnings

    from torch.distributed.tensor._random import is_rng_supported_mesh

    from initspec.audit.shards.findings import RNG_CAUSE
    from initspec.frameworks.torch import version

    out = {}
    for path, p in model.named_parameters():
        if _is_dtensor(p):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # it warns while it answers
                if not is_rng_supported_mesh(p.device_mesh):
                    out[path] = RNG_CAUSE.format(version=version(), device=p.device_mesh.device_type)
    return out


class TorchSource:
    """The blocks of a torch model on this rank (see ``loop.audit_loop``)."""

    framework = "torch"
    layout = "torch"

    def walk(self, model: Any) -> Any:
        from initspec.audit.walkers import torch as walker

        return walker.walk(model)

    def records(self, model: Any, rank: int) -> list[ShardRecord]:
        return records(model, rank)

    def sample(self, model: Any, wanted: dict[tuple[str, int], np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
        return sample(model, wanted)

    def causes(self, model: Any) -> dict[str, str]:
        return unseedable(model)
