"""A JAX initialization that draws a kernel block by block with shard_map, every device with the
same key (the sharded guide's cloned shards), and its fix."""

import jax
from jax.sharding import PartitionSpec as P


def _kernel(key, per_device):
    mesh = jax.make_mesh((len(jax.devices()),), ("x",))

    def block(k):
        if per_device:
            k = jax.random.fold_in(k, jax.lax.axis_index("x"))
        return jax.random.normal(k, (256, 1024 // mesh.size)) / 16

    return jax.shard_map(block, mesh=mesh, in_specs=P(), out_specs=P(None, "x"))(key)


def params(key):
    return {"dense": {"kernel": _kernel(key, per_device=False)}}


def params_fixed(key):
    return {"dense": {"kernel": _kernel(key, per_device=True)}}
