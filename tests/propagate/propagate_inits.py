"""Deliberately wrong (and right) numpy-convention initializers the propagation tests feed in."""

from __future__ import annotations

import numpy as np


def he_channels_only(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """He normal with fans from the channels only (shape[1]): the receptive field ignored."""
    return rng.normal(0.0, np.sqrt(2.0 / shape[1]), shape).astype(dtype)


def he_std_as_variance(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """normal(0, 2/n): the variance's value passed as the std."""
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, 2.0 / fan_in, shape).astype(dtype)


def he_gain(g: float):
    """He normal with its gain off by a factor g (g = 1.1: a 10 % gain error)."""
    def init(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (g * rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)).astype(dtype)

    return init


def torch_mlp(depth: int = 10, width: int = 256, default_init: bool = True):
    """A torch ReLU MLP factory for ``--model``: nn.Linear's default init, or kaiming_normal_ (He)."""
    import torch

    layers = []
    for _ in range(depth):
        lin = torch.nn.Linear(width, width, bias=False)
        if not default_init:
            torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def keras_mlp(depth: int = 10, width: int = 256, default_init: bool = True, functional: bool = False):
    """A Keras ReLU MLP for ``--model``: Dense's default (glorot_uniform) or he_normal, as a
    Sequential or a functional model."""
    import keras

    init = "glorot_uniform" if default_init else "he_normal"
    dense = [keras.layers.Dense(width, activation="relu", use_bias=False, kernel_initializer=init)
             for _ in range(depth)]
    if not functional:
        return keras.Sequential([keras.Input((width,)), *dense])
    x = inp = keras.Input((width,))
    for layer in dense:
        x = layer(x)
    return keras.Model(inp, x)


def nnx_mlp(depth: int = 10, width: int = 256, default_init: bool = True, *, rngs):
    """An nnx ReLU MLP for ``--model``: nnx.Linear's default (lecun_normal) or he_normal."""
    from flax import nnx

    kw = {} if default_init else {"kernel_init": nnx.initializers.he_normal()}
    layers = []
    for _ in range(depth):
        layers += [nnx.Linear(width, width, use_bias=False, rngs=rngs, **kw), nnx.relu]
    return nnx.Sequential(*layers)


def linen_mlp(depth: int = 10, width: int = 256, default_init: bool = True):
    """The same MLP in linen (``nn.Dense``'s default is lecun_normal too)."""
    from flax import linen as nn

    kw = {} if default_init else {"kernel_init": nn.initializers.he_normal()}

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = nn.relu(nn.Dense(width, use_bias=False, **kw)(x))
            return x

    return MLP()


def broken_model():
    """A model factory whose own code fails: a failed run (exit 1), not bad input."""
    raise RuntimeError("this model cannot be built")


def nnx_resnet(blocks: int = 8, channels: int = 32, classes: int = 10, *, rngs):
    """A small nnx residual CNN from the library's own layers at their defaults (Conv, BatchNorm,
    Linear: lecun_normal kernels, zero biases): stem conv, ``blocks`` blocks x + BN(Conv(relu(BN(Conv(x))))),
    global average pool, a Linear head; channels last."""
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, c: int, rngs: nnx.Rngs) -> None:
            self.conv1 = nnx.Conv(c, c, (3, 3), rngs=rngs)
            self.bn1 = nnx.BatchNorm(c, rngs=rngs)
            self.conv2 = nnx.Conv(c, c, (3, 3), rngs=rngs)
            self.bn2 = nnx.BatchNorm(c, rngs=rngs)

        def __call__(self, x):
            return nnx.relu(x + self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x))))))

    class ResNet(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.stem = nnx.Conv(3, channels, (3, 3), rngs=rngs)
            self.blocks = nnx.List([Block(channels, rngs) for _ in range(blocks)])
            self.head = nnx.Linear(channels, classes, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.stem(x))
            for b in self.blocks:
                x = b(x)
            return self.head(x.mean(axis=(1, 2)))

    return ResNet(rngs)
