"""The JAX pytree walker (env flax, which has jax): f(key) -> pytree of arrays."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from initspec.audit.walkers import jax as jw  # noqa: E402
from initspec.errors import InputError  # noqa: E402


class Layer(NamedTuple):
    weight: jax.Array
    bias: jax.Array


def make(key):
    k1, k2 = jax.random.split(key)
    shared = jax.random.normal(k2, (4, 3))
    return {"params": {"enc": Layer(jax.random.normal(k1, (3, 5)), jnp.zeros(5)),
                       "layers": [shared, shared], "act": "relu", "n": 3}}


def test_paths_owner_layout_and_non_arrays_left_out():
    ps = {p.path: p for p in jw.walk(jw.build(make, 0))}
    assert list(ps) == ["enc.weight", "enc.bias", "layers.0", "layers.1"]  # "params" dropped, str/int leaves out
    assert ps["enc.weight"].owner == "Layer" and ps["enc.weight"].role == "weight"
    assert ps["layers.0"].owner == ""  # a list says nothing of the layer
    assert all(p.layout is None and p.fan_in is None for p in ps.values())  # fans: --layout, default tf
    assert ps["layers.0"].storage == ps["layers.1"].storage != ps["enc.weight"].storage  # one array, two paths


def test_seeded_through_the_key():
    a, b, c = ({p.path: p.values() for p in jw.walk(jw.build(make, s))} for s in (1, 1, 2))
    assert np.array_equal(a["enc.weight"], b["enc.weight"])
    assert not np.array_equal(a["enc.weight"], c["enc.weight"])


def test_a_result_without_arrays_is_bad_input():
    with pytest.raises(InputError, match="pytree of arrays"):
        jw.build(lambda key: {"a": 1}, 0)
    assert not jw.recognizes([1, 2.0]) and jw.recognizes({"w": jnp.ones(2)})
