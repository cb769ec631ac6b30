"""``gateway demo``: two nodes on loopback and full request-answer cycles.

Everything a real deployment does, in one process and a few seconds: two node homes,
the out-of-band directory exchange, agency enrolment, the A9.3 signatory-list exchange
over the peer API, N requests KZ-MVD -> BY-MVD each answered BY-MVD -> KZ-MVD, every
envelope opened and acknowledged by its recipient system, checkpoints cross-cosigned,
and both ledgers verified offline at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from gateway.admin import admin_session, init_node
from gateway.client import AgencyClient, Profile
from gateway.config import NodeConfig
from gateway.errors import GatewayError
from gateway.home import Home
from gateway.node import store
from gateway.node.server import serve
from gateway.node.witness import cosignature_count

DEMO_PASSPHRASE = "demo passphrase: not for production"

# A synthetic person: the demo carries no real personal data.
REQUEST_BODY: dict[str, Any] = {
    "requesting_authority": "Министерство внутренних дел Республики Казахстан",
    "requested_authority": "Министерство внутренних дел Республики Беларусь",
    "subject": "Проверка сведений о временном пребывании",
    "purpose": "Рассмотрение заявления о выдаче разрешения на временное проживание",
    "grounds": "Статья 5 Соглашения, пункт 1",
    "direction": "citizens_on_territory",
    "persons": [{
        "category": "temporary_stay",
        "name": {"cyrillic": {"surname": "Тестова", "first_name": "Анна"},
                 "latin": {"surname": "Testova", "first_name": "Anna"}},
        "sex": "female",
        "date_of_birth": "1990-01-01",
        "citizenship": ["BLR"],
    }],
}
ANSWER_BODY: dict[str, Any] = {
    "results": "Сведения о временном пребывании подтверждены",
    "purpose": "Рассмотрение заявления о выдаче разрешения на временное проживание",
    "use_limited_to_purpose": True,
    "onward_transfer": "prior_consent_required",
}


class DemoError(GatewayError):
    code = "demo.failed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_homes(root: Path, passphrase: bytes, *, interval: float = 0.5,
               entry_into_force: dt.date | None = None, **kdf: int) -> tuple[Home, Home]:
    """Two homes, directories exchanged, one enrolled authority on each side.

    A new deployment counts the A9.3 setup period from its own start (today by default).
    """
    homes = {}
    in_force = entry_into_force or dt.datetime.now(dt.UTC).date()
    for party in ("KZ", "BY"):
        peer_port, agency_port = free_port(), free_port()
        config = NodeConfig(party=party, listen=f"127.0.0.1:{peer_port}",
                            agency_listen=f"127.0.0.1:{agency_port}",
                            checkpoint_interval=interval, witness_interval=interval,
                            retry_base=0.05, retry_cap=1.0, entry_into_force=in_force)
        homes[party] = init_node(root / party.lower(), config, passphrase, **kdf)
    # Both enrolments in one stretch: each session waits for its changes to be in force
    # (the next whole second), and the second wait is then already over.
    with admin_session(homes["KZ"], passphrase) as kz, \
            admin_session(homes["BY"], passphrase) as by:
        for session, authority in ((kz, "KZ-MVD"), (by, "BY-MVD")):
            session.enroll(authority, session.home.clients_dir / authority,
                           signatory_name_cyrillic="Иванов Иван",
                           signatory_name_latin="Ivanov Ivan", role="head")
    exported = {}
    for party, home in homes.items():
        with admin_session(home, passphrase) as session:
            exported[party] = session.export_directory()
    for party, peer in (("KZ", "BY"), ("BY", "KZ")):
        with admin_session(homes[party], passphrase) as session:
            session.import_directory(exported[peer])
    return homes["KZ"], homes["BY"]


async def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def lists_delivered(home: Home) -> bool:
    reader = store.Reader(home.db_path)
    row = reader.one("SELECT count(*) FROM signatory_lists WHERE party = ? AND "
                     "sent_at IS NULL", home.config().party)
    received = reader.one("SELECT count(*) FROM signatory_lists WHERE party != ?",
                          home.config().party)
    return bool(row and row[0] == 0 and received and received[0] > 0)


def cross_cosigned(home: Home, peer: Home) -> bool:
    """Our newest checkpoint covers the whole ledger and carries the peer's cosignature."""
    from ledger.store import Ledger

    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        latest = ledger.latest_checkpoint()
        return bool(latest and latest.size == ledger.size and cosignature_count(latest))
    finally:
        ledger.close()


async def run_cycles(kz: Home, by: Home, requests: int, passphrase: bytes,
                     say: Callable[[str], None]) -> dict[str, Any]:
    kz_profile = Profile.load(kz.clients_dir / "KZ-MVD")
    by_profile = Profile.load(by.clients_dir / "BY-MVD")
    started = time.monotonic()
    async with AgencyClient(kz_profile, passphrase) as kz_client, \
            AgencyClient(by_profile, passphrase) as by_client:
        receipts = [await kz_client.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
                    for _ in range(requests)]
        say(f"KZ-MVD sent {len(receipts)} request(s); submission receipts at KZ ledger "
            f"indexes {[r['ledger_index'] for r in receipts][:5]}")
        answered = await answer_all(by_client, requests, say)
        opened = await read_answers(kz_client, requests)
        case = await kz_client.case(receipts[0]["case_id"])
    return {"requests": len(receipts), "answered": answered, "answers_opened": opened,
            "first_case_state": case["state"], "seconds": time.monotonic() - started}


async def incoming(client: AgencyClient, expected: int) -> AsyncIterator[dict[str, Any]]:
    """The next ``expected`` inbox items, long-polling for them."""
    cursor, seen = 0, 0
    while seen < expected:
        page = await client.inbox(after=cursor, wait=10)
        if not page["items"]:
            raise DemoError(f"{client.profile.authority} inbox stayed empty")
        for item in page["items"]:
            yield item
            seen += 1
        cursor = page["next"]


async def answer_all(client: AgencyClient, expected: int, say: Callable[[str], None]) -> int:
    answered = 0
    async for item in incoming(client, expected):
        sealed, opened = await client.open(item["envelope_id"])
        if answered == 0:
            # Counts and categories only: the demo prints no person data either.
            persons = opened.body.get("persons", [])
            categories = ", ".join(sorted({p["category"] for p in persons}))
            say(f"BY-MVD opened a {opened.header.kind} about {len(persons)} person(s) "
                f"({categories}) and answers it")
        await client.ack(item["envelope_id"])
        await client.send(to=opened.header.sender, kind="answer", body=ANSWER_BODY,
                          in_reply_to=sealed)
        answered += 1
    return answered


async def read_answers(client: AgencyClient, expected: int) -> int:
    opened = 0
    async for item in incoming(client, expected):
        await client.open(item["envelope_id"])
        await client.ack(item["envelope_id"])
        opened += 1
    return opened


async def run_demo(root: Path, requests: int, say: Callable[[str], None]) -> dict[str, Any]:
    if not os.environ.get("GATEWAY_PASSPHRASE"):
        os.environ["GATEWAY_PASSPHRASE"] = DEMO_PASSPHRASE
    passphrase = os.environ["GATEWAY_PASSPHRASE"].encode()
    say(f"creating two node homes in {root}")
    kz, by = make_homes(root, passphrase)
    say("directories exchanged; KZ-MVD and BY-MVD enrolled")
    stop = asyncio.Event()
    ready = {"KZ": asyncio.Event(), "BY": asyncio.Event()}
    addresses: dict[str, dict[str, str]] = {}

    def started_for(party: str) -> Callable[[dict[str, str]], None]:
        def started(addr: dict[str, str]) -> None:
            addresses[party] = addr
            ready[party].set()
        return started

    servers = [asyncio.create_task(serve(home, passphrase, started=started_for(party),
                                         stop=stop))
               for party, home in (("KZ", kz), ("BY", by))]
    try:
        async with AsyncExitStack():
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 30)
            for party in ("KZ", "BY"):
                say(f"{party} node up: agency {addresses[party]['agency_listen']}, "
                    f"peer {addresses[party]['peer_listen']}")
            await wait_for("the signatory-list exchange (A9.3)",
                           lambda: lists_delivered(kz) and lists_delivered(by))
            say("signatory lists exchanged over the peer API (A9.3)")
            summary = await run_cycles(kz, by, requests, passphrase, say)
            await wait_for("cross-cosigned checkpoints",
                           lambda: cross_cosigned(kz, by) and cross_cosigned(by, kz))
    finally:
        stop.set()
        await asyncio.gather(*servers, return_exceptions=True)
    from ledger.bundle import verify_file
    from ledger.note import log_verifier, witness_verifier

    for home, peer in ((kz, by), (by, kz)):
        party = home.config().party
        report = verify_file(
            home.db_path, log=log_verifier(home.origin(), home.public_key("node")),
            witnesses=[witness_verifier(peer.origin() + "/witness", peer.public_key("witness"))])
        summary[f"{party.lower()}_ledger_entries"] = report.size
        cosigned = max(report.cosigned.values(), default=0)
        say(f"{party} ledger verified offline: {report.size} entries, {report.checkpoints} "
            f"checkpoints, cosigned by the peer up to size {cosigned}")
    return summary


def demo(home: Path | None, requests: int, say: Callable[[str], None]) -> dict[str, Any]:
    root = home or Path(tempfile.mkdtemp(prefix="kzby-demo-"))
    if home is not None and home.exists() and any(home.iterdir()):
        raise DemoError(f"{home} exists and is not empty", code="demo.home_exists")
    try:
        summary = asyncio.run(run_demo(root, requests, say))
    finally:
        if home is None:
            shutil.rmtree(root, ignore_errors=True)
    summary["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return summary
