"""Torch models that misbehave (issue 25): what they do must never decide initspec's exit code.

torch is imported here, at module level, so that loading the target imports it and ``--timeout``
bounds the model's own calls, not torch's first import.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn


class _BrokenGrad(torch.autograd.Function):
    """The identity forward, a backward that raises (a custom kernel's gradient that fails)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("no gradient kernel for this input")


def hostile_model(kind: str):
    """A Linear(4, 4) whose forward, eval() or output misbehaves as ``kind`` says."""
    class Hostile(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def eval(self):
            if kind == "eval_os_exit":
                os._exit(7)
            return super().eval()

        def forward(self, x):
            y = self.lin(x)
            if kind == "forward_sys_exit":
                sys.exit(3)
            if kind == "forward_base_exception":
                raise BaseException("not an Exception")
            if kind == "forward_sleeps":
                time.sleep(60)
            if kind == "backward_raises":
                y = _BrokenGrad.apply(y)
            outputs = {"none": None, "empty_tuple": (), "string": "logits", "integer": y.argmax(-1),
                       "complex": torch.complex(y, y), "detached": y.detach(), "empty": y[:0]}
            if kind == "hf_logits":
                from transformers.modeling_outputs import SequenceClassifierOutput

                return SequenceClassifierOutput(logits=y)  # more than one element: `logits or y` raised
            return outputs.get(kind, y)

    return Hostile()
