"""The ``initspec`` command line: one module per command, registered here.

Exit codes: 0 everything conforms, 1 a nonconformance (or an initializer that errored),
2 a usage or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import sys

import click

from initspec import __version__
from initspec.cli.audit import audit_cmd
from initspec.cli.check import check
from initspec.cli.diff import diff, sample
from initspec.cli.identify import identify_cmd
from initspec.cli.matrix import matrix
from initspec.cli.propagate import propagate_cmd
from initspec.cli.scan import scan_cmd
from initspec.cli.schemes import list_cmd, show
from initspec.errors import InputError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="initspec")
def cli() -> None:
    """Hold neural-network weight initializers to a declarative spec."""


for _command in (list_cmd, show, check, diff, sample, matrix, identify_cmd, audit_cmd, propagate_cmd,
                 scan_cmd):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click in non-standalone mode, every input error as one line and exit 2."""
    import os

    from initspec.frameworks.jax import default_cache_dir

    # the command owns its process: JAX's compilations are kept for the next run, and what a
    # drawer does not compile itself is compiled with most optimizations off (frameworks.jax)
    os.environ.setdefault("INITSPEC_JAX_CACHE", default_cache_dir())
    os.environ.setdefault("INITSPEC_JAX_FAST_COMPILE", "1")
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
