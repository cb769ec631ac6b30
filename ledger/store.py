"""The ledger on SQLite: durable, ordered, group-committed appends, and O(log n) reads of
roots and proofs.

Tables (docs/ledger.md, "Storage"), next to the node's own tables in the same file::

    ledger_meta          (key TEXT PRIMARY KEY, value TEXT)      format, origin, log key
    ledger_entries       (idx INTEGER PRIMARY KEY, entry BLOB, leaf_hash BLOB)
    ledger_nodes         (id INTEGER PRIMARY KEY, hash BLOB)     interior tree nodes
    ledger_checkpoints   (size INTEGER PRIMARY KEY, note TEXT)   signed by the log key
    ledger_cosignatures  (size INTEGER, line TEXT)               witnesses' lines

Every perfect interior node is stored once, when its last leaf arrives, keyed by the
order of creation (``tree.creation_index``); leaf hashes sit with their entries. A root, an
inclusion proof or a consistency proof is then O(log n) stored hashes
(``ledger.proof`` names them), fetched with one query per table.

Group commit. Callers queue units of work (events to append, or a function to run);
each event loop has a batcher that takes everything queued, runs it in one transaction
with ``synchronous=FULL``, commits (one fsync for all of them) and only then wakes every
caller. Units run on the loop's own thread, so their Python never contends with the
loop's for the GIL; only the COMMIT, which waits for the disk with the GIL released, runs
on the ledger's committer thread, and the units queued while it runs make the next batch.
Threads without a loop (``transact``, ``append``) queue on the ledger's own loop thread,
so they share commits the same way. One write lock, held from BEGIN to the end of
COMMIT, keeps batches of different loops apart. Indices are assigned in the one open
transaction, so the order is total and gap-free. The entries, their tree nodes and the
caller's own rows commit together, so a crash at any instant leaves either all of a
transaction or none of it, and the in-memory right edge of the tree is rebuilt from disk
at ``open``.

``transact(fn)`` runs ``fn(connection, appender)`` inside a batch's transaction, in a
SAVEPOINT of its own: if it raises, only its own rows and entries are undone, the
exception goes back to its caller and the rest of the batch commits. ``fn`` runs while
every other caller waits (on the event loop's thread, for ``transact_async``), so it MUST
be quick and MUST NOT block (no network, no sleeping, no waiting on another unit of work)
and MUST NOT commit, roll back or call back into this ledger's write methods.

Reads (``root``, proofs, entries, checkpoints) use one read-only connection per thread
(WAL readers never block the writer), so they are safe from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from nacl.signing import SigningKey, VerifyKey

from ledger.entry import ZERO_HASH, Event, StoredEntry, decode_entry, encode_entry, encode_event
from ledger.errors import (
    BadCheckpoint,
    CheckpointMismatch,
    Closed,
    ConcurrentWriter,
    LedgerError,
    MissingEntry,
    NoCheckpoint,
    NotALedger,
    OutOfRange,
    ReadOnly,
    Truncated,
    UnitTransaction,
    WriteFailed,
    WrongKey,
    WrongOrigin,
)
from ledger.hashing import hash_leaf
from ledger.note import (
    Checkpoint,
    NoteVerifier,
    SignedCheckpoint,
    log_verifier,
    open_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_signature_line,
    sign_checkpoint,
    verify_cosignature,
    witness_verifier,
)
from ledger.proof import NodeId, ProofStep, consistency, fold, inclusion, root_nodes
from ledger.tree import TreeEdge, creation_index

T = TypeVar("T")

STORE_FORMAT = "kzby-ledger/1"
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Appended:
    """Where an appended entry landed: its index and its leaf hash."""

    index: int
    leaf_hash: bytes


def create_tables(conn: sqlite3.Connection, *, with_nodes: bool = True) -> None:
    """Create the ledger's tables if missing (in the caller's transaction, if any).
    ``with_nodes=False`` leaves out the interior nodes (an auditor bundle)."""
    db = sqlite_utils.Database(conn)
    db.table("ledger_meta").create(
        {"key": str, "value": str}, pk="key", not_null={"value"}, if_not_exists=True)
    db.table("ledger_entries").create(
        {"idx": int, "entry": bytes, "leaf_hash": bytes}, pk="idx",
        not_null={"entry", "leaf_hash"}, if_not_exists=True)
    if with_nodes:
        db.table("ledger_nodes").create(
            {"id": int, "hash": bytes}, pk="id", not_null={"hash"}, if_not_exists=True)
    db.table("ledger_checkpoints").create(
        {"size": int, "note": str}, pk="size", not_null={"note"}, if_not_exists=True)
    db.table("ledger_cosignatures").create(
        {"size": int, "line": str}, pk=("size", "line"), not_null={"line"},
        if_not_exists=True)


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        rows = conn.execute("SELECT key, value FROM ledger_meta").fetchall()
    except sqlite3.DatabaseError:
        raise NotALedger("the database holds no ledger") from None
    return {str(key): str(value) for key, value in rows}


def fetch_nodes(conn: sqlite3.Connection, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """The stored hashes of ``nodes``: one indexed query per table, whatever their number."""
    leaves: dict[int, NodeId] = {}
    interior: dict[int, NodeId] = {}
    for node in nodes:
        if node.level:
            interior[creation_index(node)] = node
        else:
            leaves[node.index] = node
    found: dict[NodeId, bytes] = {}
    for sql, keys in (("SELECT idx, leaf_hash FROM ledger_entries WHERE idx IN ({})", leaves),
                      ("SELECT id, hash FROM ledger_nodes WHERE id IN ({})", interior)):
        if keys:
            marks = ",".join("?" * len(keys))
            for key, value in conn.execute(sql.format(marks), tuple(keys)):
                found[keys[key]] = value
    if len(found) != len(leaves) + len(interior):
        missing = min((n for n in [*leaves.values(), *interior.values()] if n not in found),
                      key=lambda n: n.begin)
        raise MissingEntry(f"tree node at level {missing.level} is not stored",
                           index=missing.begin)
    return found


class Appender:
    """Handed to a ``transact`` function: appends entries inside its unit of work."""

    def __init__(self, batch: _Batch) -> None:
        self._batch: _Batch | None = batch

    def append(self, event: Event) -> Appended:
        if self._batch is None:
            raise Closed("this appender's unit of work is over")
        return self._batch.add(encode_event(event))

    @property
    def size(self) -> int:
        """The tree size so far in this unit of work: the index of the next entry."""
        if self._batch is None:
            raise Closed("this appender's unit of work is over")
        return self._batch.edge.size


class _Batch:
    """The writer's view of one transaction: tree edge and rows not yet written."""

    def __init__(self, edge: TreeEdge, last_leaf: bytes) -> None:
        self.edge = edge.copy()
        self.last_leaf = last_leaf
        self.entries: list[tuple[int, bytes, bytes]] = []
        self.nodes: list[tuple[int, bytes]] = []

    def add(self, event_der: bytes) -> Appended:
        index = self.edge.size
        der = encode_entry(index, self.last_leaf, event_der)
        leaf = hash_leaf(der)
        self.entries.append((index, der, leaf))
        for node, value in self.edge.append(leaf):
            self.nodes.append((creation_index(node), value))
        self.last_leaf = leaf
        return Appended(index, leaf)

    def mark(self) -> tuple[TreeEdge, bytes, int, int]:
        return self.edge.copy(), self.last_leaf, len(self.entries), len(self.nodes)

    def restore(self, mark: tuple[TreeEdge, bytes, int, int]) -> None:
        self.edge, self.last_leaf, entries, nodes = mark
        del self.entries[entries:]
        del self.nodes[nodes:]


_Work = Callable[[sqlite3.Connection, Appender], Any]


# The ledger's own transaction statements. A unit may not end or nest the transaction
# (_TransactionGuard); the guard is asked only when a statement is prepared, and sqlite3
# reuses a prepared statement of the same text, so these texts are not ones a unit would
# write by chance.
_BEGIN = "BEGIN IMMEDIATE TRANSACTION"
_COMMIT = "COMMIT TRANSACTION"
_ROLLBACK = "ROLLBACK TRANSACTION"
_SAVEPOINT = "SAVEPOINT ledger_unit"
_ROLLBACK_TO = "ROLLBACK TRANSACTION TO SAVEPOINT ledger_unit"
_RELEASE = "RELEASE SAVEPOINT ledger_unit"


class _TransactionGuard:
    """The writer connection's SQLite authorizer: while a unit runs, no BEGIN, COMMIT,
    ROLLBACK or savepoint. A unit that committed (``with db:``, ``db.commit()``,
    ``executescript``) would make the rows of the units before it in the batch durable
    without their ledger entries; refused when prepared, it fails as any unit fails,
    alone, with its rows rolled back."""

    def __init__(self) -> None:
        self.active = False
        self.refused = False

    def __call__(self, action: int, *_: object) -> int:
        if self.active and action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            self.refused = True
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def explain(self, error: Exception) -> Exception:
        """The unit's error, or ours if it was the refusal (sqlite3 says only "not
        authorized")."""
        if not self.refused:
            return error
        self.refused = False
        return UnitTransaction("a unit of work may not begin, end or nest a transaction: "
                               "the ledger's batch owns it")


class _Unit:
    """One caller's work, its outcome once run, and the future its caller awaits."""

    __slots__ = ("error", "events", "fn", "future", "result")

    def __init__(self, events: Sequence[bytes] | None, fn: _Work | None,
                 future: asyncio.Future[Any]) -> None:
        self.events = events
        self.fn = fn
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, failure: BaseException | None) -> None:
        if self.future.done():
            return  # the caller was cancelled; the work is done all the same
        error = failure or self.error
        if isinstance(error, StopIteration):
            # A future refuses StopIteration (PEP 479): hand it over wrapped.
            wrapped = RuntimeError("a unit of work raised StopIteration")
            wrapped.__cause__ = error
            error = wrapped
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(self.result)


class _Batcher:
    """Group commit for the units queued from one event loop.

    A unit queued while nothing is being written starts a batch at the loop's next turn
    (so the tasks woken in this turn queue theirs first); units queued while a batch is
    being written or committed make the next batch.
    """

    def __init__(self, ledger: Ledger, loop: asyncio.AbstractEventLoop) -> None:
        self.ledger = ledger
        self.loop = loop
        self.queued: list[_Unit] = []
        self.busy = False
        self.idle: list[asyncio.Future[None]] = []

    def add(self, unit: _Unit) -> None:
        self.queued.append(unit)
        if not self.busy:
            self.busy = True
            self.loop.call_soon(self._start)

    def _start(self) -> None:
        if self.ledger._write_lock.acquire(blocking=False):
            self._write()
        else:
            # Another loop's batch holds the connection: wait for it off this loop.
            self.loop.run_in_executor(None, self._acquire_then_write)

    def _acquire_then_write(self) -> None:
        """On an executor thread: take the write lock, then write on the loop, unless
        the loop closed meanwhile (nobody is left to write its units or free the lock)."""
        self.ledger._write_lock.acquire()
        try:
            self.loop.call_soon_threadsafe(self._write)
        except RuntimeError:
            self.ledger._write_lock.release()

    def _write(self) -> None:
        """With the write lock: run the queued units, then commit them off the loop."""
        units, self.queued = self.queued, []
        try:
            batch = self.ledger._stage(units)
        except BaseException as e:
            self.ledger._write_lock.release()
            interrupted = not isinstance(e, Exception)
            self._done(units, WriteFailed("interrupted") if interrupted else e)
            if interrupted:
                raise
            return
        assert self.ledger._committer is not None
        self.ledger._committer.commit(batch, self.loop, lambda e: self._done(units, e))

    def _done(self, units: list[_Unit], failure: BaseException | None) -> None:
        for unit in units:
            unit.settle(failure)
        if self.queued:
            self.loop.call_soon(self._start)
            return
        self.busy = False
        for waiter in self.idle:
            if not waiter.done():
                waiter.set_result(None)
        self.idle.clear()


class _Committer:
    """The thread that runs each batch's COMMIT, then calls back on the batch's loop.

    A plain queue and one thread rather than an executor: a batch of one unit is the
    common case at low load, and the executor's future chaining cost as much CPU as the
    unit itself.
    """

    def __init__(self, commit: Callable[[_Batch], None]) -> None:
        self._commit = commit
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-commit", daemon=True)
        self._thread.start()

    def commit(self, batch: _Batch, loop: asyncio.AbstractEventLoop,
               done: Callable[[BaseException | None], None]) -> None:
        self._jobs.put((batch, loop, done))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch, loop, done = job
            failure: BaseException | None = None
            try:
                self._commit(batch)
            except BaseException as e:
                failure = e
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(done, failure)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class _Latch:
    """Where a thread waits for its unit's outcome."""

    __slots__ = ("_error", "_lock", "_result")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._result: Any = None
        self._error: BaseException | None = None

    def open(self, result: Any, error: BaseException | None) -> None:
        self._result, self._error = result, error
        self._lock.release()

    def wait(self) -> Any:
        self._lock.acquire()
        if self._error is not None:
            raise self._error
        return self._result


def _outcome(future: asyncio.Future[Any]) -> tuple[Any, BaseException | None]:
    error = future.exception()
    return (None, error) if error is not None else (future.result(), None)


class _OwnLoop:
    """The ledger's own event loop, on a thread of its own, for callers without one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.loop.run_forever()
                return  # stop()
            except BaseException:
                # A unit raised SystemExit or the like: its batch's callers were told
                # (write_failed); the callbacks that tell them, and every later caller,
                # need this loop running.
                continue

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _cosignature_unit(size: int, cosignature_line: str,
                      witness: VerifyKey | NoteVerifier | None) -> _Work:
    signature = parse_signature_line(cosignature_line)

    def unit(conn: sqlite3.Connection, appender: Appender) -> None:
        row = conn.execute("SELECT note FROM ledger_checkpoints WHERE size = ?",
                           (size,)).fetchone()
        if row is None:
            raise NoCheckpoint(f"no checkpoint at size {size}")
        if witness is not None:
            verifier = witness if isinstance(witness, NoteVerifier) \
                else witness_verifier(signature.name, witness)
            verify_cosignature(parse_note(row[0]).text, signature, verifier)
        conn.execute("INSERT OR IGNORE INTO ledger_cosignatures (size, line) VALUES (?, ?)",
                     (size, signature.line))

    return unit


class Ledger:
    """One ledger in one SQLite file. Make it with ``Ledger.open``."""

    def __init__(self, path: Path, origin: str, log_key: SigningKey | None,
                 conn: sqlite3.Connection | None, edge: TreeEdge, last_leaf: bytes) -> None:
        self.path = Path(path)
        self.origin = origin
        self._log_key = log_key
        self._conn = conn
        self._edge = edge
        self._last_leaf = last_leaf
        self._state_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._closed = False
        # Held from BEGIN to the end of COMMIT: one batch at a time owns the connection.
        self._write_lock = threading.Lock()
        self._batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}
        self._own: _OwnLoop | None = None
        self._committer = _Committer(self._commit) if conn is not None else None
        self._guard = _TransactionGuard()
        if conn is not None:
            conn.set_authorizer(self._guard)

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, origin: str, log_key: SigningKey | None) -> Ledger:
        """Open (creating if needed) the ledger in ``path``.

        With ``log_key`` the ledger is writable: tables are created, the origin and log
        key are recorded on first use and must match afterwards, and the newest
        checkpoint must still match the stored tree. ``log_key=None`` opens an existing
        ledger read-only (an auditor, the CLI). Either way only O(log n) rows are read.
        """
        path = Path(path)
        if log_key is None:
            if not path.exists():
                raise NotALedger(f"{path.name}: no such database")
            reader = _connect_reader(path)
            try:
                meta = read_meta(reader)
                size, subtrees, last_leaf = _load_edge(reader)
            finally:
                reader.close()
            _check_origin(meta, origin)
            return cls(path, origin, None, None, TreeEdge(size, subtrees), last_leaf)
        conn = _connect_writer(path)
        try:
            conn.execute(_BEGIN)
            create_tables(conn)
            meta = read_meta(conn)
            vkey = log_verifier(origin, log_key.verify_key).vkey
            if not meta:
                conn.executemany("INSERT INTO ledger_meta (key, value) VALUES (?, ?)",
                                 [("format", STORE_FORMAT), ("origin", origin),
                                  ("log_vkey", vkey)])
                meta = read_meta(conn)
            _check_origin(meta, origin)
            if meta.get("log_vkey") != vkey:
                raise WrongKey("the log key is not the one this ledger was created with")
            size, subtrees, last_leaf = _load_edge(conn)
            edge = TreeEdge(size, subtrees)
            _check_against_newest_checkpoint(conn, edge, origin, log_key.verify_key)
            conn.execute(_COMMIT)
        except BaseException:
            if conn.in_transaction:
                conn.execute(_ROLLBACK)
            conn.close()
            raise
        return cls(path, origin, log_key, conn, edge, last_leaf)

    def close(self) -> None:
        """Finish the units queued by threads, wait for a batch being committed, close
        the connections. (An event loop's caller first awaits ``drain``.)"""
        if getattr(self._local, "in_unit", False):
            raise LedgerError("a unit of work may not close the ledger")
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            own, self._own = self._own, None
        if own is not None:
            asyncio.run_coroutine_threadsafe(self.drain(), own.loop).result()
            own.stop()
        if self._conn is not None:
            with self._write_lock:
                self._conn.close()
                self._conn = None
        if self._committer is not None:
            self._committer.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    async def drain(self) -> None:
        """Wait until every unit queued from this event loop is committed."""
        batcher = self._batchers.get(asyncio.get_running_loop())
        if batcher is not None and batcher.busy:
            waiter = batcher.loop.create_future()
            batcher.idle.append(waiter)
            await waiter

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def _queue(self, events: Sequence[bytes] | None = None, fn: _Work | None = None, *,
               admitted: bool = False) -> asyncio.Future[Any]:
        """Queue a unit with the running loop's batcher; units queued from one loop run
        in the order they were queued. ``admitted``: a thread's unit, checked when it
        was handed over (``_run``), so a close() since then still lets it finish."""
        loop = asyncio.get_running_loop()
        with self._submit_lock:
            if not admitted:
                self._check_writable()
            batcher = self._batchers.get(loop)
            if batcher is None:
                # A new loop: forget those closed since (tests and tools make many).
                for old in [old for old in self._batchers if old.is_closed()]:
                    del self._batchers[old]
                batcher = self._batchers[loop] = _Batcher(self, loop)
        unit = _Unit(events, fn, loop.create_future())
        batcher.add(unit)
        return unit.future

    def _check_writable(self) -> None:
        if self._log_key is None:
            raise ReadOnly("this ledger was opened without the log key")
        if self._closed:
            raise Closed("the ledger is closed")
        if getattr(self._local, "in_unit", False):
            raise LedgerError("a unit of work may not wait for another unit of work")

    def _run(self, events: Sequence[bytes] | None = None, fn: _Work | None = None) -> Any:
        """For a caller without an event loop: the unit goes to the ledger's own loop."""
        with self._submit_lock:
            self._check_writable()
            if self._own is None:
                self._own = _OwnLoop()
            latch = _Latch()
            # Under the lock: close() then drains the own loop after this unit is queued,
            # never stops it before.
            self._own.loop.call_soon_threadsafe(self._queue_for, latch, events, fn)
        return latch.wait()

    def _queue_for(self, latch: _Latch, events: Sequence[bytes] | None,
                   fn: _Work | None) -> None:
        """On the ledger's own loop: queue a thread's unit; its outcome opens ``latch``."""
        try:
            future = self._queue(events, fn, admitted=True)
        except BaseException as e:
            latch.open(None, e)
            return
        future.add_done_callback(lambda f: latch.open(*_outcome(f)))

    def append(self, event: Event) -> Appended:
        """Append one event; return once it is on disk."""
        appended: list[Appended] = self._run([encode_event(event)])
        return appended[0]

    async def append_async(self, event: Event) -> Appended:
        appended: list[Appended] = await self._queue([encode_event(event)])
        return appended[0]

    def append_many(self, events: Iterable[Event]) -> list[Appended]:
        """Append events in order, in one transaction; return once all are on disk."""
        return self._run([encode_event(e) for e in events])  # type: ignore[no-any-return]

    def transact(self, fn: Callable[[sqlite3.Connection, Appender], T]) -> T:
        """Run ``fn`` in a batch's transaction (see the module doc for the rules)."""
        return self._run(fn=fn)  # type: ignore[no-any-return]

    async def transact_async(self, fn: Callable[[sqlite3.Connection, Appender], T]) -> T:
        """``transact`` for asyncio: ``fn`` runs on this loop's thread. The unit is queued
        before this coroutine first yields, so units queued by tasks in turn run in that
        order."""
        return await self._queue(fn=fn)  # type: ignore[no-any-return]

    def checkpoint(self) -> SignedCheckpoint:
        """Sign and keep a checkpoint at the current size (or return the one there is)."""
        return self.transact(self._checkpoint_unit)

    async def checkpoint_async(self) -> SignedCheckpoint:
        return await self.transact_async(self._checkpoint_unit)

    def add_cosignature(self, size: int, cosignature_line: str,
                        witness: VerifyKey | NoteVerifier | None = None) -> None:
        """Keep a witness's cosignature of our checkpoint at ``size``.

        With ``witness`` (its key, or its note verifier key) the line is verified first
        and refused with ``ledger.bad_cosignature`` if it does not hold.
        """
        self.transact(_cosignature_unit(size, cosignature_line, witness))

    async def add_cosignature_async(self, size: int, cosignature_line: str,
                                    witness: VerifyKey | NoteVerifier | None = None) -> None:
        await self.transact_async(_cosignature_unit(size, cosignature_line, witness))

    def _checkpoint_unit(self, conn: sqlite3.Connection, appender: Appender) -> SignedCheckpoint:
        assert self._log_key is not None and appender._batch is not None
        edge = appender._batch.edge
        row = conn.execute("SELECT note FROM ledger_checkpoints WHERE size = ?",
                           (edge.size,)).fetchone()
        if row is not None:
            return _signed(conn, edge.size, row[0])
        signed = sign_checkpoint(Checkpoint(self.origin, edge.size, edge.root()), self._log_key)
        conn.execute("INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)",
                     (edge.size, signed.note))
        return signed

    # --- writing a batch -----------------------------------------------------------------

    def _stage(self, units: list[_Unit]) -> _Batch:
        """With the write lock held: begin, run every unit (each in its own savepoint),
        write the entries and tree nodes. The COMMIT is ``_commit``'s."""
        conn = self._conn
        if conn is None:
            raise Closed("the ledger is closed")
        with self._state_lock:
            batch = _Batch(self._edge, self._last_leaf)
        try:
            conn.execute(_BEGIN)
            for unit in units:
                self._run_unit(conn, batch, unit)
            try:
                conn.executemany("INSERT INTO ledger_entries (idx, entry, leaf_hash) "
                                 "VALUES (?, ?, ?)", batch.entries)
            except sqlite3.IntegrityError:
                # Our next index is taken: another process appended behind our back.
                raise ConcurrentWriter("another process writes this ledger") from None
            if batch.nodes:
                conn.executemany("INSERT INTO ledger_nodes (id, hash) VALUES (?, ?)",
                                 batch.nodes)
        except Exception as e:
            raise self._failed(conn, e) from None
        except BaseException:
            self._failed(conn, WriteFailed("interrupted"))
            raise
        return batch

    def _commit(self, batch: _Batch) -> None:
        """On the committer thread: COMMIT (the fsync, with the GIL released), publish
        the new tree edge, and release the write lock whatever happens."""
        conn = self._conn
        try:
            assert conn is not None
            try:
                conn.execute(_COMMIT)
            except Exception as e:
                raise self._failed(conn, e) from None
            with self._state_lock:
                self._edge, self._last_leaf = batch.edge, batch.last_leaf
        finally:
            self._write_lock.release()

    @staticmethod
    def _failed(conn: sqlite3.Connection, error: Exception) -> LedgerError:
        """The transaction is gone either way; every caller of the batch learns why."""
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute(_ROLLBACK)
        return error if isinstance(error, LedgerError) else WriteFailed(
            f"the ledger transaction failed ({type(error).__name__})")

    def _run_unit(self, conn: sqlite3.Connection, batch: _Batch, unit: _Unit) -> None:
        """Run one unit into ``batch``; its outcome waits on the unit until the commit."""
        if unit.fn is None:
            assert unit.events is not None
            unit.result = [batch.add(event_der) for event_der in unit.events]
            return
        mark = batch.mark()
        appender = Appender(batch)
        conn.execute(_SAVEPOINT)
        self._local.in_unit = True
        self._guard.active, self._guard.refused = True, False
        try:
            unit.result = unit.fn(conn, appender)
        except Exception as e:
            unit.error = self._guard.explain(e)
        finally:
            self._guard.active = False
            appender._batch = None
            self._local.in_unit = False
        if not conn.in_transaction:
            # The guard sees statements only when prepared: an ending one can slip by.
            raise WriteFailed("a unit of work ended the ledger's transaction")
        if unit.error is not None:
            conn.execute(_ROLLBACK_TO)
            batch.restore(mark)
        conn.execute(_RELEASE)

    # --- reading -------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                if self._closed:
                    raise Closed("the ledger is closed")
                conn = _connect_reader(self.path)
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @property
    def size(self) -> int:
        """Entries committed so far."""
        return self._edge.size

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise OutOfRange(f"tree size {size} is beyond the ledger's {self.size} entries")

    def root(self, size: int | None = None) -> bytes:
        """The tree root at ``size`` (default: now)."""
        if size is None:
            with self._state_lock:
                return self._edge.root()
        self._check_size(size)
        nodes = root_nodes(size)
        hashes = fetch_nodes(self._reader(), nodes)
        return fold([hashes[node] for node in nodes])

    def _proof(self, steps: list[ProofStep]) -> list[bytes]:
        hashes = fetch_nodes(self._reader(), (node for step in steps for node in step))
        return [fold([hashes[node] for node in step]) for step in steps]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 ``PATH(index, D[0:size])``."""
        self._check_size(size)
        return self._proof(inclusion(index, size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 ``PROOF(old, D[0:new])``."""
        self._check_size(new)
        return self._proof(consistency(old, new))

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise OutOfRange(f"index {index} is beyond the ledger's {self.size} entries")
        return fetch_nodes(self._reader(), [NodeId(0, index)])[NodeId(0, index)]

    def raw_entries(self, start: int = 0, end: int | None = None
                    ) -> Iterator[tuple[int, bytes, bytes]]:
        """``(index, entry DER, leaf hash)`` for ``start <= index < end``, in order."""
        end = self.size if end is None else min(end, self.size)
        cursor = self._reader().execute(
            "SELECT idx, entry, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? "
            "ORDER BY idx", (start, end))
        for index, der, leaf in cursor:
            yield index, bytes(der), bytes(leaf)

    def entry(self, index: int) -> StoredEntry:
        found = self.entries(index, index + 1)
        if not found:
            raise OutOfRange(f"index {index} is beyond the ledger's {self.size} entries")
        return found[0]

    def entries(self, start: int = 0, end: int | None = None) -> list[StoredEntry]:
        """Decoded entries ``start <= index < end`` (decoding is slow: keep ranges short)."""
        return [decode_entry(der) for _, der, _ in self.raw_entries(start, end)]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        conn = self._reader()
        row = conn.execute("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC "
                           "LIMIT 1").fetchone()
        return None if row is None else _signed(conn, row[0], row[1])

    def checkpoints(self) -> list[SignedCheckpoint]:
        conn = self._reader()
        rows = conn.execute("SELECT size, note FROM ledger_checkpoints ORDER BY size"
                            ).fetchall()
        return [_signed(conn, size, note) for size, note in rows]


# --- helpers -----------------------------------------------------------------------------


def _connect_writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Units of work read their own rows by column name, as the node's code does.
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    sqlite_utils.Database(conn).enable_wal()
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _connect_reader(path: Path) -> sqlite3.Connection:
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _check_origin(meta: dict[str, str], origin: str) -> None:
    if not meta:
        raise NotALedger("the database holds no ledger")
    if meta.get("origin") != origin:
        raise WrongOrigin(f"this ledger's origin is {meta.get('origin')!r}, not {origin!r}")


def _load_edge(conn: sqlite3.Connection) -> tuple[int, list[bytes], bytes]:
    """The tree's right edge as stored: size, edge subtree hashes, last leaf hash.

    O(log n) reads, so opening a large ledger is instant. A row missing in the middle
    (only damage can do that: every transaction is whole) is the audit's to find.
    """
    size = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries").fetchone()[0]
    nodes = root_nodes(size)
    last = NodeId(0, size - 1) if size else None
    hashes = fetch_nodes(conn, [*nodes, *([last] if last else [])])
    return size, [hashes[node] for node in nodes], hashes[last] if last else ZERO_HASH


def _signed(conn: sqlite3.Connection, size: int, note_text: str) -> SignedCheckpoint:
    """A stored checkpoint with the cosignatures kept for it (parsed, not verified)."""
    note = parse_note(note_text)
    checkpoint = parse_checkpoint_body(note.text)
    if checkpoint.size != size:
        raise BadCheckpoint(f"the checkpoint stored for size {size} is for size "
                            f"{checkpoint.size}")
    lines = conn.execute("SELECT line FROM ledger_cosignatures WHERE size = ? ORDER BY rowid",
                         (size,)).fetchall()
    return SignedCheckpoint(checkpoint,
                            note.with_signatures(*(parse_signature_line(r[0]) for r in lines)))


def _check_against_newest_checkpoint(conn: sqlite3.Connection, edge: TreeEdge, origin: str,
                                     key: VerifyKey) -> None:
    """Refuse to extend a ledger that lost entries its newest checkpoint covers, or whose
    tree no longer hashes to what was signed: signing on top would fork the log."""
    row = conn.execute("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
                       ).fetchone()
    if row is None:
        return
    signed = open_checkpoint(row[1], log_verifier(origin, key))
    if signed.size > edge.size:
        raise Truncated(f"the newest checkpoint covers {signed.size} entries, the ledger "
                        f"holds {edge.size}", index=edge.size)
    nodes = root_nodes(signed.size)
    hashes = fetch_nodes(conn, nodes)
    if fold([hashes[n] for n in nodes]) != signed.root:
        raise CheckpointMismatch("the stored tree does not hash to the signed root",
                                 index=max(signed.size - 1, 0), size=signed.size)
