"""``initspec scan LIBRARY``: every architecture of a model library, built small and audited."""

from __future__ import annotations

import json
import sys

import click

from initspec.cli.common import no_progress_option
from initspec.scan.run import DEFAULT_MAX_PARAMS, DEFAULT_TIMEOUT

HELP = """Audit every architecture LIBRARY offers, each built small, in worker processes.

\b
LIBRARY is one of
  hf          transformers: every model type with a model class, its default head
  timm        timm: one model per architecture family (module, class, layer types)
  keras_hub   keras-hub: every Backbone class, from constructor arguments

One line per architecture: OK, FINDING (a severe finding), CHANGED (against --specs),
NOBUILD (could not be built, with the reason). Nothing is downloaded.
Exit 0 when every architecture is ok (or new), 1 otherwise, 2 on bad input.
"""


@click.command("scan", help=HELP)
@click.argument("library")
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="worker processes")
@click.option("--only", default=None, help="comma-separated globs over architecture names, e.g. 'llama*,gpt2'")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="seconds per architecture; an overrun kills its worker and is 'could not build'")
@click.option("--max-params", type=int, default=DEFAULT_MAX_PARAMS, show_default=True,
              help="most parameters a shrunk architecture may have")
@click.option("--write-specs", default=None, help="write one lockfile per architecture into this folder")
@click.option("--specs", default=None, help="check each architecture against the lockfiles in this folder")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-seeds", type=int, default=8, show_default=True, help="most instances per architecture")
@click.option("--alpha", type=float, default=1e-4, show_default=True, help="false-alarm rate per architecture")
@click.option("--json", "json_path", default=None, help="write the scan as JSON here")
@click.option("--junit", default=None, help="write a JUnit XML report here (one case per architecture)")
@click.option("--markdown", default=None, help="write a Markdown report here")
@no_progress_option
@click.option("-v", "--verbose", is_flag=True, help="list every change of a changed architecture")
def scan_cmd(library: str, jobs: int, only: str | None, timeout: float, max_params: int, write_specs: str | None,
             specs: str | None, seed: int, max_seeds: int, alpha: float, json_path: str | None, junit: str | None,
             markdown: str | None, no_progress: bool, verbose: bool) -> None:
    from initspec.errors import InputError
    from initspec.reports.output import check_outputs, write_text
    from initspec.reports.progress import progress_bar
    from initspec.scan.run import scan
    from initspec.spec import validate

    if jobs < 1:
        raise InputError(f"-j {jobs}: give at least 1 worker")
    if timeout <= 0:
        raise InputError(f"--timeout {timeout:g}: give a positive number of seconds")
    if max_seeds < 1:
        raise InputError(f"--max-seeds {max_seeds}: give at least 1")
    validate.probability(alpha, "--alpha")
    check_outputs({"--json": json_path, "--junit": junit, "--markdown": markdown})
    from initspec.scan.report import ScanReport

    def stream(row: dict) -> None:  # without a bar, each architecture's line as it finishes
        click.echo("\n".join(ScanReport(library, "", [row]).lines(verbose, summary=False, width=24)))

    with progress_bar(f"scan {library}", enabled=not no_progress) as update:
        bar = update
        rep = scan(library, only=only, workers=jobs, timeout=timeout, max_params=max_params, seed=seed,
                   max_seeds=max_seeds, alpha=alpha, write_specs=write_specs, specs=specs, progress=update,
                   on_row=None if update is not None else stream)
    for n in rep.notes:
        click.echo(f"  {n}")
    if bar is not None:
        click.echo("\n".join(rep.lines(verbose)))
    else:  # the rows were streamed; the lockfiles of removed architectures were found after them
        removed = ScanReport(library, rep.version, [r for r in rep.rows if r["status"] == "removed"])
        click.echo("\n".join([*removed.lines(verbose, summary=False, width=24), rep.lines(verbose)[-1]]))
    if json_path:
        write_text(json_path, json.dumps(rep.to_dict(), indent=2, default=str) + "\n")
    if markdown:
        write_text(markdown, rep.to_markdown())
    if junit:
        from initspec.reports import write_reports

        write_reports(rep.as_report(), junit=junit)
    sys.exit(rep.exit_code)
