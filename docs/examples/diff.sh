#!/usr/bin/env bash
# env: cross
# Two initializers from two frameworks, each sampled in its own process, compared.
initspec diff torch:xavier_normal_ keras@torch:GlorotNormal
initspec diff torch:Linear.weight flax:linen.Dense:kernel
