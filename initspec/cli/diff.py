"""``initspec diff``: do two initializers draw from the same law? (and its hidden sampling worker)"""

from __future__ import annotations

import sys

import click

#: most values drawn per side: 2e8 float64 values are 1.6 GB, beyond that a diff cannot fit
MAX_SAMPLES = 200_000_000


@click.command(hidden=True)
@click.argument("framework")
@click.argument("entry_id")
@click.option("--case", "case_json", required=True, help="the case as JSON (shape, args, kwargs, fans, param)")
@click.option("--dtype", default="float32")
@click.option("--n", "n", type=int, default=200_000)
@click.option("--seed", type=int, default=0)
@click.option("--out", type=click.Path(), required=True)
@click.option("--backend", default=None, help="the Keras backend (keras@BACKEND)")
def sample(framework: str, entry_id: str, case_json: str, dtype: str, n: int, seed: int, out: str,
           backend: str | None) -> None:
    """Draw N values of one entry into a .npy file (the worker behind `diff`)."""
    import json

    import numpy as np

    from initspec.engine.compare import draw_sample
    from initspec.frameworks.manifest import Case

    if backend:  # before anything imports keras; says which module the backend lacks
        from initspec.frameworks import keras_backends

        keras_backends.select(backend)
    c = json.loads(case_json)
    case = Case(shape=tuple(c["shape"]), args=tuple(c.get("args") or ()), kwargs=c.get("kwargs") or {},
                fan_in=c.get("fan_in"), fan_out=c.get("fan_out"), param=c.get("param"))
    x, meta = draw_sample(framework, entry_id, case, dtype, n, seed)
    np.save(out, x)
    click.echo(json.dumps(meta))


@click.command()
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

    from initspec.engine.compare import diff as run_diff
    from initspec.reports.output import check_outputs, write_text
    from initspec.spec import validate
    from initspec.spec.fans import parse_shape

    check_outputs({"--json": json_path, "--junit": junit, "--markdown": markdown})
    validate.probability(alpha, "--alpha")
    validate.integer(n, "--samples", low=1000, high=MAX_SAMPLES)
    validate.seed(seed)
    from initspec.spec.reference import np_dtype

    np_dtype(dtype)  # before it is handed to the two sampling processes
    to_stderr = "-" in (json_path, junit, markdown)  # a report on stdout stands alone there
    result = run_diff(a, b, shape=parse_shape(shape) if shape else None, dtype=dtype, n=n, seed=seed, alpha=alpha)
    sa, sb = result["side_a"], result["side_b"]
    for s in (sa, sb):
        click.echo(f"{s['label']} ({s['version']}): claims {s['claims']}; shape {tuple(s['shape'])} "
                   f"({s['layout']} layout), fan_in {s['fan_in']}, fan_out {s['fan_out']}", err=to_stderr)
    for key in ("a", "b"):
        m = result[key]
        click.echo(f"  {key.upper()}: n {m['n']}, mean {m['mean']:.4g}, var {m['var']:.5g}, "
                   f"kurtosis {m['kurtosis']:.3f}, range [{m['min']:.4g}, {m['max']:.4g}]", err=to_stderr)
    click.echo("\n".join(result["explanation"]), err=to_stderr)
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2, default=str) + "\n")
    from initspec.reports.diff import write_diff_reports

    write_diff_reports(result, junit=junit, markdown=markdown)
    sys.exit(0 if result["same"] else 1)
