"""``initspec identify``: which scheme does an unknown initializer implement?"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click

from initspec.engine.identify import DEFAULT_SAMPLES, format_identification, identify
from initspec.errors import InputError


@click.command("identify")
@click.option("--target", required=True, help="MODULE:ATTR[(literal args)] of the initializer")
@click.option("--convention", default="numpy", show_default=True, help="numpy | torch | keras | jax")
@click.option("--layout", default="torch", show_default=True, help="weight layout: torch | tf | jax")
@click.option("--shape", "shapes", multiple=True, help="a shape to draw (repeatable; default: the layout's set)")
@click.option("--dtype", default="float32", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--samples", default=DEFAULT_SAMPLES, show_default=True, type=int, help="values per shape")
@click.option("--top", default=5, show_default=True, type=int, help="runners-up to show")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the ranking as JSON here")
def identify_cmd(target: str, convention: str, layout: str, shapes: Sequence[str], dtype: str, seed: int,
                 samples: int, top: int, json_path: str | None) -> None:
    """Which scheme does an unknown initializer implement?  Exit 0 when the best candidate is
    consistent with every shape, 1 when none is (or the initializer misbehaves)."""
    from initspec.reports.output import check_outputs, write_text
    from initspec.spec import validate

    check_outputs({"--json": json_path})
    validate.seed(seed)
    if top < 0:
        raise InputError(f"--top must be at least 0, got {top}")
    ident = identify(target, convention=convention, layout=layout, shapes=shapes or None, dtype=dtype,
                     seed=seed, samples=samples)
    text = format_identification(ident, top)
    if json_path is not None:
        write_text(json_path, json.dumps(ident.to_dict(), indent=2, default=float) + "\n")
    click.echo(text, err=json_path == "-")
    sys.exit(0 if ident.consistent else 1)
