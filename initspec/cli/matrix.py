"""``initspec matrix``: which entry of each framework claims each canonical scheme."""

from __future__ import annotations

import click


@click.command()
@click.argument("frameworks", nargs=-1)
@click.option("--markdown", "md_path", type=click.Path(), default=None, help="also write the table as Markdown")
def matrix(frameworks: tuple[str, ...], md_path: str | None) -> None:
    """Which entry of each framework claims each canonical scheme (all manifests by default)."""
    from rich.console import Console
    from rich.table import Table

    from initspec._data import data_dir
    from initspec.engine.compare import markdown_table
    from initspec.engine.compare import matrix as build_matrix
    from initspec.reports.output import check_outputs, write_text

    check_outputs({"--markdown": md_path})
    names = list(dict.fromkeys(frameworks)) or sorted(p.stem for p in data_dir("adapters").glob("*.toml"))
    header, rows = build_matrix(names)
    table = Table(title="initializers by canonical scheme (from the manifests' claims)")
    for col in header:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(stderr=md_path == "-").print(table)  # a report on stdout stands alone there
    if md_path is not None:
        write_text(md_path, markdown_table(header, rows))
