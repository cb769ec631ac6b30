"""`gateway envelope ...`: generate and show key files."""

from __future__ import annotations

import click


@click.group()
def envelope() -> None:
    """Seal, open and inspect envelopes."""


COMMANDS = [envelope]
