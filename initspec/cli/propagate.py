"""``initspec propagate``: does an initialization keep the signal at scale through depth?"""

from __future__ import annotations

import math
import sys
from typing import Any

import click

from initspec.cli.common import no_progress_option


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def _rows(result: dict[str, Any]) -> list[list[str]]:
    """Per-layer rows, consecutive layers of one shape whose measurement stays within the band folded."""
    rows: list[list[str]] = []
    layers = result["layers"]
    i = 0
    while i < len(layers):
        j = i
        # fold the middle: the first and last layers keep their own rows
        while 0 < i and j + 1 < len(layers) - 1 and layers[j + 1]["shape"] == layers[i]["shape"]:
            j += 1
        a, b = layers[i], layers[j]
        span = f"{a['index']}" if i == j else f"{a['index']}–{b['index']}"
        f, g = b["forward"], a["backward"]
        fz = (math.log(f["second_moment"]) - math.log(f["predicted"])) / f["band_sd"] \
            if f["second_moment"] > 0 and f["predicted"] > 0 and math.isfinite(f["second_moment"]) else math.inf
        rows.append([span, "x".join(map(str, a["shape"])), _fmt(f["second_moment"]), _fmt(f["predicted"]),
                     _fmt(f["variance"]), _fmt(f["sq_mean"]), _fmt(g["second_moment"]), _fmt(g["predicted"]),
                     f"{fz:+.2f}" if math.isfinite(fz) else "off"])
        i = j + 1
    return rows


def render(result: dict[str, Any]) -> str:
    """The terminal view: header, one row per layer (repeated middle layers folded), the verdict."""
    th, v = result["theory"], result["verdict"]
    st = result["stack"]
    lines = [f"initspec propagate: {result['scheme']} under {result['activation']} — weights from {result['weights']} "
             f"({result['backend']}; {st['kind']} depth {st['depth']}, batch {st['batch']}, seeds {st['seeds']}, "
             f"bias std {st['bias_std']:g})",
             f"theory: σ_w² {_fmt(th['sigma_w2'])}, q* {_fmt(th['q_star'])}, χ₁ {_fmt(th['chi1'])} "
             f"(fan_out form {_fmt(th['chi1_fan_out'])}), preserving gain {_fmt(th['gain_preserving'])}"]
    head = ["layer", "shape", "fwd q meas", "fwd q pred", "variance", "sq_mean", "bwd g² meas", "bwd g² pred", "fwd z"]
    rows = _rows(result)
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    fd, bd = v["forward_detail"], v["backward_detail"]
    for name, d in (("forward", fd), ("backward", bd)):
        agree = "agrees with theory" if d["agrees_with_theory"] else "DIFFERS from theory"
        lines.append(f"{name}: {d['label']} (measured ×{_fmt(d['factor_per_layer'])}/layer, predicted "
                     f"×{_fmt(d['predicted_factor_per_layer'])}); {agree} (z {d['z']:+.2f}, band ±{v['z']}σ, "
                     f"σ {d['band_sd']:.3g} in log)")
    if v["cause"]:
        lines.append(f"probably {v['cause']}")
    lines.append("PASS" if v["ok"] else "FAIL")
    return "\n".join(lines)


def render_gains(table: list[dict[str, Any]]) -> str:
    lines = ["activation          gain     preserving gain  factor/layer  q*        χ₁"]
    for r in table:
        lines.append(f"{r['activation']:<18}  {r['gain']:<7.4g}  {r['gain_preserving']:<15.4g}  "
                     f"{r['factor_per_layer']:<12.4g}  {r['q_star']:<8.4g}  {r['chi1']:.4g}"
                     + ("" if r["preserving"] else "   not preserving"))
    return "\n".join(lines)


def _write_json(path: str, result: dict[str, Any]) -> None:
    import json

    from initspec.reports.output import write_text

    def clean(o: Any) -> Any:  # JSON has no inf/nan: null
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    write_text(path, json.dumps(clean(result), indent=2) + "\n")


@click.command("propagate")
@click.argument("scheme", required=False)
@click.option("--activation", "-a", default=None, help="linear, relu, leaky_relu(a), tanh, sigmoid, selu, elu, gelu, "
              "gelu_tanh, silu, softplus, or a scipy.special function name")
@click.option("--depth", type=int, default=50, show_default=True)
@click.option("--width", type=int, default=512, show_default=True)
@click.option("--widths", default=None, help="a synthetic stack's widths, input first (784,512,512,10); with --model, "
              "the family's widths for the coordinate check (64,128,256,512), the model built as ATTR(width=W)")
@click.option("--conv", "conv", default=None, help="a KxK conv stack (e.g. 3x3) instead of an MLP")
@click.option("--channels", type=int, default=64, show_default=True)
@click.option("--bias-std", type=float, default=0.0, show_default=True)
@click.option("--batch", type=int, default=256, show_default=True)
@click.option("--seeds", type=int, default=None, help="seeds averaged (synthetic stacks: 1); with --model --widths, "
              "the seeds whose spread is the exponent's band (5)")
@click.option("--target", default=None, help="weights from FRAMEWORK:ENTRY_ID (a manifest entry) or MODULE:ATTR "
              "with --convention")
@click.option("--convention", default=None, help="the --target's convention (numpy, torch, keras, jax)")
@click.option("--backend", default="numpy", show_default=True, help="where the stack runs: numpy, torch, jax")
@click.option("--max-growth", type=float, default=None,
              help="the whole-depth change still called preserved (synthetic stacks: 2); with --model a check")
@click.option("--min-shrink", type=float, default=None, help="with --model: the smallest whole-depth change allowed")
@click.option("--model", default=None, help="a torch nn.Module, Keras model/layer or Flax (nnx, linen) module factory "
              "MODULE:ATTR[(literal args)] to measure layer by layer")
@click.option("--input-shape", default=None, help="with --model: the input's shape, batch first (e.g. 8,3,32,32)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="with --model: the framework's seed before building (torch.manual_seed, "
              "keras.utils.set_random_seed, nnx.Rngs, jax.random.key)")
@click.option("--steps", type=int, default=0, show_default=True,
              help="with --model --widths: optimizer steps on a fixed synthetic batch (torch); 0 = at init only")
@click.option("--optimizer", default="adam", show_default=True,
              help="with --steps: sgd, adam, or MODULE:ATTR called as ATTR(model.parameters(), lr=LR) (mup:MuAdam)")
@click.option("--lr", type=float, default=None, help="with --steps: the learning rate (mup's defaults: sgd 0.1, "
              "adam 1e-3)")
@click.option("--blocks", default=None, help="with --model (torch): the residual blocks, a glob over module names "
              "(layer*.*); default: every module that has submodules")
@click.option("--max-branch-ratio", type=float, default=None,
              help="with --model: fail when a residual branch's E[branch²]/E[stream²] at init exceeds this")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="seconds each call into the model's or initializer's code may take (0: no limit)")
@click.option("--gains", "show_gains", is_flag=True, help="the frameworks' standard gains against the preserving ones")
@click.option("--json", "json_path", type=click.Path(), default=None, help="the report as JSON (- : standard output, "
              "the terminal view then goes to standard error)")
@click.option("--html", "html_path", type=click.Path(), default=None,
              help="plots as one self-contained page (synthetic stacks, --model, --widths; needs matplotlib)")
@no_progress_option
def propagate_cmd(scheme: str | None, activation: str | None, depth: int, width: int, widths: str | None,
                  conv: str | None, channels: int, bias_std: float, batch: int, seeds: int | None, target: str | None,
                  convention: str | None, backend: str, max_growth: float | None, min_shrink: float | None,
                  model: str | None, input_shape: str | None, seed: int, steps: int, optimizer: str,
                  lr: float | None, blocks: str | None, max_branch_ratio: float | None, timeout: float,
                  show_gains: bool, json_path: str | None, html_path: str | None, no_progress: bool = False) -> None:
    """Mean-field theory against the measured signal through a deep stack initialized by SCHEME.

    Exit 0 preserved forward and backward and as predicted, 1 vanishing/exploding or measurement
    differing from theory (or a model that fails), 2 bad input.
    """

    from initspec.errors import InputError
    from initspec.propagate.run import parse_kernel, parse_widths, propagate
    from initspec.propagate.theory import gain_table
    from initspec.reports.output import check_outputs
    from initspec.spec import validate

    check_outputs({"--json": json_path, "--html": html_path})
    validate.number(timeout, "--timeout", low=0.0, describe="non-negative")
    validate.integer(seed, "--seed", low=0, high=2**31 - 2)
    to_err = json_path == "-"  # the report alone on standard output
    if html_path and show_gains:
        raise InputError("--html draws a stack or a model: not with --gains")
    if html_path:
        _require_matplotlib()
    if model is None:
        for name, v in (("--steps", steps or None), ("--lr", lr), ("--blocks", blocks),
                        ("--max-branch-ratio", max_branch_ratio)):
            if v is not None:
                raise InputError(f"{name} goes with --model")
    if show_gains:
        table = gain_table(bias_std)
        click.echo(render_gains(table), err=to_err)
        if json_path:
            _write_json(json_path, table)
        return
    if model is not None:
        _model(model, scheme, input_shape, widths, seed, seeds, steps, optimizer, lr, blocks, max_growth,
               min_shrink, max_branch_ratio, timeout or None, json_path, html_path, no_progress)
        return
    if scheme is None:
        raise InputError("propagate needs a SCHEME (e.g. he_normal), or --gains")
    if activation is None:
        raise InputError("propagate needs --activation (e.g. relu)")
    if conv is not None and widths is not None:
        raise InputError("--conv and --widths exclude each other: a conv stack has --channels")
    from initspec.reports.progress import progress_bar

    to_err = "-" in (json_path, html_path)  # a report on standard output keeps it to itself
    try:
        with progress_bar(f"propagate {scheme}"[:40], unit="seeds", enabled=not no_progress) as progress:
            result = propagate(scheme, activation, depth=depth, width=width,
                               widths=parse_widths(widths) if widths else None,
                               conv=parse_kernel(conv) if conv else None, channels=channels, bias_std=bias_std,
                               batch=batch, seeds=1 if seeds is None else seeds, target=target,
                               convention=convention, backend=backend,
                               tolerance=2.0 if max_growth is None else max_growth, timeout=timeout or None,
                               progress=progress)
    except _model_error() as e:  # the --target's own code failed: a failed run, not bad input
        _error(str(e), to_err)
    click.echo(render(result), err=to_err)
    if json_path:
        _write_json(json_path, result)
    if html_path:
        from initspec.propagate.html import to_html

        _write_html(html_path, to_html, result)
    sys.exit(0 if result["verdict"]["ok"] else 1)


def _model_error() -> type:
    from initspec.audit.targets import BuildError

    return BuildError


def _error(message: str, to_err: bool) -> None:
    click.echo(f"ERROR  {message}", err=to_err)
    sys.exit(1)


def _require_matplotlib() -> None:
    """InputError when matplotlib is missing, or fails to import in any other way (a broken install)."""
    from initspec.errors import InputError
    from initspec.reports import require_matplotlib

    try:
        require_matplotlib()
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - a matplotlib that raises on import is an unusable --html
        raise InputError(f"--html needs matplotlib, which failed to import: {type(e).__name__}: "
                         f"{str(e).strip()[:120]}") from None


def _write_html(path: str, page: Any, result: dict[str, Any]) -> None:
    from initspec.errors import InputError
    from initspec.reports.output import write_text

    try:
        text = page(result)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - matplotlib failing while drawing: the page cannot be made
        raise InputError(f"--html {path}: drawing the plots failed: {type(e).__name__}: {str(e).strip()[:120]}"
                         ) from None
    write_text(path, text)


def _model(model: str, scheme: str | None, input_shape: str | None, widths: str | None, seed: int,
           seeds: int | None, steps: int, optimizer: str, lr: float | None, blocks: str | None,
           max_growth: float | None, min_shrink: float | None, max_branch_ratio: float | None,
           timeout: float | None, json_path: str | None, html_path: str | None, no_progress: bool = False) -> None:
    """``--model`` (a report, or a check with bounds) and ``--model --widths`` (the coordinate check)."""
    from initspec.errors import InputError
    from initspec.spec.fans import parse_shape

    to_err = json_path == "-"
    if scheme is not None or input_shape is None:
        raise InputError("--model takes no SCHEME and needs --input-shape (e.g. --input-shape 8,3,32,32)")
    shape = parse_shape(input_shape)
    for name, v in (("--max-growth", max_growth), ("--min-shrink", min_shrink),
                    ("--max-branch-ratio", max_branch_ratio)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise InputError(f"{name} must be a finite number > 0, got {v!r}")
    if widths is not None:
        from initspec.propagate.html_model import width_page
        from initspec.propagate.width import DEFAULT_SEEDS, coord_check, parse_family
        from initspec.propagate.width import render as render_width

        if max_growth is not None or min_shrink is not None or max_branch_ratio is not None or blocks is not None:
            raise InputError("--widths checks the exponent of each layer's scale: --max-growth, --min-shrink, "
                             "--blocks and --max-branch-ratio go with a single --model run")
        from initspec.reports.progress import progress_bar

        family = parse_family(widths)
        try:
            with progress_bar("propagate --widths", unit="models", enabled=not no_progress) as progress:
                result = coord_check(model, shape, family, steps=steps,
                                     seeds=DEFAULT_SEEDS if seeds is None else seeds, optimizer=optimizer, lr=lr,
                                     timeout=timeout, progress=progress)
        except _model_error() as e:
            _error(str(e), to_err)
        click.echo(render_width(result), err=to_err)
        if json_path:
            _write_json(json_path, result)
        if html_path:
            _write_html(html_path, width_page, result)
        sys.exit(0 if result["verdict"]["ok"] else 1)
    if steps or lr is not None or seeds is not None:
        raise InputError("--steps, --lr and --seeds go with --widths (the coordinate check)")
    from initspec.propagate.html_model import model_page
    from initspec.propagate.model import check_growth, model_stats
    from initspec.propagate.model import render as render_model

    try:
        result = model_stats(model, shape, seed, timeout=timeout, blocks=blocks, max_branch_ratio=max_branch_ratio)
    except _model_error() as e:  # the model's own code failed: a failed run, not bad input
        _error(str(e), to_err)
    click.echo(render_model(result), err=to_err)
    bad = check_growth(result, max_growth, min_shrink)
    for line in bad:
        click.echo(f"FAIL: {line}", err=to_err)
    if json_path:
        _write_json(json_path, result)
    if html_path:
        _write_html(html_path, model_page, result)
    sys.exit(1 if bad else 0)
