#!/usr/bin/env bash
# env: flax
# cwd: bench
# A Llama-3-70B-shaped nnx model (bench/trace_jax.py: 70.6e9 parameters, 282 GB in float32): the
# default audit traces it with nothing allocated and skips the draws, which would not fit.
initspec audit trace_jax:nnx_llama_70b --max-memory 12G
