"""Store-and-forward: the peer down, then up; order within a case; backoff."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.demo import ANSWER_BODY, REQUEST_BODY
from gateway.node import store
from gateway.node.answers import SignedAnswer
from gateway.node.outbox import backoff, pick_batch, until_first_due
from tests.nodes import PASSPHRASE, client, eventually, homes, serving


def _rows(*specs: tuple[int, bytes, float, int]) -> list[sqlite3.Row]:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE t (seq, case_id, next_attempt, size)")
    db.executemany("INSERT INTO t VALUES (?,?,?,?)", specs)
    return list(db.execute("SELECT * FROM t ORDER BY seq"))


def test_pick_batch_keeps_case_order() -> None:
    """A case's later envelope never overtakes an earlier one still waiting to retry."""
    rows = _rows((1, b"a", 100.0, 10), (2, b"b", 0.0, 10), (3, b"a", 0.0, 10),
                 (4, b"c", 0.0, 10), (5, b"b", 0.0, 10))
    picked = pick_batch(rows, now=50.0, limit=10, blocked_cases=set())
    assert [r["seq"] for r in picked] == [2, 4, 5]
    assert [r["seq"] for r in pick_batch(rows, now=50.0, limit=2, blocked_cases=set())] == [2, 4]
    assert [r["seq"] for r in pick_batch(rows, now=50.0, limit=10, blocked_cases={b"c"})] \
        == [2, 5]
    # Never more bytes than the peer takes in one request (one big envelope goes alone).
    assert [r["seq"] for r in pick_batch(rows, 50.0, 10, set(), max_bytes=25)] == [2, 4]
    assert [r["seq"] for r in pick_batch(rows, 50.0, 10, set(), max_bytes=5)] == [2]


def test_the_worker_sleeps_until_a_first_row_comes_due() -> None:
    """A later row already due waits for its case's first one, and so does the worker:
    no waking every 50 ms while the first is in backoff (N11, N13)."""
    rows = _rows((1, b"a", 300.0, 10), (2, b"a", 0.0, 10), (3, b"b", 120.0, 10))
    assert until_first_due(rows, now=50.0, waiting=set()) == 70.0
    assert until_first_due(rows, now=50.0, waiting={b"b"}) == 250.0
    assert until_first_due(rows, now=50.0, waiting={b"a", b"b"}) == 5.0
    assert until_first_due(rows, now=119.99, waiting=set()) == 0.05


def test_backoff_is_bounded_full_jitter() -> None:
    for attempts in range(0, 40):
        for _ in range(20):
            delay = backoff(attempts, 0.5, 300.0)
            assert 0 <= delay <= min(300.0, 0.5 * 2 ** attempts)


async def test_peer_down_then_up_delivers_everything_in_order_A9_3(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """With the peer down, requests wait (first for the A9.3 list exchange, then for the
    peer); when it comes back everything arrives once, in order."""
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    kz, by = homes(tmp_path)
    sent = []
    async with serving(kz, exchanged=False):
        async with client(kz, "KZ-MVD") as kz_mvd:
            for _ in range(5):
                sent.append(await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY))
            status = await kz_mvd.status(sent[0]["envelope_id"])
            assert status["state"] == "queued"
        result = CliRunner().invoke(cli, ["queue", "--home", str(kz.root), "--json"])
        assert result.exit_code == 0, result.output
        assert "signatory list not yet delivered to the peer (A9.3)" in result.output

    async with serving(kz, by), client(by, "BY-MVD") as by_mvd, client(kz, "KZ-MVD") as kz_mvd:
        await eventually(lambda: len(store.Reader(by.db_path).all("SELECT 1 FROM inbox"))
                         == 5, what="5 envelopes in the BY inbox")
        page = await by_mvd.inbox()
        assert [i["envelope_id"] for i in page["items"]] == \
                [s["envelope_id"] for s in sent]
        # An answer in the same case goes back, after its request.
        sealed, _ = await by_mvd.open(sent[0]["envelope_id"])
        await by_mvd.send(to="KZ-MVD", kind="answer", body=ANSWER_BODY, in_reply_to=sealed)
        page = await kz_mvd.inbox(wait=10)
        assert [i["kind"] for i in page["items"]] == ["answer"]
        for item in sent:
            assert (await kz_mvd.status(item["envelope_id"]))["state"] == "relayed"

    result = CliRunner().invoke(cli, ["queue", "--home", str(kz.root)])
    assert result.exit_code == 0 and "queue empty" in result.output


async def test_relayed_request_starts_the_A10_3_deadline_on_both_sides(tmp_path: Path) -> None:
    """A10.3: the deadline counts from the day the requested node received the request;
    the requesting side takes that day from the signed relay receipt."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, client(by, "BY-MVD") as by_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        await eventually(lambda: (store.Reader(kz.db_path).one(
            "SELECT due FROM cases WHERE case_id = ?",
            bytes.fromhex(sent["case_id"])) or {"due": None})["due"],
            what="the requesting side's due date")
        ours = await kz_mvd.case(sent["case_id"])
        theirs = await by_mvd.case(sent["case_id"])
    assert ours["due"] == theirs["due"]
    due = dt.datetime.fromisoformat(theirs["due"])
    received = dt.datetime.fromisoformat(theirs["received_on"])
    assert dt.timedelta(days=30) < due - received <= dt.timedelta(days=31)
    assert theirs["days_left"] == 30 and not theirs["overdue"]


async def test_an_envelope_over_the_peers_limit_is_refused_alone_and_the_rest_pass(
        tmp_path: Path) -> None:
    """The BY node takes smaller envelopes than the KZ node: a batch holding one it
    cannot take is refused whole (413, before it is read); the outbox then sends each
    alone, so the large one gets its own final refusal (N14) and the others go through."""
    kz, by = homes(tmp_path)
    config = by.root / "node.toml"
    config.write_text(config.read_text().replace(
        "max_envelope_bytes = 67108864", "max_envelope_bytes = 1000"))  # + 64 KiB a request
    async with serving(kz, by):
        pass  # the signatory lists are exchanged
    large = dict(REQUEST_BODY, other_information="Сведения о лице. " * 3500)  # ~100 KB
    async with serving(kz, exchanged=False), client(kz, "KZ-MVD") as kz_mvd:
        refused = await kz_mvd.send(to="BY-MVD", kind="request", body=large)
        passed = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)

    def outcome(envelope_id: str) -> tuple[object, object]:
        row = store.Reader(kz.db_path).one(
            "SELECT sent_at, rejected FROM outbox WHERE envelope_id = ?",
            bytes.fromhex(envelope_id))
        return row["sent_at"], row["rejected"]

    async with serving(kz, by, exchanged=False):
        await eventually(lambda: outcome(refused["envelope_id"])[1] is not None
                         and outcome(passed["envelope_id"])[0] is not None,
                         what="one refused, one relayed")
        async with client(kz, "KZ-MVD") as kz_mvd:
            status = await kz_mvd.status(refused["envelope_id"])
    assert outcome(refused["envelope_id"]) == (None, "request.too_large")
    assert status["state"] == "rejected" and status["rejected"] == "request.too_large"
    # The node keeps the peer's signed refusal; it verifies with the BY node key.
    row = store.Reader(kz.db_path).one(
        "SELECT a.* FROM outbox o JOIN peer_answers a ON a.id = o.peer_answer "
        "WHERE o.envelope_id = ?", bytes.fromhex(refused["envelope_id"]))
    assert row is not None and row["status"] == 413
    SignedAnswer(row["method"], row["path"], bytes(row["request_sha256"]), row["status"],
                 bytes(row["body"]), row["signature"]).verify(by.public_key("node"))
