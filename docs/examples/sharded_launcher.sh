#!/usr/bin/env bash
# env: torch
# cwd: docs/examples
# normalize: \S*/site-packages/ => <site-packages>/
# The audit called from a training script's own launcher (torchrun).
@torchrun() { OMP_NUM_THREADS=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$INITSPEC_ROOT" "$INITSPEC_PYTHON" -m torch.distributed.run "$@"; }
torchrun --nproc-per-node 2 train_init.py
