"""One audit: build the model under each seed (one instance in memory at a time), stream every
parameter into its group's evidence (``draws.py``), identify and check each group
(``verdicts.py``), look across parameters for model-level findings (``findings.py``).
"""

from __future__ import annotations

import math
import time
from typing import Any

from initspec.audit.draws import Builder, draw, is_constant
from initspec.audit.findings import Finding, clones, model_findings
from initspec.audit.group import group_key, group_names, roles_of
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
from initspec.audit.targets import AuditTarget, parse_audit_target
from initspec.audit.verdicts import check_groups, identify_group, lock_expr, planned_tests  # noqa: F401
from initspec.audit.walkers import Param
from initspec.engine import stats as st
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference


def audit(target: str | AuditTarget, *, spec: AuditSpec | None = None, seeds: int | None = None,
          max_seeds: int = DEFAULT_MAX_SEEDS, seed: int = 0, alpha: float = DEFAULT_ALPHA,
          layout: str | None = None, convention: str | None = None, input_shape: tuple[int, ...] | None = None,
          strict: bool = False, progress: Any = None) -> AuditReport:
    """Audit a model target; BuildError when its constructor raises, InputError on bad input.
    ``progress(done, total, label)`` hears of each instance drawn (``initspec.reports.progress``)."""
    t0 = time.perf_counter()
    if seeds is not None and seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    if max_seeds < 1:
        raise InputError(f"--max-seeds must be at least 1, got {max_seeds}")
    if layout is not None:
        get_layout(layout)
    tgt = parse_audit_target(target, convention) if isinstance(target, str) else target
    options = {"input_shape": input_shape} if input_shape is not None else {}
    builder = Builder(tgt, options)
    builder.detect(seed)
    framework = builder.walker.FRAMEWORK
    fallback = layout or ("torch" if framework == "torch" else "tf")
    groups: dict[tuple, Group] = {}
    order: list[tuple] = []
    findings: list[Finding] = []
    tied: dict[Any, list[str]] = {}
    timing = {"detect": time.perf_counter() - t0}

    def plan(params: list[Param]) -> float:  # the first instance makes the groups
        _plan(params, groups, order, spec, fallback, tied, findings)
        return alpha / max(sum(planned_tests(g) for g in groups.values()), 1)

    drawn = draw(builder, groups, plan, seed=seed, seeds=seeds, max_seeds=max_seeds, timing=timing, progress=progress)
    if progress:
        progress(len(drawn.seeds), len(drawn.seeds), "identifying and checking the groups")
    clones(drawn.digests, groups, spec, findings)
    alpha_each, seed_list, n_seeds, digests = drawn.alpha_each, drawn.seeds, len(drawn.seeds), drawn.digests
    tc = time.perf_counter()
    ordered = [groups[k] for k in order]
    model_findings(ordered, digests, n_seeds, findings)
    for g in ordered:
        identify_group(g, seed)
    check_groups(ordered, tgt.text, seed, alpha, alpha_each)
    timing["analyse"] = time.perf_counter() - tc
    timing["total"] = time.perf_counter() - t0
    return AuditReport(tgt.text, framework, framework_version(framework), seed_list, alpha, ordered, findings,
                       [v for v in tied.values() if len(v) > 1], strict=strict,
                       spec_path=spec.path if spec else None, notes=list(tgt.notes), timing=timing)


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


def _fans_of(p: Param, fallback: str) -> tuple[str, float, float]:
    lay = p.layout
    if len(p.shape) >= 2:
        lay = lay or fallback
        if p.fan_in is None or p.fan_out is None:
            fi, fo = get_layout(lay).fans(p.shape)
            return lay, float(fi), float(fo)
    n = float(max(math.prod(p.shape), 1))
    fi = float(p.fan_in if p.fan_in is not None else n)
    return lay or fallback, fi, float(p.fan_out if p.fan_out is not None else n)


def _plan(params: list[Param], groups: dict[tuple, Group], order: list[tuple], spec: AuditSpec | None,
          fallback: str, tied: dict[Any, list[str]], findings: list[Finding]) -> None:
    from initspec.audit.findings import uninitialized

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
        if p.uninitialized:
            bad.append(p.path)
            continue
        lay, fi, fo = _fans_of(p, fallback)
        q = Param(p.path, p.shape, p.dtype, p.values, p.owner, p.role, lay, int(fi), int(fo))
        # a constant member never pools with random siblings: it is its own group (and a note)
        key = (*group_key(q, rule.glob if rule else None, roles[p.path]), is_constant(p))
        if key not in groups:
            groups[key] = Group(key, roles[p.path], p.shape, p.dtype, p.owner, lay, fi, fo, p.default, rule)
            if rule is not None and rule.scheme.kind not in ("constant", "orthogonal"):
                ref = build_reference(rule.scheme, fi, fo, p.dtype) if p.dtype in FLOATS else None
                if ref is not None:
                    groups[key].moments = st.Moments(shift=ref.mean)
            order.append(key)
        groups[key].members.append(p.path)
    if bad:
        findings.append(uninitialized(bad))
    from initspec.audit.findings import constant_among_random

    names = group_names(order, {k: groups[k].members for k in order})
    for k in order:
        groups[k].name = names[k]
    for k in order:
        twin = (*k[:-1], False)
        if k[-1] and twin in groups:
            findings.append(constant_among_random(groups[k].members, groups[twin].name))
    if spec:
        missing = spec.unmatched()
        if missing:
            raise InputError(f"{spec.path}: [params] {missing[0]!r} matches no parameter of the model")
