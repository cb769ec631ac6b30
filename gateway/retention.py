"""A11.5: information is kept no longer than its purpose requires, then destroyed.

``apply_retention`` finds stored envelopes older than their kind's retention period
(``[retention]`` in node.toml), deletes their sealed bytes (ciphertext, wrapped key and
all), records one ``destroyed`` ledger entry per envelope, then reclaims the space:
``secure_delete`` zeroes freed pages, ``VACUUM`` rebuilds the file without them, and a
WAL checkpoint with TRUNCATE empties the write-ahead log, so no copy of the ciphertext
is left in the database files.

What stays is the evidence: the envelope's id, hash, kind, authorities, times and
receipts, and the ledger, which never held content. The API then answers
``410 envelope.destroyed`` for it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config import NodeConfig
from gateway.errors import GatewayError
from gateway.node import store
from ledger.entry import Event
from ledger.store import Appender, Ledger


@dataclass(frozen=True)
class Due:
    envelope_id: bytes
    kind: str
    stored_at: str
    size: int


def due_for_destruction(reader: store.Reader, config: NodeConfig, now: dt.datetime) -> list[Due]:
    # An envelope still waiting for the peer is kept until it is relayed or refused.
    rows = reader.all("SELECT id, kind, stored_at, size FROM envelopes WHERE sealed IS NOT NULL "
                      "AND id NOT IN (SELECT envelope_id FROM outbox WHERE sent_at IS NULL "
                      "AND rejected IS NULL) ORDER BY stored_at")
    return [Due(r["id"], r["kind"], r["stored_at"], r["size"]) for r in rows
            if dt.datetime.fromisoformat(r["stored_at"])
            + dt.timedelta(days=config.retention.days_for(r["kind"])) <= now]


def apply_retention(db_path: Path, ledger: Ledger, config: NodeConfig, now: dt.datetime,
                    *, dry_run: bool = False) -> list[Due]:
    reader = store.Reader(db_path)
    try:
        due = due_for_destruction(reader, config, now)
    finally:
        reader.db.close()
    if dry_run or not due:
        return due

    def unit(db: sqlite3.Connection, appender: Appender) -> None:
        for item in due:
            row = db.execute("SELECT * FROM envelopes WHERE id = ? AND sealed IS NOT NULL",
                             (item.envelope_id,)).fetchone()
            if row is None:
                continue
            appender.append(Event(
                type="destroyed", time=now, envelope_id=row["id"], case_id=row["case_id"],
                from_authority=row["from_authority"], to_authority=row["to_authority"],
                envelope_hash=row["hash"],
                details=(("kind", row["kind"]),
                         ("retention_days", config.retention.days_for(row["kind"])))))
            db.execute("UPDATE envelopes SET sealed = NULL, destroyed_at = ? WHERE id = ?",
                       (now.astimezone(dt.UTC).isoformat(), row["id"]))

    ledger.transact(unit)
    reclaim_space(db_path)
    return due


class RetentionIncomplete(GatewayError):
    code = "retention.incomplete"


def reclaim_space(db_path: Path, attempts: int = 50, busy_ms: int = 5000) -> None:
    """Leave no freed page with old content in the database or its WAL.

    A reader holding an old snapshot blocks VACUUM and keeps the WAL from being
    truncated; then we wait (``busy_ms``, then ``attempts`` tries 0.1 s apart) and say
    so (``retention.incomplete``) rather than claim success.
    """
    db = store.connect(db_path)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        db.execute("PRAGMA secure_delete = ON")
        try:
            db.execute("VACUUM")
        except sqlite3.OperationalError:
            raise RetentionIncomplete("the database is busy (a reader holds an old "
                                      "snapshot): run `gateway retention apply` again "
                                      "when it is gone") from None
        for _ in range(attempts):
            busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
        raise RetentionIncomplete("a reader holds an old snapshot: the destroyed bodies are "
                                  "still in the write-ahead log; run `gateway retention "
                                  "apply` again when it is gone")
    finally:
        db.close()
