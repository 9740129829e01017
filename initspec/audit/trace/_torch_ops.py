"""What each aten operation does to the law of the storage it writes or creates.

The recorder (``torch.py``) classifies every operation once per overload (:func:`classify`), then
asks these functions for the law a write leaves.  Each rule is one of the algebra's identities
(:mod:`.laws`); an operation not listed here leaves ``opaque`` (if any input had a random draw in
its history) or ``deterministic`` (if none had), with its name: never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from initspec.audit.trace import laws as L

#: in-place draws in the algebra's vocabulary (a new value, independent of the old)
DRAWS = ("normal_", "uniform_")
#: in-place draws of laws the vocabulary has no name for
OTHER_DRAWS = ("exponential_", "bernoulli_", "cauchy_", "log_normal_", "geometric_", "random_")
#: in-place writes of a constant or of another tensor's values
SETS = ("fill_", "zero_", "copy_")
#: in-place maps of the current values the algebra knows
MAPS = ("mul_", "div_", "add_", "sub_", "neg_", "clamp_", "clamp_min_", "clamp_max_", "erfinv_")
#: in-place writes of selected elements only (a mask or an index): always a part of the tensor
SELECTIVE = ("index_put_", "masked_fill_", "index_fill_", "masked_scatter_", "scatter_", "index_copy_",
             "_index_put_impl_", "put_")
#: in-place operations that change a tensor's metadata (or where it points), never its values
METADATA = ("t_", "transpose_", "squeeze_", "unsqueeze_", "as_strided_", "swapdims_", "swapaxes_", "resize_",
            "resize_as_", "set_", "detach_", "requires_grad_", "rename_", "_coalesced_", "share_memory_")
#: out-of-place creations: allocation only, a constant, or a deterministic sequence
EMPTY = ("empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "empty_permuted")
CONSTANT_MAKERS = {"zeros": 0.0, "zeros_like": 0.0, "new_zeros": 0.0, "ones": 1.0, "ones_like": 1.0, "new_ones": 1.0}
FULL_MAKERS = ("full", "full_like", "new_full", "scalar_tensor")
#: out-of-place random creations (law from the arguments) and those the vocabulary has no name for
RANDOM_MAKERS = ("randn", "randn_like", "rand", "rand_like", "normal")
OTHER_RANDOM = ("randint", "randint_like", "randperm", "bernoulli", "multinomial", "poisson", "rrelu_with_noise",
                "native_dropout", "_standard_gamma", "_sample_dirichlet", "binomial", "exponential", "uniform")
#: out-of-place maps that keep the values (a cast keeps the law up to the dtype's rounding)
SAME = ("clone", "_to_copy", "contiguous", "copy", "alias_copy", "detach_copy", "lift_fresh_copy", "view_copy",
        "_unsafe_view", "_to_dense", "to_dense", "_copy_from_and_resize", "_copy_from")
AFFINE = ("mul", "div", "add", "sub", "rsub", "neg", "erfinv", "clamp", "clamp_min", "clamp_max")
#: out-of-place rearrangements: every output value is an input value (a pad adds its own constant)
REARRANGE = ("cat", "stack", "constant_pad_nd", "repeat", "expand_copy", "index_select", "gather", "flip", "roll",
             "permute_copy", "tile", "narrow_copy", "slice_copy", "select_copy", "transpose_copy", "t_copy",
             "repeat_interleave", "hstack", "vstack", "unfold_copy", "squeeze_copy", "unsqueeze_copy")
#: rearrangements that neither repeat nor add values: independent draws of one law stay that law
NO_REPEAT = ("cat", "stack", "flip", "roll", "permute_copy", "narrow_copy", "slice_copy", "select_copy",
             "transpose_copy", "t_copy", "hstack", "vstack", "squeeze_copy", "unsqueeze_copy")


@dataclass(frozen=True)
class Value:
    """A tensor's values as the trace knows them: the law, and whether a random draw is in their history."""

    law: L.Law
    random: bool
    ops: tuple[str, ...] = ()
    seeds: tuple[tuple[bool, int], ...] = ()  # (global generator?, its initial seed) of every draw behind it


def scalar(x: Any, value_of: Any) -> float | None:
    """A Python number, or a tensor whose law is a constant (a broadcast scalar): its value; else None."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    v = value_of(x) if x is not None and hasattr(x, "shape") else None
    if v is not None and v.law.kind == "constant":
        return v.law.value
    return None


def mixed(name: str, inputs: list[Value]) -> Value:
    """An operation the algebra does not know: opaque if any input was random, else deterministic."""
    random = any(v.random for v in inputs)
    ops = _ops(inputs, name)
    seeds = _seeds(inputs)
    if random:
        return Value(L.opaque(", ".join(ops)), True, ops, seeds)
    if any(v.law.kind == "unwritten" for v in inputs):
        return Value(L.opaque(f"{name} of never-written storage"), False, ops)
    return Value(L.deterministic(", ".join(ops)), False, ops)


def _seeds(inputs: list[Value]) -> tuple[tuple[bool, int], ...]:
    out: list[tuple[bool, int]] = []
    for v in inputs:
        out += [s for s in v.seeds if s not in out]
    return tuple(out)


def _ops(inputs: list[Value], name: str) -> tuple[str, ...]:
    seen: list[str] = []
    for v in inputs:
        for o in v.ops:
            if o not in seen:
                seen.append(o)
    seen.append(name)
    return tuple(seen[-12:])  # the recent history is what a reader needs; a long chain is cut


def rearranged(name: str, a: dict[str, Any], inputs: list[Value]) -> Value:
    """A rearrangement of values (:data:`REARRANGE`): one constant stays that constant; one random law
    stays that law where no value is repeated or added (:data:`NO_REPEAT`); anything else is mixed."""
    values = list(inputs)
    if name == "constant_pad_nd":
        values.append(Value(L.constant(float(a.get("value", 0.0) or 0.0)), False))
    laws = {v.law for v in values}
    if len(laws) == 1 and values:
        law = next(iter(laws))
        if law.kind == "constant" or (law.random and name in NO_REPEAT):
            return Value(law, any(v.random for v in values), _ops(values, name), _seeds(values))
    return mixed(name, values)


def affine_of(name: str, a: dict[str, Any], old: Value, value_of: Any) -> Value:
    """The law after ``mul/div/add/sub/rsub/neg/clamp/erfinv`` (in place or not) of ``old`` by its
    other argument; the other argument must be a number or a constant tensor, else the law is mixed."""
    base = name.rstrip("_")
    other_key = "other" if "other" in a else "scalar" if "scalar" in a else None
    other = a.get(other_key) if other_key else None
    law = old.law
    if base == "neg":
        new = L.affine(law, -1.0, 0.0, "neg")
    elif base == "erfinv":
        new = L.erfinv(law)
    elif base in ("clamp", "clamp_min", "clamp_max"):
        lo = a.get("min") if base != "clamp_max" else None
        hi = a.get("max") if base != "clamp_min" else None
        lo_v = scalar(lo, value_of) if lo is not None else None
        hi_v = scalar(hi, value_of) if hi is not None else None
        if (lo is not None and lo_v is None) or (hi is not None and hi_v is None):
            return mixed(name, [old, *(value_of(t) for t in (lo, hi) if hasattr(t, "shape"))])
        new = L.clamp(law, lo_v, hi_v)
    else:
        s = scalar(other, value_of)
        if s is None:
            inputs = [old] + ([value_of(other)] if hasattr(other, "shape") else [])
            return mixed(name, inputs)
        alpha = float(a.get("alpha", 1) or 1)
        if base == "mul":
            new = L.affine(law, s, 0.0, name)
        elif base == "div":
            if a.get("rounding_mode") is not None or s == 0:
                return mixed(name, [old])
            new = L.affine(law, 1.0 / s, 0.0, name)
        elif base == "add":
            new = L.affine(law, 1.0, alpha * s, name)
        elif base == "sub":
            new = L.affine(law, 1.0, -alpha * s, name)
        else:  # rsub: other - alpha * self
            new = L.affine(law, -alpha, s, name)
    random = old.random and new.kind != "constant"
    return Value(new, random, _ops([old], _label(name, a, other_key)), old.seeds if random else ())


def _label(name: str, a: dict[str, Any], other_key: str | None) -> str:
    v = a.get(other_key) if other_key else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{name}({v:.6g})"
    if name.startswith("clamp"):
        return f"{name}({a.get('min')}, {a.get('max')})"
    return name


def draw(name: str, a: dict[str, Any]) -> Value:
    """An in-place draw: its law from the arguments (see :data:`DRAWS`, :data:`OTHER_DRAWS`)."""
    if name == "normal_":
        mean, std = a.get("mean", 0.0), a.get("std", 1.0)
        law = L.normal(mean, std) if _finite(mean, std) else L.opaque("normal_ with a non-finite argument")
        return Value(law, True, (f"normal_({mean:.6g}, {std:.6g})" if _finite(mean, std) else name,))
    if name == "uniform_":
        lo, hi = a.get("from", 0.0), a.get("to", 1.0)
        law = L.uniform(lo, hi) if _finite(lo, hi) else L.opaque("uniform_ with a non-finite argument")
        return Value(law, True, (f"uniform_({lo:.6g}, {hi:.6g})" if _finite(lo, hi) else name,))
    return Value(L.opaque(f"{name} draw (no law of the vocabulary)"), True, (name,))


def made(name: str, a: dict[str, Any]) -> Value | None:
    """The law of a creation op's output, or None if ``name`` is not a creation."""
    if name in EMPTY:
        return Value(L.UNWRITTEN, False, (name,))
    if name in CONSTANT_MAKERS:
        return Value(L.constant(CONSTANT_MAKERS[name]), False, (name,))
    if name in FULL_MAKERS:
        v = a.get("fill_value", a.get("s"))
        if isinstance(v, (int, float)):
            return Value(L.constant(float(v)), False, (f"{name}({v:.6g})",))
        return None
    if name in ("randn", "randn_like"):
        return Value(L.normal(0.0, 1.0), True, (name,))
    if name in ("rand", "rand_like"):
        return Value(L.uniform(0.0, 1.0), True, (name,))
    if name == "normal" and isinstance(a.get("mean"), (int, float)) and isinstance(a.get("std"), (int, float)):
        return Value(L.normal(a["mean"], a["std"]), True, (f"normal({a['mean']:.6g}, {a['std']:.6g})",))
    if name in OTHER_RANDOM or name == "normal":
        return Value(L.opaque(f"{name} (no law of the vocabulary)"), True, (name,))
    if name in ("arange", "linspace", "logspace", "eye", "tril_indices", "triu_indices"):
        return Value(L.deterministic(name), False, (name,))
    return None


def literal(real: Any) -> Value:
    """A tensor made from data (``torch.tensor(...)``): a constant when every element is equal.

    ``real`` is an ordinary tensor; the caller reads it with the dispatch modes disabled."""
    try:
        flat = real.detach().reshape(-1)
        if flat.numel() == 1 or (flat.numel() and not flat.is_complex() and bool((flat == flat[0]).all())):
            return Value(L.constant(float(flat[0])), False, ("tensor literal",))
    except Exception:  # noqa: BLE001 - a literal that cannot be read is just deterministic
        pass
    return Value(L.deterministic("a tensor literal"), False, ("tensor literal",))


def _finite(*xs: Any) -> bool:
    try:
        return all(math.isfinite(float(x)) for x in xs)
    except (TypeError, ValueError):
        return False
