"""Reference specs: what a reference implementation declares per *role*, and which parameters
play each role in each port (a glob per role for hf, keras_hub, timm, torchtitan, nanogpt, ...).

A reference is data (``references/NAME.toml``, shipped in the wheel as ``initspec/_data/references``),
read with tomllib and never executed.  ``to_spec`` turns it into an ordinary audit spec for one
port, so ``initspec audit TARGET --reference NAME`` is the audit with that spec; ``departures``
reads the audit's verdicts back per role.  File format::

    [reference]   name, title, repository, commit, note
    [vars]        defaults for the numbers laws use (most come from the model: [ports.P.vars])
    [roles.R]     law = "scheme expression" (arithmetic over vars), source = "path#Lstart-Lend",
                  per_layer = true for a law of ``layer`` (the glob then holds ``{layer}``)
    [ports.P]     R = "glob" or ["glob", ...]: the parameters of port P that play role R
    [ports.P.vars] var = "config or constructor field" (hf: config attribute; others: argument)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initspec.audit.spec import AuditSpec, parse_spec
from initspec.errors import InputError

#: the roles a reference may name, in report order (a reference may add its own after these)
ROLES = ("token_embedding", "position_embedding", "type_embedding", "patch_embedding", "cls_token",
         "attn_in", "attn_q", "attn_kv", "attn_out", "mlp_in", "mlp_out", "norm", "norm_bias", "bias", "head",
         "head_bias")


@dataclass
class Role:
    name: str
    law: str
    source: str
    per_layer: bool = False
    note: str = ""


@dataclass
class Reference:
    name: str
    title: str
    repository: str
    commit: str
    note: str
    vars: dict[str, float]
    roles: dict[str, Role]
    ports: dict[str, dict[str, list[str]]]
    port_vars: dict[str, dict[str, str]]
    path: str = ""

    def source_url(self, role: str) -> str:
        """The role's source line as a link (repository at the pinned commit)."""
        path, _, lines = self.roles[role].source.partition("#")
        return f"https://github.com/{self.repository}/blob/{self.commit}/{path}" + (f"#{lines}" if lines else "")


def folder() -> Path:
    from initspec._data import data_dir

    return data_dir("references")


def names() -> list[str]:
    return sorted(p.stem for p in folder().glob("*.toml"))


def load(name: str) -> Reference:
    """Read and check a shipped reference (InputError naming the file and key when it is bad)."""
    path = folder() / f"{name}.toml"
    if not path.is_file():
        raise InputError(f"--reference {name!r}: no such reference (known: {', '.join(names())})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    return parse(data, str(path))


def _str(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise InputError(f"{where}: {key} must be a string")
    return v


def parse(data: dict[str, Any], where: str) -> Reference:
    unknown = set(data) - {"reference", "vars", "roles", "ports"}
    if unknown:
        raise InputError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}")
    head = data.get("reference") or {}
    vars_ = {}
    for k, v in (data.get("vars") or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{where}: [vars] {k} must be a number")
        vars_[k] = float(v)
    roles = {}
    for r, spec in (data.get("roles") or {}).items():
        w = f"{where}: [roles.{r}]"
        if not isinstance(spec, dict):
            raise InputError(f"{w} must be a table with law and source")
        roles[r] = Role(r, _str(spec, "law", w), _str(spec, "source", w), bool(spec.get("per_layer", False)),
                        _str(spec, "note", w, ""))
    if not roles:
        raise InputError(f"{where}: no [roles.NAME] table")
    ports: dict[str, dict[str, list[str]]] = {}
    port_vars: dict[str, dict[str, str]] = {}
    for p, table in (data.get("ports") or {}).items():
        ports[p] = {}
        for r, globs in table.items():
            if r == "vars":
                port_vars[p] = {str(k): _str(table["vars"], k, f"{where}: [ports.{p}.vars]") for k in globs}
                continue
            if r not in roles:
                raise InputError(f"{where}: [ports.{p}] {r}: no [roles.{r}] in this reference")
            globs = [globs] if isinstance(globs, str) else globs
            if not isinstance(globs, list) or not globs or not all(isinstance(g, str) for g in globs):
                raise InputError(f"{where}: [ports.{p}] {r} must be a glob or a list of globs")
            ports[p][r] = globs
    return Reference(head.get("name", Path(where).stem), head.get("title", ""), _str(head, "repository", where),
                     _str(head, "commit", where), head.get("note", ""), vars_, roles, ports, port_vars, where)


class ReferenceSpec(AuditSpec):
    """An audit spec made from a reference for one port: rules keep their role; a role whose globs
    match nothing in this model (no biases, an untied head) is listed, not an input error."""

    role_of: dict[str, str]

    def unmatched(self) -> list[str]:
        return []

    def unmatched_roles(self) -> list[str]:
        seen = {self.role_of[r.glob] for r in self.rules if r.matched}
        return [r for r in dict.fromkeys(self.role_of.values()) if r not in seen]


def port_for(ref: Reference, target: str, port: str | None) -> str:
    """The port a target is: given, or read off the target (hf:, timm:, a keras_hub/torchtitan module)."""
    if port is None:
        prefix = target.split(":", 1)[0].strip()
        module_root = prefix.split(".", 1)[0]
        port = {"hf": "hf", "timm": "timm"}.get(prefix) or {"keras_hub": "keras_hub",
                                                              "torchtitan": "torchtitan"}.get(module_root)
    if port is None or port not in ref.ports:
        known = ", ".join(ref.ports)
        raise InputError(f"--reference {ref.name}: " + (f"no port {port!r}" if port else
                         f"say which port {target!r} is") + f" (--reference {ref.name}:PORT, ports: {known})")
    return port


def model_vars(target: str, fields: dict[str, str]) -> dict[str, float]:
    """The numbers a port's ``[ports.P.vars]`` reads from the model: an hf target's config
    attributes (its defaults included), a module target's literal keyword arguments and the
    callee's defaults; fields it cannot read are left out."""
    import inspect

    from initspec.audit.targets import parse_audit_target

    out: dict[str, float] = {}
    try:
        t = parse_audit_target(target)
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - the audit itself reports a target that does not load
        return out
    config = getattr(t.factory, "config", None)
    known: dict[str, Any] = {}
    if config is not None:
        known = config.to_dict()
        known.update({k: getattr(config, k) for k in fields.values() if hasattr(config, k)})
    else:
        callee = getattr(t.factory, "callee", None)
        if callee is not None:
            try:
                sig = inspect.signature(callee)
                known = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
            except (TypeError, ValueError):
                pass
        from initspec.frameworks.target import parse_target

        try:
            known.update(parse_target(target).kwargs)
        except InputError:
            pass
    for var, fieldname in fields.items():
        v = known.get(fieldname)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[var] = float(v)
    return out


def to_spec(ref: Reference, port: str, values: dict[str, float]) -> ReferenceSpec:
    """The reference as an audit spec for ``port``: one rule per glob, in the port's role order,
    each law reduced with the vars (``values`` over the reference's defaults)."""
    v = {**ref.vars, **values}
    params: dict[str, str] = {}
    role_of: dict[str, str] = {}
    for role, globs in ref.ports[port].items():
        r = ref.roles[role]
        layers = [None]
        if r.per_layer:
            if "n_layers" not in v:
                raise InputError(f"--reference {ref.name}: role {role} is set per layer: give --var n_layers=N")
            layers = list(range(int(v["n_layers"])))
        for glob in globs:
            for layer in layers:
                g = glob.replace("{layer}", str(layer)) if layer is not None else glob
                if g in params:
                    raise InputError(f"{ref.path}: [ports.{port}] glob {g!r} is given to two roles")
                params[g] = r.law
                role_of[g] = role
                if layer is not None:
                    v["layer"] = float(layer)
                    params[g] = _with_layer(r.law, layer)
    missing = sorted({n for law in params.values() for n in _names(law)} - set(v) - {"layer"})
    if missing:
        raise InputError(f"--reference {ref.name} ({port}): the laws need {', '.join(missing)}: "
                         f"give --var {missing[0]}=N (the model does not say it)")
    spec = parse_spec({"vars": v, "params": params}, f"reference {ref.name} ({port})")
    out = ReferenceSpec(spec.path, spec.vars, spec.rules, spec.tied)
    out.role_of = role_of
    return out


def _with_layer(law: str, layer: int) -> str:
    import re

    return re.sub(r"\blayer\b", str(layer), law)


def _names(law: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(law, mode="eval")
    except SyntaxError:
        return set()
    call = tree.body
    if not isinstance(call, ast.Call):
        return set()
    found = set()
    for kw in call.keywords:
        for node in ast.walk(kw.value):
            if isinstance(node, ast.Name) and node.id not in ("sqrt",):
                found.add(node.id)
    # bare words that are scheme arguments (mode=fan_in) are not vars
    return {n for n in found if n not in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg", "normal", "uniform",
                                          "truncated_normal", "none", "exact", "std", "absolute")}


@dataclass
class RoleVerdict:
    role: str
    reference_law: str
    source: str
    verdict: str                     # agrees | departs | no parameter
    groups: list[Any] = field(default_factory=list)


def departures(rep: Any, ref: Reference, spec: ReferenceSpec) -> list[RoleVerdict]:
    """One verdict per role of the port: departs when any of its groups failed the reference's law."""
    out = []
    by_role: dict[str, list[Any]] = {}
    for g in rep.groups:
        if g.rule is not None and g.rule.glob in spec.role_of:
            by_role.setdefault(spec.role_of[g.rule.glob], []).append(g)
    for role in dict.fromkeys(spec.role_of.values()):
        groups = by_role.get(role, [])
        law = next((r.expr for r in spec.rules if spec.role_of.get(r.glob) == role), ref.roles[role].law)
        if not groups:
            verdict = "no parameter"
        elif any(rep.verdict(g) in ("fail", "error") for g in groups):
            verdict = "departs"
        else:
            verdict = "agrees"
        out.append(RoleVerdict(role, law, ref.source_url(role), verdict, groups))
    return out


def format_departures(rep: Any, ref: Reference, port: str, spec: ReferenceSpec) -> list[str]:
    """The lines the audit prints under its table: every role where the port departs, with both laws."""
    from initspec.audit.verdicts import lock_expr

    verdicts = departures(rep, ref, spec)
    lines = [f"REFERENCE {ref.name}: {ref.title} ({ref.repository}@{ref.commit[:7]}), port {port}"]
    for v in verdicts:
        if v.verdict != "departs":
            continue
        for g in v.groups:
            if rep.verdict(g) not in ("fail", "error"):
                continue
            port_law = lock_expr(g) or g.identified
            lines.append(f"DEPARTS {v.role}: reference {ref.roles[v.role].law} [{ref.roles[v.role].source}], "
                         f"port {port_law} ({g.name} ×{len(g.members)})")
    agree = [v.role for v in verdicts if v.verdict == "agrees"]
    none = [v.role for v in verdicts if v.verdict == "no parameter"]
    if agree:
        lines.append(f"AGREES  {', '.join(agree)}")
    if none:
        lines.append(f"ABSENT  {', '.join(none)} (no parameter of this model matches the port's globs)")
    n = sum(v.verdict == "departs" for v in verdicts)
    lines.append(f"{n} of {len(verdicts) - len(none)} roles depart from {ref.name}" if n else
                 f"the port agrees with {ref.name} in every role it has")
    return lines


def to_dict(rep: Any, ref: Reference, port: str, spec: ReferenceSpec) -> dict[str, Any]:
    """The per-role verdicts for the audit's JSON (``"reference"``)."""
    from initspec.audit.verdicts import lock_expr

    return {"name": ref.name, "title": ref.title, "repository": ref.repository, "commit": ref.commit, "port": port,
            "roles": [{"role": v.role, "verdict": v.verdict, "reference_law": ref.roles[v.role].law,
                       "reference_expr": v.reference_law, "source": v.source,
                       "port": [{"group": g.name, "members": len(g.members), "law": lock_expr(g) or g.identified,
                                 "verdict": rep.verdict(g)} for g in v.groups]}
                      for v in departures(rep, ref, spec)]}
