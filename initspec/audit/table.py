"""The audit's terminal view, in the style of ``reports/view.py``: one row per group, worst first
is not wanted here (the model's order reads better), failing rows expanded once, findings, summary."""

from __future__ import annotations

import math
import re

from initspec.audit.run import AuditReport, Group


def _ratio(g: Group) -> str:
    r = g.result
    if r is None:
        return ""
    exp, obs = r.expected.get("var"), r.observed.get("var")
    if not exp or obs is None or not math.isfinite(obs):
        return ""
    return f"var obs/exp {obs / exp:.4g}"


def _short(expr: str) -> str:
    """Numbers the arithmetic produced, to 6 significant digits for reading."""
    return re.sub(r"\d+\.\d{7,}(e-?\d+)?", lambda m: f"{float(m.group(0)):.6g}", expr)


def _shape(g: Group) -> str:
    return "(" + ", ".join(map(str, g.shape)) + ("," if len(g.shape) == 1 else "") + ")"


def _brief(expr: str) -> str:
    """A traced law for reading: every long number to 3 significant digits (the JSON keeps them exact)."""
    return re.sub(r"\d+\.\d{4,}(e-?\d+)?", lambda m: f"{float(m.group(0)):.3g}", expr)


def _traced(g: Group) -> tuple[str, str]:
    """The traced law (with its row structure) and the line that set it."""
    tr = g.traced
    if tr is None:
        return "(not traced)", ""
    law = _brief(tr.display())
    regions = tr.record.regions
    if regions:
        law += " [" + "; ".join(f"{w.region}: {_brief(w.declared or w.law.scheme() or str(w.law))}"
                                for w in regions[:2]) + (" ..." if len(regions) > 2 else "") + "]"
    site = str(tr.sites[0]) if tr.sites else ""
    if len(tr.sites) > 1:
        site += f" (+{len(tr.sites) - 1} lines)"
    return law, site


def _header(rep: AuditReport) -> str:
    spec = f", spec {rep.spec_path}" if rep.spec_path else ""
    seeds = f"seeds {rep.seeds[0]}..{rep.seeds[-1]} ({len(rep.seeds)}), alpha {rep.alpha:g}"
    if rep.sources == ["trace"]:
        how = f"traced under seed {rep.seeds[0]}, nothing allocated"
    elif rep.sources == ["trace", "draws"]:
        how = f"traced and drawn: {seeds}"
    else:
        how = seeds
    return f"initspec audit: {rep.target} ({rep.framework} {rep.framework_version}; {how}{spec})"


def format_report(rep: AuditReport, verbose: bool = False) -> str:
    """The table a user reads first: verdict, group ×members, shape, the traced law and its line, the
    drawn identification, declared."""
    lines = [_header(rep)] + [f"  {n}" for n in rep.notes]
    if rep.error:
        lines.append(f"ERROR  {rep.error}")
        return "\n".join(lines)
    traced = "trace" in rep.sources
    drawn = "draws" in rep.sources
    w_name = max((len(g.name) + len(str(len(g.members))) + 2 for g in rep.groups), default=10)
    w_shape = max((len(_shape(g)) for g in rep.groups), default=6)
    cells = {id(g): _traced(g) for g in rep.groups} if traced else {}
    w_law = max((len(c[0]) for c in cells.values()), default=10)
    w_site = max((len(c[1]) for c in cells.values()), default=0)
    w_ident = max((len(g.identified) for g in rep.groups), default=10)
    for g in rep.groups:
        v = rep.verdict(g)
        unchecked = "UNCHK" if rep.spec_path else "-"
        label = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "unchecked": unchecked}[v]
        name = f"{g.name} ×{len(g.members)}"
        decl = f"  declared {_short(g.rule.expr)}" if g.rule else ""
        if traced:
            law, site = cells[id(g)]
            what = f"{law:<{w_law}}  {site:<{w_site}}" + (f"  drawn {g.identified:<{w_ident}}" if drawn else "")
        else:
            what = f"{g.identified:<{w_ident}}"
        lines.append(f"{label:<6} {name:<{w_name}} {_shape(g):<{w_shape}} {g.dtype:<8} {what}{decl}  "
                     f"{_ratio(g)}".rstrip())
        r = g.result
        if v in ("fail", "error") and r is not None:
            if r.error:
                lines.append(f"       {r.error}")
            for d in r.diagnosis[:1]:
                lines.append(f"       probably {d['id']}: {d['message']}")
            failed = ", ".join(f"{t.name} (p={t.p_value:.2g})" if t.p_value is not None else t.name
                               for t in r.failed_tests)
            if failed:
                lines.append(f"       failed: {failed}; layout {g.layout}, fan_in {g.fan_in:g}, fan_out {g.fan_out:g}")
            if verbose:
                lines.append(f"       members: {', '.join(g.members)}")
        elif verbose:
            lines.append(f"       members: {', '.join(g.members)}; layout {g.layout}, fan_in {g.fan_in:g}, "
                         f"fan_out {g.fan_out:g}")
        if verbose and g.traced is not None:
            lines += _writes(g)
    for t in rep.tied:
        lines.append(f"TIED   {' = '.join(t)} (one storage)")
    for f in rep.findings:
        lines.append(f"{'FINDING' if f.severe else 'NOTE':<6} {f.id}: {f.message}")
    s = rep.summary
    tail = (f"{s['groups']} groups ({s['params']} parameters): {s['passed']} passed, {s['failed']} failed, "
            f"{s['errors']} errors, {s['unchecked']} unchecked; {s['severe_findings']} severe finding(s), "
            f"{s['findings'] - s['severe_findings']} note(s)")
    if rep.strict and s["unchecked"]:
        tail += " (--strict: unchecked groups fail)"
    lines.append(tail)
    return "\n".join(lines)


def _writes(g: Group) -> list[str]:
    """-v: the writes the law is made of, and the earlier writes it shadows (first member)."""
    rec = g.traced.record
    out = []
    for label, writes in (("set by", rec.chain), ("shadowed", rec.shadowed)):
        for w in writes:
            named = f" (named {', '.join(w.named)})" if w.named and not w.declared else ""
            out.append(f"       {label}: {_brief(w.declared or w.law.scheme() or str(w.law))} at {w.site}{named}; "
                       f"ops {', '.join(w.ops)}")
    return out
