#!/usr/bin/env bash
# env: flax
# cwd: tests/audit
# The JAX/Flax trace on models of its test suite (tests/audit/flax_models.py): an nnx model whose
# kernel_init forgot he_normal's gain (checked exactly against its spec), its correct twin traced and
# drawn, a linen module, and a JAX pytree with a fixed key, a reused key and a padding row.
initspec audit "flax_models:Model(bug='gain')" --spec ../../docs/examples/trace_nnx.toml --trace
initspec audit "flax_models:Model()" --spec ../../docs/examples/trace_nnx.toml --max-seeds 2
initspec audit "flax_models:LinenNet(bug=True)" --input-shape 1,16 --trace
initspec audit "flax_models:pytree_params(False)" --convention jax --trace
