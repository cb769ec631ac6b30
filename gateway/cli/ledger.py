"""`gateway ledger ...`: generate and show key files."""

from __future__ import annotations

import click


@click.group()
def ledger() -> None:
    """Ledger checkpoints, proofs, export and offline verification."""


COMMANDS = [ledger]
