"""`gateway demo`: two nodes on loopback and a full request-answer cycle."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from gateway.demo import demo as run_demo


@click.command()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the two homes here (DIR/kz, DIR/by); default: a temporary folder.")
@click.option("--requests", default=3, show_default=True, type=click.IntRange(1, 100000))
def demo(home: Path | None, requests: int) -> None:
    """Create two nodes, exchange trust, run N request-answer cycles, verify ledgers."""
    # The first control delivery races the peer's start and is retried: not worth a line.
    logging.basicConfig(level=logging.ERROR)
    summary = run_demo(home, requests, lambda line: click.echo(f"demo: {line}"))
    click.echo(
        f"demo: done — {summary['requests']} request(s) answered and acknowledged in "
        f"{summary['seconds']:.2f}s; first case is {summary['first_case_state']}; ledgers "
        f"verified (KZ {summary['kz_ledger_entries']} entries, BY "
        f"{summary['by_ledger_entries']} entries)")


COMMANDS = [demo]
