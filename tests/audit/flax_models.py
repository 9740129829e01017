"""Flax and JAX models of the trace's tests and the manual's transcripts (docs/examples/trace_flax.sh): each
with one bug and a correct twin.  Kept apart from the tests so that the lines the transcripts show
do not move when a test changes; ``# site: TAG`` marks the lines a test expects provenance to name.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


def pytree_params(bug: bool):
    """A pytree target's factory: ``flax_models:pytree_params(True)`` under --convention jax."""
    def params(key):
        k1, k2 = jax.random.split(key)
        w = jax.random.normal(k1, (64, 128)) * (1 / 64 if bug else 1 / 8)  # site: pytree w (bug: the variance as std)
        return {"w": w, "b": jnp.zeros(128),
                "fixed": jax.random.normal(jax.random.key(0), (64, 64)),  # site: pytree fixed
                "reused": jax.random.uniform(k2, (8,)), "again": jax.random.uniform(k2, (8,)),
                "pad": (jax.random.normal(k2, (10, 4)) * 0.02).at[0].set(0.0)}
    return params


D = 64


class Block(nnx.Module):
    def __init__(self, bugs: set[str], *, rngs: nnx.Rngs):
        he = nnx.initializers.variance_scaling(1.0 if "gain" in bugs else 2.0, "fan_in", "normal")
        self.fc = nnx.Linear(D, 4 * D, kernel_init=he, rngs=rngs)  # site: nnx fc (bug: the gain forgotten)
        zero = nnx.initializers.lecun_normal() if "zero" in bugs else nnx.initializers.zeros
        self.proj = nnx.Linear(4 * D, D, kernel_init=zero, rngs=rngs)  # site: nnx proj (bug: zero-init never ran)


class Model(nnx.Module):
    def __init__(self, bug: str = "", n: int = 3, *, rngs: nnx.Rngs):
        bugs = set(bug.split(","))
        self.blocks = nnx.List([Block(bugs, rngs=rngs) for _ in range(n)])
        std = 1 / D if "variance" in bugs else D ** -0.5
        self.head = nnx.Linear(D, 256, kernel_init=nnx.initializers.normal(std), rngs=rngs)  # site: nnx head


class LinenNet(nn.Module):
    bug: bool = False

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.variance_scaling(1.0 if self.bug else 2.0, "fan_in", "truncated_normal")
        x = nn.relu(nn.Dense(32, kernel_init=init)(x))  # site: linen dense
        return nn.Dense(8, kernel_init=nn.initializers.zeros)(x)
