"""Audit targets: ``MODULE:ATTR[(literal args)]``, ``hf:MODEL_TYPE[(config overrides)]`` (or
``hf:MODEL_CLASS[(config overrides)]``), ``timm:NAME``.

Each becomes a zero-argument factory that builds one model instance (under ``--convention jax``
a one-argument ``f(key)``).  Arguments are literals parsed with ``ast``, never evaluated.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from initspec.errors import InputError
from initspec.frameworks.target import parse_target
from initspec.spec.expr import parse_call

#: transformers model type -> the head class built for it (any other type: AutoModel's base class)
HF_HEADS = {
    "gpt2": "GPT2LMHeadModel",
    "bert": "BertForMaskedLM",
    "llama": "LlamaForCausalLM",
    "t5": "T5ForConditionalGeneration",
}


class BuildError(Exception):
    """The model's own code raised while it was built: a failed audit (exit 1), not bad input."""


def build_model(what: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` (a model's constructor, ``what`` names it) under the engine's guard: sys.exit,
    os._exit, a bare BaseException or any other failure of the model's own code is a BuildError
    (exit 1), never a traceback or the model's exit code; bad input stays an InputError."""
    from initspec.engine.guard import DrawError, guarded

    try:
        return guarded(fn, what=f"building {what}")
    except (InputError, BuildError):
        raise
    except DrawError as e:
        raise BuildError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - the model's own code failed
        first = (str(e).strip().splitlines() or [""])[0]
        raise BuildError(f"building {what} raised {type(e).__name__}: {first}".strip()) from None


@dataclass
class AuditTarget:
    """What to build: a label for reports and the factory that builds one instance."""

    text: str
    factory: Callable[..., Any]
    kind: str = "module"            # module | hf | timm
    framework: str | None = None    # known up front for hf/timm
    notes: list[str] = field(default_factory=list)


def _hf(text: str, rest: str) -> AuditTarget:
    model_type, args, overrides = parse_call(rest, what="target")
    if args:
        raise InputError(f"target {text!r}: config overrides are keywords, e.g. hf:gpt2(n_layer=4)")
    try:
        import transformers
    except ImportError:
        raise InputError(f"target {text!r}: transformers is not installed (pip install transformers)") from None

    named = _hf_class(transformers, model_type)
    try:  # a model class by name (hf:LlamaForCausalLM(...), as `initspec scan hf` names its targets)
        config = (named.config_class(**overrides) if named
                  else transformers.AutoConfig.for_model(model_type, **overrides))
    except ValueError as e:
        raise InputError(f"target {text!r}: {str(e).splitlines()[0]}") from None
    head = HF_HEADS.get(model_type)
    if named is not None:
        cls = named
    elif head is not None:
        cls = getattr(transformers, head)
    else:
        cls = transformers.AutoModel._model_mapping[type(config)]  # the base model of the config

    def factory() -> Any:
        return cls(config)

    factory.config = config  # type: ignore[attr-defined]  # a reference's vars read it (--reference)
    return AuditTarget(text, factory, "hf", "torch", [f"{cls.__name__} from {type(config).__name__}"
                                                      f"({', '.join(f'{k}={v!r}' for k, v in overrides.items())})"])


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
        raise InputError(f"target {text!r}: timm options are keywords, e.g. timm:resnet18(num_classes=10)")
    try:
        timm = importlib.import_module("timm")
    except Exception as e:  # noqa: BLE001 - a timm that does not import (torchvision mismatch) is bad setup
        raise InputError(f"target {text!r}: timm is not importable ({type(e).__name__}: {e}); "
                         "install timm with a matching torchvision") from None
    if name not in timm.list_models():
        raise InputError(f"target {text!r}: timm has no model {name!r}")

    def factory() -> Any:
        return timm.create_model(name, pretrained=False, **kwargs)

    return AuditTarget(text, factory, "timm", "torch")


def parse_audit_target(text: str, convention: str | None = None) -> AuditTarget:
    """Parse and load a target (InputError when it is malformed, missing or not callable)."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix == "hf":
        return _hf(text, rest)
    if sep and prefix == "timm":
        return _timm(text, rest)
    if not sep:
        raise InputError(f"target {text!r}: expected MODULE:ATTR[(literal args)], hf:MODEL_TYPE[(overrides)] "
                         "or timm:NAME")
    try:
        t = parse_target(text)
        obj = t.load()
    except InputError as e:  # the audit's target is an argument, not --target
        raise InputError(str(e).replace("--target ", "target ", 1)) from None
    args, kwargs = t.args, t.kwargs
    if convention == "jax":
        # f(key) -> pytree; ATTR(args) is a factory call that returns f, like `initspec check`'s jax convention
        fn = obj
        if t.has_call:
            from initspec.engine.guard import DrawError, guarded

            try:
                fn = guarded(obj, *args, what=text, **kwargs)
            except DrawError as e:
                raise BuildError(str(e)) from None
            except Exception as e:  # noqa: BLE001 - the target's own failure
                raise BuildError(f"{text} raised {type(e).__name__}: {e}") from None
            if not callable(fn):
                raise InputError(f"target {text!r}: under --convention jax, {t.attr}(...) must return f(key)")
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
