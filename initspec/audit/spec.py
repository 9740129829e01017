"""Audit spec files (TOML): ``[vars]``, an ordered ``[params]`` glob -> scheme table, ``[tied]``.

The file is data: read with ``tomllib``, scheme arguments reduced with the arithmetic whitelist
of :func:`initspec.spec.expr.evaluate_call`, never evaluated as Python.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec.errors import InputError
from initspec.spec.expr import evaluate_call
from initspec.spec.schemes import Scheme, resolve


@dataclass
class Rule:
    glob: str
    text: str          # as written
    expr: str          # arithmetic reduced to numbers
    scheme: Scheme
    matched: int = 0


@dataclass
class AuditSpec:
    path: str
    vars: dict[str, float] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    tied: list[list[str]] = field(default_factory=list)

    def match(self, path: str) -> Rule | None:
        """The first rule whose glob matches the dotted path (counted)."""
        for r in self.rules:
            if fnmatch.fnmatchcase(path, r.glob):
                r.matched += 1
                return r
        return None

    def tied_with(self, a: str, b: str) -> bool:
        """Whether a [tied] entry declares both paths."""
        return any(any(fnmatch.fnmatchcase(a, g) for g in t) and any(fnmatch.fnmatchcase(b, g) for g in t)
                   for t in self.tied)

    def unmatched(self) -> list[str]:
        return [r.glob for r in self.rules if not r.matched]


def load_spec(path: str | Path) -> AuditSpec:
    """Read and check a spec file; InputError (one line, naming the file and key) when it is bad."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"--spec {str(p)!r}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--spec {str(p)!r}: not valid TOML: {e}") from None
    return parse_spec(data, str(p))


def parse_spec(data: dict[str, Any], where: str = "spec") -> AuditSpec:
    """An AuditSpec from parsed TOML."""
    unknown = set(data) - {"vars", "params", "tied"}
    if unknown:
        raise InputError(f"{where}: unknown table(s) {', '.join(sorted(unknown))} (expected [vars], [params], [tied])")
    spec = AuditSpec(where)
    for k, v in (data.get("vars") or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{where}: [vars] {k} = {v!r} is not a finite number")
        spec.vars[k] = float(v)
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise InputError(f"{where}: a [params] table of \"glob\" = \"scheme\" lines is required")
    for glob, text in params.items():
        if not isinstance(text, str):
            raise InputError(f"{where}: [params] {glob!r} = {text!r}: the scheme must be a string")
        expr = evaluate_call(text, spec.vars, what=f"{where}: [params] {glob!r}")
        try:
            scheme = resolve(expr)
        except InputError as e:
            raise InputError(f"{where}: [params] {glob!r}: {e}") from None
        spec.rules.append(Rule(glob, text, expr, scheme))
    tied = data.get("tied") or {}
    if not isinstance(tied, dict):
        raise InputError(f"{where}: [tied] must be a table of name = [\"glob\", \"glob\", ...]")
    for name, globs in tied.items():
        if not isinstance(globs, list) or len(globs) < 2 or not all(isinstance(g, str) for g in globs):
            raise InputError(f"{where}: [tied] {name} must list at least two path globs")
        spec.tied.append(globs)
    return spec


def _toml_key(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_spec(path: str | Path, lines: list[tuple[str, str]], tied: list[list[str]], header: str) -> None:
    """A lockfile: one ``"group" = "scheme"`` line per group, in the table's order."""
    out = [f"# {header}", "# written by initspec audit --write-spec: the identified law of every group", "",
           "[params]"]
    out += [f"{_toml_key(g)} = {_toml_key(e)}" for g, e in lines]
    if tied:
        out += ["", "[tied]"]
        out += [f"tied_{i} = [{', '.join(_toml_key(p) for p in t)}]" for i, t in enumerate(tied, 1)]
    from initspec.reports.output import write_text  # "-": standard output, like every report

    write_text(path, "\n".join(out) + "\n")


def lock_lines(rep: Any) -> list[tuple[str, str]]:
    """One line per group.  Where groups share a role, the largest keeps the role glob and the others
    are written path by path; exact paths come first (first match wins), as do the paths of a group
    an earlier role glob would also match."""
    import glob as globmod

    from initspec.audit.verdicts import lock_expr

    by_role: dict[str, list] = {}
    for g in rep.groups:
        if lock_expr(g) is not None:
            by_role.setdefault(g.key[0], []).append(g)
    exact: list[tuple[str, str]] = []
    globs: list[tuple[str, str, object]] = []
    for g in rep.groups:
        expr = lock_expr(g)
        if expr is None:
            continue
        if g is max(by_role[g.key[0]], key=lambda h: len(h.members)):
            globs.append((g.key[0], expr, g))
        else:
            exact += [(globmod.escape(m), expr) for m in g.members]
    out: list[tuple[str, str]] = []
    for i, (glob, expr, g) in enumerate(globs):
        if any(fnmatch.fnmatchcase(m, gl) for gl, _, _ in globs[:i] for m in g.members):
            exact += [(globmod.escape(m), expr) for m in g.members]
        else:
            out.append((glob, expr))
    return exact + out
