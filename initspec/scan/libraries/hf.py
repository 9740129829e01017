"""transformers: every model type that has a model class, built from its default config shrunk by
the rules of :mod:`initspec.scan.shrink`, with its default head.

The head is ``initspec audit``'s own for the types it names (``HF_HEADS``), else the first of masked
LM (an encoder's ``ForCausalLM`` wants ``is_decoder``), causal LM, seq2seq LM, speech seq2seq, image classification
that transformers maps the type to, else its base model (``AutoModel``), else the first other task
mapping.  The target names the class: ``hf:LlamaForCausalLM(num_hidden_layers=2, ...)``.
Nothing is downloaded: configs are the library's defaults.
"""

from __future__ import annotations

from typing import Any

from initspec.scan import shrink
from initspec.scan.libraries import CannotBuild, Resolved, first_line

NAME = "hf"
FRAMEWORK = "torch"
HEADS = ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
         "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
         "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", "MODEL_MAPPING_NAMES")


def version() -> str:
    import transformers

    return str(transformers.__version__)


def _mappings() -> list[dict[str, Any]]:
    from transformers.models.auto import modeling_auto as m

    names = list(HEADS) + sorted(n for n in dir(m) if n.startswith("MODEL_") and n.endswith("_MAPPING_NAMES")
                                 and n not in HEADS)
    return [getattr(m, n, None) or {} for n in names]  # a release without a task has no mapping for it


def head_class(model_type: str) -> str | None:
    """The class name built for ``model_type`` (see the module docstring)."""
    from initspec.audit.targets import HF_HEADS

    if model_type in HF_HEADS:
        return HF_HEADS[model_type]
    for mapping in _mappings():
        cls = mapping.get(model_type)
        if cls:
            return cls if isinstance(cls, str) else cls[0]
    return None


def architectures(options: dict[str, Any]) -> list[str]:
    """Every model type some task mapping names a class for, sorted."""
    return sorted({t for mapping in _mappings() for t in mapping})


def _params_on_meta(cls: Any, config: Any) -> int:
    import torch

    with torch.device("meta"):
        model = cls(config)
    return sum(p.numel() for p in model.parameters())


def _text(cls_name: str, overrides: dict[str, Any]) -> str:
    return f"hf:{cls_name}(" + ", ".join(f"{k}={v!r}" for k, v in overrides.items()) + ")"


def resolve(name: str, options: dict[str, Any]) -> Resolved:
    """The smallest of: every rule, the rules without the layer counts, the layer counts alone,
    the default config, that builds (on the meta device: nothing allocated) under ``max_params``."""
    import transformers

    cls_name = head_class(name)
    if cls_name is None:
        raise CannotBuild(f"transformers maps no model class to {name!r}")
    try:
        cls = getattr(transformers, cls_name)
    except Exception as e:  # noqa: BLE001 - an optional dependency of that model is missing
        raise CannotBuild(f"transformers.{cls_name} does not import ({first_line(e)})") from None
    try:
        base = cls.config_class().to_dict()
    except Exception as e:  # noqa: BLE001 - a config that cannot be made without arguments
        raise CannotBuild(f"{cls.config_class.__name__}() raised {first_line(e)}") from None
    # a type served by another type's class (exaone -> LlamaForCausalLM) keeps its own config:
    # the hf:TYPE target (its base model, or initspec audit's head for the type)
    alias = getattr(cls.config_class, "model_type", name) != name
    if alias:
        import transformers as tr

        base = tr.AutoConfig.for_model(name).to_dict()
        cls_name = name
        cls = tr.AutoModel._model_mapping[type(tr.AutoConfig.for_model(name))]
    limit = int(options.get("max_params") or 0)
    ladders = [shrink.shrink_fields(base), shrink.shrink_fields(base, keys=tuple(k for k in shrink.CAPS
                                                                                   if k not in shrink.LAYER_KEYS)),
               shrink.shrink_fields(base, keys=shrink.LAYER_KEYS), {}]
    first_error, seen = "", []
    for overrides in ladders:
        if overrides in seen:
            continue
        seen.append(overrides)
        try:
            config = transformers.AutoConfig.for_model(name, **overrides) if alias else cls.config_class(**overrides)
            n = _params_on_meta(cls, config)
        except Exception as e:  # noqa: BLE001 - this shrink breaks the model's own checks: try the next
            first_error = first_error or first_line(e)
            continue
        if limit and n > limit:
            first_error = first_error or f"{n / 1e6:.1f}M parameters after shrinking (over --max-params)"
            continue
        notes = [] if overrides is ladders[0] else ["shrunk less: the full rules did not build"]
        if alias:
            notes.append(f"{name} is built by {head_class(name)}: audited as hf:{name} (its base model)")
        return Resolved(_text(cls_name, overrides), params=n, notes=notes)
    raise CannotBuild(first_error or "no config builds")
