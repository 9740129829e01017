"""Fans in each layout, including the 5x5x3 convolution of the seed question."""

import pytest

from initspec.errors import InputError
from initspec.spec.fans import get_layout, n_of, parse_shape


@pytest.mark.parametrize(("layout", "shape", "fans"), [
    ("tf", (5, 5, 3, 8), (75, 200)),            # 5*5*3 inputs per unit, not 3
    ("torch", (8, 3, 5, 5), (75, 200)),
    ("torch", (512, 128), (128, 512)),
    ("tf", (128, 512), (128, 512)),
    ("torch", (16, 8, 7), (56, 112)),
    ("tf", (7, 8, 16), (56, 112)),
    ("tf", (10,), (10, 10)),                     # Keras: 1-D means fan_in = fan_out = n
    ("tf", (), (1, 1)),
    ("torch", (4, 2, 3, 3, 3), (54, 108)),
])
def test_fans(layout, shape, fans):
    assert get_layout(layout).fans(shape) == fans


def test_jax_axes_and_batch_axis():
    lay = get_layout("jax", in_axis=-1, out_axis=-2, batch_axis=[0])
    # shape (batch 4, kernel 3, out 5, in 7): receptive 3, fan_in 7*3, fan_out 5*3
    assert lay.fans((4, 3, 5, 7)) == (21, 15)


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_small_shapes_are_refused_where_the_framework_refuses(layout):
    with pytest.raises(InputError, match="at least 2 dimensions"):
        get_layout(layout).fans((10,))


def test_modes():
    assert n_of("fan_in", 3, 12) == 3
    assert n_of("fan_out", 3, 12) == 12
    assert n_of("fan_avg", 3, 12) == 7.5
    assert n_of("fan_geo_avg", 3, 12) == 6


@pytest.mark.parametrize("text", ["8,x", "8,-3", "a", "8,0"])
def test_bad_shape(text):
    with pytest.raises(InputError, match="bad shape"):
        parse_shape(text)


def test_shape_forms():
    assert parse_shape("8,3,5,5") == (8, 3, 5, 5)
    assert parse_shape("(8, 3)") == (8, 3)
    assert parse_shape([4, 2]) == (4, 2)
