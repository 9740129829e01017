"""Audit targets: ``MODULE:ATTR[(literal args)]``, ``hf:MODEL_TYPE[(config overrides)]`` (or
``hf:MODEL_CLASS[(config overrides)]``), ``timm:NAME``.

Each becomes a zero-argument factory that builds one model instance (under ``--convention jax``
a one-argument ``f(key)``).  Arguments are literals parsed with ``ast``, never evaluated.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from initspec.engine.guard import UserCodeError, call_user
from initspec.errors import InputError, clip
from initspec.frameworks.target import parse_target
from initspec.spec.expr import _show, parse_call

#: transformers model type -> the head class built for it (any other type: AutoModel's base class)
HF_HEADS = {
    "gpt2": "GPT2LMHeadModel",
    "bert": "BertForMaskedLM",
    "llama": "LlamaForCausalLM",
    "t5": "T5ForConditionalGeneration",
}


class BuildError(UserCodeError):
    """The model's own code failed (raised, exited, hung) while it was built or walked: a failed
    audit (exit 1), not bad input.  The message is one line naming what it did."""


def build_model(what: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` (a model's constructor, ``what`` names it) under the engine's guard and the command's
    time limit (:func:`~initspec.engine.guard.call_user`): sys.exit, os._exit, a bare BaseException,
    a hang or any other failure of the model's own code is a BuildError (exit 1), never a traceback
    or the model's exit code; bad input stays an InputError."""
    return call_user(fn, what=f"building {clip(what)}", error=BuildError)


@dataclass
class AuditTarget:
    """What to build: a label for reports and the factory that builds one instance."""

    text: str
    factory: Callable[..., Any]
    kind: str = "module"            # module | hf | timm
    framework: str | None = None    # known up front for hf/timm
    notes: list[str] = field(default_factory=list)


_HF_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(\(.*\))?\s*", re.S)


def _hf(text: str, rest: str) -> AuditTarget:
    """``hf:MODEL_TYPE[(overrides)]``, the model type spelled as transformers spells it (``deberta-v2``,
    ``xlm-roberta``); every refusal of transformers (an unknown type, a config that rejects the
    overrides, a type without a base model class) is one line of bad input."""
    shown = _show(text)
    model_type, overrides = _hf_call(text, rest)
    try:
        import transformers
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        raise InputError(f"target {shown}: transformers is not installed (pip install transformers)") from None
    named = _hf_class(transformers, model_type)
    types = list(CONFIG_MAPPING.keys())
    if named is None and model_type not in types:
        import difflib

        hits = difflib.get_close_matches(model_type, types, n=4, cutoff=0.6)
        dashed = model_type.replace("_", "-")
        if dashed in types and dashed not in hits:
            hits.insert(0, dashed)
        near = f"; closest: {', '.join(hits[:4])}" if hits else ""
        raise InputError(f"target {shown}: transformers {transformers.__version__} has no model type "
                         f"{_show(model_type, 40)}{near}")
    try:  # a model class by name (hf:LlamaForCausalLM(...), as `initspec scan hf` names its targets)
        config = (named.config_class(**overrides) if named
                  else transformers.AutoConfig.for_model(model_type, **overrides))
    except Exception as e:  # noqa: BLE001 - ValueError, TypeError, huggingface_hub's StrictDataclass*Error
        raise InputError(f"target {shown}: the {model_type} config refused the overrides: {_one_line(e)}") from None
    head = HF_HEADS.get(model_type)
    if named is not None:
        cls = named
    elif head is not None:
        cls = getattr(transformers, head)
    else:
        cls = transformers.AutoModel._model_mapping.get(type(config), None)  # the base model of the config
        if cls is None:
            raise InputError(f"target {shown}: {type(config).__name__} has no base model class in transformers "
                             f"(AutoModel does not build {model_type}; it is a part of a composite model)")

    def factory() -> Any:
        return cls(config)

    factory.config = config  # type: ignore[attr-defined]  # a reference's vars read it (--reference)
    return AuditTarget(text, factory, "hf", "torch", [f"{cls.__name__} from {type(config).__name__}"
                                                      f"({', '.join(f'{k}={v!r}' for k, v in overrides.items())})"])


def _hf_call(text: str, rest: str) -> tuple[str, dict[str, Any]]:
    """The model type and the config overrides of ``hf:MODEL_TYPE[(key=literal, ...)]``, importing nothing."""
    shown = _show(text)
    m = _HF_NAME.fullmatch(rest)
    if not m:
        raise InputError(f"target {shown}: expected hf:MODEL_TYPE or hf:MODEL_TYPE(key=literal, ...)")
    model_type, call = m.group(1), m.group(2)
    args, overrides = [], {}
    if call:
        _, args, overrides = parse_call("config" + call, what=f"target {shown}:")
    if args:
        raise InputError(f"target {shown}: config overrides are keywords, e.g. hf:gpt2(n_layer=4)")
    return model_type, overrides


def _one_line(e: BaseException, limit: int = 160) -> str:
    """An exception's message on one line (huggingface_hub's validation errors span several)."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _hf_class(transformers: Any, name: str) -> Any:
    """The transformers model class called ``name`` (``LlamaForCausalLM``), or None for a model type."""
    if not name[:1].isupper():
        return None
    try:
        cls = getattr(transformers, name)
    except Exception:  # noqa: BLE001 - transformers' lazy module raises what the model's import raised
        return None
    return cls if isinstance(cls, type) and hasattr(cls, "config_class") else None


def _timm(text: str, rest: str) -> AuditTarget:
    name, args, kwargs = parse_call(rest, what="target")
    if args:
        raise InputError(f"target {clip(text)!r}: timm options are keywords, e.g. timm:resnet18(num_classes=10)")
    try:
        timm = importlib.import_module("timm")
    except Exception as e:  # noqa: BLE001 - a timm that does not import (torchvision mismatch) is bad setup
        raise InputError(f"target {clip(text)!r}: timm is not importable ({type(e).__name__}: {e}); "
                         "install timm with a matching torchvision") from None
    if name not in timm.list_models():
        raise InputError(f"target {clip(text)!r}: timm has no model {clip(name)!r}")

    def factory() -> Any:
        return timm.create_model(name, pretrained=False, **kwargs)

    return AuditTarget(text, factory, "timm", "torch")


def check_syntax(text: str) -> None:
    """The target's form, importing nothing (InputError when malformed): the CLI refuses a bad
    target before it starts the audit's child process."""
    prefix, sep, rest = text.strip().partition(":")
    if sep and prefix == "hf":
        _hf_call(text.strip(), rest)  # model types have hyphens: not a Python name
    elif sep and prefix == "timm":
        parse_call(rest, what="target")
    elif sep:
        try:
            parse_target(text.strip())
        except InputError as e:  # the audit's target is an argument, not --target
            raise InputError(str(e).replace("--target ", "target ", 1)) from None
    else:
        raise InputError(f"target {clip(text)!r}: expected MODULE:ATTR[(literal args)], hf:MODEL_TYPE[(overrides)] "
                         "or timm:NAME")


def parse_audit_target(text: str, convention: str | None = None) -> AuditTarget:
    """Parse and load a target (InputError when it is malformed, missing or not callable)."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix == "hf":
        return _hf(text, rest)
    if sep and prefix == "timm":
        return _timm(text, rest)
    if not sep:
        raise InputError(f"target {clip(text)!r}: expected MODULE:ATTR[(literal args)], hf:MODEL_TYPE[(overrides)] "
                         "or timm:NAME")
    try:
        t = parse_target(text)
        # the import runs the module's code: exits and hangs are the target's failure (exit 1)
        obj = call_user(t.load, what=f"importing {clip(t.module)}", error=BuildError)
    except InputError as e:  # the audit's target is an argument, not --target
        raise InputError(str(e).replace("--target ", "target ", 1)) from None
    args, kwargs = t.args, t.kwargs
    if convention == "jax":
        # f(key) -> pytree; ATTR(args) is a factory call that returns f, like `initspec check`'s jax convention
        fn = obj
        if t.has_call:
            fn = call_user(lambda: obj(*args, **kwargs), what=clip(text), error=BuildError)
            if not callable(fn):
                raise InputError(f"target {clip(text)!r}: under --convention jax, {t.attr}(...) must return f(key)")
        return AuditTarget(text, fn, "module", "jax")

    def factory(**extra: Any) -> Any:  # extra: what a walker seeds through the constructor (nnx rngs=)
        return obj(*args, **kwargs, **extra)

    factory.callee = obj  # type: ignore[attr-defined]
    # a constructor that needs rngs= cannot be called unseeded to find the framework: it is flax nnx
    nnx = sys.modules.get("flax.nnx")
    needs_rngs = nnx is not None and "rngs" not in kwargs and _takes(obj, "rngs")
    return AuditTarget(text, factory, "module", "flax" if needs_rngs else None)


def _takes(fn: Any, name: str) -> bool:
    try:  # a class by its __init__ (nnx's metaclass hides the constructor's signature)
        return name in inspect.signature(fn.__init__ if isinstance(fn, type) else fn).parameters
    except (TypeError, ValueError):
        return False
