"""The ``initspec`` command line.

Exit codes: 0 everything conforms, 1 a nonconformance (or an initializer that errored),
2 a usage or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from initspec import __version__
from initspec.errors import InputError
from initspec.options import OPTIONS

_N_TEXT = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in + fan_out)/2",
           "fan_geo_avg": "sqrt(fan_in * fan_out)"}


def formula(scheme: Any) -> str:
    """The scheme's law in one line."""
    p = scheme.params
    if scheme.kind == "variance_scaling":
        n = _N_TEXT[p["mode"]]
        dist = p["distribution"]
        if dist == "normal":
            return f"N({p['mean']:g}, {p['scale']:.6g} / n), n = {n}"
        if dist == "uniform":
            return f"U(±sqrt(3 * {p['scale']:.6g} / n)), n = {n}"
        tc = p["truncation_correction"]
        corr = {"exact": "variance corrected to exactly scale/n", "none": "uncorrected"}.get(
            tc, f"pre-truncation variance {tc} * scale/n")
        return (f"truncated normal, Var = {p['scale']:.6g} / n, n = {n}, cut at "
                f"[{p['lower']:g}, {p['upper']:g}] pre-truncation std ({corr})")
    if scheme.kind == "normal":
        return f"N({p['mean']:g}, {p['std']:g}²)"
    if scheme.kind == "truncated_normal":
        unit = "pre-truncation std" if p["bounds"] == "std" else "absolute"
        return f"N({p['mean']:g}, {p['std']:g}²) cut at [{p['lower']:g}, {p['upper']:g}] ({unit})"
    if scheme.kind == "uniform":
        return f"U({p['low']:g}, {p['high']:g})"
    if scheme.kind == "constant":
        return f"every element = {p['value']:g}"
    if scheme.kind == "sparse":
        return f"ceil({p['sparsity']:g} * rows) zeros per column, the rest N(0, {p['std']:g}²)"
    return ", ".join(f"{k}={v}" for k, v in p.items()) + f" ({scheme.kind})"


def _opts(fn: Callable[..., Any]) -> Callable[..., Any]:
    for o in reversed(OPTIONS):
        fn = click.option(f"--{o.name}", type=o.type, default=o.default, show_default=True, help=o.help)(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="initspec")
def cli() -> None:
    """Hold neural-network weight initializers to a declarative spec."""


@cli.command("list")
def list_cmd() -> None:
    """Every scheme, one line each."""
    from initspec.spec import presets

    for p in presets():
        alias = f" (= {', '.join(p.aliases)})" if p.aliases else ""
        click.echo(f"{p.name:26} {p.summary}{alias}")


@cli.command()
@click.argument("scheme")
@click.option("--shape", default=None, help="weight shape, e.g. 8,3,5,5")
@click.option("--layout", default="torch", show_default=True, help="torch (out, in, *k) | tf (*k, in, out) | jax")
@click.option("--dtype", default="float32", show_default=True)
def show(scheme: str, shape: str | None, layout: str, dtype: str) -> None:
    """The formula, fans and exact expected moments of SCHEME for a shape."""
    from initspec.fans import get_layout, parse_shape
    from initspec.manifest import default_shapes
    from initspec.reference import build
    from initspec.spec import resolve

    s = resolve(scheme)
    lay = get_layout(layout)
    params = dict(s.params)
    if params.get("distribution") in ("normal", "uniform"):
        for key in ("lower", "upper", "truncation_correction"):
            params.pop(key)
    lines = [f"{s.expr}: {s.summary}", f"  kind {s.kind}; {formula(s)}",
             "  params: " + ", ".join(f"{k}={v}" for k, v in params.items())]
    for shp in [parse_shape(shape)] if shape else default_shapes(layout):
        fi, fo = lay.fans(shp) if s.fan_dependent else (1, 1)
        ref = build(s, fi, fo, dtype)
        line = f"  shape {shp} ({layout} layout, {dtype}): "
        line += f"fan_in {fi}, fan_out {fo}" if s.fan_dependent else "fans not used"
        if ref is not None:
            bounds = f", bounds [{ref.lower:.6g}, {ref.upper:.6g}]" if math.isfinite(ref.lower) else ""
            line += f": mean {ref.mean:.6g}, var {ref.var:.6g}, std {ref.std:.6g}{bounds}"
        lines.append(line)
    click.echo("\n".join(lines))


def _progress(enabled: bool) -> tuple[Any, Callable[[int, int, str], None] | None]:
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("checking", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label[:60])

    return bar, update


@cli.command()
@click.argument("framework", required=False)
@click.option("--only", default=None, help="glob over entry ids, e.g. 'kaiming*'")
@_opts
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
@click.option("--backend", default=None, help="Keras backend: tensorflow | jax | torch | numpy (keras only)")
@click.option("--all-backends", is_flag=True, help="keras on every installed backend, one process each, compared")
def check(framework: str | None, only: str | None, seed: int, alpha: float, samples: int | None,
          max_draws: int, target: str | None, convention: str, scheme: str | None, layout: str,
          shapes: tuple[str, ...], dtypes: tuple[str, ...], manifest: str | None, json_path: str | None,
          junit: str | None, markdown: str | None, html: str | None, quiet: bool,
          backend: str | None = None, all_backends: bool = False, workers: int = 1, no_xfails: bool = False) -> None:
    """Check FRAMEWORK's initializers (or one --target) against their claimed schemes."""
    from rich.console import Console

    from initspec import api
    from initspec.report import print_table
    from initspec.reports import require_matplotlib, write_reports

    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    if samples is not None and samples < 10:
        raise InputError(f"--samples must be at least 10, got {samples}")
    if workers < 1:
        raise InputError(f"--jobs must be at least 1, got {workers}")
    if max_draws < 1:
        raise InputError(f"--max-draws must be at least 1, got {max_draws}")
    if html:
        require_matplotlib()  # fail before a long run, not after it
    if backend or all_backends:  # before anything imports keras
        from initspec import backends

        backends.validate(framework, manifest, backend, all_backends, target)
        if all_backends:
            sys.exit(backends.run_all(seed=seed, alpha=alpha, samples=samples, max_draws=max_draws, only=only,
                                      manifest=manifest, json_path=json_path, quiet=quiet, echo=click.echo))
        backends.select(backend)
    bar, progress = _progress(sys.stderr.isatty() and not quiet)
    common = {"seed": seed, "alpha": alpha, "samples": samples, "max_draws": max_draws, "progress": progress}
    if target is not None:
        if framework:
            raise InputError("give either FRAMEWORK or --target, not both")
        if not scheme:
            raise InputError("--target needs --scheme, the scheme the target claims to implement")

        def run() -> Any:
            return api.check(target, scheme=scheme, convention=convention, layout=layout,
                             shapes=shapes or None, dtypes=dtypes or ("float32",), **common)
    else:
        if not framework and not manifest:
            raise InputError("name a FRAMEWORK (e.g. `initspec check numpy`) or give --target")
        from pathlib import Path

        from initspec.manifest import load_manifest

        m = load_manifest(Path(manifest)) if manifest else None

        def run() -> Any:
            return api.check_framework(framework or m.framework, only=only, manifest=m, workers=workers,
                                       xfails=not no_xfails, **common)

    if bar is not None:
        with bar:
            report = run()
    else:
        report = run()
    if json_path:
        report.write_json(json_path)
    write_reports(report, junit=junit, markdown=markdown, html=html)
    console = Console(no_color=bool(os.environ.get("NO_COLOR")) or None)
    print_table(report, console, quiet=quiet)
    sys.exit(report.exit_code)


@cli.command(hidden=True)
@click.argument("framework")
@click.argument("entry_id")
@click.option("--case", "case_json", required=True, help="the case as JSON (shape, args, kwargs, fans, param)")
@click.option("--dtype", default="float32")
@click.option("--n", "n", type=int, default=200_000)
@click.option("--seed", type=int, default=0)
@click.option("--out", type=click.Path(), required=True)
def sample(framework: str, entry_id: str, case_json: str, dtype: str, n: int, seed: int, out: str) -> None:
    """Draw N values of one entry into a .npy file (the worker behind `diff`)."""
    import json

    import numpy as np

    from initspec.compare import draw_sample
    from initspec.manifest import Case

    c = json.loads(case_json)
    case = Case(shape=tuple(c["shape"]), args=tuple(c.get("args") or ()), kwargs=c.get("kwargs") or {},
                fan_in=c.get("fan_in"), fan_out=c.get("fan_out"), param=c.get("param"))
    x, meta = draw_sample(framework, entry_id, case, dtype, n, seed)
    np.save(out, x)
    click.echo(json.dumps(meta))


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--shape", default=None, help="shape in A's layout (mapped to B's layout)")
@click.option("--dtype", default="float32", show_default=True)
@click.option("--samples", "n", type=int, default=200_000, show_default=True, help="values drawn from each side")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--alpha", type=float, default=1e-4, show_default=True)
@click.option("--json", "json_path", type=click.Path(), default=None)
@click.option("--junit", type=click.Path(), default=None, help="JUnit XML: one testcase, failed when they differ")
@click.option("--markdown", type=click.Path(), default=None, help="a Markdown summary (also to $GITHUB_STEP_SUMMARY)")
def diff(a: str, b: str, shape: str | None, dtype: str, n: int, seed: int, alpha: float,
         json_path: str | None, junit: str | None, markdown: str | None) -> None:
    """Do two initializers (FRAMEWORK[@BACKEND]:ENTRY_ID) draw from the same distribution?

    Exit 0 when they do, 1 when they differ.
    """
    import json

    from initspec.compare import diff as run_diff
    from initspec.fans import parse_shape

    result = run_diff(a, b, shape=parse_shape(shape) if shape else None, dtype=dtype, n=n, seed=seed, alpha=alpha)
    sa, sb = result["side_a"], result["side_b"]
    for s in (sa, sb):
        click.echo(f"{s['label']} ({s['version']}): claims {s['claims']}; shape {tuple(s['shape'])} "
                   f"({s['layout']} layout), fan_in {s['fan_in']}, fan_out {s['fan_out']}")
    for key in ("a", "b"):
        m = result[key]
        click.echo(f"  {key.upper()}: n {m['n']}, mean {m['mean']:.4g}, var {m['var']:.5g}, "
                   f"kurtosis {m['kurtosis']:.3f}, range [{m['min']:.4g}, {m['max']:.4g}]")
    click.echo("\n".join(result["explanation"]))
    if json_path:
        from pathlib import Path

        Path(json_path).write_text(json.dumps(result, indent=2, default=str) + "\n")
    from initspec.reports.diff import write_diff_reports

    write_diff_reports(result, junit=junit, markdown=markdown)
    sys.exit(0 if result["same"] else 1)


@cli.command()
@click.argument("frameworks", nargs=-1)
@click.option("--markdown", "md_path", type=click.Path(), default=None, help="also write the table as Markdown")
def matrix(frameworks: tuple[str, ...], md_path: str | None) -> None:
    """Which entry of each framework claims each canonical scheme (all manifests by default)."""
    from rich.console import Console
    from rich.table import Table

    from initspec._data import data_dir
    from initspec.compare import markdown_table
    from initspec.compare import matrix as build_matrix

    names = list(frameworks) or sorted(p.stem for p in data_dir("adapters").glob("*.toml"))
    header, rows = build_matrix(names)
    table = Table(title="initializers by canonical scheme (from the manifests' claims)")
    for col in header:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if md_path:
        from pathlib import Path

        Path(md_path).write_text(markdown_table(header, rows))


from initspec.identify import identify_cmd  # noqa: E402 - registered after the commands above

cli.add_command(identify_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click in non-standalone mode, every input error as one line and exit 2."""
    try:
        cli.main(args=argv, prog_name="initspec", standalone_mode=False)
    except InputError as e:
        click.echo(f"initspec: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.UsageError as e:
        click.echo(f"initspec: error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("initspec: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
