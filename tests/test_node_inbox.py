"""The inbox on a real node: long-polls are bounded and woken only by their own
authority's envelopes (docs/node.md N5a); a repeated acknowledgement answers with the
first one's ledger entry."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import tls
from gateway.admin import admin_session
from gateway.config import ConfigError, config_from_dict
from gateway.demo import REQUEST_BODY
from gateway.home import Home
from gateway.node import store
from tests.nodes import PASSPHRASE, Running, client, eventually, homes, serving


async def scrape(home: Home, running: Running, authority: str) -> dict[str, float]:
    """The node's /metrics samples, keyed by name and labels as the text has them."""
    profile = home.clients_dir / authority
    context = tls.client_context(home.tls_certificate.read_bytes(),
                                 certificate=profile / "tls.pem", key=profile / "tls.key",
                                 passphrase=PASSPHRASE)
    url = f"https://{running.addresses['agency_listen']}/metrics"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s, \
            s.get(url) as r:
        text = await r.text()
    samples = (line.rsplit(" ", 1) for line in text.splitlines()
               if line and not line.startswith("#"))
    return {name: float(value) for name, value in samples}


def parked(samples: dict[str, float]) -> float:
    return samples.get("gateway_inbox_waiters", -1.0)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["envelope_id"] for item in page["items"]]


def with_kz_mlsp(tmp_path: Path) -> tuple[Home, Home]:
    """The test homes, with a second KZ authority that BY knows of."""
    kz, by = homes(tmp_path)
    with admin_session(kz, PASSPHRASE) as session:
        session.enroll("KZ-MLSP", kz.clients_dir / "KZ-MLSP",
                       signatory_name_cyrillic="Сидоров Семён",
                       signatory_name_latin="Sidorov Semen")
        exported = session.export_directory()
    with admin_session(by, PASSPHRASE) as session:
        session.import_directory(exported)
    return kz, by


async def test_long_polls_over_the_per_authority_bound_are_answered_at_once(
        tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    assert by.config().inbox_waiters_per_authority == 8
    async with serving(kz, by) as (_, by_node), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        polls = [asyncio.create_task(by_mvd.inbox(wait=60)) for _ in range(8)]

        async def all_parked() -> bool:
            return parked(await scrape(by, by_node, "BY-MVD")) == 8

        await eventually(all_parked, what="eight long-polls parked")
        # The ninth is not parked: it gets what there is now, an empty page.
        assert await by_mvd.inbox(wait=60) == {"items": [], "next": 0}
        samples = await scrape(by, by_node, "BY-MVD")
        assert parked(samples) == 8
        assert samples['gateway_inbox_waits_declined_total{authority="BY-MVD"}'] == 1
        # The parked ones still get the next envelope as soon as it comes.
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        pages = await asyncio.gather(*polls)
        assert [ids(page) for page in pages] == [[sent["envelope_id"]]] * 8
        assert parked(await scrape(by, by_node, "BY-MVD")) == 0


async def test_an_envelope_wakes_only_its_own_authoritys_long_polls(tmp_path: Path) -> None:
    kz, by = with_kz_mlsp(tmp_path)
    async with serving(kz, by) as (kz_node, _), client(kz, "KZ-MVD") as kz_mvd, \
            client(kz, "KZ-MLSP") as kz_mlsp, client(by, "BY-MVD") as by_mvd:
        mvd_poll = asyncio.create_task(kz_mvd.inbox(wait=60))
        mlsp_poll = asyncio.create_task(kz_mlsp.inbox(wait=60))

        async def both_parked() -> bool:
            return parked(await scrape(kz, kz_node, "KZ-MVD")) == 2

        await eventually(both_parked, what="two long-polls parked")
        to_mvd = await by_mvd.send(to="KZ-MVD", kind="request", body=REQUEST_BODY)
        assert ids(await mvd_poll) == [to_mvd["envelope_id"]]
        samples = await scrape(kz, kz_node, "KZ-MVD")
        assert samples['gateway_inbox_wakeups_total{authority="KZ-MVD"}'] == 1
        assert 'gateway_inbox_wakeups_total{authority="KZ-MLSP"}' not in samples
        assert parked(samples) == 1 and not mlsp_poll.done()
        to_mlsp = await by_mvd.send(to="KZ-MLSP", kind="request", body=REQUEST_BODY)
        assert ids(await mlsp_poll) == [to_mlsp["envelope_id"]]


async def test_long_polls_over_the_total_bound_are_answered_at_once(tmp_path: Path) -> None:
    kz, by = with_kz_mlsp(tmp_path)
    kz.config_path.write_text(kz.config_path.read_text().replace(
        "inbox_waiters_total = 256", "inbox_waiters_total = 2"))
    assert kz.config().inbox_waiters_total == 2
    async with serving(kz, by) as (kz_node, _), client(kz, "KZ-MVD") as kz_mvd, \
            client(kz, "KZ-MLSP") as kz_mlsp, client(by, "BY-MVD") as by_mvd:
        polls = [asyncio.create_task(c.inbox(wait=60)) for c in (kz_mvd, kz_mlsp)]

        async def both_parked() -> bool:
            return parked(await scrape(kz, kz_node, "KZ-MVD")) == 2

        await eventually(both_parked, what="two long-polls parked")
        # KZ-MVD has one of its eight, but the node has none of its two left.
        assert await kz_mvd.inbox(wait=60) == {"items": [], "next": 0}
        samples = await scrape(kz, kz_node, "KZ-MVD")
        assert samples['gateway_inbox_waits_declined_total{authority="KZ-MVD"}'] == 1
        for to in ("KZ-MVD", "KZ-MLSP"):
            await by_mvd.send(to=to, kind="request", body=REQUEST_BODY)
        assert [len(page["items"]) for page in await asyncio.gather(*polls)] == [1, 1]


async def test_a_repeated_ack_names_the_first_acknowledgements_entry(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        assert ids(await by_mvd.inbox(wait=60)) == [sent["envelope_id"]]
        first = await by_mvd.ack(sent["envelope_id"])
        assert type(first["ledger_index"]) is int
        assert await by_mvd.ack(sent["envelope_id"]) == first


def test_an_older_home_gets_the_acked_index_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, envelope_id "
                   "BLOB NOT NULL UNIQUE, authority TEXT NOT NULL, delivered_at TEXT, "
                   "acked_at TEXT)")
        db.execute("INSERT INTO inbox (envelope_id, authority) VALUES (x'00', 'BY-MVD')")
    store.create_schema(path)
    store.create_schema(path)  # and again: nothing more to add
    row = store.Reader(path).one("SELECT * FROM inbox")
    assert row is not None and row["acked_index"] is None and row["authority"] == "BY-MVD"


@pytest.mark.parametrize("value", [-1, 1.5, "8", True])
def test_the_waiter_bounds_are_whole_numbers(value: object) -> None:
    with pytest.raises(ConfigError):
        config_from_dict({"party": "KZ", "inbox_waiters_per_authority": value})
