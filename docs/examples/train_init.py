"""A training script's own launch (torchrun) calling the sharded audit after its init."""

import torch
import torch.distributed as dist
from mlp import MLP
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import initspec
from initspec.audit.shards import mark_unwritten
from initspec.audit.table import format_report

dist.init_process_group("gloo")
mesh = init_device_mesh("cpu", (dist.get_world_size(),))
torch.manual_seed(0)
with torch.device("meta"):
    model = MLP()
for block in model.blocks:
    fully_shard(block, mesh=mesh)
fully_shard(model, mesh=mesh)
model.to_empty(device="cpu")
mark_unwritten(model)                   # what the init never writes is reported
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()

report = initspec.audit_sharded(model)  # on every rank, after the init (a collective)
if dist.get_rank() == 0:
    print(format_report(report))
    print(f"report.ok = {report.ok}")   # the same on every rank: a training script stops here when False
dist.destroy_process_group()
