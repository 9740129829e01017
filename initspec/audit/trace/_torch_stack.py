"""Where a torch write was made and which scheme the code named, read from the Python stack.

The site is the first frame outside torch, initspec, the standard library and the init helper
modules that only pass arguments on (transformers' ``initialization.py``, timm's
``weight_init.py``): ``modeling_gpt2.py:452 in _init_weights``.  The declared names are read from
the arguments of the named initializers on the stack (``torch.nn.init.kaiming_normal_(mode='fan_out',
nonlinearity='relu')`` -> ``kaiming_normal(mode=fan_out, nonlinearity=relu)``), outermost first;
a torch layer's own ``reset_parameters`` stands for the layer's documented default (the walker's
``Param.default``), written :data:`LAYER_DEFAULT` until the parameter is known.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from initspec.audit.trace import Site

#: stands for the owning layer's documented default (``Param.default``) in a list of declared names
LAYER_DEFAULT = "@layer_default"


def _num(x: Any) -> str:
    return repr(float(x))


def _call(name: str, *pairs: tuple[str, Any, Any]) -> str:
    """``name(k=v, ...)`` with the arguments that differ from their default (strings bare, numbers exact)."""
    args = []
    for key, value, default in pairs:
        if value is None or value == default:
            continue
        args.append(f"{key}={value if isinstance(value, str) else _num(value)}")
    return f"{name}({', '.join(args)})" if args else name


def _gain(loc: dict[str, Any]) -> float:
    return float(loc.get("gain", 1.0))


def _kaiming(kind: str) -> Callable[[dict[str, Any]], str | None]:
    def name(loc: dict[str, Any]) -> str | None:
        # torch's calculate_gain reads `a` only for leaky_relu; kaiming_* default a=0 (spec/gains.toml)
        nl = loc.get("nonlinearity", "leaky_relu")
        a = loc.get("a", 0) if nl == "leaky_relu" else None
        return _call(kind, ("a", a, 0), ("mode", loc.get("mode", "fan_in"), "fan_in"),
                     ("nonlinearity", nl, "leaky_relu"))
    return name


def _vs(loc: dict[str, Any]) -> str:
    return _call("variance_scaling", ("scale", float(loc.get("scale", 1.0)), None),
                 ("mode", loc.get("mode", "fan_in"), None), ("distribution", loc.get("distribution", "normal"), None))


#: torch.nn.init's public functions -> their scheme (torch/nn/init.py; argument names as torch 2.13 spells them)
TORCH_INIT: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "uniform_": lambda loc: _call("uniform", ("low", loc["a"], None), ("high", loc["b"], None)),
    "normal_": lambda loc: _call("normal", ("mean", loc["mean"], 0.0), ("std", loc["std"], None)),
    "trunc_normal_": lambda loc: _call("trunc_normal", ("mean", loc["mean"], 0.0), ("std", loc["std"], None),
                                       ("a", loc["a"], None), ("b", loc["b"], None)),
    "constant_": lambda loc: _call("constant", ("value", loc["val"], None)),
    "ones_": lambda loc: "ones",
    "zeros_": lambda loc: "zeros",
    "eye_": lambda loc: "identity",
    "dirac_": lambda loc: _call("dirac", ("groups", loc.get("groups", 1), 1)),
    "xavier_uniform_": lambda loc: _call("glorot_uniform", ("gain", _gain(loc), 1.0)),
    "xavier_normal_": lambda loc: _call("glorot_normal", ("gain", _gain(loc), 1.0)),
    "kaiming_uniform_": _kaiming("kaiming_uniform"),
    "kaiming_normal_": _kaiming("kaiming_normal"),
    "orthogonal_": lambda loc: _call("orthogonal", ("gain", _gain(loc), None)),
    "sparse_": lambda loc: _call("sparse", ("sparsity", loc["sparsity"], None), ("std", loc.get("std", 0.01), None)),
}

#: transformers/initialization.py (transformers 5.x): the guarded copies of torch's, plus its own schemes;
#: its lecun_normal_ calls _variance_scaling(mode="fan_in", distribution="truncated_normal") (lines 190-214)
HF_INIT: dict[str, Callable[[dict[str, Any]], str | None]] = {
    **TORCH_INIT,
    "_variance_scaling": lambda loc: _call("variance_scaling", ("scale", 1.0, None), ("mode", loc["mode"], None),
                                           ("distribution", loc["distribution"], None)),
    "lecun_normal_": lambda loc: "lecun_truncated_normal",
    "default_flax_embed_init_": lambda loc: "lecun_normal",
}

#: timm/layers/weight_init.py (timm 1.0): trunc_normal_ takes absolute bounds; trunc_normal_tf_ cuts N(0, 1)
#: at a, b and then scales (bounds in std units); variance_scaling_ corrects its truncated normal by .8796
TIMM_INIT: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "trunc_normal_": TORCH_INIT["trunc_normal_"],
    "trunc_normal_tf_": lambda loc: _call("truncated_normal", ("mean", loc["mean"], 0.0), ("std", loc["std"], None),
                                          ("lower", loc["a"], None), ("upper", loc["b"], None)),
    "variance_scaling_": _vs,
    "lecun_normal_": lambda loc: "lecun_truncated_normal",
}


class Stack:
    """Reads sites and declared names; built once per trace (module paths resolved then)."""

    def __init__(self) -> None:
        import torch

        import initspec

        self.inside = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch, initspec))
        self.stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
        self.stdlib_raw = sysconfig.get_paths()["stdlib"] + os.sep
        self.torch_init = os.path.join(os.path.dirname(torch.__file__), "nn", "init.py")
        self.torch_modules = os.path.join(os.path.dirname(torch.__file__), "nn", "modules") + os.sep
        self.tables: dict[str, dict[str, Callable[[dict[str, Any]], str | None]]] = {self.torch_init: TORCH_INIT}
        for mod, table in (("transformers.initialization", HF_INIT), ("timm.layers.weight_init", TIMM_INIT)):
            m = sys.modules.get(mod)
            if m is not None and getattr(m, "__file__", None):
                self.tables[m.__file__] = table
        self._outside: dict[str, bool] = {}

    def refresh(self) -> None:
        """Pick up init helper modules imported since (transformers loads its modules lazily)."""
        for mod, table in (("transformers.initialization", HF_INIT), ("timm.layers.weight_init", TIMM_INIT)):
            m = sys.modules.get(mod)
            if m is not None and getattr(m, "__file__", None) and m.__file__ not in self.tables:
                self.tables[m.__file__] = table
                self._outside.pop(m.__file__, None)

    def is_outside(self, filename: str) -> bool:
        hit = self._outside.get(filename)
        if hit is None:
            inside = (filename.startswith(self.inside) or filename in self.tables or filename.startswith("<")
                      or ((filename.startswith(self.stdlib) or filename.startswith(self.stdlib_raw))
                          and "-packages" not in filename))
            hit = self._outside[filename] = not inside
        return hit

    def read(self, depth: int = 2) -> tuple[Site | None, tuple[str, ...]]:
        """The site of the write being made and the declared names on the stack (outermost first)."""
        f = sys._getframe(depth)
        names: list[str] = []
        while f is not None:
            code = f.f_code
            fn = code.co_filename
            if self.is_outside(fn):
                return Site(fn, f.f_lineno, code.co_name), tuple(reversed(names))
            table = self.tables.get(fn)
            if table is not None:
                make = table.get(code.co_name)
                if make is not None:
                    try:
                        expr = make(f.f_locals)
                    except (KeyError, TypeError, ValueError):
                        expr = None
                    if expr:
                        names.append(expr)
            elif code.co_name in ("reset_parameters", "_reset_parameters") and fn.startswith(self.torch_modules):
                names.append(LAYER_DEFAULT)
            f = f.f_back
        return None, tuple(reversed(names))
