"""keras-hub: every ``Backbone`` subclass in ``keras_hub.models``, built from constructor arguments
(no preset: nothing downloaded).

The arguments come from the class itself: the example call in its docstring (keras-hub documents
each backbone with a randomly initialized, custom-config example), literal arguments only, then
every required argument still missing by the rules below, then every size shrunk by the rules of
:mod:`initspec.scan.shrink` (the same caps as transformers: 2 layers, width 64, 2 heads, ...).
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

from initspec.scan import shrink
from initspec.scan.libraries import CannotBuild, Resolved

NAME = "keras_hub"
FRAMEWORK = "keras"

#: a required argument the docstring does not give -> a small value
REQUIRED = {
    "vocabulary_size": shrink.VOCAB, "num_layers": shrink.LAYERS, "num_heads": shrink.HEADS,
    "num_query_heads": shrink.HEADS, "num_key_value_heads": 1, "hidden_dim": shrink.WIDTH,
    "intermediate_dim": shrink.FFN, "head_dim": shrink.HEAD_DIM, "key_value_dim": shrink.HEAD_DIM,
    "max_sequence_length": 128, "mlp_dim": shrink.FFN, "patch_size": 8, "image_shape": (shrink.IMAGE, shrink.IMAGE, 3),
    "vocab_size": shrink.VOCAB, "num_frames": 2, "num_experts": shrink.EXPERTS, "top_k": shrink.EXPERTS_PER_TOKEN,
    "num_experts_per_tok": shrink.EXPERTS_PER_TOKEN,
}
#: list arguments (per stage or per layer) shrunk element by element
LISTS = {"stackwise_num_blocks": shrink.LAYERS, "stackwise_depth": shrink.LAYERS, "stackwise_num_layers": shrink.LAYERS,
         "depths": shrink.LAYERS, "stackwise_num_repeats": 1, "stackwise_num_filters": shrink.WIDTH,
         "hidden_dims": shrink.WIDTH, "stackwise_num_heads": shrink.HEADS, "num_heads": shrink.HEADS}


def version() -> str:
    import keras_hub

    return str(keras_hub.__version__)


def _classes() -> dict[str, Any]:
    import keras_hub

    base = keras_hub.models.Backbone
    return {n: c for n in dir(keras_hub.models) if n.endswith("Backbone") and n != "Backbone"
            for c in [getattr(keras_hub.models, n)] if isinstance(c, type) and issubclass(c, base)}


def architectures(options: dict[str, Any]) -> list[str]:
    return sorted(_classes())


def doc_kwargs(cls: Any) -> dict[str, Any]:
    """The literal keyword arguments of the fullest ``ClassName(...)`` call in the docstring's examples."""
    best: dict[str, Any] = {}
    for block in re.findall(r"```python\n(.*?)```", inspect.getdoc(cls) or "", re.S):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) != cls.__name__:
                continue
            kwargs = {}
            for kw in node.keywords:
                try:
                    kwargs[kw.arg] = ast.literal_eval(kw.value)
                except (ValueError, TypeError, SyntaxError):
                    continue
            if len(kwargs) > len(best):
                best = kwargs
    return best


def _small(k: str, v: Any) -> Any:
    if k in LISTS and isinstance(v, (list, tuple)) and all(type(x) is int for x in v):
        return type(v)(min(x, LISTS[k]) for x in v)
    if k == "image_shape" and isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, int) for x in v[:2]):
        return (min(v[0], shrink.IMAGE), min(v[1], shrink.IMAGE), v[2])
    cap = shrink.CAPS.get(k)
    if cap is not None and type(v) is int and v > cap:
        return cap
    return v


def resolve(name: str, options: dict[str, Any]) -> Resolved:
    cls = _classes().get(name)
    if cls is None:
        raise CannotBuild(f"keras_hub.models has no backbone {name!r}")
    kwargs = doc_kwargs(cls)
    sig = inspect.signature(cls.__init__)
    for p in list(sig.parameters.values())[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in kwargs:
            continue
        if p.default is inspect.Parameter.empty:
            if p.name not in REQUIRED:
                raise CannotBuild(f"{name} needs {p.name!r}, which neither its docstring's example nor a "
                                  "shrinking rule gives")
            kwargs[p.name] = REQUIRED[p.name]
    kwargs = {k: _small(k, v) for k, v in kwargs.items() if k in sig.parameters or _takes_kwargs(sig)}
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return Resolved(f"keras_hub.models:{name}({args})")


def _takes_kwargs(sig: inspect.Signature) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
