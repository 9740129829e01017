#!/usr/bin/env bash
# env: torch
# Residual branches at init: a pre-LN stack with 0.02 init, without and with GPT-2's scaled projection; a ResNet without and with zero_init_last (tests/propagate/test_residual.py).
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_transformer(6, 64, 4, False)" --input-shape 8,32,64
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_transformer(6, 64, 4, True)" --input-shape 8,32,64
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_resnet(4, 64, False)" --input-shape 4,3,16,16 --max-branch-ratio 1
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_resnet(4, 64, True)" --input-shape 4,3,16,16 --max-branch-ratio 1
