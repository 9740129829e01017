"""Small torch models, each reproducing one initialization bug from issue 10, and their correct twins.

Every model is a factory the audit builds under its own seeds: ``tests.audit.torch_models:NAME(...)``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)


class TinyGPT(nn.Module):
    """GPT-2's init: normal(0.02) weights, zero biases, LayerNorm ones/zeros, c_proj scaled by
    1/sqrt(2 n_layer), a head of std 1/sqrt(d)."""

    def __init__(self, n_layer: int = 4, d: int = 64, vocab: int = 256, bug: str = "") -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d, padding_idx=None)
        self.h = nn.ModuleList(Block(d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.n_layer, self.bug = n_layer, bug
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("ln_1.weight") or name == "ln_f.weight":
                    p.fill_(1.0)
                elif p.dim() == 1:
                    p.zero_()
                else:
                    p.normal_(0.0, 0.02)
            for name, p in self.named_parameters():
                # the bug of issue 10: a fully qualified name never equals "c_proj.weight"
                hit = name == "c_proj.weight" if bug == "scaled_name" else name.endswith("c_proj.weight")
                if hit:
                    p.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))
            self.head.weight.normal_(0.0, 1.0 if bug == "head_var1" else 1 / math.sqrt(d))
            if bug == "ln_random":
                for name, p in self.named_parameters():
                    if "ln_" in name:
                        p.normal_(0.0, 0.02)
            if bug == "padding_none":
                # `weight[padding_idx] = 0` with padding_idx None indexes the whole table
                self.wte.weight[self.wte.padding_idx] = 0
            if bug == "zero_forgotten":
                self.h[-1].c_proj.reset_parameters()  # meant zeros; keeps torch's layer default
            elif bug == "" or bug != "zero_forgotten":
                self.h[-1].c_proj.weight.zero_()
            if bug == "private_generator":
                g = torch.Generator().manual_seed(1234)  # "re-initialized after loading", seed ignored
                self.head.weight.normal_(0.0, 1 / math.sqrt(d), generator=g)
            if bug == "meta":
                self.head.weight = nn.Parameter(torch.empty(vocab, d, device="meta"))
            if bug == "nan":
                self.head.weight[0, 0] = float("nan")


def tiny_gpt(n_layer: int = 4, bug: str = "") -> nn.Module:
    return TinyGPT(n_layer=n_layer, bug=bug)


class Cloned(nn.Module):
    """Blocks made by deep-copying one initialized block (``bug``) or built one by one (twin)."""

    def __init__(self, n_layer: int = 4, d: int = 64, bug: bool = True) -> None:
        super().__init__()
        first = nn.Linear(d, d)
        self.blocks = nn.ModuleList([first] + [copy.deepcopy(first) if bug else nn.Linear(d, d)
                                               for _ in range(n_layer - 1)])


def raises() -> nn.Module:
    raise RuntimeError("constructor exploded")


def not_a_model() -> int:
    return 3


class Tied(nn.Module):
    """An LM head sharing the embedding's storage (GPT-2's tie)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(128, 32)
        self.head = nn.Linear(32, 128, bias=False)
        self.head.weight = self.emb.weight


def tied() -> nn.Module:
    return Tied()


_BUILDS = [0]


def renamed() -> nn.Module:
    """A model whose parameter names change with every build (a global layer counter)."""
    _BUILDS[0] += 1
    m = nn.Module()
    setattr(m, f"fc{_BUILDS[0]}", nn.Linear(4, 4))
    return m


class Custom(nn.Module):
    """A layer the walker does not know, holding its kernel (in, out) like Keras."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(32, 96) * (1 / 32) ** 0.5)


def custom() -> nn.Module:
    return Custom()


def orthogonal(n_layer: int = 3, d: int = 48, gain: float = 1.0) -> nn.Module:
    """Linear weights from torch.nn.init.orthogonal_ (biases zero)."""
    m = nn.Sequential(*(nn.Linear(d, d) for _ in range(n_layer)))
    for layer in m:
        nn.init.orthogonal_(layer.weight, gain=gain)
        nn.init.zeros_(layer.bias)
    return m


class SamplerBug(nn.Module):
    """Twelve layers whose weights a (simulated) broken kernel scales by 2 after drawing them: the code
    asks for normal(0, 0.02), the real tensor holds normal(0, 0.04).  The scale runs on real tensors only
    (a shape-only trace's FakeTensor is skipped), so the trace reads what the code asked for."""

    def __init__(self, bug: bool = True) -> None:
        super().__init__()
        from torch._subclasses.fake_tensor import is_fake

        self.layers = nn.ModuleList(nn.Linear(64, 64, bias=False) for _ in range(12))
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.normal_(0.0, 0.02)
                if bug and not is_fake(layer.weight):
                    layer.weight.mul_(2.0)


def sampler_bug(bug: bool = True) -> nn.Module:
    return SamplerBug(bug)
