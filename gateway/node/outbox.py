"""Store-and-forward to the peer: the durable outbox and its worker.

Everything the peer must get sits in a table first: envelopes in ``outbox``, and our own
signatory lists and directory versions not yet delivered (A9.3, A9.4, A2.2). The worker
sends control documents first (the peer needs our lists to check our envelopes), then
envelopes in batches, oldest first. Within a case, order holds: an envelope is sent
only when every earlier envelope of its case was delivered or refused, and the peer
takes a batch in order. A request waits while its authority's signatory list has not
been delivered to the peer (A9.3: nothing is forwarded before the list).

A peer that cannot be reached or answers 5xx is retried with exponential backoff and
full jitter (``retry_base`` doubling up to ``retry_cap``); the schedule lives in the
``next_attempt`` column, so it survives restarts. A signed 4xx refusal of one envelope
is final: it is recorded (``rejected`` event with the peer's code), never retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import random
import sqlite3
from typing import TYPE_CHECKING, Any

from gateway.errors import CODED_ERRORS
from gateway.node import store
from gateway.node.agreement import record_termination
from gateway.node.answers import AnswerError, SignedAnswer
from gateway.node.peer import ItemResult, PeerRefused, PeerUnavailable, PeerWorker
from gateway.node.trust import export_directory_file
from gateway.receipt import verify_receipt
from gateway.rules.deadlines import answer_due
from ledger.entry import Event
from ledger.store import Appender

if TYPE_CHECKING:
    from gateway.node.service import Node

log = logging.getLogger("gateway.node")
BATCH_BYTES = 8 * 1024 * 1024


def backoff(attempts: int, base: float, cap: float) -> float:
    """Full jitter (AWS architecture blog, 'Exponential Backoff And Jitter')."""
    return random.uniform(0, min(cap, base * 2 ** min(attempts, 30)))



def pick_batch(rows: list[sqlite3.Row], now: float, limit: int,
               blocked_cases: set[bytes], max_bytes: int = BATCH_BYTES) -> list[sqlite3.Row]:
    """Due rows in outbox order, skipping every case with an earlier row not yet due.

    A batch holds at most ``max_bytes`` of envelopes (one larger envelope goes alone):
    the peer refuses a request body over its own envelope limit.
    """
    picked: list[sqlite3.Row] = []
    size = 0
    for row in rows:
        if row["case_id"] in blocked_cases:
            continue
        if row["next_attempt"] > now:
            blocked_cases.add(row["case_id"])
            continue
        if picked and size + row["size"] > max_bytes:
            break
        picked.append(row)
        size += row["size"]
        if len(picked) >= limit:
            break
    return picked


def until_first_due(rows: list[sqlite3.Row], now: float, waiting: set[bytes]) -> float:
    """Nothing could be sent: seconds until the first row of some case comes due. A
    case's later rows wait for its first whatever their own time, so they do not count
    (counting them woke the worker every 50 ms while a first row was in backoff)."""
    first: dict[bytes, float] = {}
    for row in rows:
        if row["case_id"] not in waiting:
            first.setdefault(row["case_id"], row["next_attempt"])
    return max(0.05, min(first.values()) - now) if first else 5.0


class OutboxWorker(PeerWorker):
    name = "outbox"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.wakeup = node.outbox_wakeup
        self._control_failures = 0
        # Our control documents are made by operator commands: before the node starts,
        # or through its admin socket, which bumps node.control_generation. Once all
        # were found delivered, none is looked for until the generation moves.
        self._control_checked: int | None = None
        # A9.3: once an authority's list reached the peer it stays delivered.
        self._lists_delivered: set[str] = set()
        # Rows of a batch the peer refused as too large: each is sent by itself.
        self._alone: set[int] = set()

    async def step(self) -> float:
        node = self.node
        if node.trust.peer is None:
            return 5.0  # no peer directory yet: nothing can be sent
        generation = node.control_generation
        pending_control = generation != self._control_checked and await self._send_control()
        if not pending_control:
            self._control_checked = generation
        if pending_control:
            # Control documents go first (N10): retry them with backoff, send nothing else.
            self._control_failures += 1
            return backoff(self._control_failures, node.config.retry_base,
                           node.config.retry_cap)
        self._control_failures = 0
        rows = self._listing()
        if 0 < len(rows) < node.config.outbox_batch // 4 and node.config.outbox_linger > 0:
            # A few envelopes only, and the operator chose to wait: let concurrent
            # submissions join them, so that one peer request carries several (N11).
            # Off by default: batches already form while the previous request is in
            # flight, and at 500 envelopes/s a 5 ms wait raised the p99 latency.
            await asyncio.sleep(node.config.outbox_linger)
            rows = self._listing()
        if not rows:
            return 30.0
        now = node.clock().timestamp()
        waiting = self._cases_waiting_for_setup(rows)
        batch = pick_batch(rows, now, node.config.outbox_batch, set(waiting),
                           min(BATCH_BYTES, node.config.max_envelope_bytes))
        if not batch:
            return until_first_due(rows, now, waiting)
        alone = next((i for i, r in enumerate(batch) if r["seq"] in self._alone), None)
        if alone is not None:
            batch = batch[:alone] or batch[:1]  # it goes by itself, after those before it
        try:
            results = await (await self.peer()).send_envelopes(self._sealed(batch))
        except PeerRefused as e:
            if e.code != "request.too_large":
                await self._retry_later(batch, e.code)  # e.g. our new certificate not yet
            elif len(batch) == 1:                       # pinned there: it may pass later
                # Over the peer's own envelope limit: final for this envelope (N14).
                self._alone.discard(batch[0]["seq"])
                await self._record_results(batch, [ItemResult(None, e.code, e.answer)])
            else:
                # Over the peer's limit for one request: each goes alone, so the one
                # that is too large is refused by itself and the others pass.
                self._alone.update(r["seq"] for r in batch)
            return 0.0
        except (PeerUnavailable, AnswerError) as e:
            # A whole-request failure (unreachable, 5xx, an unverifiable answer) says
            # nothing final about any one envelope: retry with backoff.
            await self._retry_later(batch, e.code)
            return 0.0
        self._alone.difference_update(r["seq"] for r in batch)
        await self._record_results(batch, results)
        return 0.0

    def _listing(self) -> list[sqlite3.Row]:
        """What waits, oldest first, without the sealed bytes (``_sealed`` fetches those
        for the batch only)."""
        return self.node.reader.all(
            "SELECT o.seq, o.envelope_id, o.case_id, o.attempts, o.next_attempt, o.case_from, "
            "o.case_to, e.kind, e.from_authority, e.size, e.hash FROM outbox o JOIN envelopes "
            "e ON e.id = o.envelope_id WHERE o.sent_at IS NULL AND o.rejected IS NULL "
            "ORDER BY o.seq LIMIT ?", self.node.config.outbox_batch * 4)

    def _sealed(self, batch: list[sqlite3.Row]) -> list[bytes]:
        """The sealed bytes of the picked envelopes only (the listing left them out)."""
        ids = [bytes(r["envelope_id"]) for r in batch]
        rows = self.node.reader.all(
            f"SELECT id, sealed FROM envelopes WHERE id IN ({','.join('?' * len(ids))})", *ids)
        by_id = {bytes(r["id"]): bytes(r["sealed"]) for r in rows}
        return [by_id[i] for i in ids]

    def _cases_waiting_for_setup(self, rows: list[sqlite3.Row]) -> set[bytes]:
        """A9.3: requests of an authority whose list the peer has not got yet wait."""
        waiting: set[bytes] = set()
        for row in rows:
            authority = row["from_authority"]
            if authority not in self._lists_delivered:
                if self.node.reader.one("SELECT 1 FROM signatory_lists WHERE authority = ? "
                                        "AND sent_at IS NOT NULL", authority) is None:
                    waiting.add(row["case_id"])
                    continue
                self._lists_delivered.add(authority)
        return waiting

    async def _retry_later(self, batch: list[sqlite3.Row], code: str) -> None:
        node = self.node
        now = node.clock().timestamp()
        updates = [(backoff(r["attempts"], node.config.retry_base, node.config.retry_cap) + now,
                    code, r["seq"]) for r in batch]

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.executemany("UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, "
                           "last_error = ? WHERE seq = ?", updates)

        await node.ledger.transact_async(unit)
        node.metrics.count("gateway_peer_failures_total", "Failed peer deliveries", code=code)

    async def _record_results(self, batch: list[sqlite3.Row], results: list[Any]) -> None:
        node = self.node
        peer_key = node.trust.peer_directory.node.node_key
        now = node.clock()
        outcomes: list[tuple[sqlite3.Row, bytes | None, Any, str | None]] = []
        for row, result in zip(batch, results, strict=True):
            if result.receipt is None:
                outcomes.append((row, None, None, result.code))
                continue
            try:
                receipt = verify_receipt(result.receipt, peer_key, type="relay",
                                         subject_hash=bytes(row["hash"]))
            except CODED_ERRORS as e:
                # A receipt we cannot check is no receipt: retry, and raise an alarm.
                log.error("peer receipt refused: %s", getattr(e, "code", "error"))
                await self._retry_later([row], getattr(e, "code", "receipt.invalid"))
                continue
            outcomes.append((row, result.receipt, receipt, None))

        # The peer's signed answer behind this batch's refusals (one answer per request).
        refusal = next((r.answer for r in results if r.answer is not None), None)

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            sent_at = store.iso(now)
            sent: list[tuple[str, bytes, int]] = []
            deadlines: list[tuple[str, str, bytes]] = []
            answer_id = None if refusal is None else store_peer_answer(db, refusal)  # N14
            for row, raw, receipt, code in outcomes:
                base = Event(type="forwarded" if raw else "rejected", time=now,
                             envelope_id=bytes(row["envelope_id"]), case_id=bytes(row["case_id"]),
                             from_authority=row["from_authority"],
                             envelope_hash=bytes(row["hash"]),
                             details=(("kind", row["kind"]),
                                      ("peer_index", receipt.ledger_index) if raw else
                                      ("code", code or "peer.refused")))
                appender.append(base)
                if raw:
                    sent.append((sent_at, raw, row["seq"]))
                    if row["kind"] == "termination_notice":
                        record_termination(db, appender, received_at=receipt.time,
                                           receiving_party=node.trust.peer_directory.party,
                                           envelope_id=bytes(row["envelope_id"]))
                    if row["kind"] == "request":
                        # A10.3 runs from the day the requested node received it.
                        due = answer_due(receipt.time, node.trust.peer_directory.party)
                        deadlines.append((store.iso(receipt.time), store.iso(due),
                                          bytes(row["case_id"])))
                else:
                    db.execute("UPDATE outbox SET rejected = ?, peer_answer = ? WHERE seq = ?",
                               (code or "peer.refused", answer_id, row["seq"]))
                    undo_case_step(db, appender, row, now)
            db.executemany("UPDATE outbox SET sent_at = ?, peer_receipt = ?, last_error = NULL "
                           "WHERE seq = ?", sent)
            db.executemany("UPDATE cases SET received_on = ?, due = ? WHERE case_id = ? AND "
                           "received_on IS NULL", deadlines)

        if outcomes:
            await node.ledger.transact_async(unit)
            if any(row["kind"] == "termination_notice" for row, *_ in outcomes):
                node.refresh_agreement()
        for _row, raw, _receipt, code in outcomes:
            node.metrics.count("gateway_relayed_total", "Envelopes relayed to the peer",
                               outcome="receipt" if raw else (code or "peer.refused"))

    async def _send_control(self) -> bool:
        """Deliver our directory versions and signatory lists the peer lacks.

        True while some are left undelivered (the peer could not be reached).
        """
        node = self.node
        directories = node.reader.all(
            "SELECT party, version, der, tls_certificate FROM directories WHERE party = ? AND "
            "sent_at IS NULL ORDER BY version", node.party)
        lists = node.reader.all(
            "SELECT authority, version, der FROM signatory_lists WHERE party = ? AND "
            "sent_at IS NULL ORDER BY version", node.party)
        # (Version 1 of our directory travels out of band, by `gateway directory export`,
        # and is stored as sent.)
        work = [("directory", r, export_directory_file(r["der"], r["tls_certificate"]))
                for r in directories]
        work += [("signatory_list", r, bytes(r["der"])) for r in lists]
        for kind, row, document in work:
            try:
                raw = await (await self.peer()).send_control(kind, document)
                receipt = verify_receipt(raw, node.trust.peer_directory.node.node_key,
                                         type="control",
                                         subject_hash=hashlib.sha256(row["der"]).digest())
            except CODED_ERRORS as e:
                log.warning("control document not delivered: %s", getattr(e, "code", "error"))
                return True
            await record_control_delivered(node, kind, row, raw, receipt.ledger_index)
        return False


def store_peer_answer(db: sqlite3.Connection, answer: SignedAnswer) -> int:
    """Keep a signed peer answer whole; its row id."""
    cursor = db.execute(
        "INSERT INTO peer_answers (method, path, request_sha256, status, body, signature) "
        "VALUES (?, ?, ?, ?, ?, ?)", (answer.method, answer.path_qs, answer.request_sha256,
                                      answer.status, answer.body, answer.signature))
    return int(cursor.lastrowid or 0)


def undo_case_step(db: sqlite3.Connection, appender: Appender, row: sqlite3.Row,
                   now: dt.datetime) -> None:
    """The peer refused for good an envelope that moved our copy of its case: move it
    back, so both sides keep one state (e.g. our withdrawal crossed their answer and
    each refused the other's). A case opened by a refused request stays as it is: it
    never reached the peer, and its A10.3 deadline never started."""
    before, after = row["case_from"], row["case_to"]
    if not after or before in (None, "none"):
        return
    before = _before_refused_run(db, row["seq"], bytes(row["case_id"]), before)
    moved = db.execute("UPDATE cases SET state = ?, updated_at = ? WHERE case_id = ? AND "
                       "state = ?", (before, store.iso(now), bytes(row["case_id"]), after))
    if moved.rowcount:
        appender.append(Event(
            type="case_state_changed", time=now, envelope_id=bytes(row["envelope_id"]),
            case_id=bytes(row["case_id"]), from_authority=row["from_authority"],
            details=(("from", after), ("kind", row["kind"]), ("reason", "peer_refused"),
                     ("to", before))))


def _before_refused_run(db: sqlite3.Connection, seq: int, case_id: bytes, before: str) -> str:
    """The state before a run of our own moves of this case that the peer all refused,
    ending with the one at ``seq``, each made on top of the one before it (a
    postponement, then an answer, both queued while the link was down). The peer took
    none of them, so the case goes back to where the first one started: undoing only the
    last would leave a state (postponed) the peer never saw."""
    earlier = db.execute(
        "SELECT case_from, case_to, rejected FROM outbox WHERE case_id = ? AND seq < ? "
        "ORDER BY seq DESC", (case_id, seq))
    for row in earlier:
        if not row["case_to"]:
            continue  # moved nothing (a delay notice, an acknowledgement): no link
        if row["rejected"] is None or row["case_to"] != before \
                or row["case_from"] in (None, "none"):
            break  # relayed (the peer has it), or not the move ours was built on
        before = row["case_from"]
    return str(before)


async def record_control_delivered(node: Node, kind: str, row: sqlite3.Row, raw: bytes,
                                   peer_index: int) -> None:
    now = node.clock()
    document_hash = hashlib.sha256(row["der"]).digest()

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        if kind == "signatory_list":
            appender.append(Event(
                type="signatory_list_sent", time=now, from_authority=row["authority"],
                envelope_hash=document_hash,
                details=(("authority", row["authority"].lower()), ("peer_index", peer_index),
                         ("version", row["version"]))))
            db.execute("UPDATE signatory_lists SET sent_at = ?, peer_receipt = ? WHERE "
                       "authority = ? AND version = ?",
                       (store.iso(now), raw, row["authority"], row["version"]))
            store.clear_alarm(db, f"setup.overdue:{row['authority'].lower()}", store.iso(now))
        else:
            appender.append(Event(
                type="directory_changed", time=now, envelope_hash=document_hash,
                details=(("delivered_to_peer", "true"), ("peer_index", peer_index),
                         ("version", row["version"]))))
            db.execute("UPDATE directories SET sent_at = ?, peer_receipt = ? WHERE "
                       "party = ? AND version = ?",
                       (store.iso(now), raw, node.party, row["version"]))

    await node.ledger.transact_async(unit)
