"""``initspec audit TARGET``: every parameter of a model identified, held to a spec or a lockfile."""

from __future__ import annotations

import json
import sys

import click

from initspec.audit.run import DEFAULT_ALPHA, DEFAULT_MAX_SEEDS
from initspec.cli.common import no_progress_option
from initspec.engine.guard import DEFAULT_TIMEOUT

HELP = """Audit every parameter of a model built by TARGET.

\b
TARGET is one of
  MODULE:ATTR[(literal args)]   a torch nn.Module, Keras model/layer, Flax module class or factory
  hf:MODEL_TYPE[(overrides)]    transformers, from AutoConfig.for_model(MODEL_TYPE, **overrides),
                                downloads nothing; heads: gpt2 -> GPT2LMHeadModel, bert ->
                                BertForMaskedLM, llama -> LlamaForCausalLM, t5 ->
                                T5ForConditionalGeneration, any other type -> its AutoModel base
  timm:NAME[(kwargs)]           timm.create_model(NAME, pretrained=False) when timm imports

Evidence: by default the trace (what the model's code applies to every parameter, recorded with
nothing allocated: the exact law and the line that set it) and the draws (the model built under
seeds and its values tested); --trace uses the trace alone, --draws the draws alone.  The draws are
skipped, with a line saying so, when one instance's parameters exceed --max-memory.

Exit 0 conforms, 1 a failed group, a severe finding or a model that raised, exited or hung,
2 bad input.  The model runs in a child process (--no-isolate: in this one); a report written
to - (standard output) is alone there, the table then goes to stderr.

\b
--world-size N audits the model initialized across N ranks (torch.distributed; FSDP2, tensor
parallel, your own parallelize function) or N devices (JAX: jit with out_shardings); see
docs/guides/sharded.md.
"""


def _size(text: str | None) -> int | None:
    """``--max-memory``: bytes, or a number with K, M, G, T (powers of 1024; a trailing B or iB is allowed)."""
    if text is None:
        return None
    import re

    from initspec.errors import InputError

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not m:
        raise InputError(f"--max-memory {text!r}: expected a size such as 12G, 512M or a number of bytes")
    n = float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper())
    if n <= 0:
        raise InputError(f"--max-memory {text!r}: must be positive")
    return int(n)


def _shape(text: str | None):
    if text is None:
        return None
    from initspec.spec.fans import parse_shape

    return parse_shape(text)


@click.command("audit", help=HELP)
@click.argument("target")
@click.option("--spec", "spec_path", type=str, default=None,
              help="a TOML spec: [vars], ordered [params] globs, [tied]")
@click.option("--reference", "reference", default=None,
              help="hold the model to a reference implementation's declared init, per role: NAME[:PORT] "
                   "(gpt2, bert, t5, vit, ...; PORT hf, timm, keras_hub, torchtitan, nanogpt)")
@click.option("--var", "var", multiple=True, help="a number a reference's laws use, NAME=VALUE (repeatable)")
@click.option("--write-spec", "write_spec", type=str, default=None,
              help="write what was identified as a spec (a lockfile)")
@click.option("--strict", is_flag=True, help="parameters no [params] glob matches fail the audit")
@click.option("--seeds", type=int, default=None, help="instances to build (default: what the smallest group needs)")
@click.option("--max-seeds", type=int, default=DEFAULT_MAX_SEEDS, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="the first seed")
@click.option("--alpha", type=float, default=DEFAULT_ALPHA, show_default=True, help="family-wise false-alarm rate")
@click.option("--layout", default=None, help="layout for parameters whose owner is not recognized: torch | tf | jax")
@click.option("--convention", default=None, help="jax: TARGET is f(key) -> pytree of arrays")
@click.option("--input-shape", default=None, help="dummy input shape for a Flax linen module, e.g. 1,28,28,1")
@click.option("--json", "json_path", default=None, help="write the audit as JSON here")
@click.option("--junit", default=None, help="write a JUnit XML report here (one case per checked group)")
@click.option("--markdown", default=None, help="write a Markdown report here")
@click.option("--html", default=None, help="write a self-contained HTML report here")
@click.option("--trace", "trace_only", is_flag=True,
              help="audit by the trace alone: the exact law and line of every parameter, nothing allocated")
@click.option("--draws", "draws_only", is_flag=True, help="audit by the draws alone (no trace)")
@click.option("--max-memory", default=None,
              help="skip the draws when one instance's parameters take more (e.g. 12G; default half the RAM)")
@click.option("-v", "--verbose", is_flag=True, help="list every group's members, and the earlier writes the trace saw")
@click.option("--world-size", type=int, default=None,
              help="audit the model initialized across N ranks (torch) or N devices (JAX)")
@click.option("--parallelize", default=None,
              help="fsdp (default) | tp | tp+fsdp | MODULE:ATTR, a function (model, mesh) -> model")
@click.option("--mesh", default=None, help="the device mesh: N, or DPxTP for 2-D (default: --world-size)")
@click.option("--init", "init_method", default=None,
              help="the model's init method called after to_empty (default: init_weights, else reset_parameters)")
@click.option("--init-before-shard", is_flag=True, help="build and initialize whole on every rank, then shard")
@click.option("--compare-unsharded", is_flag=True,
              help="also initialize the model unsharded in this process: the laws must agree")
@click.option("--rank-timeout", type=float, default=None,
              help="seconds a rank may go without progress before the run ends "
                   "[default: 300; starting a rank may take 120]")
@no_progress_option
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="seconds one call into the model's code may take (build, walk, release; 0: no limit)")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="run the model in a child process, so nothing it leaves behind decides the exit code")
def audit_cmd(target: str, spec_path: str | None, reference: str | None, var: tuple[str, ...],
              write_spec: str | None, strict: bool, seeds: int | None,
              max_seeds: int, seed: int, alpha: float, layout: str | None, convention: str | None,
              input_shape: str | None, json_path: str | None, junit: str | None, markdown: str | None,
              html: str | None, trace_only: bool, draws_only: bool, max_memory: str | None, verbose: bool,
              world_size: int | None, parallelize: str | None, mesh: str | None,
              init_method: str | None, init_before_shard: bool, compare_unsharded: bool,
              rank_timeout: float | None, no_progress: bool = False, timeout: float = DEFAULT_TIMEOUT,
              isolate: bool = True) -> None:
    from initspec.audit.lockfile import check_not_the_spec, write_lockfile
    from initspec.audit.spec import load_spec
    from initspec.audit.table import format_report
    from initspec.audit.targets import check_syntax
    from initspec.engine.guard import UserCodeError
    from initspec.engine.isolate import AfterResultError
    from initspec.errors import InputError, clip, one_line
    from initspec.reports.output import STDOUT, check_outputs, write_text
    from initspec.spec import validate

    if convention not in (None, "jax"):
        raise InputError(f"--convention {clip(convention)!r}: the audit knows only jax (f(key) -> pytree)")
    validate.probability(alpha, "--alpha")
    validate.number(timeout, "--timeout", low=0.0, describe="non-negative")
    if seeds is not None:
        validate.integer(seeds, "--seeds", low=1, high=validate.MAX_SEEDS)
    validate.integer(max_seeds, "--max-seeds", low=1, high=validate.MAX_SEEDS)
    validate.seed(seed, "--seed", count=seeds or max_seeds)
    if trace_only and draws_only:
        raise InputError("--trace and --draws exclude each other (the default uses both)")
    budget = _size(max_memory)
    outputs = {"--json": json_path, "--junit": junit, "--markdown": markdown, "--html": html,
               "--write-spec": write_spec}
    check_outputs(outputs)
    check_not_the_spec(write_spec, spec_path)
    check_syntax(target)  # a malformed target is refused here, before a child process starts
    # a report written to standard output keeps it to itself: the table goes to stderr
    to_stdout = STDOUT in outputs.values()
    if spec_path and reference:
        raise InputError("--spec and --reference are two specs: give one")
    spec = load_spec(spec_path) if spec_path is not None else None
    ref = None
    if reference:
        ref, port, spec = _reference(reference, var, target)
    if html:
        from initspec.reports import require_matplotlib

        require_matplotlib()
    sharded = {"parallelize": parallelize, "mesh": mesh, "init": init_method, "init_before_shard": init_before_shard,
               "compare_unsharded": compare_unsharded, "rank_timeout": rank_timeout}
    if world_size is None and any(v for v in sharded.values()):
        used = next(k for k, v in sharded.items() if v).replace("_", "-")
        raise InputError(f"--{used} applies to a sharded audit: add --world-size N")
    try:
        if world_size is not None:  # ranks run in their own processes (initspec.audit.shards)
            from initspec.audit.shards import DEFAULT_RANK_TIMEOUT, audit_world

            if trace_only:
                raise InputError("--trace audits nothing allocated: it does not run ranks (drop --world-size)")
            sharded["rank_timeout"] = rank_timeout if rank_timeout is not None else DEFAULT_RANK_TIMEOUT
            rep = audit_world(target, world_size=world_size, spec=spec, seeds=seeds, max_seeds=max_seeds, seed=seed,
                              alpha=alpha, layout=layout, convention=convention, input_shape=_shape(input_shape),
                              strict=strict, **sharded)
        else:
            from initspec.reports.progress import progress_bar

            kwargs = {"spec": spec, "seeds": seeds, "max_seeds": max_seeds, "seed": seed, "alpha": alpha,
                      "layout": layout, "convention": convention, "input_shape": _shape(input_shape), "strict": strict,
                      "trace": True if trace_only else False if draws_only else None, "max_memory": budget}
            with progress_bar(f"audit {target}"[:40], unit="instances", enabled=not no_progress) as progress:
                rep = _run(target, kwargs, timeout or None, isolate, progress)
    except AfterResultError as e:  # the report exists; what the model did after it fails the audit
        rep = e.value
        rep.error = str(e)
    except UserCodeError as e:  # the model's code raised, exited or hung: a failed audit, one line
        click.echo(f"ERROR  {one_line(str(e))}", err=to_stdout)
        if json_path:
            write_text(json_path, json.dumps({"target": target, "error": str(e), "results": [], "findings": [],
                                              "summary": {"errors": 1}}, indent=2) + "\n")
        sys.exit(1)
    rep.options = _options(trace_only, draws_only, layout, convention, input_shape, world_size, sharded)
    click.echo(format_report(rep, verbose), err=to_stdout)
    if ref is not None:
        from initspec.references import format_departures

        click.echo("\n".join(format_departures(rep, ref, port, spec)), err=to_stdout)
    if json_path:
        doc = rep.to_dict()
        if ref is not None:
            from initspec.references import to_dict as reference_dict

            doc["reference"] = reference_dict(rep, ref, port, spec)
        write_text(json_path, json.dumps(doc, indent=2, default=str) + "\n")
    if junit or markdown or html:
        from initspec.reports import write_reports

        write_reports(rep.as_report(), junit=junit, markdown=markdown, html=html)
    if write_spec:
        how = "trace" if rep.sources == ["trace"] else f"seeds {rep.seeds[0]}..{rep.seeds[-1]}"
        n = write_lockfile(write_spec, rep, f"initspec audit {target} ({how})")
        click.echo(f"wrote {write_spec}: {n} lines", err=to_stdout)
    sys.exit(rep.exit_code)


def _options(trace_only: bool, draws_only: bool, layout: str | None, convention: str | None,
             input_shape: str | None, world_size: int | None, sharded: dict) -> list[str]:
    """The options a reproducing command line needs beyond the seeds and the spec (the evidence used,
    the layout, a sharded world)."""
    out = ["--trace"] if trace_only else ["--draws"] if draws_only else []
    for flag, value in (("--layout", layout), ("--convention", convention), ("--input-shape", input_shape)):
        if value:
            out += [flag, str(value)]
    if world_size is not None:
        out += ["--world-size", str(world_size)]
        for key, flag in (("parallelize", "--parallelize"), ("mesh", "--mesh"), ("init", "--init")):
            if sharded.get(key):
                out += [flag, str(sharded[key])]
        if sharded.get("init_before_shard"):
            out.append("--init-before-shard")
    return out


def _run(target: str, kwargs: dict, timeout: float | None, isolate: bool, progress=None):
    """The audit, in a child process (the default) or in this one, under the per-call time limit;
    ``progress`` (the bar's update, in this process) hears of each instance either way."""
    from initspec.errors import clip

    if isolate:
        from initspec.engine.isolate import run_isolated

        return run_isolated(_audit_child, target, kwargs, what=f"auditing {clip(target)}", timeout=timeout,
                            progress=progress)
    from initspec.engine.guard import time_limit

    with time_limit(timeout, "--timeout"):
        return _audit_child(target, kwargs, progress=progress)


def _audit_child(target: str, kwargs: dict, progress=None):
    from initspec.audit.run import audit

    return audit(target, **kwargs, progress=progress)


def _reference(text: str, var: tuple[str, ...], target: str):
    """--reference NAME[:PORT] and --var NAME=VALUE as the audit spec of that port."""
    from initspec import references
    from initspec.errors import InputError

    name, _, port = text.partition(":")
    ref = references.load(name)
    port = references.port_for(ref, target, port or None)
    values = references.model_vars(target, ref.port_vars.get(port, {}))
    for item in var:
        key, sep, value = item.partition("=")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InputError(f"--var {item!r}: expected NAME=NUMBER, e.g. --var n_layer=12")
    return ref, port, references.to_spec(ref, port, values)
