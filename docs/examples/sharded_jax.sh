#!/usr/bin/env bash
# env: flax
# cwd: docs/examples
# A JAX initialization sharded over 4 host devices: every device drew its block with the same key; the fix.
initspec audit jax_init:params --convention jax --world-size 4
initspec audit jax_init:params_fixed --convention jax --world-size 4
