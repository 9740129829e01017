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


# -- residual branches ------------------------------------------------------------------------------

def torch_transformer(n_layer: int = 6, d: int = 64, heads: int = 4, scaled: bool = False):
    """A pre-LN transformer block stack on (batch, tokens, d) inputs, nanoGPT's blocks
    (karpathy/nanoGPT model.py@3adf61e: ``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))``, lines 103-105),
    causal attention through F.scaled_dot_product_attention, GELU MLP of 4d, a final LayerNorm.
    Every Linear N(0, 0.02²), biases zero (model.py lines 162-166); ``scaled``: GPT-2's residual
    projections ``c_proj`` N(0, (0.02/√(2·n_layer))²) (model.py lines 142-145; transformers'
    GPT2PreTrainedModel._init_weights, modeling_gpt2.py line 448 in transformers 5.24)."""
    import math

    from torch import nn
    from torch.nn import functional as F

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(d, dim=2)
            q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc, self.gelu, self.c_proj = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(d), Attention(), nn.LayerNorm(d), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h = nn.ModuleList(Block() for _ in range(n_layer))
            self.ln_f = nn.LayerNorm(d)

        def forward(self, x):
            for block in self.h:
                x = block(x)
            return self.ln_f(x)

    model = Stack()
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight") and scaled:
            nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
        elif p.dim() == 2:
            nn.init.normal_(p, 0.0, 0.02)
        elif name.endswith("bias") and "ln" not in name:
            nn.init.zeros_(p)
    return model


def torch_resnet(blocks: int = 4, channels: int = 64, zero_init_last: bool = False):
    """A ResNet of timm's BasicBlocks at one width (huggingface/pytorch-image-models
    timm/models/resnet.py@00c5be7, BasicBlock.forward: ``x += shortcut; x = act2(x)``, with
    ``nn.ReLU(inplace=True)``): stem conv-BN-ReLU, ``blocks`` blocks, mean pool, Linear; convs
    kaiming_normal_(mode='fan_out', nonlinearity='relu') as timm's ResNet.init_weights; BN γ=1, β=0;
    ``zero_init_last``: each block's bn2.weight zero (BasicBlock.zero_init_last)."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.act1 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.act2 = nn.ReLU(inplace=True)

        def forward(self, x):
            shortcut = x
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.bn2(self.conv2(x))
            x += shortcut
            return self.act2(x)

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.act1 = nn.ReLU(inplace=True)
            self.layer1 = nn.Sequential(*(BasicBlock() for _ in range(blocks)))
            self.fc = nn.Linear(channels, 10)

        def forward(self, x):
            x = self.layer1(self.act1(self.bn1(self.conv1(x))))
            return self.fc(x.mean(dim=(2, 3)))

    model = ResNet()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if zero_init_last:
        for b in model.layer1:
            nn.init.zeros_(b.bn2.weight)
    return model


def keras_resnet(blocks: int = 4, channels: int = 32, zero_init_last: bool = False):
    """The same ResNet as a Keras functional model (channels last): Conv2D-BN-ReLU stem, blocks
    ``Add()([shortcut, BN(Conv(ReLU(BN(Conv(x)))))])`` then ReLU, he_normal(fan_out)-like convs
    (VarianceScaling(2, fan_out)), ``zero_init_last``: the second BN's gamma_initializer zeros."""
    import keras
    from keras import layers

    def conv():
        # a new initializer per layer: a Keras 3 initializer instance without a seed draws the same values
        # at every call (keras/src/initializers/random_initializers.py, the RandomNormal docstring)
        init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
        return layers.Conv2D(channels, 3, padding="same", use_bias=False, kernel_initializer=init)

    inp = keras.Input((None, None, 3))
    x = layers.ReLU()(layers.BatchNormalization()(conv()(inp)))
    for i in range(blocks):
        y = layers.ReLU()(layers.BatchNormalization()(conv()(x)))
        y = layers.BatchNormalization(gamma_initializer="zeros" if zero_init_last else "ones")(conv()(y))
        x = layers.ReLU()(layers.Add(name=f"block{i}_add")([x, y]))
    return keras.Model(inp, layers.Dense(10)(layers.GlobalAveragePooling2D()(x)))


def torch_opaque_block():
    """x + cumsum(Linear(x)): a residual branch through an op the mean field has no rule for."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return x + torch.cumsum(self.lin(x), dim=-1)

    return Block()


# -- the coordinate check: a standard and a muP MLP family ----------------------------------------

def mlp_family(width: int, mup: bool = False, d_in: int = 32, d_out: int = 10, base: int = 64):
    """A 3-layer ReLU MLP d_in → width → width → d_out, no biases, in the standard (SP) or the maximal
    update parametrization (μP) of Tensor Programs V (Yang et al. 2022, arXiv 2203.03466, Table 3):
    input and hidden weights N(0, 1/fan_in) in both; SP's output layer N(0, 1/fan_in) too, μP's is zero
    (mup's ``readout_zero_init``, microsoft/mup README "Coord Check"); μP's Adam learning rate of the
    hidden and output weights is scaled by base/width (Table 3: 1/fan_in; mup/optim.py MuAdam
    ``group['lr'] /= width_mult`` for matrix-like weights), read by :func:`mup_adam` from ``lr_mult``."""
    import torch
    from torch import nn

    layers = [nn.Linear(d_in, width, bias=False), nn.ReLU(), nn.Linear(width, width, bias=False), nn.ReLU(),
              nn.Linear(width, d_out, bias=False)]
    for lin in (layers[0], layers[2]):
        nn.init.normal_(lin.weight, 0.0, lin.in_features ** -0.5)
    if mup:
        nn.init.zeros_(layers[4].weight)
        for lin in (layers[2], layers[4]):
            lin.weight.lr_mult = base / width
    else:
        nn.init.normal_(layers[4].weight, 0.0, width ** -0.5)
    with torch.no_grad():
        return nn.Sequential(*layers)


def mup_adam(params, lr: float):
    """torch.optim.Adam with one parameter group per ``lr_mult`` (1 when absent): μP's per-layer rates."""
    import torch

    groups: dict[float, list] = {}
    for p in params:
        groups.setdefault(getattr(p, "lr_mult", 1.0), []).append(p)
    return torch.optim.Adam([{"params": ps, "lr": lr * k} for k, ps in groups.items()], lr=lr)


def not_an_optimizer(params, lr: float):
    """An ``--optimizer`` factory that returns no optimizer."""
    return list(params)


def no_width(depth: int = 2):
    """A model factory without a width parameter (``--widths`` refuses it)."""
    return torch_mlp(depth, 8)


def keras_hostile(kind: str = "call_sys_exit"):
    """A Keras model whose ``build`` or ``call`` exits."""
    import sys

    import keras

    class Hostile(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(4)

        def build(self, input_shape):
            if kind == "build_sys_exit":
                sys.exit(4)
            super().build(input_shape)

        def call(self, x, training=False):
            if kind == "call_sys_exit":
                sys.exit(5)
            return self.dense(x)

    return Hostile()


def nnx_hostile(*, rngs):
    """An nnx module whose ``__call__`` exits."""
    import sys

    from flax import nnx

    class Hostile(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.lin = nnx.Linear(4, 4, rngs=rngs)

        def __call__(self, x):
            sys.exit(6)

    return Hostile(rngs)


def keras_family(width: int, d_in: int = 16):
    """A Keras ReLU MLP d_in → width → width → 4 (he_normal, then a lecun_normal readout): a width family."""
    import keras

    return keras.Sequential([keras.Input((d_in,)),
                             keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal"),
                             keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal"),
                             keras.layers.Dense(4, kernel_initializer="lecun_normal")])


def nnx_family(width: int, d_in: int = 16, *, rngs):
    """The same family in Flax nnx."""
    from flax import nnx

    he = nnx.initializers.he_normal()
    return nnx.Sequential(nnx.Linear(d_in, width, kernel_init=he, rngs=rngs), nnx.relu,
                          nnx.Linear(width, width, kernel_init=he, rngs=rngs), nnx.relu,
                          nnx.Linear(width, 4, rngs=rngs))
