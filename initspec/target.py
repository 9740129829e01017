"""``MODULE:ATTR[(literal args)]`` targets: parsed with ast, imported, never evaluated."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from initspec.errors import InputError
from initspec.spec import parse_call


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
            raise InputError(f"--target {self.text!r}: module {e.name!r} not found") from None
        except Exception as e:  # noqa: BLE001 - any import-time failure is the target's fault
            raise InputError(f"--target {self.text!r}: importing {self.module!r} failed: "
                             f"{type(e).__name__}: {e}") from None
        for part in self.attr.split("."):
            if not hasattr(obj, part):
                raise InputError(f"--target {self.text!r}: module {self.module!r} has no attribute {self.attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise InputError(f"--target {self.text!r}: {self.attr!r} is not callable")
        return obj


def parse_target(text: str) -> Target:
    """Parse ``pkg.mod:attr`` or ``pkg.mod:Factory(1.0, mode='fan_in')``."""
    if ":" not in text:
        raise InputError(f"--target {text!r}: expected MODULE:ATTR or MODULE:ATTR(literal args), "
                         "e.g. torch.nn.init:xavier_normal_")
    module, _, rest = text.partition(":")
    if not module.strip() or not rest.strip():
        raise InputError(f"--target {text!r}: expected MODULE:ATTR or MODULE:ATTR(literal args)")
    attr, args, kwargs = parse_call(rest, what="--target")
    return Target(text=text, module=module.strip(), attr=attr, args=tuple(args), kwargs=kwargs,
                  has_call=rest.strip().endswith(")"))
