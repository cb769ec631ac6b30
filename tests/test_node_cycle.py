"""Two nodes, real mutual TLS on 127.0.0.1: the full request-answer cycle (issue 4)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from gateway.demo import ANSWER_BODY, REQUEST_BODY
from gateway.node import store
from gateway.receipt import verify_receipt
from ledger.store import Ledger
from tests.nodes import client, eventually, homes, serving


def ledger_hashes(home) -> set[bytes]:
    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        return {e.event.envelope_hash for e in ledger.entries(0, ledger.size)
                if e.event.envelope_hash is not None}
    finally:
        ledger.close()


async def test_full_cycle_request_answer_with_receipts_A8_1_A10_3(tmp_path: Path) -> None:
    """A8.1 request, A10.3 answer: both sides keep signed evidence of every step."""
    kz, by = homes(tmp_path)
    async with serving(kz, by):
        async with client(kz, "KZ-MVD") as kz_mvd, client(by, "BY-MVD") as by_mvd:
            sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
            # The submission receipt is signed by the KZ node and names its ledger entry.
            submission = verify_receipt(base64.b64decode(sent["receipt"]),
                                        kz.public_key("node"), type="submission")
            assert submission.subject_hash.hex() == sent["envelope_hash"]
            assert submission.ledger_index == sent["ledger_index"]

            page = await by_mvd.inbox(wait=10)
            assert [i["envelope_id"] for i in page["items"]] == [sent["envelope_id"]]
            sealed, opened = await by_mvd.open(sent["envelope_id"])
            assert opened.body == REQUEST_BODY
            assert hashlib.sha256(sealed).hexdigest() == sent["envelope_hash"]
            await by_mvd.ack(sent["envelope_id"])

            # The relay receipt: BY's signed word that it received exactly these bytes.
            status = await kz_mvd.status(sent["envelope_id"])
            assert status["state"] == "relayed"
            relay = verify_receipt(base64.b64decode(status["peer_receipt"]),
                                   by.public_key("node"), type="relay",
                                   subject_hash=bytes.fromhex(sent["envelope_hash"]))
            assert relay.party == "BY"

            answer = await by_mvd.send(to="KZ-MVD", kind="answer", body=ANSWER_BODY,
                                       in_reply_to=sealed)
            assert answer["case_id"] == sent["case_id"]
            page = await kz_mvd.inbox(wait=10)
            assert [i["envelope_id"] for i in page["items"]] == [answer["envelope_id"]]
            _sealed, opened_answer = await kz_mvd.open(answer["envelope_id"])
            assert opened_answer.body == ANSWER_BODY
            await kz_mvd.ack(answer["envelope_id"])

            for c in (kz_mvd, by_mvd):
                case = await c.case(sent["case_id"])
                assert case["state"] == "answered"
                assert [e["kind"] for e in case["envelopes"]] == ["request", "answer"]

        # Both ledgers hold both envelopes (by hash), and never their content.
        wanted = {bytes.fromhex(sent["envelope_hash"]), bytes.fromhex(answer["envelope_hash"])}
        await eventually(lambda: wanted <= ledger_hashes(kz) and wanted <= ledger_hashes(by),
                         what="both ledgers to record both envelopes")

    inbox = store.Reader(by.db_path).all("SELECT acked_at FROM inbox")
    assert len(inbox) == 1 and inbox[0]["acked_at"] is not None


def step_entries(home) -> list[tuple[str, dict[str, str | int]]]:
    """(type, details) of every submitted / received_from_peer entry, in order."""
    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        return [(e.event.type, dict(e.event.details)) for e in ledger.entries(0, ledger.size)
                if e.event.type in ("submitted", "received_from_peer")]
    finally:
        ledger.close()


async def test_each_step_entry_records_its_case_move_A8_1(tmp_path: Path) -> None:
    """A8.1: every case transition is in the ledger, in the entry of the envelope that
    made it, on both sides (``case_from`` / ``case_to`` details)."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        page = await by_mvd.inbox(wait=10)
        sealed, _ = await by_mvd.open(page["items"][0]["envelope_id"])
        await by_mvd.send(to="KZ-MVD", kind="answer", body=ANSWER_BODY, in_reply_to=sealed)
        await kz_mvd.inbox(wait=10)

    request = {"case_from": "none", "case_to": "received", "kind": "request"}
    answer = {"case_from": "received", "case_to": "answered", "kind": "answer"}
    assert step_entries(kz) == [("submitted", request), ("received_from_peer", answer)]
    assert step_entries(by) == [("received_from_peer", request), ("submitted", answer)]
