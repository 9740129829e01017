"""``initspec list`` and ``initspec show``: the schemes of the spec."""

from __future__ import annotations

import math

import click

from initspec.spec.schemes import formula


@click.command("list")
def list_cmd() -> None:
    """Every scheme, one line each."""
    from initspec.spec.schemes import presets

    for p in presets():
        alias = f" (= {', '.join(p.aliases)})" if p.aliases else ""
        click.echo(f"{p.name:26} {p.summary}{alias}")


@click.command()
@click.argument("scheme")
@click.option("--shape", default=None, help="weight shape, e.g. 8,3,5,5")
@click.option("--layout", default="torch", show_default=True, help="torch (out, in, *k) | tf (*k, in, out) | jax")
@click.option("--dtype", default="float32", show_default=True)
def show(scheme: str, shape: str | None, layout: str, dtype: str) -> None:
    """The formula, fans and exact expected moments of SCHEME for a shape."""
    from initspec.frameworks.manifest import default_shapes
    from initspec.spec.fans import get_layout, parse_shape
    from initspec.spec.reference import build
    from initspec.spec.schemes import resolve

    s = resolve(scheme)
    lay = get_layout(layout)
    params = dict(s.params)
    if params.get("distribution") in ("normal", "uniform"):
        for key in ("lower", "upper", "truncation_correction"):
            params.pop(key)
    lines = [f"{s.expr}: {s.summary}", f"  kind {s.kind}; {formula(s)}",
             "  params: " + ", ".join(f"{k}={v}" for k, v in params.items())]
    for shp in [parse_shape(shape)] if shape is not None else default_shapes(layout):
        fi, fo = lay.fans(shp) if s.fan_dependent else (1, 1)
        ref = build(s, fi, fo, dtype)
        line = f"  shape {shp} ({layout} layout, {dtype}): "
        line += f"fan_in {fi}, fan_out {fo}" if s.fan_dependent else "fans not used"
        if ref is not None:
            bounds = f", bounds [{ref.lower:.6g}, {ref.upper:.6g}]" if math.isfinite(ref.lower) else ""
            line += f": mean {ref.mean:.6g}, var {ref.var:.6g}, std {ref.std:.6g}{bounds}"
        lines.append(line)
    click.echo("\n".join(lines))
