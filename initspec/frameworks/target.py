"""``MODULE:ATTR[(literal args)]`` targets: parsed with ast, imported, never evaluated."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from initspec.errors import InputError
from initspec.frameworks.manifest import Case, Entry, default_shapes
from initspec.spec.expr import parse_call
from initspec.spec.fans import get_layout, parse_shape
from initspec.spec.validate import show

#: Python's standard library holds no initializer and no model, and much of it runs commands or
#: code (``os:system``, ``cProfile:run('...')``, ``pydoc:pipepager('x', 'touch F')``): a target or
#: manifest call naming one of its modules is refused before anything is imported.  This catches
#: mistakes; it is no sandbox.  A target is code (docs/trust.md): initspec imports the module and
#: calls what it names, with the user's rights.
REFUSED_MODULES = frozenset(sys.stdlib_module_names) | {"__main__"}

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def refuse_module(module: str, text: str, what: str = "--target") -> None:
    """InputError when ``module`` is not a dotted name, or is (under) a standard-library module."""
    name = module.strip()
    if not _DOTTED.fullmatch(name):
        raise InputError(f"{what} {show(text)}: the module {show(name)} is not a dotted Python name")
    top = name.split(".")[0]
    if top in REFUSED_MODULES:
        raise InputError(f"{what} {show(text)}: module {top!r} is in Python's standard library, which is never "
                         "an initializer or a model: refused")


def refuse_attr(attr: str, text: str, what: str = "--target") -> None:
    """InputError unless ``attr`` is a dotted path of names the module itself holds (no dunders:
    ``f.__globals__`` reaches what the module never named)."""
    if not _DOTTED.fullmatch(attr):
        raise InputError(f"{what} {show(text)}: {show(attr)} is not a dotted attribute path")
    dunder = [p for p in attr.split(".") if p.startswith("__")]
    if dunder:
        raise InputError(f"{what} {show(text)}: the attribute path goes through {show(dunder[0])}; "
                         "name the module's own callable")


#: conventions that pass their own seed to the initializer on every draw
SEEDED_CONVENTIONS = ("keras", "tf")


def refuse_seed(target: Target, convention: str, what: str = "--target") -> None:
    """InputError when a ``seed=`` in the target's arguments would be overridden by the draw's seed."""
    if convention in SEEDED_CONVENTIONS and "seed" in target.kwargs:
        raise InputError(f"{what} {show(target.text)}: initspec seeds each draw; remove seed= "
                         f"(the {convention} convention passes its own)")


@dataclass(frozen=True)
class Target:
    """A callable named by module and attribute path, with literal arguments to bind."""

    text: str
    module: str
    attr: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    has_call: bool = False

    def load(self) -> Any:
        """Import the module and follow the attribute path (InputError when missing)."""
        try:
            obj = importlib.import_module(self.module)
        except ModuleNotFoundError as e:
            raise InputError(f"--target {show(self.text)}: module {show(e.name)} not found") from None
        except Exception as e:  # noqa: BLE001 - any import-time failure is the target's fault
            raise InputError(f"--target {show(self.text)}: importing {show(self.module)} failed: "
                             f"{type(e).__name__}: {e}") from None
        for part in self.attr.split("."):
            if not hasattr(obj, part):
                raise InputError(f"--target {show(self.text)}: module {show(self.module)} "
                                 f"has no attribute {show(self.attr)}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise InputError(f"--target {show(self.text)}: {show(self.attr)} is not callable")
        return obj


def parse_target(text: str) -> Target:
    """Parse ``pkg.mod:attr`` or ``pkg.mod:Factory(1.0, mode='fan_in')``."""
    if ":" not in text:
        raise InputError(f"--target {show(text)}: expected MODULE:ATTR or MODULE:ATTR(literal args), "
                         "e.g. torch.nn.init:xavier_normal_")
    module, _, rest = text.partition(":")
    if not module.strip() or not rest.strip():
        raise InputError(f"--target {show(text)}: expected MODULE:ATTR or MODULE:ATTR(literal args)")
    refuse_module(module, text)
    attr, args, kwargs = parse_call(rest, what="--target")
    refuse_attr(attr, text)
    return Target(text=text, module=module.strip(), attr=attr, args=tuple(args), kwargs=kwargs,
                  has_call=rest.strip().endswith(")"))


def entry_for(target: str | Callable[..., Any], scheme: str, convention: str, layout: str,
              shapes: Iterable[Any] | None, dtypes: Sequence[str],
              build: Callable[[Callable[[], Any]], Any] | None = None) -> tuple[Entry, Any]:
    """A one-entry manifest for a target and its prepared drawer; ``build`` runs the binding's
    prepare (the factory call), e.g. under the engine's guard (``engine.guard.build_guarded``)."""
    from initspec.frameworks import binding_for

    if isinstance(target, str):  # its form and a seed= refused before any framework is imported
        refuse_seed(parse_target(target), convention)
    binding = binding_for(convention, convention=True)
    if isinstance(target, str):
        t = parse_target(target)
        load = t.load  # the import runs the module's code: under ``build`` too
    else:
        name = getattr(target, "__qualname__", type(target).__name__)
        t = Target(text=f"{getattr(target, '__module__', '?')}:{name}", module="", attr=name)
        load = lambda: target  # noqa: E731
    lay = get_layout(layout)
    cases = [Case(parse_shape(s)) for s in shapes] if shapes else [Case(s) for s in default_shapes(layout)]
    entry = Entry(id=t.attr, call=t.text, convention=convention, claims=scheme, layout=lay,
                  cases=cases, dtypes=list(dtypes), framework=binding.FRAMEWORK)
    prepare = lambda: binding.prepare(load(), t, convention)  # noqa: E731
    return entry, build(prepare) if build else prepare()
