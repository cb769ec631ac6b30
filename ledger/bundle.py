"""The auditor bundle: one self-contained SQLite file with everything needed to verify a
ledger offline, and the reading side that feeds ``audit`` from a bundle or a node's
database (they share the ledger's table layout).

Bundle format ``kzby-ledger-bundle/1`` (docs/ledger.md, "The auditor bundle"): an
SQLite 3 database (rollback journal, not WAL, so it is one file) with the tables

    ledger_meta          format = kzby-ledger-bundle/1, origin, size, exported_from
    ledger_keys          (vkey TEXT PRIMARY KEY, role TEXT)  'log' | 'witness'
    ledger_entries       (idx, entry, leaf_hash)   every entry, as in the node
    ledger_checkpoints   (size, note)              every checkpoint, as signed
    ledger_cosignatures  (size, line)              every cosignature received

The keys in a bundle only say which keys the exporter used: an auditor verifies with
keys obtained independently (``gateway ledger verify --bundle FILE --vkey KEY``).

An untrusted bundle is opened read-only with ``trusted_schema`` off, and its ledger
names must be plain tables (not views): everything read from it is then verified.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ledger.audit import AuditReport, audit
from ledger.errors import BadBundle, NotALedger
from ledger.note import NoteVerifier
from ledger.store import create_tables, read_meta

BUNDLE_FORMAT = "kzby-ledger-bundle/1"
STORE_FORMATS = ("kzby-ledger/1", BUNDLE_FORMAT)
_FETCH = 10_000
_TABLES = ("ledger_meta", "ledger_entries", "ledger_checkpoints", "ledger_cosignatures")


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to a ledger database or bundle that may be hostile."""
    path = Path(path)
    if not path.is_file():
        raise NotALedger(f"{path.name}: no such file")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           isolation_level=None)
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
        kinds = dict(conn.execute(
            "SELECT name, type FROM sqlite_master WHERE name IN (?, ?, ?, ?)", _TABLES))
    except sqlite3.DatabaseError:
        conn.close()
        raise BadBundle(f"{path.name}: not an SQLite database") from None
    if any(kinds.get(name) != "table" for name in _TABLES):
        conn.close()
        raise NotALedger(f"{path.name}: holds no ledger (missing ledger tables)")
    return conn


class LedgerSource:
    """The rows of one ledger database or bundle, in the order ``audit`` wants them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.meta = read_meta(conn)
        if self.meta.get("format") not in STORE_FORMATS:
            raise BadBundle("unknown ledger or bundle format")
        self.origin = self.meta.get("origin", "")

    @classmethod
    def open(cls, path: Path) -> LedgerSource:
        conn = open_readonly(path)
        try:
            return cls(conn)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LedgerSource:
        # One read transaction: every query sees the same snapshot of a live database.
        self.conn.execute("BEGIN")
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("COMMIT")
        self.close()

    @property
    def size(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM ledger_entries").fetchone()[0])

    def keys(self) -> list[tuple[str, str]]:
        """``(vkey, role)`` recorded by the exporter (informational, never trusted)."""
        try:
            rows = self.conn.execute("SELECT vkey, role FROM ledger_keys ORDER BY role, vkey")
            return [(str(vkey), str(role)) for vkey, role in rows]
        except sqlite3.OperationalError:
            return []  # a node database has no key table

    def entries(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        # CAST: a tampered row may hold TEXT where bytes belong; its bytes are still
        # checked like any others (and found out), instead of failing to decode here.
        cursor = self.conn.execute(
            "SELECT idx, COALESCE(CAST(entry AS BLOB), x''), CAST(leaf_hash AS BLOB) "
            "FROM ledger_entries ORDER BY idx")
        while rows := cursor.fetchmany(_FETCH):
            yield from rows

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """``(size, note followed by every cosignature line stored for it)``, by size.

        The lines are appended as stored, unparsed: ``audit`` parses and checks it all.
        """
        cosignatures: dict[int, list[bytes]] = {}
        for size, line in self.conn.execute(
                "SELECT size, CAST(line AS BLOB) FROM ledger_cosignatures ORDER BY size, rowid"):
            cosignatures.setdefault(size, []).append(line if line.endswith(b"\n")
                                                     else line + b"\n")
        for size, note in self.conn.execute(
                "SELECT size, COALESCE(CAST(note AS BLOB), x'') FROM ledger_checkpoints "
                "ORDER BY size"):
            yield size, note + b"".join(cosignatures.get(size, []))

    def stored_nodes(self) -> Iterator[tuple[int, bytes]] | None:
        """The interior nodes a node's database keeps (a bundle keeps none)."""
        if self.meta["format"] == BUNDLE_FORMAT:
            return None
        exists = self.conn.execute("SELECT type FROM sqlite_master WHERE name = "
                                   "'ledger_nodes'").fetchone()
        if exists is None or exists[0] != "table":
            raise NotALedger("the ledger's tree node table is missing")
        return self._nodes()

    def _nodes(self) -> Iterator[tuple[int, bytes]]:
        cursor = self.conn.execute("SELECT id, hash FROM ledger_nodes ORDER BY id")
        while rows := cursor.fetchmany(_FETCH):
            yield from rows


def verify_file(
    path: Path,
    *,
    log: NoteVerifier,
    witnesses: Sequence[NoteVerifier] = (),
    trusted: Sequence[str] = (),
    deep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Audit the ledger in a node database or a bundle (see ``ledger.audit``)."""
    with LedgerSource.open(path) as source:
        return audit(source.entries(), source.checkpoints(), log=log, witnesses=witnesses,
                     trusted=trusted, stored_nodes=source.stored_nodes(), deep=deep,
                     progress=progress)


def export_bundle(database: Path, out: Path, *, vkeys: Sequence[tuple[str, str]] = ()
                  ) -> int:
    """Write the bundle of the ledger in ``database`` to ``out``; return its size.

    ``vkeys``: ``(vkey, role)`` pairs to record. Refuses to overwrite ``out``; writes a
    temporary file first, so a failure leaves no half-written bundle behind.
    """
    out = Path(out)
    if out.exists():
        raise BadBundle(f"{out.name} exists; refusing to overwrite it")
    with LedgerSource.open(database) as source:
        origin = source.origin
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    conn = sqlite3.connect(temporary, isolation_level=None, uri=True)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        source_uri = f"{Path(database).resolve().as_uri()}?mode=ro"
        conn.execute("ATTACH DATABASE ? AS source", (source_uri,))
        conn.execute("BEGIN")  # one snapshot of the source for every copy below
        create_tables(conn, with_nodes=False)
        conn.execute("CREATE TABLE ledger_keys (vkey TEXT PRIMARY KEY, role TEXT NOT NULL)")
        for table, columns in (("ledger_entries", "idx, entry, leaf_hash"),
                               ("ledger_checkpoints", "size, note"),
                               ("ledger_cosignatures", "size, line")):
            conn.execute(f"INSERT INTO main.{table} ({columns}) "
                         f"SELECT {columns} FROM source.{table}")
        size = conn.execute("SELECT COUNT(*) FROM main.ledger_entries").fetchone()[0]
        conn.executemany("INSERT INTO ledger_meta (key, value) VALUES (?, ?)",
                         [("format", BUNDLE_FORMAT), ("origin", origin), ("size", str(size)),
                          ("exported_from", Path(database).name)])
        conn.executemany("INSERT OR IGNORE INTO ledger_keys (vkey, role) VALUES (?, ?)", vkeys)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE source")
        conn.close()
        os.replace(temporary, out)
    except BaseException:
        conn.close()
        temporary.unlink(missing_ok=True)
        raise
    return int(size)
