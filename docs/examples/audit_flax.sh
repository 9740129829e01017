#!/usr/bin/env bash
# env: flax
# A Flax nnx model built from the library's layers, and its signal through a residual CNN.
PYTHONPATH=tests/audit initspec audit 'test_audit_flax:Tiny()'
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:nnx_resnet(8, 32)" --input-shape 8,32,32,3
