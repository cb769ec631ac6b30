"""`gateway keys ...`: generate and show key files."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Generate and show key files."""


COMMANDS = [keys]
