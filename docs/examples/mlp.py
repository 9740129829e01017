"""The MLP of the sharded guide (docs/guides/sharded.md): two Linear pairs, each a tensor-parallel
column/row pair under ``--parallelize tp``; ``Faulty`` fails its init on rank 1."""

import torch.distributed as dist
from torch import nn


class MLP(nn.Module):
    def __init__(self, d: int = 256, hidden: int = 1024, layers: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)) for _ in range(layers))


class Faulty(MLP):
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        if dist.get_rank() == 1:
            raise ValueError("no checkpoint for this shard")
