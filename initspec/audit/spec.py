"""Audit spec files (TOML): ``[vars]``, an ordered ``[params]`` glob -> scheme table, ``[tied]``.

The file is data: read with ``tomllib``, scheme arguments reduced with the arithmetic whitelist
of :func:`initspec.spec.expr.evaluate_call`, never evaluated as Python.  Beside a scheme, a
``[params]`` value may be ``deterministic`` (computed values, the same under every seed; with
``(digest='…')`` these very values), ``unknown`` (drawn, no law named), and may add row facts
after a ``;``: ``"normal(std=0.02); row 0 zeros"`` (see :mod:`initspec.audit.structure`).
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec.audit.structure import RowFact, parse_rows, rows_text
from initspec.errors import InputError
from initspec.spec.expr import evaluate_call, parse_call
from initspec.spec.schemes import Scheme, resolve
from initspec.spec.validate import show

#: what a [params] value may be beside a scheme: no law to check, a fact about the values
FACT_KINDS = ("deterministic", "unknown")


@dataclass
class Rule:
    glob: str
    text: str          # as written
    expr: str          # arithmetic reduced to numbers (the law part)
    scheme: Scheme     # kind "deterministic" / "unknown" for those facts
    matched: int = 0
    rows: tuple[RowFact, ...] = ()

    @property
    def declared(self) -> str:
        """The law and its row facts, as the report shows them."""
        return self.expr + (f"; {rows_text(self.rows)}" if self.rows else "")

    @property
    def random(self) -> bool:
        """The rule says the values are drawn (a random law, or ``unknown``)."""
        return self.scheme.kind not in ("constant", "deterministic", "identity", "dirac")


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
    from initspec.spec.validate import text_file

    p = Path(path)
    text = text_file(path, "--spec")  # a regular file of bounded size: never a directory, FIFO or /dev/zero
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--spec {show(str(p))}: not valid TOML: {e}") from None
    return parse_spec(data, str(p))


def parse_spec(data: dict[str, Any], where: str = "spec") -> AuditSpec:
    """An AuditSpec from parsed TOML."""
    unknown = set(data) - {"vars", "params", "tied"}
    if unknown:
        raise InputError(f"{where}: unknown table(s) {', '.join(show(u) for u in sorted(unknown))} "
                         "(expected [vars], [params], [tied])")
    spec = AuditSpec(where)
    for table in ("vars", "params", "tied"):  # `vars = 3` is a key, not a table
        if table in data and not isinstance(data[table], dict):
            raise InputError(f"{where}: {table} must be a table ([{table}]), got {type(data[table]).__name__}")
    for k, v in (data.get("vars") or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{where}: [vars] {show(k)} = {show(v)} is not a finite number")
        spec.vars[k] = float(v)
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise InputError(f"{where}: a [params] table of \"glob\" = \"scheme\" lines is required")
    for glob, text in params.items():
        if not isinstance(text, str):
            raise InputError(f"{where}: [params] {show(glob)} = {show(text)}: the scheme must be a string")
        spec.rules.append(parse_rule(glob, text, spec.vars, f"{where}: [params] {show(glob)}"))
    tied = data.get("tied") or {}
    if not isinstance(tied, dict):
        raise InputError(f"{where}: [tied] must be a table of name = [\"glob\", \"glob\", ...]")
    for name, globs in tied.items():
        if not isinstance(globs, list) or len(globs) < 2 or not all(isinstance(g, str) for g in globs):
            raise InputError(f"{where}: [tied] {show(name)} must list at least two path globs")
        spec.tied.append(globs)
    return spec


def parse_rule(glob: str, text: str, variables: dict[str, float], where: str) -> Rule:
    """One ``[params]`` line: a scheme (or ``deterministic`` / ``unknown``) and its row facts."""
    law, _, facts = text.partition(";")
    rows = parse_rows(facts, where) if facts.strip() else ()
    law = law.strip()
    head = law.split("(", 1)[0].strip()
    if head in FACT_KINDS:
        name, args, kwargs = parse_call(law, what=where)
        digest = kwargs.pop("digest", None)
        if args or kwargs or (digest is not None and (name != "deterministic" or not _is_hex(digest))):
            raise InputError(f"{where}: {law[:60]!r}: expected 'unknown', 'deterministic' or "
                             "deterministic(digest='<16 hex digits>')")
        expr = law if digest is None else f"deterministic(digest={digest!r})"
        return Rule(glob, text, expr, Scheme(name, name, {"digest": digest} if digest else {}, expr), rows=rows)
    expr = evaluate_call(law, variables, what=where)
    try:
        scheme = resolve(expr)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    return Rule(glob, text, expr, scheme, rows=rows)


def _is_hex(d: object) -> bool:
    return isinstance(d, str) and len(d) == 16 and all(c in "0123456789abcdef" for c in d)


# --- the lockfile writer's older entry points (initspec.audit.lockfile writes lockfiles) --------


def lock_lines(rep: Any) -> list[tuple[str, str, str]]:
    """``(glob, value, comment)`` per lockfile line: :func:`initspec.audit.lockfile.lock_lines`."""
    from initspec.audit.lockfile import lock_lines as lines

    return lines(rep)


def write_spec(path: str | Path, lines: list[tuple[str, ...]], tied: list[list[str]], header: str) -> None:
    """A lockfile from ``(glob, value[, comment])`` lines: :func:`initspec.audit.lockfile.write_lines`."""
    from initspec.audit.lockfile import write_lines

    write_lines(path, lines, tied, header)
