"""``--write-spec``: a lockfile that pins laws, not estimates.

Each group's line is the law the audit named (the simplest the data cannot reject: a layer default,
a preset, round parameters, one fan law for the model's shapes), its row facts, a computed tensor
by the digest of its values.  A law no round number names (a fitted decimal, or nothing fits) is
written ``unknown`` with its moments as a comment: a lockfile never claims what a re-draw of the
same model would fail.  The text is valid TOML for any parameter name, its globs match exactly the
parameters they were written for, and it is read back and checked before it is written.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import math
import tomllib
from pathlib import Path
from typing import Any

from initspec.audit.report import FLOATS, AuditReport, Group
from initspec.audit.structure import rows_text
from initspec.audit.verdicts import CONSENSUS_GROUPS
from initspec.engine.identify import PINNED
from initspec.errors import InputError

_SPECIAL = set("*?[]")
#: a law named from fewer values than this is pinned only when the model's other groups share it (or
#: it is the layer default): 32 values of wav2vec2's weight-norm magnitude (not of any candidate
#: family) let truncated_normal(mean=0.8, std=0.03) through, and a re-draw failed it
MIN_PIN = 100


def lock_expr(g: Group) -> tuple[str, str] | None:
    """``(spec value, comment)`` for a group's lockfile line, or None when it has no values to pin: a
    computed tensor by digest; the law the trace read from the code where it is exact (a law, not an
    estimate); else what the draws identified (:func:`drawn_expr`)."""
    if g.error or g.dtype not in FLOATS or not (g.moments.n or g.traced is not None):
        return None
    rows = f"; {rows_text(g.rows)}" if g.rows else ""
    if g.is_deterministic:
        what = g.looks_like or "computed values"
        return f"deterministic(digest={g.digest()!r}){rows}", what + (f" ({g.copy_of})" if g.copy_of else "")
    if g.traced is not None:
        from initspec.audit.evidence import lock_expr as traced_expr

        expr = traced_expr(g)
        if expr:
            site = g.traced.sites[0] if g.traced.sites else None
            return f"{expr}{rows}", f"traced at {site}" if site else "traced"
    if not g.moments.n:
        return None
    return drawn_expr(g)


def drawn_expr(g: Group) -> tuple[str, str] | None:
    """The lockfile line of what the draws identified (the trace aside)."""
    if g.error or g.dtype not in FLOATS or not g.moments.n:
        return None
    rows = f"; {rows_text(g.rows)}" if g.rows else ""
    c = g.chosen
    if c is not None and c.scheme.kind == "constant":
        v = c.scheme.params["value"]
        return ("zeros" if v == 0 else "ones" if v == 1 else c.expr), ""
    if c is not None and c.scheme.kind == "orthogonal":
        return c.expr, ""
    if c is not None and c.simplicity == -1:
        return f"{c.text}{rows}", "layer default"
    if c is None or c not in g.accepted or c.simplicity > PINNED:
        why = "no law fits" if c is None or not g.fits else f"closest {c.text}, not a round law"
        return f"unknown{rows}", f"{why}; {_moments(g)}"
    if g.moments.n < MIN_PIN and g.consensus < CONSENSUS_GROUPS:
        return f"unknown{rows}", f"closest {c.text}, too few values to pin a law alone; {_moments(g)}"
    if c.scheme.kind == "variance_scaling":
        named = preset_names(c.scheme)
        if named:
            return f"{named[0]}{rows}", ""
    return f"{c.text}{rows}", ""


def preset_names(scheme: Any) -> list[str]:
    """The presets that are this law, the usual names first (he_normal before caffe_msra, a
    framework's default before Glorot's 2010 heuristic)."""
    from initspec.engine.identify import same_presets

    def rank(n: str) -> int:
        return 0 if n.split("_")[0] in ("lecun", "he", "glorot", "kaiming") else 1 if n.endswith("_default") else 2

    return sorted((n for n in same_presets(scheme) if n != "variance_scaling"), key=rank)


def _moments(g: Group) -> str:
    m = g.moments
    return (f"n {m.n}, mean {m.mean:.4g}, std {math.sqrt(max(m.var, 0.0)):.4g}, min {m.minimum:.4g}, "
            f"max {m.maximum:.4g}")


def lock_lines(rep: AuditReport) -> list[tuple[str, str, str]]:
    """``(glob, value, comment)`` per line, first match wins.  A role's largest group keeps the role's
    glob; its other groups, and any group a glob before it would take, are written path by path, first;
    names holding glob characters are escaped (``w[0].weight`` matches itself)."""
    locks = {id(g): lock_expr(g) for g in rep.groups}
    groups = [g for g in rep.groups if locks[id(g)] is not None]
    by_role: dict[str, list[Group]] = {}
    for g in groups:
        by_role.setdefault(g.key[0], []).append(g)
    exact_ids = {id(g) for g in groups if g is not max(by_role[g.key[0]], key=lambda h: len(h.members))
                 or any(_SPECIAL & set(m) for m in g.members)}
    for _ in range(len(groups) + 1):
        lines, owner = _compose(groups, exact_ids, locks)
        first = [(m, g, _first_line(m, lines)) for g in groups for m in g.members]
        bad = {id(g) for m, g, i in first if i is None or owner[i] is not g}
        if not bad:
            return lines
        exact_ids |= bad  # an escaped path matches itself alone, and exact lines come first
    raise AssertionError("every group written path by path still misroutes")  # unreachable


def _compose(groups: list[Group], exact_ids: set[int], locks: dict[int, Any]) -> tuple[list, list[Group]]:
    exact, globs, owner_e, owner_g = [], [], [], []
    for g in groups:
        value, comment = locks[id(g)]
        if id(g) in exact_ids:
            for m in g.members:
                exact.append((globmod.escape(m), value, comment))
                owner_e.append(g)
        else:
            globs.append((g.key[0], value, comment))
            owner_g.append(g)
    return exact + globs, owner_e + owner_g


def _first_line(path: str, lines: list[tuple[str, str, str]]) -> int | None:
    return next((i for i, (gl, _, _) in enumerate(lines) if fnmatch.fnmatchcase(path, gl)), None)


def toml_string(s: str) -> str:
    """A TOML basic string for any text: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _comment(s: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in s)


def render(lines: list[tuple[str, ...]], tied: list[list[str]], header: str) -> str:
    """The lockfile's text from ``(glob, value[, comment])`` lines, checked to be a spec that parses."""
    from initspec.audit.spec import parse_spec

    out = [f"# {_comment(header)}", "# written by initspec audit --write-spec: the law of every group (unknown: "
           "no round law names it; deterministic: computed values, by digest)", "", "[params]"]
    for glob, value, *comment in lines:
        note = comment[0] if comment else ""
        out.append(f"{toml_string(glob)} = {toml_string(value)}" + (f"  # {_comment(note)}" if note else ""))
    if tied:
        out += ["", "[tied]"]
        out += [f"tied_{i} = [{', '.join(toml_string(globmod.escape(p)) for p in t)}]" for i, t in enumerate(tied, 1)]
    text = "\n".join(out) + "\n"
    parse_spec(tomllib.loads(text), "lockfile")
    return text


def lockfile_text(rep: AuditReport, header: str) -> tuple[str, int]:
    """The lockfile's text and its number of [params] lines; read back and checked: every group's
    members reach the line written for them."""
    from initspec.audit.spec import parse_spec

    lines = lock_lines(rep)
    text = render(lines, rep.tied, header)
    spec = parse_spec(tomllib.loads(text), "lockfile")
    for g in rep.groups:
        for m in g.members:
            rule = spec.match(m)
            if rule is not None and lock_expr(g) is not None and rule.text != lock_expr(g)[0]:
                raise AssertionError(f"the lockfile routes {m} to {rule.glob}")  # lock_lines guarantees it
    return text, len(lines)


def write_lines(path: str | Path, lines: list[tuple[str, ...]], tied: list[list[str]], header: str) -> None:
    """Write a lockfile of these lines (``-``: standard output)."""
    from initspec.reports.output import write_text

    write_text(str(path), render(lines, tied, header))


def write_lockfile(path: str, rep: AuditReport, header: str) -> int:
    """Write the lockfile (``-``: standard output); the number of [params] lines."""
    from initspec.reports.output import write_text

    text, n = lockfile_text(rep, header)
    write_text(path, text)
    return n


def check_not_the_spec(write_spec: str | None, spec_path: str | None) -> None:
    """``--spec X --write-spec X`` would overwrite the hand-written spec with what was identified."""
    if not write_spec or not spec_path or write_spec == "-":
        return
    if Path(write_spec).resolve() == Path(spec_path).resolve():
        raise InputError(f"--write-spec {write_spec[:60]!r} is the --spec file: write the lockfile elsewhere "
                         "(it would overwrite the spec)")
