"""The agreement's clocks, watched by a running node.

- **A10.3**: an open case past its due instant gets one ``deadline_passed`` ledger entry.
- **A17**: ``record_termination`` sets the end date when a termination notice is
  received (by us from the peer, or by the peer from us, per its relay receipt).
- **A9.3**: once the 45 days after entry into force are over, every authority whose
  signatory list was not delivered (ours) or not received (the peer's) gets one
  ``setup_overdue`` ledger entry and an alarm.

Both are idempotent: a flag or an open alarm row makes the second pass a no-op, and
the check runs every ``INTERVAL`` seconds and at start.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import TYPE_CHECKING

from gateway.node import store
from gateway.node.worker import Worker
from gateway.rules import cases as case_rules
from gateway.rules.deadlines import setup_due, termination_end
from ledger.entry import Event
from ledger.store import Appender

if TYPE_CHECKING:
    from gateway.node.service import Node

log = logging.getLogger("gateway.node")
INTERVAL = 60.0



class AgreementWorker(Worker):
    name = "agreement"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    async def step(self) -> float:
        await record_deadlines_passed(self.node)
        await record_setup_overdue(self.node)
        return INTERVAL


async def record_deadlines_passed(node: Node) -> int:
    """A10.3: one ``deadline_passed`` entry per open case past its due instant."""
    now = node.clock()
    closed = tuple(case_rules.CLOSED)
    rows = node.reader.all(
        f"SELECT case_id, requesting, requested, due FROM cases WHERE due IS NOT NULL AND "
        f"deadline_recorded = 0 AND state NOT IN ({','.join('?' * len(closed))})", *closed)
    overdue = [r for r in rows if dt.datetime.fromisoformat(r["due"]) <= now]
    if not overdue:
        return 0

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        for row in overdue:
            appender.append(Event(
                type="deadline_passed", time=now, case_id=row["case_id"],
                from_authority=row["requesting"], to_authority=row["requested"],
                details=(("due", int(dt.datetime.fromisoformat(row["due"]).timestamp())),)))
            db.execute("UPDATE cases SET deadline_recorded = 1 WHERE case_id = ?",
                       (row["case_id"],))

    await node.ledger.transact_async(unit)
    log.warning("%d case(s) passed their A10.3 deadline", len(overdue))
    return len(overdue)


async def record_setup_overdue(node: Node) -> int:
    """A9.3: authorities whose lists were not exchanged within 45 days."""
    now = node.clock()
    late: list[tuple[str, str]] = []
    for side, history in (("own", node.trust.own), ("peer", node.trust.peer)):
        if history is None:
            continue
        directory = history.current
        if now < setup_due(node.config.entry_into_force, directory.party):
            continue
        for authority in directory.authorities:
            column = "sent_at" if side == "own" else "stored_at"
            done = node.reader.one(f"SELECT 1 FROM signatory_lists WHERE authority = ? AND "
                                   f"{column} IS NOT NULL", authority.id)
            if done is None:
                late.append((side, authority.id))
    if not late:
        return 0
    recorded = 0

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        nonlocal recorded
        for side, authority in late:
            code = f"setup.overdue:{authority.lower()}"
            if db.execute("SELECT 1 FROM alarms WHERE code = ? AND cleared IS NULL",
                          (code,)).fetchone():
                continue
            db.execute("INSERT INTO alarms (code, raised) VALUES (?, ?)", (code, store.iso(now)))
            appender.append(Event(type="setup_overdue", time=now, from_authority=authority,
                                  details=(("authority", authority.lower()), ("side", side))))
            recorded += 1

    await node.ledger.transact_async(unit)
    if recorded:
        log.warning("A9.3: %d signatory list(s) overdue", recorded)
    return recorded


def record_termination(db: sqlite3.Connection, appender: Appender, *, received_at: dt.datetime,
                       receiving_party: str, envelope_id: bytes) -> None:
    """A17: the agreement ends 6 months after the other Party received the notice.

    The earliest notice counts: a second notice cannot postpone the end.
    """
    ends_at = termination_end(received_at, receiving_party)
    row = db.execute("SELECT value FROM agreement WHERE key = 'ends_at'").fetchone()
    if row is not None and dt.datetime.fromisoformat(row["value"]) <= ends_at:
        return
    db.execute("INSERT OR REPLACE INTO agreement (key, value) VALUES ('ends_at', ?)",
               (store.iso(ends_at),))
    appender.append(Event(type="termination_received", time=received_at,
                          envelope_id=envelope_id,
                          details=(("ends_at", int(ends_at.timestamp())),
                                   ("received_by", receiving_party.lower()))))
