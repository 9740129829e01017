"""One audit: the trace (``evidence.py``: what the model's code applies, nothing allocated) and the
draws (``draws.py``: the model built under each seed, one instance in memory at a time) fill the same
groups; ``verdicts.py`` identifies and checks them, ``evidence.py`` checks the traced laws exactly and
holds the draws to them, ``findings.py`` looks across parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from initspec.audit import evidence
from initspec.audit.draws import Builder, draw, is_constant
from initspec.audit.findings import Finding, clones, model_findings
from initspec.audit.group import fans_of, group_key, group_names, roles_of
from initspec.audit.report import (  # noqa: F401 - re-exported: the front ends import them from here
    DEFAULT_ALPHA,
    DEFAULT_MAX_SEEDS,
    FLOATS,
    AuditReport,
    Group,
    framework_version,
    repro,
)
from initspec.audit.spec import AuditSpec
from initspec.audit.targets import AuditTarget, BuildError, parse_audit_target
from initspec.audit.trace import Recording
from initspec.audit.verdicts import check_groups, identify_group, lock_expr, planned_tests  # noqa: F401
from initspec.audit.walkers import Param
from initspec.engine import stats as st
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference


def audit(target: str | AuditTarget, *, spec: AuditSpec | None = None, seeds: int | None = None,
          max_seeds: int = DEFAULT_MAX_SEEDS, seed: int = 0, alpha: float = DEFAULT_ALPHA,
          layout: str | None = None, convention: str | None = None, input_shape: tuple[int, ...] | None = None,
          strict: bool = False, trace: bool | None = None, max_memory: int | None = None,
          progress: Any = None) -> AuditReport:
    """Audit a model target; BuildError when its constructor raises, InputError on bad input.

    ``trace``: True audits by the trace alone (nothing allocated; InputError when the framework has no
    recorder), False by the draws alone, None (default) by both where a recorder exists -- the draws
    skipped when one instance's parameters take more than ``max_memory`` bytes (default
    :func:`default_max_memory`).  ``progress(done, total, label)`` hears of each instance drawn
    (``initspec.reports.progress``)."""
    t0 = time.perf_counter()
    if seeds is not None and seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    if max_seeds < 1:
        raise InputError(f"--max-seeds must be at least 1, got {max_seeds}")
    if layout is not None:
        get_layout(layout)
    tgt = parse_audit_target(target, convention) if isinstance(target, str) else target
    options = {"input_shape": input_shape} if input_shape is not None else {}
    notes = list(tgt.notes)
    timing: dict[str, float] = {}
    recording = _record(tgt, seed, layout, options, trace, notes, timing) if trace is not False else None
    draws = trace is not True
    if max_memory is not None and max_memory <= 0:
        raise InputError(f"--max-memory must be positive, got {max_memory}")
    max_memory = max_memory or default_max_memory()
    if draws and recording is not None:
        need = evidence.param_bytes(recording)
        if need > max_memory:
            draws = False
            notes.append(f"draws skipped: one instance's parameters take {_gib(need)}, more than --max-memory "
                         f"{_gib(max_memory)}; the trace alone decides")
    groups: dict[tuple, Group] = {}
    order: list[tuple] = []
    findings: list[Finding] = []
    tied: dict[Any, list[str]] = {}
    traced = recording.traced if recording is not None else {}
    digests: dict[str, list[bytes]] = {}

    def law_of(p: Param) -> tuple[bool, str | None]:
        return evidence.law_key(traced[p.path]) if p.path in traced else (is_constant(p), None)

    if draws:
        td = time.perf_counter()
        builder = Builder(tgt, options)
        builder.detect(seed)
        framework = builder.walker.FRAMEWORK
        fallback = layout or ("torch" if framework == "torch" else "tf")
        timing["detect"] = time.perf_counter() - td

        def plan(params: list[Param]) -> float:  # the first instance makes the groups
            _plan(params, groups, order, spec, fallback, tied, findings, law_of, traced)
            return alpha / max(sum(planned_tests(g) for g in groups.values()), 1)

        drawn = draw(builder, groups, plan, seed=seed, seeds=seeds, max_seeds=max_seeds, timing=timing,
                     progress=progress)
        if progress:
            progress(len(drawn.seeds), len(drawn.seeds), "identifying and checking the groups")
        clones(drawn.digests, groups, spec, findings)
        alpha_each, seed_list, digests = drawn.alpha_each, drawn.seeds, drawn.digests
    else:
        framework = recording.framework
        fallback = layout or ("torch" if framework == "torch" else "tf")
        _plan(recording.params, groups, order, spec, fallback, tied, findings, law_of, traced)
        alpha_each, seed_list = 1.0, [seed]
    tc = time.perf_counter()
    ordered = [groups[k] for k in order]
    if draws:
        model_findings(ordered, digests, len(seed_list), findings)
        for g in ordered:
            identify_group(g, seed)
        check_groups(ordered, tgt.text, seed, alpha, alpha_each)
    if recording is not None:
        evidence.attach(ordered, recording)
        evidence.check_traced(ordered, tgt.text, seed, drawn=draws)
        ties = [v for v in tied.values() if len(v) > 1]
        if draws:
            evidence.drop_explained(findings, recording, len(seed_list))
        _merge(findings, evidence.trace_findings(recording, ordered, spec, ties))
        if draws:
            findings += evidence.compare(ordered, digests, seed, alpha)
        else:
            for g in ordered:
                g.identified = g.traced.display() if g.traced is not None else "(not traced)"
    findings.sort(key=lambda f: (not f.severe, f.id))
    timing["analyse"] = time.perf_counter() - tc
    timing["total"] = time.perf_counter() - t0
    sources = (["trace"] if recording is not None else []) + (["draws"] if draws else [])
    return AuditReport(tgt.text, framework, framework_version(framework), seed_list, alpha, ordered, findings,
                       [v for v in tied.values() if len(v) > 1], strict=strict,
                       spec_path=spec.path if spec else None, notes=notes, timing=timing, sources=sources)


def _record(tgt: AuditTarget, seed: int, layout: str | None, options: dict[str, Any], trace: bool | None,
            notes: list[str], timing: dict[str, float]) -> Recording | None:
    """The trace, or None with a note saying why not (under --trace: the reason is the error)."""
    tt = time.perf_counter()
    try:
        recording = evidence.record(tgt, seed, {"layout": layout, **options})
    except evidence.TraceUnavailable as e:
        if trace:
            raise InputError(f"--trace: {e}; run without --trace to audit by drawing") from None
        return None  # the header says the draws alone decided (sources)
    except BuildError as e:
        if trace:
            raise
        notes.append(f"trace failed ({e}); the draws alone decide")
        return None
    finally:
        timing["trace"] = time.perf_counter() - tt
    notes += [f"trace: {n}" for n in recording.notes]
    return recording


def _merge(findings: list[Finding], traced: list[Finding]) -> None:
    """The trace's findings join the draws'; one both sources made (same id, same parameters) is kept
    once, in the trace's words (they name the line)."""
    for f in traced:
        same = next((i for i, d in enumerate(findings) if d.id == f.id and sorted(d.params) == sorted(f.params)), None)
        if same is None:
            findings.append(f)
        else:
            findings[same] = f


def default_max_memory() -> int:
    """Half the machine's memory (``MemTotal``; the page count where /proc is missing): one instance
    and the audit's working set must fit beside what else runs."""
    import os

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _gib(n: float) -> str:
    """Bytes in the binary unit that reads best: 64 KiB, 1.52 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def audit_model(target: str | AuditTarget, *, spec: str | dict[str, Any] | AuditSpec | None = None,
                **kwargs: Any) -> AuditReport:
    """:func:`audit` with ``spec`` as a file path, a dict of the TOML's tables or an AuditSpec
    (``initspec.audit(...)``)."""
    from pathlib import Path

    from initspec.audit.spec import load_spec, parse_spec

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec, "spec")
    return audit(target, spec=spec, **kwargs)


# --- the first instance: groups -----------------------------------------------------------


def _plan(params: list[Param], groups: dict[tuple, Group], order: list[tuple], spec: AuditSpec | None,
          fallback: str, tied: dict[Any, list[str]], findings: list[Finding],
          law_of: Callable[[Param], tuple[bool, str | None]] | None = None,
          traced: dict[str, Any] | None = None) -> None:
    """Groups from one instance's parameters (drawn, or as the trace lists them); ``law_of`` says which
    members may pool (default: whether the values are constant): a constant never pools with random
    siblings, and traced laws that differ never pool."""
    from initspec.audit.findings import uninitialized

    traced = traced or {}
    law_of = law_of or (lambda p: (is_constant(p), None))

    seen_storage: dict[Any, str] = {}
    bad = []
    roles = roles_of([p.path for p in params])
    for p in params:
        rule = spec.match(p.path) if spec else None
        if p.storage is not None and p.storage in seen_storage:
            tied.setdefault(p.storage, [seen_storage[p.storage]]).append(p.path)
            continue
        if p.storage is not None:
            seen_storage[p.storage] = p.path
        if p.uninitialized or (p.path in traced and traced[p.path].law.kind == "unwritten"):
            bad.append(p.path)
            continue
        lay, fi, fo = fans_of(p, fallback)
        q = Param(p.path, p.shape, p.dtype, p.values, p.owner, p.role, lay, int(fi), int(fo))
        key = (*group_key(q, rule.glob if rule else None, roles[p.path]), law_of(p))
        if key not in groups:
            groups[key] = Group(key, roles[p.path], p.shape, p.dtype, p.owner, lay, fi, fo, p.default, rule)
            if rule is not None and rule.scheme.kind not in ("constant", "orthogonal"):
                ref = build_reference(rule.scheme, fi, fo, p.dtype) if p.dtype in FLOATS else None
                if ref is not None:
                    groups[key].moments = st.Moments(shift=ref.mean)
            order.append(key)
        groups[key].members.append(p.path)
    if bad:
        meta = [b for b in bad if b not in traced or traced[b].law.kind != "unwritten"]
        findings.append(uninitialized(bad, "left on the meta device or without storage" if meta else
                                      "allocated and never written, traced"))
    from initspec.audit.findings import constant_among_random

    names = group_names(order, {k: groups[k].members for k in order})
    for k in order:
        groups[k].name = names[k]
    for k in order:  # a constant member among random siblings of one role: a note
        twin = next((j for j in order if j[:-1] == k[:-1] and not j[-1][0]), None)
        if k[-1][0] and twin is not None:
            findings.append(constant_among_random(groups[k].members, groups[twin].name))
    if spec:
        missing = spec.unmatched()
        if missing:
            raise InputError(f"{spec.path}: [params] {missing[0]!r} matches no parameter of the model")
