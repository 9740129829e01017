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
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the JSON report here")
@click.option("--quiet", "-q", is_flag=True, help="only the summary line")
def check(framework: str | None, only: str | None, seed: int, alpha: float, samples: int | None,
          max_draws: int, target: str | None, convention: str, scheme: str | None, layout: str,
          shapes: tuple[str, ...], dtypes: tuple[str, ...], manifest: str | None, json_path: str | None,
          quiet: bool) -> None:
    """Check FRAMEWORK's initializers (or one --target) against their claimed schemes."""
    from rich.console import Console

    from initspec import api
    from initspec.report import print_table

    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    if samples is not None and samples < 10:
        raise InputError(f"--samples must be at least 10, got {samples}")
    if max_draws < 1:
        raise InputError(f"--max-draws must be at least 1, got {max_draws}")
    bar, progress = _progress(sys.stderr.isatty() and not quiet)
    common = {"seed": seed, "alpha": alpha, "samples": samples, "max_draws": max_draws, "progress": progress}
    if target is not None:
        if framework:
            raise InputError("give either FRAMEWORK or --target, not both")
        if not scheme:
            raise InputError("--target needs --scheme, the scheme the target claims to implement")
        run = lambda: api.check(target, scheme=scheme, convention=convention, layout=layout,  # noqa: E731
                                shapes=shapes or None, dtypes=dtypes or ("float32",), **common)
    else:
        if not framework and not manifest:
            raise InputError("name a FRAMEWORK (e.g. `initspec check numpy`) or give --target")
        from initspec.manifest import load_manifest

        m = load_manifest(__import__("pathlib").Path(manifest)) if manifest else None
        run = lambda: api.check_framework(framework or m.framework, only=only, manifest=m, **common)  # noqa: E731
    if bar is not None:
        with bar:
            report = run()
    else:
        report = run()
    if json_path:
        report.write_json(json_path)
    console = Console(no_color=bool(os.environ.get("NO_COLOR")) or None)
    print_table(report, console, quiet=quiet)
    sys.exit(report.exit_code)


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
