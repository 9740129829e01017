"""JAX and Flax targets for the sharded audit: a pytree initialization (``--convention jax``), the
same with every device drawing its shard from one key (the planted bug: cloned shards), and Flax
linen and nnx MLPs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import nnx
from jax.sharding import PartitionSpec as P


def pytree(key):
    """lecun_normal kernels (fan_in 256), zero biases, a truncated-normal head."""
    k1, k2 = jax.random.split(key)
    return {"dense": {"kernel": jax.random.normal(k1, (256, 512)) / 16, "bias": jnp.zeros(512)},
            "head": {"kernel": jax.random.truncated_normal(k2, -2, 2, (512, 128)) * 0.02}}


def same_key_per_device(key):
    """The kernel's column blocks drawn by shard_map, every device with the same key (OLMo-core#307's
    bug in JAX): the shards are copies."""
    mesh = jax.make_mesh((len(jax.devices()),), ("x",))

    def local(k):
        return jax.random.normal(k, (256, 512 // mesh.size)) / 16

    return {"dense": {"kernel": jax.shard_map(local, mesh=mesh, in_specs=P(), out_specs=P(None, "x"))(key)}}


def per_device_key(key):
    """The twin: each device folds its index into the key."""
    mesh = jax.make_mesh((len(jax.devices()),), ("x",))

    def local(k):
        return jax.random.normal(jax.random.fold_in(k, jax.lax.axis_index("x")), (256, 512 // mesh.size)) / 16

    return {"dense": {"kernel": jax.shard_map(local, mesh=mesh, in_specs=P(), out_specs=P(None, "x"))(key)}}


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(64)(nn.relu(nn.Dense(256)(x)))


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.up = nnx.Linear(64, 256, rngs=rngs)
        self.down = nnx.Linear(256, 64, rngs=rngs)
