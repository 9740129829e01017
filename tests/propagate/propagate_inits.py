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
