"""The Keras walker on small models (envs keras-tensorflow, keras-jax; any Keras backend).

No statistics here: paths, shapes, layouts, fans (checked against Keras's own compute_fans
and EinsumDense's axes), defaults, storage/ties, seeding, release.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from initspec.audit.walkers import keras as kw  # noqa: E402
from initspec.audit.walkers import walker_for  # noqa: E402
from initspec.errors import InputError  # noqa: E402


def zoo() -> keras.Model:
    """One of each owner the walker knows about, in a functional model."""
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, name="conv")(x)
    y = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(y)
    y = keras.layers.SeparableConv2D(5, 1, name="sep")(y)
    y = keras.layers.Conv2DTranspose(6, 2, name="up")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.Reshape((-1, 6))(y)
    y = keras.layers.MultiHeadAttention(2, 3, name="mha")(y, y)
    y = keras.layers.LayerNormalization(name="ln")(y)
    y = keras.layers.Dense(7, name="head")(y)
    return keras.Model(x, y)


def params(model):
    return {p.path: p for p in kw.walk(model)}


@pytest.fixture
def built():
    model = kw.build(zoo, seed=0)
    yield model
    kw.release(model)


def test_paths_are_dotted_variable_paths(built):
    ps = params(built)
    for path in ("conv.kernel", "conv.bias", "dw.kernel", "sep.depthwise_kernel", "sep.pointwise_kernel",
                 "up.kernel", "bn.gamma", "bn.moving_variance", "mha.query.kernel", "mha.attention_output.kernel",
                 "ln.gamma", "head.kernel", "head.bias"):
        assert path in ps, sorted(ps)
    assert len(ps) == len(built.weights)  # every variable once (no seed-generator state: Dropout-free)
    assert ps["dw.kernel"].shape == (3, 3, 4, 2) and ps["dw.kernel"].owner == "DepthwiseConv2D"
    assert ps["mha.query.kernel"].owner == "EinsumDense" and ps["mha.query.kernel"].role == "kernel"
    assert all(p.layout == "tf" and p.dtype == "float32" for p in ps.values())


def test_sequential_paths_drop_the_model_name():
    model = kw.build(lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)]), 0)
    try:
        assert [p.path for p in kw.walk(model)] == ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]
    finally:
        kw.release(model)


def test_fans_are_keras_own(built):
    """Each variable's fans are what Keras's compute_fans gives its initializer: from the stored
    shape (depthwise (3, 3, 4, 2): fan_in 36, fan_out 18; transposed kernels read as stored), and
    for EinsumDense from the axes it hands its VarianceScaling initializer."""
    from keras.src.initializers.random_initializers import compute_fans
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    layers = {la.path: la for la in built._flatten_layers(include_self=False, recursive=True) if la.path}
    checked = 0
    for p in kw.walk(built):
        owner_path = p.path.rsplit(".", 1)[0].replace(".", "/")
        layer = layers.get(owner_path)
        axes = (None, None)
        if p.owner == "EinsumDense" and p.role == "kernel":
            in_shape = layer._build_shapes_dict["input_shape"] if hasattr(layer, "_build_shapes_dict") else None
            if in_shape is None:
                continue
            *_, in_axes, out_axes = _analyze_einsum_string(layer.equation, layer.bias_axes, in_shape,
                                                           layer.partial_output_shape)
            axes = (in_axes, out_axes)
        assert (p.fan_in, p.fan_out) == compute_fans(p.shape, *axes), p.path
        checked += 1
    assert checked >= 20
    ps = params(built)
    assert (ps["dw.kernel"].fan_in, ps["dw.kernel"].fan_out) == (36, 18)
    q = ps["mha.query.kernel"]  # (6, heads 2, key_dim 3): input axis 0, output axes 1, 2
    assert q.shape == (6, 2, 3) and (q.fan_in, q.fan_out) == (6, 6)
    o = ps["mha.attention_output.kernel"]  # (2, 3, 6): input axes 0, 1
    assert (o.fan_in, o.fan_out) == (6, 6)


def test_einsum_axes_match_keras_analysis():
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    for eq, in_shape, out in [("ab,bc->ac", (None, 5), (7,)), ("abc,cde->abde", (None, 4, 6), (None, 2, 3)),
                              ("abcd,cde->abe", (None, 4, 2, 3), (None, 8))]:
        layer = keras.layers.EinsumDense(eq, output_shape=out)
        shape, _, _, in_axes, out_axes = _analyze_einsum_string(eq, None, in_shape, layer.partial_output_shape)
        assert kw._einsum_axes(layer, tuple(shape)) == (in_axes, out_axes), eq


def test_defaults_are_the_class_defaults_as_schemes(built):
    ps = params(built)
    expected = {"conv.kernel": "glorot_uniform", "conv.bias": "zeros", "dw.kernel": "glorot_uniform",
                "sep.depthwise_kernel": "glorot_uniform", "sep.pointwise_kernel": "glorot_uniform",
                "bn.gamma": "ones", "bn.beta": "zeros", "bn.moving_mean": "zeros", "bn.moving_variance": "ones",
                "ln.gamma": "ones", "ln.beta": "zeros", "head.kernel": "glorot_uniform", "mha.query.kernel":
                "glorot_uniform"}
    assert {k: ps[k].default for k in expected} == expected
    assert not ps["bn.moving_mean"].trainable and ps["bn.gamma"].trainable


def test_default_is_the_documented_one_not_the_configured_one():
    """A layer configured away from its default keeps its class default: the audit's
    '(layer default)' label must not follow a custom initializer."""
    model = kw.build(lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, kernel_initializer="he_normal"), keras.layers.Embedding(10, 4)]), 0)
    try:
        ps = params(model)
        assert ps["dense.kernel"].default == "glorot_uniform"
        assert ps["embedding.embeddings"].default == "uniform(low=-0.05, high=0.05)"
    finally:
        kw.release(model)


@pytest.mark.parametrize(("init", "expr"), [
    ("he_normal", "he_truncated_normal"), ("glorot_normal", "glorot_truncated_normal"), ("zeros", "zeros"),
    ("orthogonal", "orthogonal"),
    (keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
     "variance_scaling(scale=2, mode=fan_out, distribution=normal)"),
    (keras.initializers.RandomNormal(0.5, 2.0), "normal(mean=0.5, std=2)"),
    (keras.initializers.TruncatedNormal(stddev=0.02), "truncated_normal(std=0.02)"),
    (keras.initializers.Constant(0.7), "constant(value=0.7)"),
])
def test_scheme_of_keras_initializers(init, expr):
    from initspec.spec.schemes import resolve

    assert kw.scheme_of(init) == expr
    resolve(expr)  # a valid scheme expression


def test_seeding_and_stable_paths():
    a = kw.build(zoo, 3)
    va = {p.path: np.array(p.values()) for p in kw.walk(a)}
    kw.release(a)
    b = kw.build(zoo, 3)
    vb = {p.path: np.array(p.values()) for p in kw.walk(b)}
    kw.release(b)
    c = kw.build(zoo, 4)
    vc = {p.path: np.array(p.values()) for p in kw.walk(c)}
    kw.release(c)
    assert va.keys() == vb.keys() == vc.keys()  # clear_session per build: the same names every seed
    assert all(np.array_equal(va[k], vb[k]) for k in va)
    assert not np.array_equal(va["conv.kernel"], vc["conv.kernel"])


def test_unbuilt_model_needs_input_shape():
    def factory():
        return keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])

    with pytest.raises(InputError, match="not built: give --input-shape"):
        kw.build(factory, 0)
    model = kw.build(factory, 0, input_shape=(1, 5))
    try:
        assert {p.path: p.shape for p in kw.walk(model)}["dense.kernel"] == (5, 3)
    finally:
        kw.release(model)


class Tied(keras.layers.Layer):
    """A head that reuses an embedding table (a tied LM head)."""

    def __init__(self, emb, **kw):
        super().__init__(**kw)
        self.table = emb.embeddings

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.transpose(self.table))


def test_tied_variable_is_listed_under_both_owners_with_one_storage():
    def factory():
        tokens = keras.Input((5,), dtype="int32")
        emb = keras.layers.Embedding(11, 4, name="emb")
        h = emb(tokens)
        return keras.Model(tokens, Tied(emb, name="head")(h))

    model = kw.build(factory, 0)
    try:
        ps = params(model)
        assert "head.table" in ps, sorted(ps)
        assert ps["head.table"].storage == ps["emb.embeddings"].storage
    finally:
        kw.release(model)


def test_recognition_and_release():
    model = kw.build(zoo, 0)
    assert walker_for(model) is kw and not kw.recognizes(np.zeros(3)) and not kw.recognizes(zoo)
    ref = weakref.ref(model)
    kw.release(model)
    del model
    gc.collect()
    assert ref() is None  # nothing of the walker's (or Keras's session) keeps the instance alive
    again = kw.build(lambda: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), 0)
    try:
        assert next(p.path for p in kw.walk(again)) == "dense.kernel"  # name counters were reset
    finally:
        kw.release(again)
