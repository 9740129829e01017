"""The torch walker: ``nn.Module`` models, parameters from ``named_parameters``, layouts from their owners.

torch is only touched when it is already in ``sys.modules``.  Keras layers on the torch backend
are torch modules too; they belong to the Keras walker and are refused here.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from initspec.audit.walkers import Param
from initspec.errors import InputError

FRAMEWORK = "torch"

#: owner class name -> (layout of its weight, scheme expression of its documented default weight init)
_OWNERS: dict[str, tuple[str, str | None]] = {
    "Linear": ("torch", "torch_linear_default"),
    "Bilinear": ("torch", None),
    "Conv1d": ("torch", "torch_linear_default"), "Conv2d": ("torch", "torch_linear_default"),
    "Conv3d": ("torch", "torch_linear_default"),
    # ConvTranspose weights are (in, out/groups, *k); torch's fan rule (and its default init) reads
    # dim 1 as fan_in all the same, so the torch layout gives the fans torch itself uses
    "ConvTranspose1d": ("torch", "torch_linear_default"), "ConvTranspose2d": ("torch", "torch_linear_default"),
    "ConvTranspose3d": ("torch", "torch_linear_default"),
    "Embedding": ("torch", "normal(std=1.0)"),
    "EmbeddingBag": ("torch", "normal(std=1.0)"),
    # transformers' GPT-2 Conv1D stores (in, out): the Keras order inside a torch model
    "Conv1D": ("tf", None),
}
_NORMS = ("LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
          "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LlamaRMSNorm", "T5LayerNorm")


def recognizes(obj: Any) -> bool:
    """A torch ``nn.Module`` that is not a Keras layer (Keras on the torch backend subclasses nn.Module)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return False
    keras = sys.modules.get("keras")
    layer = getattr(keras, "Layer", None) if keras is not None else None
    return not (isinstance(layer, type) and isinstance(obj, layer))


def build(factory: Callable[[], Any], seed: int, **options: Any) -> Any:
    """``torch.manual_seed(seed)``, then the factory; InputError when it returns no nn.Module."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        model = factory()
    if not recognizes(model):
        raise InputError(f"the target returned {type(model).__name__}, not a torch nn.Module")
    return model


def _fans(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    if layout == "tf":
        rf = math.prod(shape[:-2])
        return shape[-2] * rf, shape[-1] * rf
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


def _values(t: Any) -> Callable[[], np.ndarray]:
    def get() -> np.ndarray:
        from initspec.frameworks.torch import to_numpy

        return to_numpy(t)
    return get


def walk(model: Any) -> Iterator[Param]:
    """Every parameter under its fully qualified name (tied ones under each name, same ``storage``)."""
    for mname, module in model.named_modules(remove_duplicate=False):
        owner = type(module).__name__
        weight = getattr(module, "weight", None)
        for role, p in module.named_parameters(prefix="", recurse=False):
            path = f"{mname}.{role}" if mname else role
            shape = tuple(int(d) for d in p.shape)
            layout, default = _OWNERS.get(owner, (None, None))
            fan_in = fan_out = None
            if len(shape) >= 2:
                if layout is not None:  # else the audit applies --layout (or the torch layout)
                    fan_in, fan_out = _fans(shape, layout)
            elif role == "bias" and weight is not None and weight.dim() >= 2 and layout is not None:
                # torch's default bias bound is 1/sqrt(fan_in of the weight)
                fan_in, fan_out = _fans(tuple(weight.shape), layout)
                default = "torch_bias_default" if default == "torch_linear_default" else None
            else:
                n = max(math.prod(shape), 1)
                fan_in = fan_out = n
                if owner in _NORMS or owner.endswith("Norm"):
                    default = "ones" if role == "weight" else "zeros" if role == "bias" else None
                else:
                    default = None
            if role != "weight" and len(shape) >= 2:
                default = None
            meta = p.device.type == "meta"
            yield Param(path=path, shape=shape, dtype=str(p.dtype).removeprefix("torch."),
                        values=_values(p), owner=owner, role=role, layout=layout,
                        fan_in=fan_in, fan_out=fan_out, default=default,
                        storage=None if meta else _storage(p),
                        uninitialized=meta, trainable=bool(p.requires_grad))


def _storage(p: Any) -> tuple[int, int]:
    """Where the values live (tied parameters share it): a DTensor's are its local shard's (it has no
    storage of its own); a shape-only tensor (the trace's FakeTensor) has no data pointer, only its
    storage object."""
    local = p.to_local() if hasattr(p, "to_local") and hasattr(p, "placements") else p
    fake = sys.modules.get("torch._subclasses.fake_tensor")
    if fake is not None and fake.is_fake(local):
        return local.untyped_storage()._cdata, local.storage_offset()
    return local.untyped_storage().data_ptr(), local.storage_offset()


def release(model: Any) -> None:
    """Drop the instance: the caller drops its reference; collect the cycles modules make."""
    del model
    gc.collect()
