"""What a project's own tests look like with initspec's pytest plugin (docs/examples/pytest.sh runs it)."""

import numpy as np
import pytest


def he_init(rng: np.random.Generator, shape, dtype):
    """The project's He initializer: N(0, 2/fan_in) on a torch-layout weight (out, in, *kernel)."""
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(dtype)


def bad(rng: np.random.Generator, shape, dtype):
    """The same with the variance passed where the std belongs."""
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, 2.0 / fan_in, size=shape).astype(dtype)


def test_he_init(initspec):
    initspec.assert_conforms(he_init, scheme="he_normal", convention="numpy", layout="torch",
                             shapes=[(256, 128), (64, 3, 5, 5)], dtypes=["float32", "bfloat16"])


@pytest.mark.initspec(convention="numpy", layout="torch", shapes=[(64, 32)])
def test_bad(initspec):
    initspec.assert_conforms(bad, scheme="he_normal")
