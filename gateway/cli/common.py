"""Pieces every command module shares: the --home option, the passphrase, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.home import Home
from keys import keyfile

F = TypeVar("F", bound=Callable[..., Any])


def home_option(f: F) -> F:
    return click.option(
        "--home", "home", required=True, envvar="GATEWAY_HOME",
        type=click.Path(file_okay=False, path_type=Path),
        help="The node's home directory (or GATEWAY_HOME).")(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table.")(f)


def passphrase(confirm: bool = False) -> bytes:
    return keyfile.passphrase(confirm=confirm)


def home_of(path: Path) -> Home:
    home = Home(path)
    home.check()
    return home


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))


def echo_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
               empty: str = "(nothing)") -> None:
    """A plain aligned table: readable in a terminal, stable for grep."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
