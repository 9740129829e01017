"""``MODULE:ATTR[(literal args)]`` targets: parsed with ast, imported, never evaluated."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from initspec.errors import InputError
from initspec.frameworks.manifest import Case, Entry, default_shapes
from initspec.spec.expr import parse_call
from initspec.spec.fans import get_layout, parse_shape
from initspec.spec.validate import show

#: Standard-library modules that are never initializers but run commands, code or files
#: (``os:system``, ``builtins:exec``, ``subprocess:run``, ...): a target or manifest call
#: naming one (or a submodule) is refused before anything is imported.
REFUSED_MODULES = frozenset({
    "__main__", "builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "code",
    "codeop", "ctypes", "pickle", "marshal", "shelve", "signal", "socket", "pty", "multiprocessing", "threading",
    "concurrent", "asyncio", "tempfile", "pathlib", "io", "glob", "webbrowser", "urllib", "http", "ftplib",
    "smtplib", "platform", "atexit", "gc", "inspect", "types", "functools", "operator", "site", "pdb", "timeit",
    "zipimport", "pkgutil", "sysconfig", "resource", "fcntl", "select", "mmap", "tkinter", "venv", "ensurepip",
})


def refuse_module(module: str, text: str, what: str = "--target") -> None:
    """InputError when ``module`` is (under) one of REFUSED_MODULES."""
    top = module.strip().split(".")[0]
    if top in REFUSED_MODULES:
        raise InputError(f"{what} {show(text)}: module {top!r} is never an initializer and can run "
                         "commands or code; initspec refuses it (name the initializer's own module)")


#: conventions that pass their own seed to the initializer on every draw
SEEDED_CONVENTIONS = ("keras", "tf")


def refuse_seed(target: Target, convention: str, what: str = "--target") -> None:
    """InputError when a ``seed=`` in the target's arguments would be overridden by the draw's seed."""
    if convention in SEEDED_CONVENTIONS and "seed" in target.kwargs:
        raise InputError(f"{what} {show(target.text)}: initspec seeds each draw; remove seed= "
                         f"(the {convention} convention passes seed=<the draw's seed>, which would override it)")


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
        obj = t.load()
    else:
        obj = target
        name = getattr(target, "__qualname__", type(target).__name__)
        t = Target(text=f"{getattr(target, '__module__', '?')}:{name}", module="", attr=name)
    lay = get_layout(layout)
    cases = [Case(parse_shape(s)) for s in shapes] if shapes else [Case(s) for s in default_shapes(layout)]
    entry = Entry(id=t.attr, call=t.text, convention=convention, claims=scheme, layout=lay,
                  cases=cases, dtypes=list(dtypes), framework=binding.FRAMEWORK)
    prepare = lambda: binding.prepare(obj, t, convention)  # noqa: E731
    return entry, build(prepare) if build else prepare()
