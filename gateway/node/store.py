"""The node's own tables, in the same SQLite file as the ledger.

Writes happen inside ``Ledger.transact`` units of work, so an envelope row, its outbox or
inbox row and its ledger entry commit together, in one group-committed transaction.
Reads use short-lived connections of their own (WAL readers never block the writer).

What is stored here is what the node must keep to do its job: the sealed envelopes
(ciphertext, so no person data in clear), receipts, queues, case states, directories
and signatory lists. The ledger holds the evidence; these tables hold the work.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    id               BLOB PRIMARY KEY,      -- 16-byte envelope id
    hash             BLOB NOT NULL,         -- SHA-256 of the sealed envelope
    kind             TEXT NOT NULL,
    from_authority   TEXT NOT NULL,
    to_authority     TEXT NOT NULL,
    case_id          BLOB NOT NULL,
    in_reply_to      BLOB,
    created          TEXT NOT NULL,         -- header time, ISO 8601 UTC
    signatory_key_id BLOB NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    stored_at        TEXT NOT NULL,
    ledger_index     INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    sealed           BLOB,                  -- NULL once destroyed (A11.5)
    destroyed_at     TEXT
);
CREATE INDEX IF NOT EXISTS envelopes_case ON envelopes (case_id);

CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id  BLOB NOT NULL UNIQUE,
    case_id      BLOB NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,   -- unix time
    last_error   TEXT,                      -- an error code, never free text
    sent_at      TEXT,
    peer_receipt BLOB,
    rejected     TEXT,                      -- the peer's code when it refused for good
    peer_answer  INTEGER,                   -- and its signed answer (peer_answers.id)
    case_from    TEXT,                      -- the case state change this envelope made
    case_to      TEXT                       -- here, undone if the peer refuses it
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, rejected, seq);

CREATE TABLE IF NOT EXISTS inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id  BLOB NOT NULL UNIQUE,
    authority    TEXT NOT NULL,
    delivered_at TEXT,
    acked_at     TEXT,
    acked_index  INTEGER                    -- the `acknowledged` ledger entry
);
CREATE INDEX IF NOT EXISTS inbox_authority ON inbox (authority, seq);

CREATE TABLE IF NOT EXISTS cases (
    case_id        BLOB PRIMARY KEY,
    state          TEXT NOT NULL,
    requesting     TEXT NOT NULL,
    requested      TEXT NOT NULL,
    opened_by_kind TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    received_on    TEXT,          -- A10.3: the day the requested node received it
    due            TEXT,          -- A10.3: end of the 30th day, ISO 8601 UTC
    deadline_recorded INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS directories (
    party           TEXT NOT NULL,
    version         INTEGER NOT NULL,
    der             BLOB NOT NULL,
    tls_certificate BLOB NOT NULL,    -- PEM, its SHA-256 pinned in the directory
    stored_at       TEXT NOT NULL,
    sent_at         TEXT,             -- own versions: delivered to the peer
    peer_receipt    BLOB,
    receipt         BLOB,             -- peer versions: the control receipt we gave
    PRIMARY KEY (party, version)
);

CREATE TABLE IF NOT EXISTS signatory_lists (
    party        TEXT NOT NULL,
    authority    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    der          BLOB NOT NULL,
    stored_at    TEXT NOT NULL,
    sent_at      TEXT,                -- own lists: delivered to the peer (A9.3)
    peer_receipt BLOB,                -- own lists: the peer's control receipt
    receipt      BLOB,                -- peer lists: the control receipt we gave
    PRIMARY KEY (authority, version)
);

CREATE TABLE IF NOT EXISTS peer_checkpoints (
    size         INTEGER PRIMARY KEY,
    note         TEXT NOT NULL,       -- the peer's checkpoint as we cosigned it
    cosignature  TEXT NOT NULL,
    cosigned_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS alarms (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    code    TEXT NOT NULL,
    raised  TEXT NOT NULL,
    cleared TEXT
);

CREATE TABLE IF NOT EXISTS peer_answers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    method         TEXT NOT NULL,         -- a signed peer answer that refused envelopes
    path           TEXT NOT NULL,         -- of ours, kept whole as evidence (N6, N14):
    request_sha256 BLOB NOT NULL,         -- everything its signature covers
    status         INTEGER NOT NULL,
    body           BLOB NOT NULL,
    signature      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS refusals (
    hash       BLOB PRIMARY KEY,          -- SHA-256 of an envelope the peer sent us
    code       TEXT NOT NULL,             -- and the code we refused it with, for good
    message    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS agency_certificates (
    sha256     BLOB PRIMARY KEY,          -- SHA-256 of the client certificate's DER
    authority  TEXT NOT NULL,
    issued_at  TEXT,                      -- NULL: issued before this table, known by file
    revoked_at TEXT                       -- set: the agency listener refuses it
);

CREATE TABLE IF NOT EXISTS agreement (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Columns added to a table after it first shipped: (table, column, declaration). A home
# made before gets them when the node next starts; its older rows hold NULL there.
ADDED_COLUMNS = (("inbox", "acked_index", "INTEGER"), ("outbox", "peer_answer", "INTEGER"))


def iso(t: dt.datetime) -> str:
    """How every time is stored: ISO 8601 in UTC."""
    return t.astimezone(dt.UTC).isoformat()


def create_schema(path: Path) -> None:
    with connect(path) as db:
        db.executescript(SCHEMA)
        for table, column, declaration in ADDED_COLUMNS:
            present = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                         timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
    return db


class Reader:
    """One read connection per thread: the event loop's, and each worker thread's."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = connect(self._path)
            self._local.db = db
        return db

    def one(self, sql: str, *args: object) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: object) -> list[sqlite3.Row]:
        return list(self.db.execute(sql, args).fetchall())


def clear_alarm(db: sqlite3.Connection, code: str, when: str) -> None:
    """Close an open alarm (inside a unit of work): its cause is gone."""
    db.execute("UPDATE alarms SET cleared = ? WHERE code = ? AND cleared IS NULL",
               (when, code))
