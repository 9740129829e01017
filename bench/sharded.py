"""Cost of the sharded audit (issue 20): a GPT-2 124M-shaped model, FSDP2 on CPU ranks (gloo).

    python bench/sharded.py [--worlds 2 4] [--out bench/sharded.json]

For each world size, two runs through the same launcher (``initspec.audit.shards.launch``):

1. the sharded initialization without initspec: build on ``meta``, ``fully_shard`` each block then
   the root, ``to_empty``, ``init_weights()`` (each rank draws its shards from a stream of its own
   block, GPT-2's law: normal(0.02), the residual projections 0.02/sqrt(2 n_layer), zero biases);
2. ``initspec audit sharded:GPT2 --world-size N --parallelize fsdp`` (``audit_world``): the same
   initialization, then the audit.

Measured: wall seconds of each (launch to result, the ranks' interpreter start and imports
included), seconds inside the ranks, each rank's peak resident memory beyond what it held before
building the model, its local shards' bytes, and the bytes each rank sent to rank 0.  Targets:
audit wall time <= 2x the initialization's; peak memory per rank beyond its start <= 1.5x its shards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)


class GPT2(nn.Module):
    """GPT-2 small's parameters (124.4M; the head tied to ``wte`` is left out) with a torchtitan-style
    ``init_weights()`` that draws each rank's local shard from a generator of its own block."""

    def __init__(self, n_layer: int = 12, d: int = 768, vocab: int = 50257, ctx: int = 1024) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.n_layer = n_layer

    def init_weights(self) -> None:
        seed = torch.initial_seed()
        with torch.no_grad():
            for i, (name, p) in enumerate(self.named_parameters()):
                local = p.to_local() if hasattr(p, "to_local") else p
                if name.endswith("bias"):
                    local.zero_()
                elif "ln_" in name:
                    local.fill_(1.0)
                else:
                    std = 0.02 / math.sqrt(2 * self.n_layer) if name.endswith("proj.weight") else 0.02
                    g = torch.Generator().manual_seed(seed * 100_003 + i * 1009 + _block(p))
                    local.normal_(0.0, std, generator=g)


def _block(p: torch.Tensor) -> int:
    key = 0
    if hasattr(p, "placements"):
        coord = p.device_mesh.get_coordinate()
        for i, pl in enumerate(p.placements):
            if pl.is_shard():
                key = key * 97 + coord[i] + 1
    return key


def baseline(mesh) -> list[dict]:
    """The initialization alone, on every rank (an entry for ``run_on_ranks``)."""
    import torch.distributed as dist

    from initspec.audit.shards.loop import _peak_rss, _rss
    from initspec.audit.shards.parallel import fsdp

    t0 = time.perf_counter()
    rss0 = _rss()
    torch.manual_seed(0)
    with torch.device("meta"):
        model = GPT2()
    model = fsdp(model, mesh)
    model.to_empty(device="cpu")
    model.init_weights()
    local = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    dist.barrier()
    me = {"rank_seconds": time.perf_counter() - t0, "rss_before": rss0, "peak_rss": _peak_rss(), "local_bytes": local}
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, me)
    return out


def _mib(x: float | None) -> float | None:
    return None if x is None else round(x / 2**20, 1)


def _ranks(ranks: list[dict]) -> list[dict]:
    return [{"local_MiB": _mib(r["local_bytes"]), "peak_rss_MiB": _mib(r["peak_rss"]),
             "rss_before_MiB": _mib(r["rss_before"]),
             "peak_beyond_start_over_shards": round((r["peak_rss"] - r["rss_before"]) / r["local_bytes"], 3),
             **({"sent_MiB": _mib(r["sent"])} if "sent" in r else {})} for r in ranks]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--out", default=str(HERE / "sharded.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))  # the ranks import this file as `sharded` (spawn passes sys.path on)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from initspec.audit.shards import audit_world
    from initspec.audit.shards.launch import run_on_ranks

    with torch.device("meta"):  # never whole here: a spawned rank's getrusage peak would start at ours
        params = sum(p.numel() for p in GPT2().parameters())
    rows = []
    for world in args.worlds:
        t = time.perf_counter()
        base = run_on_ranks("sharded:baseline", world)
        base_wall = time.perf_counter() - t
        t = time.perf_counter()
        rep = audit_world("sharded:GPT2", world_size=world, parallelize="fsdp")
        audit_wall = time.perf_counter() - t
        ranks = rep.sharded["ranks"]
        row = {
            "world": world, "params": params, "instances": len(rep.seeds), "audit_exit_code": rep.exit_code,
            "findings": [f.id for f in rep.findings],
            "init_wall_s": round(base_wall, 2), "audit_wall_s": round(audit_wall, 2),
            "wall_ratio": round(audit_wall / base_wall, 3),
            "init_rank_s": round(max(r["rank_seconds"] for r in base), 2),
            "audit_rank_s": round(rep.sharded["rank_seconds"], 2),
            "audit_timing_s": {k: round(v, 2) for k, v in rep.timing.items()},
            "init_ranks": _ranks(base), "audit_ranks": _ranks(ranks),
            "sent_bytes_per_rank": [r["sent"] for r in ranks],
            "sent_over_shards_per_rank": [round(r["sent"] / r["local_bytes"], 5) for r in ranks],
        }
        row["targets"] = {
            "wall <= 2x init": row["wall_ratio"] <= 2.0,
            "peak per rank <= 1.5x shards": all(r["peak_beyond_start_over_shards"] <= 1.5 for r in row["audit_ranks"]),
        }
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    doc = {"benchmark": "sharded audit, GPT-2 124M-shaped, FSDP2 on CPU ranks (gloo)",
           "command": "python bench/sharded.py " + " ".join(sys.argv[1:]),
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                       "load_average_at_end": os.getloadavg()},
           "results": rows}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
