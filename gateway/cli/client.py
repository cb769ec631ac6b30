"""`gateway client --profile DIR send|inbox|open|ack|case`: an agency system's view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.common import echo_json, echo_table, passphrase
from gateway.client import AgencyClient, ClientError, Profile

T = TypeVar("T")


def _run(profile: Profile, work: Callable[[AgencyClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AgencyClient(profile, passphrase()) as client:
            return await work(client)

    return asyncio.run(main())


@click.group()
@click.option("--profile", "profile_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The profile written by `gateway agency enroll`.")
@click.pass_context
def client(ctx: click.Context, profile_dir: Path) -> None:
    """Act as an authority's system: send, read the inbox, open, acknowledge."""
    ctx.obj = Profile.load(profile_dir)


@client.command()
@click.option("--to", "to", required=True, help="Recipient authority, e.g. BY-MVD.")
@click.option("--kind", required=True)
@click.option("--payload", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The body as JSON (docs/examples/<kind>.json).")
@click.option("--in-reply-to", default=None, help="Envelope id (hex) this answers.")
@click.pass_obj
def send(profile: Profile, to: str, kind: str, payload: Path, in_reply_to: str | None) -> None:
    """Seal and send; prints the submission receipt, checked against the node key."""
    try:
        body = json.loads(payload.read_text(encoding="utf-8"))
    except ValueError:
        raise ClientError(f"{payload.name} is not valid JSON", code="body.not_json") from None

    async def work(c: AgencyClient) -> dict[str, Any]:
        answered = await c.fetch(in_reply_to) if in_reply_to else None
        return await c.send(to=to, kind=kind, body=body, in_reply_to=answered)

    echo_json(_run(profile, work))


@client.command()
@click.option("--after", default=0, show_default=True, help="Cursor: last seq seen.")
@click.option("--wait", default=0, show_default=True, help="Long-poll up to N seconds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def inbox(profile: Profile, after: int, wait: int, as_json: bool) -> None:
    """Envelopes waiting for this authority."""
    result = _run(profile, lambda c: c.inbox(after=after, wait=wait))
    if as_json:
        echo_json(result)
    else:
        echo_table(result["items"], ["seq", "envelope_id", "kind", "from", "received_at",
                                     "acked_at"], empty="inbox empty")


@client.command("open")
@click.argument("envelope_id")
@click.pass_obj
def open_(profile: Profile, envelope_id: str) -> None:
    """Fetch, verify and decrypt an envelope; prints its body as JSON."""
    _sealed, opened = _run(profile, lambda c: c.open(envelope_id))
    echo_json({"header": opened.header.to_json(), "body": opened.body})


@client.command()
@click.argument("envelope_id")
@click.pass_obj
def ack(profile: Profile, envelope_id: str) -> None:
    """Acknowledge an envelope (delivered-to-agency evidence in the ledger)."""
    echo_json(_run(profile, lambda c: c.ack(envelope_id)))


@client.command()
@click.argument("case_id")
@click.pass_obj
def case(profile: Profile, case_id: str) -> None:
    """A case: state, A10.3 deadline, envelopes."""
    echo_json(_run(profile, lambda c: c.case(case_id)))


@client.command()
@click.argument("envelope_id")
@click.pass_obj
def status(profile: Profile, envelope_id: str) -> None:
    """Where an envelope stands: queued, relayed (with the peer's receipt), delivered."""
    echo_json(_run(profile, lambda c: c.status(envelope_id)))


COMMANDS = [client]
