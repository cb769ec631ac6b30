"""The node's domain logic: what happens to an envelope at each step.

Handlers (``app.py``) parse HTTP and call these methods; these methods check, then
write one atomic unit of work through ``Ledger.transact_async``: the envelope row, its
queue row, the case change and the ledger entries commit together or not at all, with
their fsync shared among every unit in the same group commit. Only then is anything
acknowledged (a receipt), so a crash loses nothing that was acknowledged.

Checks on the way in, in order (docs/node.md):

1. the envelope itself: ``EnvelopeVerifier`` (format, signature, signatory list in
   force at its created time: A9.3, A9.4);
2. the route: sender and recipient authorities known and in force (A2), the sender is
   the authenticated agency (agency API) or a peer-Party authority (peer API), the
   recipient key is the recipient authority's key, the agreement not terminated (A17);
3. the case: the kind may follow the case's state (``rules.cases``), and a reply names
   an envelope of the case that this node holds, by id and hash;
4. idempotency: the same envelope id with the same bytes gets the same receipt, with
   other bytes ``envelope.conflict``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import sqlite3
import ssl
from collections.abc import Callable
from typing import Any

from nacl.signing import SigningKey

from gateway.config import NodeConfig
from gateway.envelope.check import EnvelopeVerifier
from gateway.envelope.limits import MAX_CLOCK_SKEW
from gateway.envelope.wire import Header
from gateway.errors import CODED_ERRORS, GatewayError
from gateway.home import Home
from gateway.node import store
from gateway.node.agreement import record_termination
from gateway.node.batch import BATCH_OVERHEAD, decode_batch
from gateway.node.metrics import Metrics
from gateway.node.trust import (
    Trust,
    check_certificate_pin,
    export_directory_file,
    load_trust,
    now_utc,
    read_directory_file,
)
from gateway.node.waiters import InboxWaiters
from gateway.node.worker import Worker
from gateway.receipt import make_receipt
from gateway.rules import cases as case_rules
from gateway.rules.deadlines import answer_due
from keys.directory import DirectoryHistory, decode_directory
from keys.errors import KeysError
from keys.keyid import key_id
from keys.signatories import SignatoryRegistry, decode_signatory_list
from ledger.entry import Event
from ledger.errors import LedgerError
from ledger.store import Appender, Ledger

log = logging.getLogger("gateway.node")


class NodeError(GatewayError):
    code = "node.error"


_KIND_EVENTS = {"consent_request": "consent_asked", "consent_decision": "consent_decided"}


def _same_or_conflict(row: sqlite3.Row | None, envelope_hash: bytes
                      ) -> tuple[int, dt.datetime] | None:
    """Idempotency: the same id with the same bytes is the same envelope; its
    (ledger index, time stored), from which its receipt is made again."""
    if row is None:
        return None
    if row["hash"] != envelope_hash:
        raise NodeError("an envelope with this id but other bytes was accepted before",
                        code="envelope.conflict")
    return int(row["ledger_index"]), dt.datetime.fromisoformat(row["stored_at"])


def _check_reply_reference(db: sqlite3.Connection, header: Header) -> None:
    """A reply answers an envelope this node holds, of the same case, with the hash the
    reply names (A10.3: an answer answers that request; every kind that continues a case
    names the envelope it follows). Both directions of a case pass this node, so it
    holds every envelope a true reply can name. One lookup by primary key, inside the
    unit of work, so an envelope committed earlier in the same group counts."""
    row = db.execute("SELECT hash, case_id FROM envelopes WHERE id = ?",
                     (header.in_reply_to,)).fetchone()
    if row is None or row["case_id"] != header.case_id or row["hash"] != header.in_reply_to_hash:
        raise case_rules.CaseError("the reply names no envelope of this case that this node "
                                   "holds with that hash", code="case.bad_reply_reference")


def _inserted(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> bool:
    """Run an INSERT; False when the primary key is taken (the row exists already)."""
    try:
        db.execute(sql, params)
    except sqlite3.IntegrityError as e:
        if e.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
            return False
        raise
    return True


class Node:
    """One running node: its keys, ledger, trust and queues. Made by ``open_node``."""

    def __init__(self, home: Home, config: NodeConfig, node_key: SigningKey,
                 witness_key: SigningKey, tls_passphrase: bytes, ledger: Ledger,
                 clock: Callable[[], dt.datetime] = now_utc) -> None:
        self.home = home
        self.config = config
        self.party = config.party
        self.node_key = node_key
        self.witness_key = witness_key
        self.tls_passphrase = tls_passphrase
        self.ledger = ledger
        self.reader = store.Reader(home.db_path)
        self.clock = clock
        self.metrics = Metrics()
        self.trust: Trust = load_trust(self.reader.db, self.party)
        self.verifier = EnvelopeVerifier(self.trust.signatories)
        self.revoked_certificates = self._load_revoked_certificates()
        self.outbox_wakeup = asyncio.Event()
        self.control_generation = 0
        self.inbox_waiters = InboxWaiters(config.inbox_waiters_per_authority,
                                          config.inbox_waiters_total)
        self._workers: list[Worker] = []
        self.ends_at: dt.datetime | None = None
        # The peer listener's TLS context, set by the server once it listens.
        self.peer_tls_context: ssl.SSLContext | None = None
        self.refresh_agreement()
        self._install_gauges()

    # --- lifecycle --------------------------------------------------------------------

    def reload_trust(self) -> None:
        """Rebuild trust from the tables (after a commit that changed it). A peer TLS
        certificate pinned by a new directory is added to the peer listener's context
        at once (the request guard then refuses the replaced one: app.py)."""
        old_pem = self.trust.peer_tls_pem
        self.trust = load_trust(self.reader.db, self.party)
        self.verifier = EnvelopeVerifier(self.trust.signatories)
        self.revoked_certificates = self._load_revoked_certificates()
        new_pem = self.trust.peer_tls_pem
        if self.peer_tls_context is not None and new_pem is not None and new_pem != old_pem:
            self.peer_tls_context.load_verify_locations(cadata=new_pem.decode("ascii"))

    def _load_revoked_certificates(self) -> frozenset[bytes]:
        """SHA-256 of every agency client certificate revoked (the agency listener's
        deny list, checked on every request)."""
        return frozenset(bytes(r[0]) for r in self.reader.all(
            "SELECT sha256 FROM agency_certificates WHERE revoked_at IS NOT NULL"))

    def control_documents_added(self) -> None:
        """A directory or signatory list version was stored while we run (the admin
        socket): the outbox looks for undelivered ones again, now (A9.4, A2.2)."""
        self.control_generation += 1
        self.outbox_wakeup.set()

    async def start_workers(self) -> None:
        from gateway.node.agreement import AgreementWorker
        from gateway.node.outbox import OutboxWorker
        from gateway.node.witness import CheckpointWorker, WitnessWorker

        self._workers = [OutboxWorker(self), CheckpointWorker(self), WitnessWorker(self),
                         AgreementWorker(self)]
        for worker in self._workers:
            worker.start()

    async def close(self) -> None:
        """Graceful: stop taking new work, let workers finish their step, then close."""
        for worker in self._workers:
            await worker.stop()
        self._workers = []
        await self.ledger.drain()
        self.ledger.close()

    def _install_gauges(self) -> None:
        def outbox_depth() -> float:
            row = self.reader.one("SELECT count(*) FROM outbox WHERE sent_at IS NULL "
                                  "AND rejected IS NULL")
            return float(row[0]) if row else 0.0

        self.metrics.gauge("gateway_outbox_depth", "Envelopes waiting for the peer",
                           outbox_depth)
        self.metrics.gauge("gateway_ledger_size", "Entries in the ledger",
                           lambda: float(self.ledger.size))
        self.metrics.gauge("gateway_inbox_waiters", "Inbox long-polls parked now",
                           lambda: float(self.inbox_waiters.parked()))

    # --- checks -----------------------------------------------------------------------

    def _check_route(self, header: Header, *, incoming: bool) -> None:
        """Step 2: both authorities known and in force when the envelope was created."""
        sender_party, recipient_party = (self.trust.peer_directory.party, self.party) \
            if incoming else (self.party, self.trust.peer_directory.party)
        if header.sender[:2] != sender_party:
            raise NodeError(f"sender {header.sender} is not a {sender_party} "
                            "authority", code="envelope.wrong_sender_party")
        if header.recipient[:2] != recipient_party:
            raise NodeError(f"recipient {header.recipient} is not a {recipient_party} "
                            "authority", code="envelope.unknown_recipient")
        sender_history = self.trust.history(sender_party)
        recipient_history = self.trust.history(recipient_party)
        assert sender_history is not None and recipient_history is not None
        sender_history.authority(header.sender, header.created)
        recipient = recipient_history.authority(header.recipient, header.created)
        if header.recipient_key_id != key_id(recipient.encryption_key):
            raise NodeError("the content key is wrapped for another key than the recipient "
                            "authority's", code="envelope.wrong_recipient_key")
        self._check_not_terminated(header)
        if header.kind == "termination_notice":
            signatory = self.trust.signatories.authorised_key(
                header.sender, header.signatory_key_id, header.created)
            if signatory.role != "head":
                raise NodeError("a termination notice (A17) must be signed by the head of "
                                "the authority", code="agreement.termination_not_head")

    def _check_in_force_now(self, header: Header, now: dt.datetime) -> None:
        """A new envelope enters only if its signatory is authorised now, not only at
        its created time: a revocation (A9.4) takes effect for new submissions at once,
        whatever time the envelope claims. Envelopes accepted before stay valid."""
        try:
            self.trust.signatories.authorised_key(header.sender, header.signatory_key_id,
                                                  now)
        except KeysError as e:
            raise NodeError(f"the signatory is not authorised now ({e.code})",
                            code="envelope.signatory_not_in_force") from None

    def refresh_agreement(self) -> None:
        """Re-read the A17 end date (after a termination notice went either way)."""
        row = self.reader.one("SELECT value FROM agreement WHERE key = 'ends_at'")
        self.ends_at = dt.datetime.fromisoformat(row["value"]) if row else None

    def _check_not_terminated(self, header: Header) -> None:
        """A17: after the end date no new request (or disclosure) is accepted."""
        if self.ends_at is None or header.kind not in case_rules.OPENING_KINDS:
            return
        if self.clock() >= self.ends_at:
            raise NodeError(f"the agreement ended at {self.ends_at.isoformat()} (A17)",
                            code="agreement.terminated")

    def _case_step(self, db: sqlite3.Connection, header: Header, now: dt.datetime, *,
                   received_here: bool) -> tuple[str, str] | None:
        """Step 3: open or advance the case, inside the unit of work; the (from, to)
        states when the state changed. The step's own ledger entry records them
        (``_step_event``): one entry per envelope and side, the case move included."""
        if header.kind in case_rules.CASELESS_KINDS:
            return None
        if header.kind in case_rules.OPENING_KINDS:
            case = case_rules.open_case(header.case_id, header.kind, header.sender,
                                        header.recipient)
            received_on = due = None
            if received_here and header.kind == "request":
                received_on, due = store.iso(now), store.iso(answer_due(now, self.party))
            opened = store.iso(now)
            if not _inserted(db,
                             "INSERT INTO cases (case_id, state, requesting, requested, "
                             "opened_by_kind, opened_at, received_on, due, updated_at) "
                             "VALUES (?,?,?,?,?,?,?,?,?)",
                             (case.case_id, case.state, case.requesting, case.requested,
                              header.kind, opened, received_on, due, opened)):
                raise case_rules.CaseError("a case with this id exists already",
                                           code="case.exists")
            return "none", case.state
        row = db.execute("SELECT * FROM cases WHERE case_id = ?", (header.case_id,)).fetchone()
        if row is None:
            raise case_rules.CaseError("no such case here", code="case.not_found")
        _check_reply_reference(db, header)
        case = case_rules.Case(row["case_id"], row["state"], row["requesting"],
                               row["requested"], row["opened_by_kind"])
        new_state = case_rules.next_state(case, header.kind, header.sender, header.recipient)
        if new_state == case.state:
            return None
        db.execute("UPDATE cases SET state = ?, updated_at = ? WHERE case_id = ?",
                   (new_state, store.iso(now), header.case_id))
        return case.state, new_state

    def _step_event(self, type: str, header: Header, envelope_hash: bytes, now: dt.datetime,
                    moved: tuple[str, str] | None) -> Event:
        """The envelope's entry on this side, with its case move when there was one."""
        if moved is None:
            return self._event(type, header, envelope_hash, now)
        return self._event(type, header, envelope_hash, now,
                           (("case_from", moved[0]), ("case_to", moved[1])))

    def _kind_events(self, appender: Appender, header: Header, envelope_hash: bytes,
                     now: dt.datetime) -> None:
        """A11.2, A11.3: consent asked and decided are events of their own."""
        event_type = _KIND_EVENTS.get(header.kind)
        if event_type is not None:
            appender.append(self._event(event_type, header, envelope_hash, now))

    def _existing(self, envelope_id: bytes, envelope_hash: bytes
                  ) -> tuple[int, dt.datetime] | None:
        """Step 4, before the time-dependent checks: an envelope accepted before gets its
        receipt again even after its list, directory or the agreement itself changed."""
        row = self.reader.one("SELECT hash, ledger_index, stored_at FROM envelopes WHERE id = ?",
                              envelope_id)
        return _same_or_conflict(row, envelope_hash)

    def _claim_envelope(self, db: sqlite3.Connection, index: int, header: Header,
                        envelope_hash: bytes, sealed: bytes, direction: str,
                        now: dt.datetime) -> tuple[int, dt.datetime] | None:
        """Step 4 inside the unit: store the envelope row, naming ``index``, the ledger
        entry the step appends next; or, when its id is taken (a concurrent resubmission
        won), the earlier (index, stored_at), or ``envelope.conflict`` for other bytes."""
        if _inserted(db,
                     "INSERT INTO envelopes (id, hash, kind, from_authority, to_authority, "
                     "case_id, in_reply_to, created, signatory_key_id, direction, stored_at, "
                     "ledger_index, size, sealed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (header.envelope_id, envelope_hash, header.kind, header.sender,
                      header.recipient, header.case_id, header.in_reply_to,
                      store.iso(header.created), header.signatory_key_id, direction,
                      store.iso(now), index, len(sealed), sealed)):
            return None
        row = db.execute("SELECT hash, ledger_index, stored_at FROM envelopes WHERE id = ?",
                         (header.envelope_id,)).fetchone()
        return _same_or_conflict(row, envelope_hash)

    def _event(self, type: str, header: Header, envelope_hash: bytes, now: dt.datetime,
               details: tuple[tuple[str, str | int], ...] = ()) -> Event:
        return Event(type=type, time=now, envelope_id=header.envelope_id,
                     case_id=header.case_id, from_authority=header.sender,
                     to_authority=header.recipient, envelope_hash=envelope_hash,
                     signatory_key_id=header.signatory_key_id,
                     details=tuple(sorted((("kind", header.kind), *details))))

    # --- agency API -------------------------------------------------------------------

    async def submit(self, authority: str, sealed: bytes) -> dict[str, Any]:
        """``POST /v1/envelopes``: check, record, queue; the signed submission receipt."""
        now = self.clock()
        checked = self.verifier.verify(sealed, now)
        header, envelope_hash = checked.header, checked.envelope_hash
        if header.sender != authority:
            raise NodeError(f"this client may send only as {authority}",
                            code="agency.wrong_sender")
        done = self._existing(header.envelope_id, envelope_hash)
        if done is None:
            # Only a fresh envelope enters: its created time decides which signatory
            # list and directory judge it (A9.4, A2.2), so a backdated one could still
            # use a key revoked since. (The peer API takes older ones: they may have
            # waited in our outbox; this node checked them fresh.)
            if now - header.created > MAX_CLOCK_SKEW:
                raise NodeError(f"created more than {MAX_CLOCK_SKEW} before the node's "
                                "clock; seal it again", code="envelope.stale")
            self._check_in_force_now(header, now)
            self._check_route(header, incoming=False)
            done = await self.ledger.transact_async(
                lambda db, appender: self._submit_unit(db, appender, header, envelope_hash,
                                                       sealed, now))
            self.metrics.count("gateway_envelopes_total", "Envelopes accepted",
                               step="submitted", kind=header.kind)
            self.outbox_wakeup.set()
        index, stored_at = done
        # Signed here, not in the unit of work: nothing slow runs while the writer holds
        # the transaction. Ed25519 is deterministic, so a resubmission gets these very
        # bytes again from the stored index and time.
        receipt = make_receipt("submission", self.party, header.envelope_id, envelope_hash,
                               index, stored_at, self.node_key)
        return {
            "envelope_id": header.envelope_id.hex(),
            "envelope_hash": envelope_hash.hex(),
            "ledger_index": index,
            "receipt": base64.b64encode(receipt).decode("ascii"),
        }

    def _submit_unit(self, db: sqlite3.Connection, appender: Appender, header: Header,
                     envelope_hash: bytes, sealed: bytes, now: dt.datetime
                     ) -> tuple[int, dt.datetime]:
        index, stored_at, moved, fresh = self._record_step(db, appender, header, envelope_hash,
                                                           sealed, now, incoming=False)
        if fresh:
            db.execute("INSERT INTO outbox (envelope_id, case_id, case_from, case_to) "
                       "VALUES (?, ?, ?, ?)", (header.envelope_id, header.case_id,
                                               *(moved or (None, None))))
        return index, stored_at

    def _record_step(self, db: sqlite3.Connection, appender: Appender, header: Header,
                     envelope_hash: bytes, sealed: bytes, now: dt.datetime, *, incoming: bool
                     ) -> tuple[int, dt.datetime, tuple[str, str] | None, bool]:
        """What both sides' units share: the envelope row, the case move, the envelope's
        entry and its kind's own events. (index, stored_at, case move, whether this copy
        is new); an earlier copy (a concurrent resubmission won) is returned as it was."""
        index = appender.size
        earlier = self._claim_envelope(db, index, header, envelope_hash, sealed,
                                       "incoming" if incoming else "outgoing", now)
        if earlier is not None:
            return (*earlier, None, False)
        moved = self._case_step(db, header, now, received_here=incoming)
        appended = appender.append(self._step_event(
            "received_from_peer" if incoming else "submitted", header, envelope_hash, now,
            moved))
        assert appended.index == index, "the envelope row names the step's entry"
        self._kind_events(appender, header, envelope_hash, now)
        return index, now, moved, True


    # --- peer API ---------------------------------------------------------------------

    async def receive_batch(self, body: bytes) -> list[dict[str, Any]]:
        """``POST /peer/v1/envelopes``: each envelope checked and recorded, in order."""
        items = decode_batch(body, self.config.max_envelope_bytes + BATCH_OVERHEAD)
        now = self.clock()
        # Tasks start in order and each enqueues its unit before the next one runs, so
        # the units commit in batch order (the sender's outbox order within a case).
        outcomes = await asyncio.gather(*(self._receive_one(sealed, now) for sealed in items))
        woken = self.inbox_waiters.wake(recipient for _, recipient in outcomes if recipient)
        for authority, count in woken.items():
            self.metrics.count("gateway_inbox_wakeups_total",
                               "Parked inbox long-polls woken by a new envelope", count,
                               authority=authority)
        return [answer for answer, _ in outcomes]

    async def _receive_one(self, sealed: bytes, now: dt.datetime
                           ) -> tuple[dict[str, Any], str | None]:
        """The answer for one envelope of a batch, and its recipient authority when it
        was newly stored (its inbox got something)."""
        header = None
        try:
            checked = self.verifier.verify(sealed, now)
            header, envelope_hash = checked.header, checked.envelope_hash
            done = self._existing(header.envelope_id, envelope_hash)
            new_for = header.recipient if done is None else None
            if done is None:
                self._check_route(header, incoming=True)
                done = await self.ledger.transact_async(
                    lambda db, appender: self._receive_unit(db, appender, header,
                                                            envelope_hash, sealed, now))
                self.metrics.count("gateway_envelopes_total", "Envelopes accepted",
                                   step="received_from_peer", kind=header.kind)
                if header.kind == "termination_notice":
                    self.refresh_agreement()
            index, stored_at = done
            receipt = make_receipt("relay", self.party, header.envelope_id, envelope_hash,
                                   index, stored_at, self.node_key)
            return {"receipt": base64.b64encode(receipt).decode("ascii")}, new_for
        except LedgerError:
            raise  # our storage failed: a 503 for the whole batch, and the peer retries
        except CODED_ERRORS as e:
            code = getattr(e, "code", "error")
            if code == "envelope.no_signatory_list":
                code = "setup.no_signatory_list"  # A9.3: the peer's list never reached us
            code, message = await self._record_rejection(
                sealed, header, code, getattr(e, "message", str(e)), now)
            self.metrics.count("gateway_rejected_total", "Envelopes refused", code=code)
            return {"code": code, "message": message}, None

    def _receive_unit(self, db: sqlite3.Connection, appender: Appender, header: Header,
                      envelope_hash: bytes, sealed: bytes, now: dt.datetime
                      ) -> tuple[int, dt.datetime]:
        refused = db.execute("SELECT code, message FROM refusals WHERE hash = ?",
                             (envelope_hash,)).fetchone()
        if refused is not None:
            # Refused before (the peer sends it again after a crash before it recorded
            # our answer): the same answer, even if the case would take it now.
            raise NodeError(refused["message"], code=refused["code"])
        index, stored_at, _moved, fresh = self._record_step(
            db, appender, header, envelope_hash, sealed, now, incoming=True)
        if fresh:
            if header.kind == "termination_notice":
                record_termination(db, appender, received_at=now, receiving_party=self.party,
                                   envelope_id=header.envelope_id)
            db.execute("INSERT INTO inbox (envelope_id, authority) VALUES (?, ?)",
                       (header.envelope_id, header.recipient))
        return index, stored_at

    async def _record_rejection(self, sealed: bytes, header: Header | None, code: str,
                                message: str, now: dt.datetime) -> tuple[str, str]:
        """Evidence of a refusal: the hash of what was refused and the code, nothing else.
        A refusal is final for the peer (N14), so an envelope refused before gets that
        first refusal again, and no second ``rejected`` entry: the (code, message)."""
        envelope_hash = hashlib.sha256(sealed).digest()
        if header is not None:
            event = self._event("rejected", header, envelope_hash, now, (("code", code),))
        else:
            event = Event(type="rejected", time=now, envelope_hash=envelope_hash,
                          details=(("code", code),))

        def unit(db: sqlite3.Connection, appender: Appender) -> tuple[str, str]:
            if _inserted(db, "INSERT INTO refusals (hash, code, message) VALUES (?, ?, ?)",
                         (envelope_hash, code, message)):
                appender.append(event)
                return code, message
            first = db.execute("SELECT code, message FROM refusals WHERE hash = ?",
                               (envelope_hash,)).fetchone()
            return str(first["code"]), str(first["message"])

        answer: tuple[str, str] = await self.ledger.transact_async(unit)
        return answer

    async def receive_control(self, kind: str, body: bytes) -> bytes:
        """``POST /peer/v1/control/{kind}``: the peer's signatory list or directory."""
        now = self.clock()
        if kind == "signatory_list":
            receipt = await self._receive_signatory_list(body, now)
        elif kind == "directory":
            receipt = await self._receive_directory(body, now)
        else:
            raise NodeError(f"unknown control document kind {kind[:40]!r}",
                            code="control.unknown_kind")
        self.reload_trust()
        return receipt

    async def _receive_signatory_list(self, der: bytes, now: dt.datetime) -> bytes:
        peer = self.trust.peer
        if peer is None:
            raise NodeError("no peer directory imported", code="directory.no_peer")
        lst = decode_signatory_list(der, root_key=peer.root_key)
        if lst.party != peer.current.party:
            raise NodeError("signatory list of another Party", code="control.wrong_party")
        # Conflicts are checked on a copy: trust in memory changes only after the commit
        # (reload_trust), so it never runs ahead of what is durable.
        probe = SignatoryRegistry()
        for held in self.trust.signatories.versions(lst.authority):
            probe.add(held)
        probe.add(lst)  # raises keys.signatory_list_conflict
        document_hash = hashlib.sha256(der).digest()

        def unit(db: sqlite3.Connection, appender: Appender) -> bytes:
            row = db.execute("SELECT der, receipt FROM signatory_lists WHERE authority = ? "
                             "AND version = ?", (lst.authority, lst.version)).fetchone()
            if row is not None and row["der"] == der:
                return bytes(row["receipt"])
            appended = appender.append(Event(
                type="signatory_list_received", time=now, from_authority=lst.authority,
                envelope_hash=document_hash,
                details=(("authority", lst.authority.lower()), ("version", lst.version))))
            receipt = make_receipt("control", self.party, document_hash[:16], document_hash,
                                   appended.index, now, self.node_key)
            db.execute("INSERT INTO signatory_lists (party, authority, version, der, "
                       "stored_at, receipt) VALUES (?,?,?,?,?,?)",
                       (lst.party, lst.authority, lst.version, der, store.iso(now), receipt))
            store.clear_alarm(db, f"setup.overdue:{lst.authority.lower()}", store.iso(now))
            return receipt

        return await self.ledger.transact_async(unit)

    async def _receive_directory(self, body: bytes, now: dt.datetime) -> bytes:
        """A2.2: a new version of the peer's directory (renamed or replaced authorities)."""
        peer = self.trust.peer
        if peer is None:
            raise NodeError("no peer directory imported", code="directory.no_peer")
        der, certificate = read_directory_file(body)
        directory = decode_directory(der, pinned_root=peer.root_key, now=now)
        check_certificate_pin(directory, certificate)
        document_hash = hashlib.sha256(der).digest()
        if directory not in peer.versions():
            probe = DirectoryHistory(peer.root_key)
            for version in peer.versions():
                probe.add(version)
            probe.add(directory)  # refuses stale versions and conflicts, as in memory

        def unit(db: sqlite3.Connection, appender: Appender) -> bytes:
            row = db.execute("SELECT der, receipt FROM directories WHERE party = ? AND "
                             "version = ?", (directory.party, directory.version)).fetchone()
            if row is not None:
                if row["der"] != der:
                    raise NodeError("directory version re-used with other content",
                                    code="keys.directory_conflict")
                return bytes(row["receipt"])
            appended = appender.append(Event(
                type="directory_changed", time=now, envelope_hash=document_hash,
                details=(("party", directory.party.lower()), ("version", directory.version))))
            receipt = make_receipt("control", self.party, document_hash[:16], document_hash,
                                   appended.index, now, self.node_key)
            db.execute("INSERT INTO directories (party, version, der, tls_certificate, "
                       "stored_at, receipt) VALUES (?,?,?,?,?,?)",
                       (directory.party, directory.version, der, certificate, store.iso(now),
                        receipt))
            return receipt

        return await self.ledger.transact_async(unit)

    async def checkpoint_for_peer(self, old_size: int) -> dict[str, Any]:
        """``GET /peer/v1/checkpoint``: our newest checkpoint and a proof from ``old_size``."""
        checkpoint = self.ledger.latest_checkpoint()
        if checkpoint is None:
            raise NodeError("no checkpoint yet", code="witness.no_checkpoint")
        if old_size > checkpoint.size:
            raise NodeError("the peer has seen a larger tree than our newest checkpoint",
                            code="witness.rollback")
        proof = self.ledger.consistency_proof(old_size, checkpoint.size) \
            if 0 < old_size < checkpoint.size else []
        return {"checkpoint": checkpoint.note,
                "proof": [base64.b64encode(p).decode("ascii") for p in proof]}

    async def accept_cosignature(self, size: int, cosignature: str) -> None:
        """``POST /peer/v1/cosignature``: the peer witnessed our checkpoint of ``size``."""
        peer = self.trust.peer_directory
        await self.ledger.add_cosignature_async(size, cosignature, peer.node.witness_key)
        self.metrics.count("gateway_cosignatures_total", "Cosignatures received")

    # --- agency reads -----------------------------------------------------------------

    async def inbox(self, authority: str, after: int, limit: int, wait: float
                    ) -> list[dict[str, Any]]:
        """``GET /v1/inbox``: envelopes for ``authority`` after the cursor; long-polls
        up to ``wait`` seconds, unless too many polls are parked already (``waiters.py``:
        then the answer is what there is now, an empty page)."""
        items = self._inbox_items(authority, after, limit)
        if items or wait <= 0:
            return items
        deadline = asyncio.get_running_loop().time() + wait
        with self.inbox_waiters.park(authority) as woken:
            if woken is None:
                self.metrics.count("gateway_inbox_waits_declined_total",
                                   "Inbox long-polls answered at once: too many parked",
                                   authority=authority)
                return []
            try:
                async with asyncio.timeout_at(deadline):
                    while not items:  # woken, but nothing after this cursor: wait again
                        await woken.wait()
                        woken.clear()
                        items = self._inbox_items(authority, after, limit)
            except TimeoutError:
                return []
        return items

    def _inbox_items(self, authority: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self.reader.all(
            "SELECT i.seq, e.id, e.kind, e.from_authority, e.case_id, e.hash, e.size, "
            "e.stored_at, i.delivered_at, i.acked_at, e.destroyed_at FROM inbox i "
            "JOIN envelopes e ON e.id = i.envelope_id WHERE i.authority = ? AND i.seq > ? "
            "ORDER BY i.seq LIMIT ?", authority, after, limit)
        return [{"seq": r["seq"], "envelope_id": r["id"].hex(), "kind": r["kind"],
                 "from": r["from_authority"], "case_id": r["case_id"].hex(),
                 "envelope_hash": r["hash"].hex(), "size": r["size"],
                 "received_at": r["stored_at"], "delivered_at": r["delivered_at"],
                 "acked_at": r["acked_at"], "destroyed": r["destroyed_at"] is not None}
                for r in rows]

    def _own_envelope(self, authority: str, envelope_id: bytes) -> sqlite3.Row:
        row = self.reader.one("SELECT * FROM envelopes WHERE id = ?", envelope_id)
        # The same answer for "absent" and "someone else's": an id reveals nothing (A11.1).
        if row is None or authority not in (row["from_authority"], row["to_authority"]):
            raise NodeError("no such envelope for this authority", code="envelope.not_found")
        if row["sealed"] is None:
            raise NodeError(f"destroyed at {row['destroyed_at']} under the retention rule "
                            "(A11.5)", code="envelope.destroyed")
        return row

    async def fetch(self, authority: str, envelope_id: bytes) -> bytes:
        """``GET /v1/envelopes/{id}``; the first fetch by the recipient is evidence."""
        row = self._own_envelope(authority, envelope_id)
        if row["direction"] == "incoming" and row["to_authority"] == authority:
            await self._mark_inbox(row, "delivered_at", "delivered_to_agency")
        return bytes(row["sealed"])

    async def ack(self, authority: str, envelope_id: bytes) -> dict[str, Any]:
        """``POST /v1/inbox/{id}/ack``: the recipient system has the envelope."""
        row = self._own_envelope(authority, envelope_id)
        if row["direction"] != "incoming" or row["to_authority"] != authority:
            raise NodeError("only the recipient acknowledges an envelope",
                            code="agency.not_yours")
        await self._mark_inbox(row, "delivered_at", "delivered_to_agency")
        index = await self._mark_inbox(row, "acked_at", "acknowledged")
        return {"envelope_id": envelope_id.hex(), "acknowledged": True, "ledger_index": index}

    async def _mark_inbox(self, row: sqlite3.Row, column: str, event_type: str) -> int | None:
        """Record the envelope's delivery or acknowledgement once; the index of the entry
        that records it. Recorded before: an acknowledgement's kept index (None if it
        predates ``inbox.acked_index``), a delivery's None."""
        assert column in ("delivered_at", "acked_at")
        now = self.clock()

        def unit(db: sqlite3.Connection, appender: Appender) -> int | None:
            done = db.execute(f"SELECT {column}, acked_index FROM inbox WHERE envelope_id = ?",
                              (row["id"],)).fetchone()
            if done is None:
                return None
            if done[0] is not None:
                return done["acked_index"] if column == "acked_at" else None
            appended = appender.append(Event(
                type=event_type, time=now, envelope_id=row["id"], case_id=row["case_id"],
                from_authority=row["from_authority"], to_authority=row["to_authority"],
                envelope_hash=row["hash"], details=(("kind", row["kind"]),)))
            acked_index = appended.index if column == "acked_at" else done["acked_index"]
            db.execute(f"UPDATE inbox SET {column} = ?, acked_index = ? WHERE envelope_id = ?",
                       (store.iso(now), acked_index, row["id"]))
            return appended.index

        return await self.ledger.transact_async(unit)

    def directory_file(self, party: str) -> bytes:
        row = self.reader.one("SELECT der, tls_certificate FROM directories WHERE party = ? "
                              "ORDER BY version DESC LIMIT 1", party)
        if row is None:
            raise NodeError(f"no directory of party {party[:8]!r} here",
                            code="directory.not_found")
        return export_directory_file(row["der"], row["tls_certificate"])

    def signatory_lists(self, authority: str) -> list[bytes]:
        return [bytes(r["der"]) for r in self.reader.all(
            "SELECT der FROM signatory_lists WHERE authority = ? ORDER BY version", authority)]

    def envelope_status(self, authority: str, envelope_id: bytes) -> dict[str, Any]:
        row = self.reader.one("SELECT * FROM envelopes WHERE id = ?", envelope_id)
        if row is None or authority not in (row["from_authority"], row["to_authority"]):
            raise NodeError("no such envelope for this authority", code="envelope.not_found")
        status: dict[str, Any] = {
            "envelope_id": envelope_id.hex(), "kind": row["kind"],
            "direction": row["direction"], "case_id": row["case_id"].hex(),
            "ledger_index": row["ledger_index"], "stored_at": row["stored_at"],
            "destroyed_at": row["destroyed_at"]}
        if row["direction"] == "outgoing":
            queued = self.reader.one("SELECT * FROM outbox WHERE envelope_id = ?", envelope_id)
            if queued is not None:
                status.update(
                    state="rejected" if queued["rejected"] else
                    "relayed" if queued["sent_at"] else "queued",
                    attempts=queued["attempts"], last_error=queued["last_error"],
                    rejected=queued["rejected"], relayed_at=queued["sent_at"],
                    peer_receipt=base64.b64encode(queued["peer_receipt"]).decode("ascii")
                    if queued["peer_receipt"] else None)
        else:
            inbox = self.reader.one("SELECT * FROM inbox WHERE envelope_id = ?", envelope_id)
            if inbox is not None:
                status.update(state="acknowledged" if inbox["acked_at"] else
                              "delivered" if inbox["delivered_at"] else "waiting",
                              delivered_at=inbox["delivered_at"], acked_at=inbox["acked_at"])
        return status

    def case_view(self, authority: str, case_id: bytes) -> dict[str, Any]:
        """``GET /v1/cases/{id}``: state, A10.3 deadline, and the envelopes of the case."""
        row = self.reader.one("SELECT * FROM cases WHERE case_id = ?", case_id)
        if row is None or authority not in (row["requesting"], row["requested"]):
            raise NodeError("no such case for this authority", code="case.not_found")
        return case_summary(row, self.reader, self.clock())


def case_summary(row: sqlite3.Row, reader: store.Reader, now: dt.datetime) -> dict[str, Any]:
    """A case as JSON: shared by the agency API and ``gateway cases``."""
    from gateway.rules.deadlines import days_left

    envelopes = reader.all("SELECT id, kind, from_authority, direction, created, stored_at "
                           "FROM envelopes WHERE case_id = ? ORDER BY stored_at, rowid",
                           row["case_id"])
    summary: dict[str, Any] = {
        "case_id": row["case_id"].hex(), "state": row["state"],
        "requesting": row["requesting"], "requested": row["requested"],
        "opened_by": row["opened_by_kind"], "opened_at": row["opened_at"],
        "received_on": row["received_on"], "due": row["due"],
        "closed": row["state"] in case_rules.CLOSED,
        "envelopes": [{"envelope_id": e["id"].hex(), "kind": e["kind"],
                       "from": e["from_authority"], "direction": e["direction"],
                       "created": e["created"]} for e in envelopes],
    }
    if row["due"] and row["state"] not in case_rules.CLOSED:
        left = days_left(dt.datetime.fromisoformat(row["due"]), now, row["requested"][:2])
        summary.update(days_left=left.days_left, overdue=left.overdue, due_soon=left.due_soon)
    return summary


async def open_node(home: Home, passphrase: bytes,
                    clock: Callable[[], dt.datetime] = now_utc) -> Node:
    """Load config and keys, open the database and ledger, and hold the writer lock."""
    config = home.config()
    node_key = home.signing_key("node", passphrase)
    witness_key = home.signing_key("witness", passphrase)
    store.create_schema(home.db_path)
    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=node_key)
    return Node(home, config, node_key, witness_key, passphrase, ledger, clock)
