"""The Python API: ``check``, ``assert_conforms``, ``audit`` and ``assert_model_conforms``."""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from initspec.engine.guard import DEFAULT_DRAW_TIMEOUT
from initspec.engine.runner import DEFAULT_ALPHA, DEFAULT_MAX_DRAWS, DEFAULT_SEED, Progress, run, xfail_matches
from initspec.errors import InputError
from initspec.frameworks.manifest import load_manifest, load_xfails, manifest_path
from initspec.frameworks.target import entry_for
from initspec.reports.report import Report, failure_message


def check_framework(framework: str, *, only: str | None = None, seed: int = DEFAULT_SEED,
                    alpha: float = DEFAULT_ALPHA, samples: int | None = None,
                    max_draws: int = DEFAULT_MAX_DRAWS, progress: Progress | None = None,
                    manifest: str | None = None, xfails: bool = True, workers: int = 1,
                    draw_timeout: float | None = DEFAULT_DRAW_TIMEOUT, batched: bool = True) -> Report:
    """Hold every entry of a framework's manifest to its claim (``workers`` processes).

    ``batched``: draw through the binding's compiled batch path where it has one (``jit(vmap)``
    for jax, ...); False makes one eager call per draw.  Each result says which path it took.
    """
    from initspec.frameworks import binding_for

    path = manifest_path(framework) if manifest is None else manifest
    m = load_manifest(path) if not hasattr(path, "entries") else path
    binding = binding_for(m.framework)
    entries = m.entries
    if only:
        entries = [e for e in entries if fnmatch.fnmatchcase(e.id, only)]
        if not entries:
            raise InputError(f"--only {only!r} matches no entry of {m.framework}")
    backend = binding.backend() if hasattr(binding, "backend") else None  # Keras: tensorflow | jax | ...
    xf = (load_xfails(m.framework) + (load_xfails(f"{m.framework}-{backend}") if backend else [])) if xfails else []
    results = run(entries, seed=seed, alpha=alpha, samples=samples, max_draws=max_draws,
                  framework=_repro_prefix(m.framework, backend, None if manifest is None else m.path),
                  xfails=xf, progress=progress, workers=workers, draw_timeout=draw_timeout, batched=batched)
    version = binding.version() + (f" ({backend} {binding.backend_version()} backend)" if backend else "")
    report = Report(m.framework, version, seed, alpha, results)
    report.warnings += power_warnings(results)
    if backend:
        report.meta["backend"] = backend
    if not only and manifest is None:  # a custom manifest need not cover the known deviations
        report.warnings += [f"xfail pattern {p!r} matches no result" for p, _ in xf
                            if not any(xfail_matches(r, p) for r in results)]
    return report


def _repro_prefix(framework: str, backend: str | None, manifest: Path | None) -> str:
    """What follows ``initspec check`` in a repro line: the framework, or the custom manifest file."""
    where = f"--manifest {shlex.quote(str(manifest))}" if manifest is not None else framework
    return f"{where} --backend {backend}" if backend else where


def check(target: str | Callable[..., Any], *, scheme: str, convention: str = "numpy",
          layout: str = "torch", shapes: Iterable[Any] | None = None, dtypes: Sequence[str] = ("float32",),
          seed: int = DEFAULT_SEED, alpha: float = DEFAULT_ALPHA, samples: int | None = None,
          max_draws: int = DEFAULT_MAX_DRAWS, progress: Progress | None = None,
          draw_timeout: float | None = DEFAULT_DRAW_TIMEOUT, batched: bool = True) -> Report:
    """Audit one initializer (a ``MODULE:ATTR(args)`` string or the callable itself); ``batched``
    as in :func:`check_framework`."""
    from initspec.engine.guard import build_guarded
    from initspec.frameworks import binding_for

    # a factory that raises or exits is the initializer's error result, not a traceback
    entry, drawer = entry_for(target, scheme, convention, layout, shapes, dtypes,
                              build=lambda b: build_guarded(b, draw_timeout))
    binding = binding_for(convention, convention=True)
    results = run([entry], seed=seed, alpha=alpha, samples=samples, max_draws=max_draws,
                  progress=progress, drawers={entry.id: drawer}, draw_timeout=draw_timeout, batched=batched)
    report = Report(binding.FRAMEWORK, binding.version(), seed, alpha, results)
    report.warnings += power_warnings(results)
    return report


#: below this achieved power (to catch a 1% std error) a pass means little: say so
LOW_POWER = 0.5


def power_warnings(results: list[Any]) -> list[str]:
    """One warning when some results passed with power below LOW_POWER (e.g. ``--samples 10``)."""
    low = [r for r in results if r.power is not None and r.power < LOW_POWER]
    if not low:
        return []
    worst = min(low, key=lambda r: r.power)
    return [f"{len(low)} result(s) were tested with power below {LOW_POWER} to catch a 1% std error "
            f"(lowest {worst.power:.2g}, {worst.id}): a pass there means little; raise --samples or drop it"]


def assert_conforms(target: str | Callable[..., Any], *, scheme: str, convention: str = "numpy",
                    **kwargs: Any) -> Report:
    """Like :func:`check`, raising AssertionError with the repro of every failed result."""
    __tracebackhide__ = True
    report = check(target, scheme=scheme, convention=convention, **kwargs)
    if not report.ok:
        bad = [r for r in report.results if r.verdict in ("fail", "error")]
        raise AssertionError("\n".join(failure_message(r) for r in bad))
    return report


def audit(target: Any, *, spec: Any = None, **kwargs: Any) -> Any:
    """Audit a model target (``MODULE:ATTR(args)``, ``hf:...``, ``timm:...``); returns an AuditReport.

    ``spec``: a TOML path, a dict of its tables (``{"vars": ..., "params": ..., "tied": ...}``) or None.
    Keywords: ``seeds``, ``max_seeds``, ``seed``, ``alpha``, ``layout``, ``convention``, ``input_shape``,
    ``strict``.
    """
    from initspec.audit.run import audit_model

    return audit_model(target, spec=spec, **kwargs)


def assert_model_conforms(target: Any, *, spec: Any = None, **kwargs: Any) -> Any:
    """Like :func:`audit`; AssertionError with the table of what failed and the repro line."""
    from initspec.audit.run import repro
    from initspec.audit.table import format_report

    __tracebackhide__ = True
    report = audit(target, spec=spec, **kwargs)
    if not report.ok:
        raise AssertionError(f"{report.target} does not conform:\n{format_report(report)}\n"
                             f"reproduce: {repro(report)}")
    return report
