"""Grouping: parameters that play the same role across layers pool into one group.

The role is the dotted path with every layer index replaced by ``*``: numeric components
(``h.3.attn`` -> ``h.*.attn``) and auto-numbered names (``dense_1``, ``Dense_0``, ``conv2d_3`` ->
``dense_*``, ``Dense_*``, ``conv2d_*``), and an index between underscores inside a name
(Keras applications' ``block_3_expand`` -> ``block_*_expand``).  Parameters of different shape, dtype, owner or layout
never share a group, even under one role.
"""

from __future__ import annotations

import math
import re

from initspec.audit.walkers import Param

_NUMERIC = re.compile(r"^\d+$")
_NUMBERED = re.compile(r"^(.*[A-Za-z])_\d+$")
_INDEX_INSIDE = re.compile(r"(?<=[A-Za-z]_)\d+(?=_)")  # block_3_expand: a layer index inside a name


def role_of(path: str) -> str:
    """``h.3.attn.c_proj.weight`` -> ``h.*.attn.c_proj.weight``; ``dense_1.kernel`` -> ``dense_*.kernel``;
    ``block_3_expand.kernel`` -> ``block_*_expand.kernel``."""
    out = []
    for part in path.split("."):
        if _NUMERIC.match(part):
            out.append("*")
        else:
            m = _NUMBERED.match(part)
            out.append(_INDEX_INSIDE.sub("*", f"{m.group(1)}_*" if m else part))
    return ".".join(out)


def roles_of(paths: list[str]) -> dict[str, str]:
    """Each path's role, where the first of auto-numbered siblings counts as one of them: Keras
    names layers ``dense``, ``dense_1``, ``dense_2``, so ``dense.kernel`` joins ``dense_*.kernel``."""
    roles = {p: role_of(p) for p in paths}
    known = set(roles.values())
    for path, role in roles.items():
        parts = role.split(".")
        for i, part in enumerate(parts):
            if part != "*" and not part.endswith("_*"):
                numbered = ".".join([*parts[:i], f"{part}_*", *parts[i + 1:]])
                if numbered in known:
                    parts[i] = f"{part}_*"
        roles[path] = ".".join(parts)
    return roles


def group_key(p: Param, pattern: str | None = None, role: str | None = None) -> tuple:
    """What must agree for two parameters to pool: role, shape, dtype, owner, layout, fans, spec rule."""
    return (role or role_of(p.path), p.shape, p.dtype, p.owner, p.layout, p.fan_in, p.fan_out, pattern)


def group_names(keys: list[tuple], members: dict[tuple, list[str]] | None = None) -> dict[tuple, str]:
    """One display name per group key: the role; where groups share a role, a one-member group is
    named by its path, and if several others remain, they add their shape (then a number)."""
    members = members or {}
    by_role: dict[str, list[tuple]] = {}
    for k in keys:
        by_role.setdefault(k[0], []).append(k)
    names: dict[tuple, str] = {}
    for role, ks in by_role.items():
        if len(ks) == 1:
            names[ks[0]] = role
            continue
        rest = []
        for k in ks:
            one = members.get(k, [])
            if len(one) == 1:
                names[k] = one[0]
            else:
                rest.append(k)
        if len(rest) == 1:
            names[rest[0]] = role
            continue
        for k in rest:
            names[k] = f"{role}[{'x'.join(map(str, k[1]))}]"
        taken = [names[k] for k in rest]
        for i, k in enumerate(rest):
            if taken.count(names[k]) > 1:
                names[k] = f"{names[k]}#{i + 1}"
    return names


def fans_of(p: Param, fallback: str) -> tuple[str, float, float]:
    """A parameter's layout and fans: the owner's, else from its shape under ``fallback`` (``--layout``)."""
    from initspec.spec.fans import get_layout

    lay = p.layout
    if len(p.shape) >= 2:
        lay = lay or fallback
        if p.fan_in is None or p.fan_out is None:
            fi, fo = get_layout(lay).fans(p.shape)
            return lay, float(fi), float(fo)
    n = float(max(math.prod(p.shape), 1))
    fi = float(p.fan_in if p.fan_in is not None else n)
    return lay or fallback, fi, float(p.fan_out if p.fan_out is not None else n)
