"""The declarative spec: load the TOML scheme families and resolve scheme expressions.

A scheme expression is a preset name with optional keyword arguments whose values are
literals or bare words (``he_normal(mode=fan_out)``,
``variance_scaling(scale=2, mode=fan_in, distribution=truncated_normal)``).  It is parsed
with :mod:`ast` and never evaluated.  Resolution turns it into a :class:`Scheme`: the
family ``kind`` plus the complete set of that kind's base parameters.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec._data import data_dir
from initspec.errors import InputError, closest
from initspec.spec import validate as v
from initspec.spec.expr import parse_call

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

# Each kind's base parameters and their defaults (None: required from the preset).
KIND_PARAMS: dict[str, dict[str, Any]] = {
    "variance_scaling": {
        "scale": None, "gain": None, "nonlinearity": None, "a": None,
        "mode": "fan_in", "distribution": "truncated_normal", "mean": 0.0,
        "lower": -2.0, "upper": 2.0, "truncation_correction": "exact",
    },
    "normal": {"mean": 0.0, "std": 1.0},
    "truncated_normal": {"mean": 0.0, "std": 1.0, "lower": -2.0, "upper": 2.0, "bounds": "std"},
    "uniform": {"low": 0.0, "high": 1.0},
    "constant": {"value": 0.0},
    "orthogonal": {"gain": 1.0},
    "identity": {"gain": 1.0},
    "dirac": {"groups": 1},
    "sparse": {"sparsity": 0.1, "std": 0.01},
}
_SCALE_KEYS = ("scale", "gain", "nonlinearity")


@dataclass(frozen=True)
class Preset:
    """One named scheme as written in a spec file."""

    name: str
    kind: str
    summary: str
    defaults: dict[str, Any]
    rename: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    source: str = ""

    def accepted(self) -> set[str]:
        """Parameter names a user may pass to this preset."""
        return set(self.defaults) | set(self.rename) | set(self.values) | set(KIND_PARAMS[self.kind])


@dataclass(frozen=True, eq=False)
class Scheme:
    """A resolved scheme: a kind and its complete base parameters."""

    name: str
    kind: str
    params: dict[str, Any]
    expr: str
    summary: str = ""

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def is_random(self) -> bool:
        return self.kind not in ("constant", "identity", "dirac")

    @property
    def fan_dependent(self) -> bool:
        return self.kind == "variance_scaling"

    def __repr__(self) -> str:
        return f"Scheme({self.expr})"


def _line_of(text: str, needles: list[str]) -> int:
    """1-based line of the first needle found (searched in order, each after the last)."""
    pos = 0
    for needle in needles:
        m = re.search(rf"(^|[\s.\[\"]){re.escape(needle)}([\s.\]\"=]|$)", text[pos:], re.M)
        if m is None:
            break
        pos += m.start() + 1
    return text.count("\n", 0, pos) + 1


@functools.cache
def _schema() -> dict:
    return json.loads((data_dir("spec") / "schema.json").read_text())


def load_family(path: Path) -> list[Preset]:
    """Parse and validate one spec file; errors name the file, line and key."""
    import jsonschema

    text = path.read_text()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: malformed TOML: {e}") from None
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        keys = [str(k) for k in err.path]
        where = ".".join(keys) or "(top level)"
        line = _line_of(text, keys[1:] if keys[:1] == ["schemes"] else keys)
        raise InputError(f"{path}:{line}: key {where}: {err.message}")
    presets = []
    for name, body in doc["schemes"].items():
        p = Preset(
            name=name, kind=body["kind"], summary=body["summary"], defaults=dict(body["defaults"]),
            rename=dict(body.get("rename", {})), values=dict(body.get("values", {})),
            aliases=tuple(body.get("aliases", ())), source=f"{path.name}:{_line_of(text, [name])}",
        )
        try:
            base = _translate(p, p.defaults)
        except InputError as e:
            raise InputError(f"{path}:{_line_of(text, [name])}: key schemes.{name}: {e}") from None
        unknown = set(base) - set(KIND_PARAMS[p.kind])
        if unknown:
            key = sorted(unknown)[0]
            raise InputError(f"{path}:{_line_of(text, [name, key])}: key schemes.{name}: "
                             f"{key!r} is not a parameter of kind {p.kind}")
        presets.append(p)
    return presets


@functools.cache
def gains() -> dict[str, Any]:
    """The activation gain table of spec/gains.toml."""
    with open(data_dir("spec") / "gains.toml", "rb") as f:
        return tomllib.load(f)["gains"]


def gain(nonlinearity: str, a: float | None = None) -> float:
    """The recommended gain of an activation (torch ``calculate_gain``'s table)."""
    table = gains()
    if nonlinearity not in table:
        raise InputError(f"unknown nonlinearity {v.show(nonlinearity)}{closest(str(nonlinearity)[:100], list(table))}")
    entry = table[nonlinearity]
    if isinstance(entry, dict):  # leaky_relu: sqrt(2 / (1 + a²))
        slope = entry["default_slope"] if a is None else float(a)
        return math.sqrt(2.0 / (1.0 + slope**2))
    return float(entry)


@functools.cache
def registry() -> dict[str, Preset]:
    """Every preset by name and alias, from all spec/*.toml files."""
    out: dict[str, Preset] = {}
    for path in sorted(data_dir("spec").glob("*.toml")):
        if path.name in ("gains.toml", "shapes.toml"):
            continue
        for p in load_family(path):
            for name in (p.name, *p.aliases):
                if name in out:
                    raise InputError(f"{path}: scheme {name!r} is defined twice (also in {out[name].source})")
                out[name] = p
    return out


def presets() -> list[Preset]:
    """Each preset once, in spec order."""
    seen: dict[str, Preset] = {}
    for p in registry().values():
        seen.setdefault(p.name, p)
    return list(seen.values())


def _translate(preset: Preset, given: dict[str, Any], expr: str | None = None) -> dict[str, Any]:
    """Apply the preset's value tables, then its renames.  With ``expr`` (the user's keys), a key
    also set by a table or a rename is refused: one of the two would silently win."""
    out = dict(given)

    def clash(key: str, new: str) -> None:
        if expr is not None and new in given and new != key:
            raise InputError(f"scheme {v.show(expr)}: {key} sets {new}, which is given too: give one of them")
    for key, table in preset.values.items():
        if key not in out:
            continue
        raw = out.pop(key)
        label = str(raw).lower() if isinstance(raw, bool) else str(raw)
        if label not in table:
            raise InputError(f"scheme {preset.name}: {key}={v.show(raw)} is not one of {sorted(table)}")
        new = table[label]
        if isinstance(new, dict):
            for k in new:
                clash(key, k)
            out.update(new)
        else:
            out[key] = new
    for old, new in preset.rename.items():
        if old in out:
            clash(old, new)
            out[new] = out.pop(old)
    return out


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) and v.isidentifier() else repr(v)


def resolve(expr: str | Scheme) -> Scheme:
    """Resolve a scheme expression to a :class:`Scheme` (raises InputError when bad)."""
    if isinstance(expr, Scheme):
        return expr
    name, args, kwargs = parse_call(expr)
    reg = registry()
    if name not in reg:
        raise InputError(f"unknown scheme {v.show(name)}{closest(name[:100], list(reg))}; "
                         "`initspec list` shows them all")
    preset = reg[name]
    if args:
        example = next(iter(preset.defaults), "x")
        raise InputError(f"scheme {v.show(expr)}: pass arguments by keyword, e.g. {name}({example}=...)")
    bad = set(kwargs) - preset.accepted()
    if bad:
        key = sorted(bad)[0]
        raise InputError(f"scheme {v.show(expr)}: unknown parameter {v.show(key)}"
                         f"{closest(key[:100], sorted(preset.accepted()))}")
    given = _translate(preset, kwargs, expr)
    # after the renames: tf1_variance_scaling's factor is its scale
    given_scale = [k for k in _SCALE_KEYS if k in given]
    if len(given_scale) > 1:  # one would silently win over the other
        shown = [next((old for old, new in preset.rename.items() if new == k and old in kwargs), k)
                 for k in given_scale]
        raise InputError(f"scheme {v.show(expr)}: give one of {', '.join(_SCALE_KEYS)}, not both "
                         f"{shown[0]} and {shown[1]}")
    defaults = dict(preset.defaults)
    params = _translate(preset, defaults)
    if given_scale:  # a user-given scale replaces the preset's
        for k in _SCALE_KEYS:
            params.pop(k, None)
    params.update(given)
    params = _complete(preset.kind, params, expr)
    canon = name + (f"({', '.join(f'{k}={_fmt(v)}' for k, v in kwargs.items())})" if kwargs else "")
    return Scheme(name=preset.name, kind=preset.kind, params=params, expr=canon, summary=preset.summary)


# keys whose value is a spread (positive, squared into a variance); the other floats are locations
_MAGNITUDES = ("scale", "std", "gain", "truncation_correction")


def _number(params: dict[str, Any], key: str, expr: str) -> float:
    where = f"scheme {v.show(expr)}"
    if key == "sparsity":
        return v.number(params[key], key, where=where, low=0.0, high=1.0, high_open=True)
    if key in _MAGNITUDES:
        return v.magnitude(params[key], key, where=where)
    return v.location(params[key], key, where=where)


def _complete(kind: str, params: dict[str, Any], expr: str) -> dict[str, Any]:
    """Fill the kind's defaults, derive the scale, and check every value."""
    out = {k: v for k, v in KIND_PARAMS[kind].items() if v is not None}
    out.update(params)
    if kind == "variance_scaling":
        a = out.pop("a", None)
        if a is not None:  # checked even where no nonlinearity uses it: a=nan is nonsense anywhere
            a = v.location(a, "a", where=f"scheme {v.show(expr)}")
        if "nonlinearity" in out:
            scale = gain(str(out.pop("nonlinearity")), a) ** 2
        elif "gain" in out:
            scale = _number(out, "gain", expr) ** 2
        else:
            scale = out.get("scale", 1.0)
        for k in ("gain", "a"):
            out.pop(k, None)
        out["scale"] = scale
        out["scale"] = _number(out, "scale", expr)
        if out["mode"] not in MODES:
            raise InputError(f"scheme {v.show(expr)}: mode {v.show(out['mode'])} is not one of {', '.join(MODES)}")
        if out["distribution"] not in DISTRIBUTIONS:
            raise InputError(f"scheme {v.show(expr)}: distribution {v.show(out['distribution'])} is not one of "
                             f"{', '.join(DISTRIBUTIONS)}")
        tc = out["truncation_correction"]
        if tc not in ("exact", "none") and (isinstance(tc, bool) or not isinstance(tc, (int, float))):
            raise InputError(f"scheme {v.show(expr)}: truncation_correction must be exact, none or a number")
        if tc not in ("exact", "none"):
            out["truncation_correction"] = _number(out, "truncation_correction", expr)
    for key, default in KIND_PARAMS[kind].items():
        if isinstance(default, float):
            out[key] = _number(out, key, expr)
        elif isinstance(default, int) and (isinstance(out[key], bool) or not isinstance(out[key], int)
                                           or out[key] < 1):
            raise InputError(f"scheme {v.show(expr)}: {key} must be a positive integer, got {v.show(out[key])}")
    if kind == "truncated_normal" and out["bounds"] not in ("std", "absolute"):
        raise InputError(f"scheme {v.show(expr)}: bounds must be std or absolute, got {v.show(out['bounds'])}")
    for lo, hi in (("lower", "upper"), ("low", "high")):
        if lo in out and hi in out and not out[lo] < out[hi]:
            raise InputError(f"scheme {v.show(expr)}: {lo} ({out[lo]}) must be below {hi} ({out[hi]})")
    if kind == "variance_scaling" and out["distribution"] == "truncated_normal":
        v.truncation(out["lower"], out["upper"], where=f"scheme {v.show(expr)}")
    if kind == "truncated_normal":
        lo, hi = out["lower"], out["upper"]
        if out["bounds"] == "absolute":
            lo, hi = (lo - out["mean"]) / out["std"], (hi - out["mean"]) / out["std"]
        v.truncation(lo, hi, where=f"scheme {v.show(expr)}", unit=out["bounds"] if out["bounds"] == "std" else
                     "standardized")
    return out


_N_TEXT = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in + fan_out)/2",
           "fan_geo_avg": "sqrt(fan_in * fan_out)"}


def formula(scheme: Scheme) -> str:
    """The scheme's law in one line."""
    p = scheme.params
    if scheme.kind == "variance_scaling":
        n = _N_TEXT[p["mode"]]
        dist = p["distribution"]
        if dist == "normal":
            return f"N({p['mean']:g}, {p['scale']:.6g} / n), n = {n}"
        if dist == "uniform":
            return f"U(±sqrt(3 * {p['scale']:.6g} / n)), n = {n}"
        tc = p["truncation_correction"]
        corr = {"exact": "variance corrected to exactly scale/n", "none": "uncorrected"}.get(
            tc, f"pre-truncation variance {tc} * scale/n")
        return (f"truncated normal, Var = {p['scale']:.6g} / n, n = {n}, cut at "
                f"[{p['lower']:g}, {p['upper']:g}] pre-truncation std ({corr})")
    if scheme.kind == "normal":
        return f"N({p['mean']:g}, {p['std']:g}²)"
    if scheme.kind == "truncated_normal":
        unit = "pre-truncation std" if p["bounds"] == "std" else "absolute"
        return f"N({p['mean']:g}, {p['std']:g}²) cut at [{p['lower']:g}, {p['upper']:g}] ({unit})"
    if scheme.kind == "uniform":
        return f"U({p['low']:g}, {p['high']:g})"
    if scheme.kind == "constant":
        return f"every element = {p['value']:g}"
    if scheme.kind == "sparse":
        return f"ceil({p['sparsity']:g} * rows) zeros per column, the rest N(0, {p['std']:g}²)"
    return ", ".join(f"{k}={v}" for k, v in p.items()) + f" ({scheme.kind})"
