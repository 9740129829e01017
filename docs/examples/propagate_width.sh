#!/usr/bin/env bash
# env: torch
# The coordinate check with a verdict: a standard and a muP MLP family at widths 64..512, 8 seeds, two Adam steps (tests/propagate/test_width.py).
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:mlp_family(mup=False)" --input-shape 32,32 --widths 64,128,256,512 --steps 2 --lr 0.01 --seeds 8 --no-progress
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:mlp_family(mup=True)" --input-shape 32,32 --widths 64,128,256,512 --steps 2 --lr 0.01 --seeds 8 --optimizer propagate_inits:mup_adam --no-progress
