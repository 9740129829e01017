"""A fake ``transformers`` with two releases, for ``initspec scan hf`` across releases in CI.

``FAKE_TRANSFORMERS_RELEASE`` (1.0 or 2.0) picks the release.  What differs, planted:
- tinygpt: 1.0 forgets the scaled init of c_proj (the GPT-2 bug of transformers 5.14), 2.0 has it;
- tinyrenamed: 2.0 renames its MLP's ``fc`` to ``dense``;
- tiny_removed exists only in 1.0, tiny_new only in 2.0.
What does not differ: tinybert (identical code), tinybroken (raises while building, in both).
Only the API ``initspec.scan.libraries.hf`` and ``hf:`` targets use is here.
"""

from __future__ import annotations

import math
import os
from typing import ClassVar

from torch import nn

__version__ = os.environ.get("FAKE_TRANSFORMERS_RELEASE", "1.0")
_V2 = __version__.startswith("2")


class _Config:
    model_type = ""
    defaults: ClassVar[dict] = {}

    def __init__(self, **kwargs):
        for k, v in {**self.defaults, **kwargs}.items():
            setattr(self, k, v)

    def to_dict(self):
        return {"model_type": self.model_type, **{k: getattr(self, k) for k in self.defaults}}


def _config(name, **defaults):
    return type(f"{name.title()}Config", (_Config,), {"model_type": name, "defaults": defaults})


TinyGptConfig = _config("tinygpt", vocab_size=50257, n_embd=768, n_layer=12, n_positions=1024)
TinyBertConfig = _config("tinybert", vocab_size=30522, hidden_size=768, num_hidden_layers=12, intermediate_size=3072)
TinyRenamedConfig = _config("tinyrenamed", hidden_size=768, intermediate_size=3072)
TinyBrokenConfig = _config("tinybroken", hidden_size=64)
TinyRemovedConfig = _config("tiny_removed", hidden_size=768)
TinyNewConfig = _config("tiny_new", hidden_size=768)


class _Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)


class TinyGptForCausalLM(nn.Module):
    config_class = TinyGptConfig

    def __init__(self, config):
        super().__init__()
        d = config.n_embd
        self.wte, self.wpe = nn.Embedding(config.vocab_size, d), nn.Embedding(config.n_positions, d)
        self.h = nn.ModuleList(_Block(d) for _ in range(config.n_layer))
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, std=0.02)
        if _V2:  # the fix: the residual projections scaled by 1/sqrt(2 n_layer)
            for block in self.h:
                nn.init.normal_(block.c_proj.weight, std=0.02 / math.sqrt(2 * config.n_layer))


class TinyBertForMaskedLM(nn.Module):
    config_class = TinyBertConfig

    def __init__(self, config):
        super().__init__()
        d, f = config.hidden_size, config.intermediate_size
        self.embeddings = nn.Embedding(config.vocab_size, d)
        self.layer = nn.ModuleList(nn.ModuleDict({"query": nn.Linear(d, d), "intermediate": nn.Linear(d, f)})
                                   for _ in range(config.num_hidden_layers))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


class TinyRenamedModel(nn.Module):
    config_class = TinyRenamedConfig

    def __init__(self, config):
        super().__init__()
        mlp = nn.Linear(config.hidden_size, config.intermediate_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        if _V2:
            self.dense = mlp
        else:
            self.fc = mlp


class TinyBrokenModel(nn.Module):
    config_class = TinyBrokenConfig

    def __init__(self, config):
        super().__init__()
        raise RuntimeError("tinybroken needs a kernel this machine does not have")


class TinyRemovedModel(nn.Module):
    config_class = TinyRemovedConfig

    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)


class TinyNewModel(TinyRemovedModel):
    config_class = TinyNewConfig


