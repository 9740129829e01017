"""Torch models for the sharded audit: an MLP (a TP/FSDP target), the planted bugs of issue 20 with
their correct twins (run on ranks by :func:`scenarios`), and models that fail on one rank (faults).

CLI targets: ``shard_models:mlp(...)``, ``shard_models:faulty(...)``; ``scenarios`` is an entry for
``initspec.audit.shards.launch.run_on_ranks``.
"""

from __future__ import annotations

import math
import os
import time

import torch
import torch.distributed as dist
from torch import nn

#: the spec every scenario is held to: torch's Linear defaults (the law each planted init means to draw)
SPEC = {"params": {"*.weight": "torch_linear_default", "*.bias": "torch_bias_default"}}


class MLP(nn.Module):
    """Linear pairs: ``--parallelize tp`` makes the first of each pair column-, the second row-parallel.
    ``buffer``: a floating buffer (ones) the init must set again after ``to_empty``."""

    def __init__(self, d: int = 64, hidden: int = 256, layers: int = 2, buffer: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
                                    for _ in range(layers))
        if buffer:
            self.register_buffer("scale", torch.ones(d))


def mlp(d: int = 64, hidden: int = 256, layers: int = 2) -> nn.Module:
    return MLP(d, hidden, layers)


# --- inits that draw each rank's local shard themselves (Megatron/OLMo style) -----------------------


def _block_key(p: torch.Tensor) -> int:
    """The block a rank holds: its coordinates on the mesh dimensions the tensor is sharded on
    (replicas of one block share it)."""
    from torch.distributed.tensor import DTensor

    key = 0
    if isinstance(p, DTensor):
        coord = p.device_mesh.get_coordinate()
        for i, pl in enumerate(p.placements):
            if pl.is_shard() or type(pl).__name__ == "_StridedShard":
                key = key * 97 + coord[i] + 1
    return key


def _local(p: torch.Tensor) -> torch.Tensor:
    return p.to_local() if hasattr(p, "to_local") else p


def local_init(model: nn.Module, rule: str, seed: int = 0) -> None:
    """Initialize every Linear with torch's default law U(±1/sqrt(fan_in)), drawing each rank's local
    shard with its own generator.  ``rule`` plants the bug:

    - ``block_seed`` (correct): a stream per (parameter, block), shared by replicas of a block;
    - ``same_seed``: one stream seeded alike on every rank (OLMo-core#307): shards are copies;
    - ``rank_seed``: seed + rank (the fix of OLMo-core#319's kind): replicated parameters differ;
    - ``local_fans``: block streams, the bound from the local shard's fan_in (Megatron-Bridge#5840);
    - ``skip_bias``: block streams, weights only: the biases and the buffer are never written
      (Megatron-LM#6799, timm#2350).
    """
    rank = dist.get_rank() if dist.is_initialized() else 0
    shared = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i, mod in enumerate(m for m in model.modules() if isinstance(m, nn.Linear)):
            fan_in = mod.weight.shape[1]  # the global tensor's (a DTensor's shape is global)
            for role in ("weight", "bias"):
                p = getattr(mod, role)
                if rule == "skip_bias" and role == "bias":
                    continue
                local = _local(p)
                fi = local.shape[1] if rule == "local_fans" and role == "weight" else fan_in
                bound = 1 / math.sqrt(fi)
                if rule == "same_seed":
                    g = shared
                elif rule == "rank_seed":
                    g = torch.Generator().manual_seed(seed * 1000 + 10 * i + (role == "bias") + 100_000 * rank)
                else:
                    g = torch.Generator().manual_seed(seed * 1000 + 10 * i + (role == "bias") + 100_000 * _block_key(p))
                local.uniform_(-bound, bound, generator=g)
        if rule != "skip_bias" and hasattr(model, "scale"):
            _local(model.scale).fill_(1.0)


def torch_reset(model: nn.Module) -> None:
    """torch's own init after to_empty: every module's reset_parameters() (on a CPU mesh, DTensor's
    random ops draw every shard from the same generator state)."""
    with torch.no_grad():
        for m in model.modules():
            if m is not model and hasattr(m, "reset_parameters"):
                m.reset_parameters()


# --- scenarios: (parallelization, init, build whole first) -> the finding the audit must give ------


def _parallel(kind: str, model: nn.Module, mesh) -> nn.Module:
    from initspec.audit.shards import parallel

    if kind == "tp":
        return parallel.tp(model, mesh["tp"] if mesh.ndim == 2 else mesh)
    if kind == "fsdp":
        return parallel.fsdp(model, mesh)
    return parallel.apply("tp+fsdp", model, mesh)


#: name -> (parallelization, init, mesh "1d" | "2d", buffer, finding id or None for a twin)
SCENARIOS = {
    "torch_reset_tp": ("tp", "torch", "1d", False, "shards_cloned"),
    "torch_reset_fsdp": ("fsdp", "torch", "1d", False, "shards_cloned"),
    "init_then_shard_tp": ("tp", "before", "1d", False, None),
    "init_then_shard_fsdp": ("fsdp", "before", "1d", False, None),
    "same_seed_tp": ("tp", "same_seed", "1d", False, "shards_cloned"),
    "rank_seed_tp": ("tp", "rank_seed", "1d", False, "replicas_differ"),
    "local_fans_tp": ("tp", "local_fans", "1d", False, "shard_fans"),
    "skip_bias_tp": ("tp", "skip_bias", "1d", True, "uninitialized"),
    "block_seed_tp": ("tp", "block_seed", "1d", True, None),
    "block_seed_fsdp": ("fsdp", "block_seed", "1d", True, None),
    # 2-D meshes (world 4): tensor parallel replicated over dp; HSDP; TP then FSDP (_StridedShard)
    "rank_seed_2d_tp": ("tp", "rank_seed", "2d", False, "replicas_differ"),
    "block_seed_2d_tp": ("tp", "block_seed", "2d", False, None),
    "block_seed_2d_hsdp": ("fsdp", "block_seed", "2d", False, None),
    "block_seed_2d_tp_fsdp": ("tp+fsdp", "block_seed", "2d", False, None),
    "same_seed_2d_hsdp": ("fsdp", "same_seed", "2d", False, "shards_cloned"),
}


def build(name: str, mesh, seed: int = 0) -> nn.Module:
    from initspec.audit.shards import mark_unwritten

    kind, init, _, buffer, _ = SCENARIOS[name]
    torch.manual_seed(seed)
    if init == "before":  # initialize whole (the same seed on every rank), then shard
        return _parallel(kind, MLP(buffer=buffer), mesh)
    with torch.device("meta"):
        model = MLP(buffer=buffer)
    model = _parallel(kind, model, mesh)
    model.to_empty(device="cpu")
    mark_unwritten(model)
    if init == "torch":
        torch_reset(model)
    else:
        local_init(model, init, seed)
    return model


def scenarios(mesh) -> dict[str, dict]:
    """Every scenario that fits the world (2-D ones need 4 ranks), audited with audit_sharded."""
    import warnings

    from torch.distributed.device_mesh import init_device_mesh

    from initspec.audit.shards import audit_sharded

    world = dist.get_world_size()
    mesh2d = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("dp", "tp")) if world % 2 == 0 and world >= 4 \
        else None
    out = {}
    for name, (_, _, shape, _, expected) in SCENARIOS.items():
        m = mesh2d if shape == "2d" else mesh
        if m is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DTensor's "may not have complete support on cpu device mesh"
            model = build(name, m)
        rep = audit_sharded(model, spec=SPEC, target=name, identify=False)
        out[name] = {"expected": expected, "ok": rep.ok, "findings": {f.id: f.params for f in rep.findings},
                     "messages": [f"{f.id}: {f.message}" for f in rep.findings],
                     "verdicts": {g.name: rep.verdict(g) for g in rep.groups},
                     "gathered": rep.sharded["gathered_bytes_per_rank"], "timing": rep.timing}
    return out


# --- faults: a model whose init fails on one rank -------------------------------------------------


class Faulty(MLP):
    """``init_weights()`` fails on ``rank`` by ``how``: raise | exit | os_exit | hang | wait (writes its pid
    to $INITSPEC_TEST_PIDFILE, then sleeps: the test kills it)."""

    def __init__(self, how: str = "raise", rank: int = 1) -> None:
        super().__init__(d=16, hidden=32, layers=1)
        self.how, self.fault_rank = how, rank

    def init_weights(self) -> None:
        torch_reset(self)
        if dist.get_rank() != self.fault_rank:
            return
        if self.how == "raise":
            raise ValueError("planted failure")
        if self.how == "exit":
            raise SystemExit(3)
        if self.how == "os_exit":
            os._exit(4)
        if self.how == "wait":
            with open(os.environ["INITSPEC_TEST_PIDFILE"], "w") as fh:
                fh.write(str(os.getpid()))
        while True:  # hang (or wait to be killed)
            time.sleep(0.05)


def faulty(how: str = "raise", rank: int = 1) -> nn.Module:
    return Faulty(how, rank)


class Planted(MLP):
    """An MLP whose ``init_weights()`` is :func:`local_init` with ``rule`` (a CLI target for the flow
    meta -> parallelize -> to_empty -> init_weights)."""

    def __init__(self, rule: str = "block_seed", buffer: bool = False) -> None:
        super().__init__(buffer=buffer)
        self.rule = rule

    def init_weights(self) -> None:
        local_init(self, self.rule, seed=torch.initial_seed())


def planted(rule: str = "block_seed", buffer: bool = False) -> nn.Module:
    return Planted(rule, buffer)


def tp_plan(model: nn.Module, mesh) -> nn.Module:
    """A parallelize function the torchtitan way: (model, mesh) -> model, an explicit tensor-parallel plan."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    plan = {}
    for i in range(len(model.blocks)):
        plan[f"blocks.{i}.0"] = ColwiseParallel()
        plan[f"blocks.{i}.2"] = RowwiseParallel()
    return parallelize_module(model, mesh, plan)
