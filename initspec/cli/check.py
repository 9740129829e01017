"""``initspec check``: a framework's manifest, a manifest file, or one --target."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from initspec.cli.common import no_progress_option, run_options
from initspec.engine.guard import DEFAULT_DRAW_TIMEOUT
from initspec.errors import InputError


@click.command()
@click.argument("framework", required=False)
@click.option("--only", default=None, help="glob over entry ids, e.g. 'kaiming*'")
@run_options
@click.option("--target", default=None, help="MODULE:ATTR[(literal args)] to audit instead of a framework")
@click.option("--convention", default="numpy", show_default=True, help="numpy | torch | keras | jax (with --target)")
@click.option("--scheme", "scheme", default=None, help="the scheme the target claims (with --target)")
@click.option("--layout", default="torch", show_default=True, help="weight layout (with --target)")
@click.option("--shape", "shapes", multiple=True, help="a shape to test (repeatable; with --target)")
@click.option("--dtype", "dtypes", multiple=True, help="a dtype to test (repeatable; with --target)")
@click.option("--manifest", type=click.Path(), default=None, help="a manifest file instead of the built-in one")
@click.option("--no-xfails", is_flag=True, help="ignore conformance/xfails: known deviations fail and are diagnosed")
@click.option("--jobs", "-j", "workers", type=int, default=1, show_default=True,
              help="spread the entries over N processes (framework checks)")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the JSON report here")
@click.option("--junit", type=click.Path(), default=None, help="write a JUnit XML report here")
@click.option("--markdown", type=click.Path(), default=None,
              help="write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)")
@click.option("--html", type=click.Path(), default=None, help="write a self-contained HTML report with plots here")
@click.option("--quiet", "-q", is_flag=True, help="only the summary line")
@click.option("--verbose", "-v", count=True, help="every result on its own row (default: one row per initializer)")
@click.option("--backend", default=None, help="Keras backend: tensorflow | jax | torch | numpy (keras only)")
@click.option("--all-backends", is_flag=True, help="keras on every installed backend, one process each, compared")
@click.option("--draw-timeout", type=float, default=DEFAULT_DRAW_TIMEOUT, show_default=True,
              help="seconds one initializer call may take; longer is an error result (0: no limit)")
@click.option("--eager", is_flag=True,
              help="one eager call per draw, never the binding's compiled batch path (jit(vmap), tf.function)")
@no_progress_option
def check(framework: str | None, only: str | None, seed: int, alpha: float, samples: int | None,
          max_draws: int, target: str | None, convention: str, scheme: str | None, layout: str,
          shapes: tuple[str, ...], dtypes: tuple[str, ...], manifest: str | None, json_path: str | None,
          junit: str | None, markdown: str | None, html: str | None, quiet: bool, verbose: int,
          backend: str | None = None, all_backends: bool = False, workers: int = 1, no_xfails: bool = False,
          draw_timeout: float = DEFAULT_DRAW_TIMEOUT, eager: bool = False, no_progress: bool = False) -> None:
    """Check FRAMEWORK's initializers (or one --target) against their claimed schemes."""
    from rich.console import Console

    from initspec import api
    from initspec.reports import require_matplotlib, write_reports
    from initspec.reports.terminal import print_report

    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    if samples is not None and samples < 10:
        raise InputError(f"--samples must be at least 10, got {samples}")
    if workers < 1:
        raise InputError(f"--jobs must be at least 1, got {workers}")
    if max_draws < 1:
        raise InputError(f"--max-draws must be at least 1, got {max_draws}")
    from initspec.spec import validate

    validate.number(draw_timeout, "--draw-timeout", low=0.0, describe="non-negative")
    if samples is not None:
        validate.integer(samples, "--samples", low=10, high=validate.MAX_ELEMENTS)
    if only is not None and not only.strip():
        raise InputError("--only '': the pattern is empty (it would run nothing or, silently, everything)")
    if target is not None and (only is not None or manifest is not None):
        raise InputError(f"--target checks one initializer: {'--only' if only is not None else '--manifest'} "
                         "does not apply to it (give one of them)")
    from initspec.reports.output import STDOUT, check_outputs

    check_outputs({"--json": json_path, "--junit": junit, "--markdown": markdown, "--html": html})
    if html:
        require_matplotlib()  # fail before a long run, not after it
    if backend or all_backends:  # before anything imports keras
        from initspec.engine import backends
        from initspec.frameworks import keras_backends

        keras_backends.validate(framework, manifest, backend, all_backends, target)
        if all_backends:
            sys.exit(backends.run_all(seed=seed, alpha=alpha, samples=samples, max_draws=max_draws, only=only,
                                      manifest=manifest, json_path=json_path, quiet=quiet, echo=click.echo,
                                      eager=eager))
        keras_backends.select(backend)
    common = {"seed": seed, "alpha": alpha, "samples": samples, "max_draws": max_draws,
              "draw_timeout": draw_timeout or None, "batched": not eager}
    if target is not None:
        if framework:
            raise InputError("give either FRAMEWORK or --target, not both")
        if not scheme:
            raise InputError("--target needs --scheme, the scheme the target claims to implement")

        def run(progress: Any) -> Any:
            return api.check(target, scheme=scheme, convention=convention, layout=layout,
                             shapes=shapes or None, dtypes=dtypes or ("float32",), progress=progress, **common)
    else:
        if not framework and not manifest:
            raise InputError("name a FRAMEWORK (e.g. `initspec check numpy`) or give --target")
        from pathlib import Path

        from initspec.frameworks.manifest import load_manifest

        m = load_manifest(Path(manifest)) if manifest else None

        def run(progress: Any) -> Any:
            return api.check_framework(framework or m.framework, only=only, manifest=m, workers=workers,
                                       xfails=not no_xfails, progress=progress, **common)

    from initspec.reports.progress import progress_bar

    what = f"check {target or framework or manifest}"
    with progress_bar(what, unit="results", enabled=not (quiet or no_progress)) as progress:
        report = run(progress)
    if json_path is not None:
        report.write_json(json_path)
    write_reports(report, junit=junit, markdown=markdown, html=html)
    to_stdout = STDOUT in (json_path, junit, markdown, html)  # then the terminal view goes to stderr
    console = Console(no_color=bool(os.environ.get("NO_COLOR")) or None, stderr=to_stdout)
    print_report(report, console, verbosity=-1 if quiet else min(verbose, 1))
    sys.exit(report.exit_code)
