#!/usr/bin/env bash
# env: docs
# The questions people ask about depth, each one command (numpy stacks; the torch ones run in tox env torch).
initspec propagate he_normal -a relu --conv 5x5 --channels 16 --depth 20 --batch 8
PYTHONPATH=tests/propagate initspec propagate he_normal -a relu --conv 5x5 --channels 16 --depth 20 --batch 8 --target propagate_inits:he_channels_only --convention numpy
PYTHONPATH=tests/propagate initspec propagate he_normal -a relu --depth 5 --width 4096 --batch 64 --target propagate_inits:he_std_as_variance --convention numpy
initspec propagate glorot_normal -a relu --depth 50
initspec propagate he_normal -a relu --depth 50
initspec propagate lecun_normal -a selu --depth 50
initspec propagate "kaiming_normal(nonlinearity=tanh)" -a tanh --depth 50
initspec propagate "kaiming_normal(nonlinearity=selu)" -a selu --depth 50
initspec propagate torch_linear_default -a relu --depth 50
