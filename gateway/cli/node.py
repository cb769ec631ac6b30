"""`gateway init|serve|status|queue|setup|deadlines|cases`: running and watching a node."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import click

from gateway.admin import init_node
from gateway.cli.common import echo_json, echo_table, home_of, home_option, json_option, passphrase
from gateway.config import AGREEMENT_IN_FORCE, ConfigError, NodeConfig
from gateway.node import report
from gateway.node.server import serve as serve_node


@click.command()
@home_option
@click.option("--party", required=True, type=click.Choice(["KZ", "BY"]))
@click.option("--listen", default="127.0.0.1:8443", show_default=True,
              help="HOST:PORT of the peer API.")
@click.option("--agency-listen", default="127.0.0.1:8444", show_default=True,
              help="HOST:PORT of the agency API.")
@click.option("--public-url", default="", help="How the peer reaches our peer API "
              "(default https://LISTEN).")
@click.option("--entry-into-force", type=click.DateTime(["%Y-%m-%d"]),
              default=AGREEMENT_IN_FORCE.isoformat(), show_default=True,
              help="A17/A9.3: the agreement's entry into force (the 45 days count from it).")
def init(home: Path, party: str, listen: str, agency_listen: str, public_url: str,
         entry_into_force: dt.datetime) -> None:
    """Create a node home: config, keys, TLS certificate, database, directory v1."""
    try:
        config = NodeConfig(party=party, listen=listen, agency_listen=agency_listen,
                            public_url=public_url, entry_into_force=entry_into_force.date())
    except ConfigError as e:
        raise click.BadParameter(e.message) from None
    created = init_node(home, config, passphrase(confirm=True))
    click.echo(f"created {party} node home at {created.root}")
    click.echo(f"ledger origin: {created.origin()}")


@click.command()
@home_option
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def serve(home: Path, verbose: bool) -> None:
    """Run the node until SIGTERM or SIGINT (graceful stop)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node_home = home_of(home)
    secret = passphrase()

    def started(addresses: dict[str, str]) -> None:
        click.echo(f"serving: agency {addresses.get('agency_listen')}, "
                   f"peer {addresses.get('peer_listen', 'not started (no peer directory)')}",
                   err=True)

    asyncio.run(serve_node(node_home, secret, started=started))


@click.command()
@home_option
@json_option
@click.option("--no-probe", is_flag=True, help="Do not try to reach the peer.")
def status(home: Path, as_json: bool, no_probe: bool) -> None:
    """Listen addresses, peer, queue, checkpoints, setup exchange, alarms."""
    result = report.status(home_of(home), probe_peer=not no_probe)
    if as_json:
        echo_json(result)
        return
    peer = result["peer"] or {}
    state = "running" if result["running"] else "stopped"
    click.echo(f"party          {result['party']}  ({state})")
    click.echo(f"agency_listen  {result['agency_listen']}")
    click.echo(f"peer_listen    {result['peer_listen']}")
    click.echo(f"peer           {peer.get('party', 'none imported')} {peer.get('url', '')} "
               f"reachable: {peer.get('reachable', '-')}")
    click.echo(f"queue depth    {result['queue_depth']}")
    ledger = result["ledger"]
    click.echo(f"ledger         {ledger['size']} entries; newest checkpoint "
               f"{ledger['checkpoint_size']} with {ledger['cosignatures']} cosignature(s)")
    peer_cp = result["peer_checkpoint"]
    click.echo("peer ledger    " + (f"cosigned up to {peer_cp['size']} at {peer_cp['cosigned_at']}"
                                    if peer_cp else "nothing cosigned yet"))
    if result["agreement_ends_at"]:
        click.echo(f"agreement      ends at {result['agreement_ends_at']} (A17)")
    for alarm in result["alarms"]:
        click.echo(f"ALARM          {alarm['code']} since {alarm['raised']}")
    click.echo("setup exchange (A9.3):")
    echo_table(result["setup"], ["side", "authority", "versions", "sent", "received",
                                 "acknowledged", "due", "status"])


@click.command()
@home_option
@json_option
def queue(home: Path, as_json: bool) -> None:
    """What waits for the peer, and why."""
    rows = report.queue(home_of(home))
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["item", "seq", "kind", "from", "to", "since", "attempts", "why"],
                   empty="queue empty")


@click.command()
@home_option
@json_option
def setup(home: Path, as_json: bool) -> None:
    """A9.3: the signatory-list exchange, per authority and side, against its due date."""
    rows = report.setup_state(home_of(home))
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["side", "authority", "versions", "sent", "received", "acknowledged",
                          "due", "status"])


@click.command()
@home_option
@json_option
def deadlines(home: Path, as_json: bool) -> None:
    """A10.3: open cases, days left, due within 5 days, overdue."""
    rows = report.deadlines(home_of(home))
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["case_id", "state", "requested", "due", "days_left", "due_soon",
                          "overdue", "notices"], empty="no open cases with a deadline")


@click.command()
@home_option
@json_option
def cases(home: Path, as_json: bool) -> None:
    """Every case with its state."""
    rows = report.cases(home_of(home))
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["case_id", "state", "requesting", "requested", "opened_at", "due",
                          "days_left"], empty="no cases")


COMMANDS = [init, serve, status, queue, setup, deadlines, cases]
