#!/usr/bin/env bash
# env: torch
# What a misbehaving model or an unbounded stack gets: one line, exit 1 (the model) or 2 (bad input) (tests/propagate/test_propagate_reliability.py).
PYTHONPATH=tests/propagate initspec propagate --model "propagate_hostile:hostile_model('forward_sleeps')" --input-shape 2,4 --timeout 1
PYTHONPATH=tests/propagate initspec propagate --model "propagate_hostile:hostile_model('forward_sys_exit')" --input-shape 2,4
PYTHONPATH=tests/propagate initspec propagate --model "propagate_hostile:hostile_model('integer')" --input-shape 2,4
initspec propagate he_normal -a relu --width 1000000000 --depth 3
initspec propagate he_normal -a relu --conv 9x9
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:no_width()" --input-shape 4,8 --widths 8,16
