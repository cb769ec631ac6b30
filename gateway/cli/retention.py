"""`gateway retention apply`: destroy envelope bodies past their retention (A11.5)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from gateway.admin import admin_session
from gateway.cli.common import echo_json, echo_table, home_of, home_option, passphrase
from gateway.retention import apply_retention


@click.group()
def retention() -> None:
    """Retention and destruction of stored envelopes (A11.5)."""


@retention.command("apply")
@home_option
@click.option("--dry-run", is_flag=True, help="List what would be destroyed; change nothing.")
@click.option("--json", "as_json", is_flag=True)
def retention_apply(home: Path, dry_run: bool, as_json: bool) -> None:
    """Destroy bodies past retention; record one `destroyed` ledger entry each."""
    node_home = home_of(home)
    with admin_session(node_home, passphrase()) as session:
        due = apply_retention(node_home.db_path, session.ledger, session.config,
                              dt.datetime.now(dt.UTC), dry_run=dry_run)
        if not dry_run and due:
            session.record("retention_applied", destroyed=len(due))
    rows = [{"envelope_id": d.envelope_id.hex(), "kind": d.kind, "stored_at": d.stored_at,
             "size": d.size} for d in due]
    if as_json:
        echo_json({"dry_run": dry_run, "destroyed" if not dry_run else "would_destroy": rows})
        return
    verb = "would destroy" if dry_run else "destroyed"
    echo_table(rows, ["envelope_id", "kind", "stored_at", "size"],
               empty="nothing past its retention period")
    click.echo(f"{verb} {len(rows)} envelope(s)")


COMMANDS = [retention]
