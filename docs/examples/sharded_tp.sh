#!/usr/bin/env bash
# env: torch
# cwd: docs/examples
# The MLP of mlp.py on 2 CPU ranks, tensor parallel: torch's own init on a CPU mesh, then initialize-then-shard.
initspec audit mlp:MLP --world-size 2 --parallelize tp
initspec audit mlp:MLP --world-size 2 --parallelize tp --init-before-shard --compare-unsharded --seeds 1
initspec audit mlp:MLP --world-size 4 --mesh 2x2 --parallelize fsdp --seeds 1
