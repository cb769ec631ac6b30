"""The SQLite ledger: durable appends, group commit shared by concurrent appenders with a
total, gap-free order, units of work atomic with the caller's own rows, checkpoints and
cosignatures, and refusal to extend a damaged ledger."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.bundle import verify_file
from ledger.entry import ZERO_HASH, Event
from ledger.errors import (
    BadCosignature,
    Closed,
    ConcurrentWriter,
    LedgerError,
    NoCheckpoint,
    NotALedger,
    ReadOnly,
    Truncated,
    WriteFailed,
    WrongKey,
    WrongOrigin,
)
from ledger.note import cosign_body, cosignatures_by, log_verifier, open_checkpoint
from ledger.note import witness_verifier as make_witness
from ledger.store import Appender, Ledger
from ledger.verify import verify_consistency, verify_inclusion

ORIGIN = "kz.gateway.test/ledger"
KEY = SigningKey(bytes(32))
WITNESS_KEY = SigningKey(bytes([7]) * 32)
WITNESS = "by.gateway.test/ledger/witness"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(n: int = 0, type: str = "operator_action") -> Event:
    return Event(type=type, time=T0, envelope_id=n.to_bytes(16, "big"),
                 from_authority="KZ-MVD", details=(("n", n),))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "node.db"


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as opened:
        yield opened


def audit(path: Path) -> int:
    return verify_file(path, log=log_verifier(ORIGIN, KEY.verify_key)).size


# --- appends -----------------------------------------------------------------------------


def test_append_returns_place_and_leaf_and_survives_reopen(path: Path) -> None:
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        first = ledger.append(event(0))
        second = ledger.append(event(1))
        assert (first.index, second.index) == (0, 1)
        root = ledger.root()
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        assert ledger.size == 2 and ledger.root() == root
        entries = ledger.entries()
        assert [e.event for e in entries] == [event(0), event(1)]
        assert entries[0].prev_leaf_hash == ZERO_HASH
        assert entries[1].prev_leaf_hash == entries[0].leaf_hash == first.leaf_hash
        assert ledger.append(event(2)).index == 2
    assert audit(path) == 3


def test_append_many_is_one_ordered_unit(ledger: Ledger) -> None:
    appended = ledger.append_many(event(n) for n in range(100))
    assert [a.index for a in appended] == list(range(100))
    assert [e.event.details for e in ledger.entries(40, 43)] == [(("n", n),) for n in (40, 41,
                                                                                        42)]
    assert ledger.entry(99).leaf_hash == appended[-1].leaf_hash


def test_proofs_from_the_store_verify(ledger: Ledger) -> None:
    ledger.append_many(event(n) for n in range(1000))
    root = ledger.root()
    for index in (0, 1, 511, 512, 999):
        verify_inclusion(index, 1000, ledger.leaf_hash(index),
                         ledger.inclusion_proof(index, 1000), root)
    for old in (1, 7, 512, 999, 1000):
        verify_consistency(old, 1000, ledger.consistency_proof(old, 1000), ledger.root(old),
                           root)


def test_read_only_ledger(path: Path, ledger: Ledger) -> None:
    ledger.append(event())
    reader = Ledger.open(path, origin=ORIGIN, log_key=None)
    try:
        assert reader.size == 1 and reader.root() == ledger.root()
        with pytest.raises(ReadOnly):
            reader.append(event())
    finally:
        reader.close()


def test_open_refusals(path: Path, tmp_path: Path) -> None:
    with pytest.raises(NotALedger):
        Ledger.open(tmp_path / "absent.db", origin=ORIGIN, log_key=None)
    Ledger.open(path, origin=ORIGIN, log_key=KEY).close()
    with pytest.raises(WrongOrigin):
        Ledger.open(path, origin="other.test/ledger", log_key=KEY)
    with pytest.raises(WrongKey):
        Ledger.open(path, origin=ORIGIN, log_key=SigningKey.generate())
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(NotALedger):
        Ledger.open(plain, origin=ORIGIN, log_key=None)


def test_closed_ledger_refuses_work(path: Path) -> None:
    ledger = Ledger.open(path, origin=ORIGIN, log_key=KEY)
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(Closed):
        ledger.append(event())


# --- concurrency and group commit --------------------------------------------------------


def test_32_threads_share_commits_in_a_total_gap_free_order(path: Path, ledger: Ledger) -> None:
    per_thread = 25
    seen: dict[int, list[int]] = {}

    def appender(worker: int) -> None:
        seen[worker] = [ledger.append(event(worker * 1000 + n)).index for n in range(per_thread)]

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    indices = sorted(i for got in seen.values() for i in got)
    assert indices == list(range(32 * per_thread))
    assert all(got == sorted(got) for got in seen.values())  # each caller's order is kept
    # The event each caller got back is the one stored at that index.
    for worker, got in seen.items():
        stored = [e.event.envelope_id for e in (ledger.entry(i) for i in got[:3])]
        assert stored == [(worker * 1000 + n).to_bytes(16, "big") for n in range(3)]
    ledger.close()
    assert audit(path) == 32 * per_thread


async def test_32_tasks_share_commits_in_a_total_gap_free_order(path: Path,
                                                                ledger: Ledger) -> None:
    async def appender(worker: int) -> list[int]:
        return [(await ledger.append_async(event(worker * 1000 + n))).index for n in range(25)]

    results = await asyncio.gather(*(appender(w) for w in range(32)))
    assert sorted(i for got in results for i in got) == list(range(800))
    assert all(got == sorted(got) for got in results)
    ledger.close()
    assert audit(path) == 800


async def test_a_failing_unit_rolls_back_only_itself(ledger: Ledger) -> None:
    """fn's own rows and entries go together; a failing unit takes nobody else down."""
    await ledger.transact_async(
        lambda db, a: db.execute("CREATE TABLE outbox (id INTEGER, idx INTEGER)"))

    def good(n: int):  # type: ignore[no-untyped-def]
        def unit(db: sqlite3.Connection, appender: Appender) -> int:
            index = appender.append(event(n)).index
            db.execute("INSERT INTO outbox VALUES (?, ?)", (n, index))
            return index
        return unit

    def bad(db: sqlite3.Connection, appender: Appender) -> None:
        appender.append(event(666))
        db.execute("INSERT INTO outbox VALUES (666, -1)")
        raise ValueError("refused by the node's rules")

    sizes: list[int] = []

    def size_seen(db: sqlite3.Connection, appender: Appender) -> None:
        sizes.append(appender.size)

    # Queued in one turn of the loop, the four units run in one batch, in this order.
    results = await asyncio.gather(
        ledger.transact_async(good(1)), ledger.transact_async(bad),
        ledger.transact_async(good(2)), ledger.transact_async(size_seen),
        return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert (results[0], results[2]) == (0, 1)  # gap-free: the failed unit left no hole
    assert sizes == [2]
    rows = ledger._reader().execute("SELECT id, idx FROM outbox ORDER BY idx").fetchall()
    assert rows == [(1, 0), (2, 1)]
    assert [e.event.details for e in ledger.entries()] == [(("n", 1),), (("n", 2),)]


async def test_units_queued_while_a_batch_commits_share_the_next_commit(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: one COMMIT for every unit queued while the previous one ran."""
    commits: list[int] = []
    committer = ledger._committer
    assert committer is not None
    real_commit = committer._commit

    def counting_commit(batch: Any) -> None:
        commits.append(len(batch.entries))
        real_commit(batch)

    monkeypatch.setattr(committer, "_commit", counting_commit)
    first = asyncio.ensure_future(ledger.append_async(event(0)))
    await asyncio.sleep(0)  # the first batch starts alone
    rest = [asyncio.ensure_future(ledger.append_async(event(n))) for n in range(1, 50)]
    await asyncio.gather(first, *rest)
    assert commits == [1, 49]


def test_units_see_rows_by_column_name(ledger: Ledger) -> None:
    def unit(db: sqlite3.Connection, appender: Appender) -> str:
        return str(db.execute("SELECT 'x' AS name").fetchone()["name"])

    assert ledger.transact(unit) == "x"


async def test_transact_async_keeps_submission_order(ledger: Ledger) -> None:
    def unit(n: int):  # type: ignore[no-untyped-def]
        return lambda db, appender: appender.append(event(n)).index

    indices = await asyncio.gather(*(ledger.transact_async(unit(n)) for n in range(20)))
    assert list(indices) == list(range(20))
    assert [e.event.details[0][1] for e in ledger.entries()] == list(range(20))


def test_a_unit_may_not_wait_for_another(ledger: Ledger) -> None:
    with pytest.raises(LedgerError):
        ledger.transact(lambda db, appender: ledger.append(event()))
    assert ledger.size == 0


@pytest.mark.parametrize("escape", [
    lambda db: db.execute("COMMIT"),
    lambda db: db.execute("ROLLBACK"),
    lambda db: db.execute("BEGIN"),
    lambda db: db.execute("SAVEPOINT mine"),
    lambda db: db.execute("ROLLBACK TO SAVEPOINT ledger_unit"),
    lambda db: db.commit(),
    lambda db: db.executescript("SELECT 1"),
], ids=["commit", "rollback", "begin", "savepoint", "rollback_to", "commit()",
        "executescript"])
async def test_a_unit_may_not_end_or_nest_the_transaction(path: Path, ledger: Ledger,
                                                          escape: Any) -> None:
    """A unit that committed would make the rows of the units before it in the batch
    durable without their ledger entries: it is refused when its statement is prepared,
    and fails alone; the unit before it commits whole, rows and entry."""
    await ledger.transact_async(lambda db, appender: db.execute("CREATE TABLE t (n INTEGER)"))

    def before(db: sqlite3.Connection, appender: Appender) -> int:
        db.execute("INSERT INTO t VALUES (1)")
        return appender.append(event(1)).index

    def escaping(db: sqlite3.Connection, appender: Appender) -> None:
        appender.append(event(2))
        db.execute("INSERT INTO t VALUES (2)")
        escape(db)

    outcomes = await asyncio.gather(ledger.transact_async(before),
                                    ledger.transact_async(escaping), return_exceptions=True)
    assert outcomes[0] == 0
    assert isinstance(outcomes[1], LedgerError)
    assert outcomes[1].code == "ledger.unit_transaction"
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT n FROM t").fetchall() == [(1,)]
    assert audit(path) == 1


def test_a_unit_that_ends_the_transaction_fails_its_batch(ledger: Ledger) -> None:
    """If a unit still ends the transaction (the guard is asked only when a statement is
    prepared, and the ledger's own COMMIT was prepared before), the batch fails whole,
    and the writer goes on."""
    ledger.append(event())  # the ledger's COMMIT is prepared now
    with pytest.raises(WriteFailed):
        ledger.transact(lambda db, appender: (appender.append(event()),
                                              db.execute("COMMIT TRANSACTION")))
    assert ledger.size == 1
    assert ledger.append(event()).index == 1


async def test_a_unit_raising_stop_iteration_fails_alone(ledger: Ledger) -> None:
    """A future refuses StopIteration; the unit's caller gets it wrapped, and the other
    callers of the batch and later writes go on."""
    outcomes = await asyncio.gather(
        ledger.transact_async(lambda db, appender: next(iter([]))),
        ledger.append_async(event(1)), return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError)
    assert isinstance(outcomes[0].__cause__, StopIteration)
    assert outcomes[1].index == 0
    assert (await ledger.append_async(event(2))).index == 1
    await asyncio.wait_for(ledger.drain(), 5)


def test_appender_is_dead_after_its_unit(ledger: Ledger) -> None:
    kept: list[Appender] = []
    ledger.transact(lambda db, appender: kept.append(appender))
    with pytest.raises(Closed):
        kept[0].append(event())


def test_a_second_writer_is_detected(path: Path, ledger: Ledger) -> None:
    ledger.append(event())
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as other:
        other.append(event(1))
    with pytest.raises(ConcurrentWriter):
        ledger.append(event(2))


def test_reads_from_many_threads_while_writing(ledger: Ledger) -> None:
    ledger.append_many(event(n) for n in range(64))
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                size = ledger.size
                verify_inclusion(size - 1, size, ledger.leaf_hash(size - 1),
                                 ledger.inclusion_proof(size - 1, size), ledger.root(size))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(50):
        ledger.append(event(n))
    for thread in threads:
        thread.join()
    assert errors == []


# --- checkpoints and cosignatures --------------------------------------------------------


def test_checkpoints_are_signed_kept_and_idempotent(ledger: Ledger) -> None:
    log = log_verifier(ORIGIN, KEY.verify_key)
    assert ledger.latest_checkpoint() is None
    empty = ledger.checkpoint()
    assert empty.size == 0
    ledger.append_many(event(n) for n in range(5))
    five = ledger.checkpoint()
    assert ledger.checkpoint() == five  # same size: the same checkpoint, not a new one
    assert open_checkpoint(five.note, log).checkpoint == five.checkpoint
    assert five.root == ledger.root(5)
    ledger.append(event())
    six = ledger.checkpoint()
    assert [c.size for c in ledger.checkpoints()] == [0, 5, 6]
    assert ledger.latest_checkpoint() == six


async def test_checkpoint_async(ledger: Ledger) -> None:
    await ledger.append_async(event())
    assert (await ledger.checkpoint_async()).size == 1


def test_cosignatures_are_verified_and_kept(ledger: Ledger) -> None:
    ledger.append_many(event(n) for n in range(3))
    checkpoint = ledger.checkpoint()
    line = cosign_body(checkpoint.checkpoint.body, 1_800_000_000, WITNESS, WITNESS_KEY).line
    ledger.add_cosignature(3, line, WITNESS_KEY.verify_key)
    ledger.add_cosignature(3, line.rstrip("\n"), WITNESS_KEY.verify_key)  # again: no duplicate
    latest = ledger.latest_checkpoint()
    assert latest is not None and latest.note.count("\u2014 ") == 2
    assert cosignatures_by(latest.signed, make_witness(WITNESS, WITNESS_KEY.verify_key)) \
        == [1_800_000_000]
    with pytest.raises(BadCosignature):
        ledger.add_cosignature(3, line, SigningKey.generate().verify_key)
    with pytest.raises(NoCheckpoint):
        ledger.add_cosignature(4, line, WITNESS_KEY.verify_key)


# --- damage found at open ----------------------------------------------------------------


def _damage(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_open_refuses_a_ledger_cut_below_its_checkpoint(path: Path) -> None:
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        ledger.append_many(event(n) for n in range(10))
        ledger.checkpoint()
    _damage(path, "DELETE FROM ledger_entries WHERE idx >= 7")
    with pytest.raises(Truncated) as caught:
        Ledger.open(path, origin=ORIGIN, log_key=KEY)
    assert caught.value.index == 7


async def test_a_thread_and_an_event_loop_write_at_once(path: Path, ledger: Ledger) -> None:
    """Units from a thread (the ledger's own loop) and from this loop share one
    connection: the write lock keeps their batches apart, and the order stays total."""
    from_thread: list[int] = []

    def thread_appends() -> None:
        from_thread.extend(ledger.append(event(10_000 + n)).index for n in range(100))

    thread = threading.Thread(target=thread_appends)
    thread.start()
    from_loop = []
    for n in range(20):
        got = await asyncio.gather(*(ledger.append_async(event(n * 10 + k)) for k in range(10)))
        from_loop.extend(a.index for a in got)
    await asyncio.to_thread(thread.join)
    assert sorted(from_thread + from_loop) == list(range(300))
    assert from_thread == sorted(from_thread) and from_loop == sorted(from_loop)
    await ledger.drain()
    ledger.close()
    assert audit(path) == 300


async def test_drain_waits_for_queued_units(ledger: Ledger) -> None:
    pending = [asyncio.ensure_future(ledger.append_async(event(n))) for n in range(30)]
    await asyncio.sleep(0)
    await ledger.drain()
    assert all(p.done() for p in pending)
    assert ledger.size == 30


class _FailingCommit:
    """The write connection, except that the next COMMIT fails as a full or broken disk
    would (a fault that cannot be made real here)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.armed = True

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("COMMIT") and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


async def test_a_failed_commit_fails_its_batch_and_the_next_one_goes_on(path: Path,
                                                                      ledger: Ledger) -> None:
    """Nothing is acknowledged that did not commit: every caller of the batch gets
    ledger.write_failed, the tree does not move, and later batches commit normally."""
    real = ledger._conn
    assert real is not None
    ledger._conn = _FailingCommit(real)  # type: ignore[assignment]
    outcomes = await asyncio.gather(*(ledger.append_async(event(n)) for n in range(5)),
                                    return_exceptions=True)
    assert all(isinstance(o, WriteFailed) for o in outcomes)
    assert ledger.size == 0
    assert [a.index for a in await asyncio.gather(
        *(ledger.append_async(event(n)) for n in range(3)))] == [0, 1, 2]
    ledger._conn = real
    await ledger.drain()
    ledger.close()
    assert audit(path) == 3


def test_batchers_of_closed_loops_are_forgotten(ledger: Ledger) -> None:
    for n in range(5):
        asyncio.run(ledger.append_async(event(n)))
    assert len(ledger._batchers) == 1
    assert ledger.size == 5


def finishes(fn: Any, seconds: float = 5.0) -> list[Any]:
    """Run ``fn`` on a daemon thread: a regression that hangs fails the test instead of
    stalling the run. Returns [result] or [exception]; [] if it did not finish."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return outcome


def held_by_a_slow_unit(ledger: Ledger) -> tuple[threading.Thread, threading.Event]:
    """A thread whose unit runs (holding the write lock and the ledger's own loop) until
    the event returned is set."""
    started, release = threading.Event(), threading.Event()

    def slow(db: sqlite3.Connection, appender: Appender) -> None:
        started.set()
        release.wait(5)

    holder = threading.Thread(target=lambda: ledger.transact(slow))
    holder.start()
    assert started.wait(5)
    return holder, release


def test_a_unit_may_not_close_the_ledger(path: Path) -> None:
    ledger = Ledger.open(path, origin=ORIGIN, log_key=KEY)  # closed below, or abandoned
    outcome = finishes(lambda: ledger.transact(lambda db, appender: ledger.close()))
    assert outcome and isinstance(outcome[0], LedgerError)
    assert finishes(lambda: ledger.append(event()).index) == [0]
    assert finishes(ledger.close) == [None]


def test_a_loop_closed_while_waiting_for_the_write_lock_leaves_it_free(path: Path) -> None:
    """A loop's batch waits for another's in an executor thread; if that loop is closed
    meanwhile, the lock it then gets is given back, and the ledger goes on."""
    ledger = Ledger.open(path, origin=ORIGIN, log_key=KEY)  # closed below, or abandoned
    holder, release = held_by_a_slow_unit(ledger)
    loop = asyncio.new_event_loop()
    task = loop.create_task(ledger.append_async(event(1)))
    loop.run_until_complete(asyncio.sleep(0.05))  # its batch now waits for the lock
    task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    release.set()
    holder.join(5)
    assert finishes(lambda: ledger.append(event(2)).index) == [0]
    assert finishes(ledger.close) == [None]


def test_a_unit_raising_system_exit_fails_its_batch_and_the_ledger_goes_on(path: Path
                                                                           ) -> None:
    """On the ledger's own thread (callers without an event loop) a unit raising a
    BaseException used to stop that thread's loop: its callers and every later one
    waited for ever."""
    ledger = Ledger.open(path, origin=ORIGIN, log_key=KEY)  # closed below, or abandoned

    def leaves(db: sqlite3.Connection, appender: Appender) -> None:
        appender.append(event(1))
        raise SystemExit(3)

    outcome = finishes(lambda: ledger.transact(leaves))
    assert outcome and isinstance(outcome[0], WriteFailed)
    assert finishes(lambda: ledger.append(event(2)).index) == [0]
    assert finishes(ledger.close) == [None]


def test_a_threads_unit_handed_over_before_close_is_finished(path: Path) -> None:
    """close() lets a unit finish that a thread handed over before it (the docstring's
    promise): it used to be refused with ledger.closed once its turn came."""
    ledger = Ledger.open(path, origin=ORIGIN, log_key=KEY)  # closed below, or abandoned
    holder, release = held_by_a_slow_unit(ledger)  # the own loop is busy in that unit
    outcome: list[Any] = []
    waiter = threading.Thread(target=lambda: outcome.append(ledger.append(event(1))),
                              daemon=True)
    waiter.start()
    own = ledger._own
    assert own is not None
    deadline = time.monotonic() + 5
    while not own.loop._ready and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)  # until the waiter's unit is handed over (queued on that loop)
    closer = threading.Thread(target=ledger.close, daemon=True)
    closer.start()
    release.set()
    closer.join(5)
    waiter.join(5)
    holder.join(5)
    assert not closer.is_alive() and outcome and outcome[0].index == 0
