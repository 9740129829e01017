"""The Flax walker on small nnx and linen models (env flax).

No statistics here: paths, shapes, layouts, fans (checked against jax.nn.initializers' own
fan rule with each layer's axes), defaults, seeding, linen's --input-shape, release.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

pytest.importorskip("flax")

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx
from jax._src.nn.initializers import _compute_fans

from initspec.audit.walkers import flax as fw
from initspec.audit.walkers import walker_for
from initspec.errors import InputError


class Net(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
        self.gen = nnx.LinearGeneral((4, 6), (2, 5), axis=(-2, -1), rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(8, 8, rngs=rngs) for _ in range(2)])
        self.emb = nnx.Embed(50, 8, rngs=rngs)
        self.norm = nnx.LayerNorm(8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)


def factory(**extra):  # the audit's target factory: extra constructor keywords (rngs=) go through
    return Net(**extra)


factory.callee = Net


def params(model):
    return {p.path: p for p in fw.walk(model)}


def test_nnx_paths_owners_and_rng_state_left_out():
    ps = params(fw.build(factory, 0))
    assert set(ps) == {"conv.kernel", "conv.bias", "gen.kernel", "gen.bias", "blocks.0.kernel", "blocks.0.bias",
                       "blocks.1.kernel", "blocks.1.bias", "emb.embedding", "norm.scale", "norm.bias",
                       "bn.scale", "bn.bias", "bn.mean", "bn.var"}  # no Dropout / Rngs key or count
    assert ps["blocks.1.kernel"].owner == "Linear" and ps["emb.embedding"].owner == "Embed"
    assert ps["conv.kernel"].shape == (3, 3, 3, 4) and ps["conv.kernel"].layout == "tf"
    assert not ps["bn.mean"].trainable and ps["bn.scale"].trainable


def test_nnx_fans_follow_jax_rule_with_each_layers_axes():
    ps = params(fw.build(factory, 0))
    assert (ps["conv.kernel"].fan_in, ps["conv.kernel"].fan_out) == _compute_fans((3, 3, 3, 4))
    assert (ps["blocks.0.kernel"].fan_in, ps["blocks.0.kernel"].fan_out) == _compute_fans((8, 8))
    # Embed: variance_scaling(..., out_axis=0) on (num, features): both fans are `features`
    assert (ps["emb.embedding"].fan_in, ps["emb.embedding"].fan_out) == (8, 8) == \
        tuple(int(f) for f in _compute_fans((50, 8), out_axis=0))
    # LinearGeneral (4, 6) -> (2, 5): the kernel (4, 6, 2, 5) is drawn flattened to (24, 10)
    g = ps["gen.kernel"]
    assert g.shape == (4, 6, 2, 5) and (g.fan_in, g.fan_out) == _compute_fans((24, 10))


def test_nnx_defaults():
    ps = params(fw.build(factory, 0))
    assert {k: p.default for k, p in ps.items()} == {
        "conv.kernel": "flax_dense_default", "conv.bias": "zeros", "gen.kernel": "flax_dense_default",
        "gen.bias": "zeros", "blocks.0.kernel": "flax_dense_default", "blocks.0.bias": "zeros",
        "blocks.1.kernel": "flax_dense_default", "blocks.1.bias": "zeros", "emb.embedding": "lecun_normal",
        "norm.scale": "ones", "norm.bias": "zeros", "bn.scale": "ones", "bn.bias": "zeros",
        "bn.mean": "zeros", "bn.var": "ones"}


def test_nnx_seeded_through_rngs():
    a, b, c = (params(fw.build(factory, s)) for s in (5, 5, 6))
    assert np.array_equal(a["conv.kernel"].values(), b["conv.kernel"].values())
    assert not np.array_equal(a["conv.kernel"].values(), c["conv.kernel"].values())
    assert a["blocks.0.kernel"].storage != a["blocks.1.kernel"].storage


def test_nnx_factory_without_rngs_is_called_as_is():
    """A factory that makes its own Rngs cannot be seeded: it is built as it is (the audit then
    reports seed_ignored)."""
    def fixed():
        return nnx.Linear(3, 2, rngs=nnx.Rngs(0))

    fixed.callee = fixed
    a, b = (params(fw.build(fixed, s)) for s in (0, 1))
    assert np.array_equal(a["kernel"].values(), b["kernel"].values())


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        x = nn.DenseGeneral((2, 3))(x.reshape(x.shape[0], -1))
        x = nn.Dense(5, kernel_init=nn.initializers.zeros)(x.reshape(x.shape[0], -1))
        return nn.Embed(7, 5)(jnp.zeros((1,), jnp.int32)) + nn.LayerNorm()(x)


def test_linen_paths_owners_fans_defaults():
    m = fw.build(CNN, 0, input_shape=(1, 6, 6, 3))
    ps = params(m)
    assert list(ps)[:2] == ["Conv_0.kernel", "Conv_0.bias"]  # module order, not sorted
    assert {"batch_stats.BatchNorm_0.mean", "batch_stats.BatchNorm_0.var", "BatchNorm_0.scale",
            "DenseGeneral_0.kernel", "Dense_0.kernel", "Embed_0.embedding", "LayerNorm_0.scale"} <= set(ps)
    assert ps["Conv_0.kernel"].owner == "Conv" and ps["DenseGeneral_0.kernel"].owner == "DenseGeneral"
    g = ps["DenseGeneral_0.kernel"]
    assert g.shape == (144, 2, 3) and (g.fan_in, g.fan_out) == (144, 6)
    assert (ps["Embed_0.embedding"].fan_in, ps["Embed_0.embedding"].fan_out) == (5, 5)
    assert ps["Dense_0.kernel"].default == "flax_dense_default"  # the documented default, not the zeros given
    assert np.all(ps["Dense_0.kernel"].values() == 0)
    assert ps["batch_stats.BatchNorm_0.var"].default == "ones" and not ps["batch_stats.BatchNorm_0.var"].trainable


def test_linen_needs_input_shape_and_is_seeded():
    with pytest.raises(InputError, match="--input-shape"):
        fw.build(CNN, 0)
    a, b = (params(fw.build(CNN, s, input_shape=(1, 6, 6, 3))) for s in (0, 1))
    assert not np.array_equal(a["Conv_0.kernel"].values(), b["Conv_0.kernel"].values())


def test_recognition_and_release():
    model = fw.build(factory, 0)
    assert walker_for(model) is fw and walker_for(CNN()) is fw
    assert not fw.recognizes(np.zeros(2)) and not fw.recognizes(Net)
    ref = weakref.ref(model)
    fw.release(model)
    del model
    gc.collect()
    assert ref() is None
