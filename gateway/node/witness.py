"""Checkpoints and cross-witnessing.

- ``CheckpointWorker`` signs a new checkpoint of our ledger every
  ``checkpoint_interval`` seconds when entries were added since the last one.
- ``WitnessWorker`` asks the peer every ``witness_interval`` seconds for its newest
  checkpoint with a consistency proof from the last one we cosigned, checks both
  (``ledger.witness.cosign``), sends back our cosignature and keeps the peer's
  checkpoint. Any inconsistency (a fork, a rollback, a bad signature) raises an alarm:
  a log line, an ``alarm`` ledger entry, the ``gateway_witness_alarms_total`` metric and
  a row that ``gateway status`` shows; and we never cosign it.

Our cosigning is recorded in the ``peer_checkpoints`` table and in the cosigned
checkpoint itself, not as a ledger entry: a ledger entry per cosignature would grow
each ledger, making a new checkpoint for the other side to cosign, forever.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from gateway.errors import CODED_ERRORS
from gateway.node import store
from gateway.node.peer import PeerClient, PeerUnavailable, PeerWorker
from gateway.node.worker import Worker
from ledger.entry import Event
from ledger.note import SignedCheckpoint
from ledger.store import Appender
from ledger.witness import cosign

if TYPE_CHECKING:
    from gateway.node.service import Node

log = logging.getLogger("gateway.node")



class CheckpointWorker(Worker):
    name = "checkpoint"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    async def step(self) -> float:
        ledger = self.node.ledger
        latest = ledger.latest_checkpoint()
        if latest is None or ledger.size > latest.size:
            await ledger.checkpoint_async()
        return self.node.config.checkpoint_interval


class WitnessWorker(PeerWorker):
    name = "witness"

    async def step(self) -> float:
        node = self.node
        interval = node.config.witness_interval
        if node.trust.peer is None:
            return interval
        last = node.reader.one("SELECT size, note FROM peer_checkpoints ORDER BY size DESC "
                               "LIMIT 1")
        old_size, old_note = (last["size"], last["note"]) if last else (0, None)
        try:
            note, proof = await (await self.peer()).checkpoint(old_size)
        except PeerUnavailable:
            return interval
        except CODED_ERRORS as e:
            if getattr(e, "code", "") == "witness.no_checkpoint":
                return interval
            await raise_alarm(node, getattr(e, "code", "witness.error"))
            return interval
        await witness_once(node, await self.peer(), note, proof, old_note)
        return interval


async def witness_once(node: Node, peer: PeerClient, note: str, proof: list[bytes],
                       old_note: str | None) -> None:
    """Check the peer's checkpoint, store it, then send our cosignature (in that order:
    a cosignature that left the node is always one we can show we gave)."""
    directory = node.trust.peer_directory
    try:
        cosigned = cosign(note, proof, old_note=old_note, log_key=directory.node.node_key,
                          origin=directory.node.ledger_origin, witness_key=node.witness_key,
                          witness_name=witness_name(node), now=node.clock())
    except CODED_ERRORS as e:
        await raise_alarm(node, getattr(e, "code", "witness.inconsistent"))
        return
    if cosigned is None:
        # Nothing new; resend our last cosignature if the peer's note does not carry it.
        last = node.reader.one("SELECT size, cosignature FROM peer_checkpoints ORDER BY size "
                               "DESC LIMIT 1")
        if last is not None and last["cosignature"] not in note:
            await _send(node, peer, last["size"], last["cosignature"])
        return
    size, cosignature = cosigned
    now = node.clock()

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        db.execute("INSERT OR IGNORE INTO peer_checkpoints (size, note, cosignature, "
                   "cosigned_at) VALUES (?,?,?,?)", (size, note, cosignature, store.iso(now)))

    await node.ledger.transact_async(unit)
    node.metrics.count("gateway_cosigned_total", "Peer checkpoints we cosigned")
    await _send(node, peer, size, cosignature)


async def _send(node: Node, peer: PeerClient, size: int, cosignature: str) -> None:
    try:
        await peer.cosign(size, cosignature)
    except CODED_ERRORS as e:
        log.warning("cosignature not accepted by the peer: %s", getattr(e, "code", "error"))


def cosignature_count(checkpoint: SignedCheckpoint) -> int:
    """Signatures on a stored checkpoint other than the log's own."""
    return sum(1 for s in checkpoint.signed.signatures if s.name != checkpoint.checkpoint.origin)


def witness_name(node: Node) -> str:
    """Our cosigner name: our log origin with ``/witness`` (C2SP: a name per key)."""
    return node.home.origin() + "/witness"


async def raise_alarm(node: Node, code: str) -> None:
    """Log, ledger, metric and status row: the peer's log is not what it claimed."""
    log.error("ALARM %s: refusing to cosign the peer's checkpoint", code)
    node.metrics.count("gateway_witness_alarms_total", "Witness alarms", code=code)
    now = node.clock()

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        open_alarm = db.execute("SELECT 1 FROM alarms WHERE code = ? AND cleared IS NULL",
                                (code,)).fetchone()
        if open_alarm is None:
            db.execute("INSERT INTO alarms (code, raised) VALUES (?, ?)", (code, store.iso(now)))
            appender.append(Event(type="alarm", time=now, details=(("code", code),)))

    await node.ledger.transact_async(unit)
