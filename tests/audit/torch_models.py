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


# --- issue 22: laws named the way the code declares them ---------------------------------------


class PatchEmbed(nn.Module):
    """ViT/DeiT/CLIP: a (64, 3, 8, 8) patch projection and the blocks' linears, all N(0, 0.02)
    (transformers' ViT ``_init_weights``: trunc_normal_(std=initializer_range) on Conv2d and Linear,
    absolute bounds ±2 = ±100 std, so a normal).  fan_out = 64·8·8 = 4096 makes
    variance_scaling(5/3, fan_out) a std of 0.02017: the same law on this shape to 1%."""

    def __init__(self, d: int = 64, patch: int = 8, n_layer: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, stride=patch)
        self.blocks = nn.ModuleList(nn.Linear(d, d) for _ in range(n_layer))
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("weight"):
                    nn.init.trunc_normal_(p, std=0.02)  # absolute a=-2, b=2, as transformers calls it
                else:
                    p.zero_()


class DepthwiseStages(nn.Module):
    """ConvNeXt: 7x7 depthwise convolutions in stages of 16 and 32 channels and pointwise linears,
    all N(0, 0.02) (transformers' ConvNext ``_init_weights``: normal_(std=initializer_range)).
    On (16, 1, 7, 7) variance_scaling(1/6, fan_avg) is std 0.02000; on (32, 1, 7, 7)
    variance_scaling(1/3, fan_avg) is std 0.0203."""

    def __init__(self, widths: tuple[int, ...] = (16, 32)) -> None:
        super().__init__()
        self.dw = nn.ModuleList(nn.Conv2d(c, c, 7, padding=3, groups=c) for c in widths)
        self.pw = nn.ModuleList(nn.Linear(c, 4 * c) for c in widths)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("weight"):
                    p.normal_(0.0, 0.02)
                else:
                    p.zero_()


class KaimingFanOut(nn.Module):
    """timm's ResNet: every convolution kaiming_normal_(mode='fan_out', nonlinearity='relu'), i.e.
    N(0, 2/fan_out), on a bottleneck's shapes: (64, 64, 3, 3) is he_normal too (fan_in = fan_out),
    (64, 32, 3, 3) is lecun_normal too (2/(64·9) = 1/(32·9)), (256, 64, 1, 1), (64, 256, 1, 1) and the
    stem (64, 3, 7, 7) are fan_out only.  (timm resnet.py ``init_weights``.)"""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 7, bias=False)
        self.reduce = nn.Conv2d(32, 64, 3, bias=False)
        self.square = nn.Conv2d(64, 64, 3, bias=False)
        self.expand = nn.Conv2d(64, 256, 1, bias=False)
        self.project = nn.Conv2d(256, 64, 1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class PaddedEmbedding(nn.Module):
    """BERT/BART/Whisper: N(0, 0.02) with the padding row zeroed (``weight[padding_idx] = 0``); at a
    small vocabulary (ESM: 33 tokens) the zero row pulls a pooled std to 0.0196."""

    def __init__(self, vocab: int = 33, d: int = 64, padding_idx: int = 1, bug: str = "") -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=padding_idx)
        with torch.no_grad():
            self.emb.weight.normal_(0.0, 0.02)
            if bug != "no_zero":
                self.emb.weight[padding_idx if bug != "other_row" else 0].zero_()


class Sinusoids(nn.Module):
    """A position table computed, not drawn (Whisper's ``sinusoids``, sin | cos halves) next to a
    drawn layer; ``bug='scaled'`` is a release that changed the table (positions / 2)."""

    def __init__(self, length: int = 32, d: int = 64, bug: str = "") -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.empty(length, d), requires_grad=False)
        self.fc = nn.Linear(d, d)
        half = d // 2
        inv = torch.exp(-math.log(10000) / (half - 1) * torch.arange(half))
        t = torch.arange(length)[:, None] * inv[None, :] * (0.5 if bug == "scaled" else 1.0)
        with torch.no_grad():
            self.pos.copy_(torch.cat([torch.sin(t), torch.cos(t)], dim=1))


def odd_std() -> nn.Module:
    """A Linear drawn from N(0, 0.0173), a std no round number or preset is: the lockfile's unknown."""
    m = nn.Linear(256, 256)
    with torch.no_grad():
        m.weight.normal_(0.0, 0.0173)
        m.bias.zero_()
    return m
