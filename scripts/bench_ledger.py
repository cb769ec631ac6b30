"""Ledger benchmark (issue 3, item 10), side by side with pymerkle 7.0.0's SqliteTree on
the same entries: ``scripts/bench ledger [--entries N] [--appends N] …``.

1. Durable appends (each returns only once on disk): one appender, then 32 concurrent
   appenders (threads, and asyncio tasks as the node runs them). pymerkle's connection
   gets the same WAL + ``synchronous=FULL`` so both pay for the same durability.
2. A ledger of ``--entries`` (default 1,000,000) entries for each; pymerkle is fed the
   very entry bytes of ours.
3. Proof generation: inclusion and consistency, warm (many proofs in one process) and
   cold (a fresh process: open, then the first proof).
4. Full offline verification of an exported bundle (and of the node database), beside
   a raw baseline measured in the same run: read every entry, hash it, fold the root.

Figures depend on the machine and its neighbours; each is printed beside its goal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.bundle import LedgerSource, export_bundle, verify_file  # noqa: E402
from ledger.entry import EVENT_TYPES, Event  # noqa: E402
from ledger.hashing import hash_leaf  # noqa: E402
from ledger.note import log_verifier  # noqa: E402
from ledger.store import Ledger  # noqa: E402
from ledger.tree import TreeEdge  # noqa: E402

ORIGIN = "kz.gateway.bench/ledger"
KEY = SigningKey(bytes(range(32)))
AUTHORITIES = ("KZ-MVD", "KZ-MLSP", "BY-MVD", "BY-GPK")
TYPES = sorted(EVENT_TYPES)
GOALS = {
    "appends32": 20_000,     # durable appends/s with 32 appenders
    "proof_ratio": 2.0,      # proof generation vs pymerkle's SqliteTree
    "cold_ms": 5.0,          # a proof in a fresh process
    "verify": 100_000,       # offline verification, entries/s
}


def events(count: int, seed: int = 1) -> Iterator[Event]:
    """Realistic events: every field a node fills, random ids and hashes, a detail."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        yield Event(
            type=TYPES[n % len(TYPES)],
            time=start + timedelta(microseconds=n * 1_000_003),
            envelope_id=rng.randbytes(16), case_id=rng.randbytes(16),
            from_authority=AUTHORITIES[n % 4], to_authority=AUTHORITIES[(n + 2) % 4],
            envelope_hash=rng.randbytes(32), signatory_key_id=rng.randbytes(16),
            details=(("kind", "request"), ("attempt", n % 7)))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<44} {value:>22}  {goal}")


# --- 1. durable appends ------------------------------------------------------------------


def pymerkle_tree(path: Path):  # type: ignore[no-untyped-def]
    from pymerkle import SqliteTree

    tree = SqliteTree(str(path))
    tree.con.execute("PRAGMA journal_mode = WAL")
    tree.con.execute("PRAGMA synchronous = FULL")
    return tree


def threaded(appenders: int, work: list[list[object]], append: Callable[[object], object]
             ) -> float:
    def run(items: list[object]) -> None:
        for item in items:
            append(item)

    threads = [threading.Thread(target=run, args=(work[i],)) for i in range(appenders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def split(items: list[object], parts: int) -> list[list[object]]:
    return [items[i::parts] for i in range(parts)]


def raw_commits(path: Path, rows: int) -> float:
    """Baseline: bare SQLite, WAL, synchronous=FULL, one row per commit (fsync-bound)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, entry BLOB, hash BLOB)")
    started = time.perf_counter()
    for i in range(rows):
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (i, bytes(200), bytes(32)))
    seconds = time.perf_counter() - started
    conn.close()
    return rate(rows, seconds)


def bench_appends(workdir: Path, count: int) -> dict[str, float]:
    print(f"\n1. Durable appends ({count:,} per run; events made beforehand)")
    figures: dict[str, float] = {}
    single = max(count // 4, 1000)
    figures["raw"] = raw_commits(workdir / "raw.db", single)
    line("baseline: bare SQLite, one commit per row", f"{figures['raw']:,.0f} /s",
         "(fsync-bound: the disk right now)")
    for appenders in (1, 32):
        n = single if appenders == 1 else count
        path = workdir / f"append-{appenders}.db"
        with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
            prepared = list(events(n, seed=appenders))
            seconds = threaded(appenders, split(prepared, appenders),  # type: ignore[arg-type]
                               lambda e: ledger.append(e))  # type: ignore[arg-type]
        figures[f"ours_threads_{appenders}"] = rate(n, seconds)
        line(f"ledger, {appenders} appender thread(s)", f"{rate(n, seconds):,.0f} /s",
             f"(goal >= {GOALS['appends32']:,} /s)" if appenders == 32 else "")
    path = workdir / "append-tasks.db"
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        prepared = split(list(events(count, seed=3)), 32)

        async def task(items: list[object]) -> None:
            for item in items:
                await ledger.append_async(item)  # type: ignore[arg-type]

        async def run_all() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(task(items) for items in prepared))
            return time.perf_counter() - started

        seconds = asyncio.run(run_all())
    figures["ours_tasks_32"] = rate(count, seconds)
    line("ledger, 32 asyncio tasks (as the node appends)", f"{rate(count, seconds):,.0f} /s",
         f"(goal >= {GOALS['appends32']:,} /s)")
    with Ledger.open(workdir / "append-tasks.db", origin=ORIGIN, log_key=None) as ledger:
        same_entries = [der for _, der, _ in ledger.raw_entries(0, count)]
    for appenders in (1, 32):
        n = single if appenders == 1 else count
        tree = pymerkle_tree(workdir / f"pymerkle-append-{appenders}.db")
        seconds = threaded(appenders, split(same_entries[:n], appenders),  # type: ignore[arg-type]
                           tree.append_entry)
        tree.close()
        figures[f"pymerkle_{appenders}"] = rate(n, seconds)
        line(f"pymerkle SqliteTree, {appenders} appender thread(s)",
             f"{rate(n, seconds):,.0f} /s")
    print(f"  ratio at 32 appenders (tasks / pymerkle):       "
          f"{figures['ours_tasks_32'] / figures['pymerkle_32']:.1f}x")
    figures["raw_after"] = raw_commits(workdir / "raw-after.db", single)
    line("baseline again, after the runs", f"{figures['raw_after']:,.0f} /s")
    return figures


# --- 2. the large ledgers ----------------------------------------------------------------


def build(workdir: Path, count: int) -> tuple[Path, Path]:
    print(f"\n2. Building {count:,}-entry ledgers (same entry bytes in both)")
    ours, theirs = workdir / "large.db", workdir / "large-pymerkle.db"
    started = time.perf_counter()
    with Ledger.open(ours, origin=ORIGIN, log_key=KEY) as ledger:
        stream = events(count, seed=7)
        batch = 20_000
        while ledger.size < count:
            ledger.append_many(next(stream) for _ in range(min(batch, count - ledger.size)))
            if ledger.size % 100_000 == 0 or ledger.size == count:
                ledger.checkpoint()
    seconds = time.perf_counter() - started
    line("ledger, append_many in batches of 20,000", f"{seconds:,.1f} s",
         f"({rate(count, seconds):,.0f} /s, with a checkpoint every 100,000)")
    started = time.perf_counter()
    tree = pymerkle_tree(theirs)
    with Ledger.open(ours, origin=ORIGIN, log_key=None) as ledger:
        for start in range(0, count, 100_000):
            tree.append_entries([der for _, der, _ in ledger.raw_entries(start, start + 100_000)])
    tree.close()
    line("pymerkle SqliteTree, append_entries", f"{time.perf_counter() - started:,.1f} s")
    return ours, theirs


# --- 3. proofs ---------------------------------------------------------------------------


def bench_proofs(ours: Path, theirs: Path, count: int, proofs: int) -> dict[str, float]:
    print(f"\n3. Proof generation on {count:,} entries")
    rng = random.Random(11)
    indices = [rng.randrange(count) for _ in range(proofs)]
    olds = [rng.randrange(1, count) for _ in range(proofs)]
    figures: dict[str, float] = {}
    with Ledger.open(ours, origin=ORIGIN, log_key=None) as ledger:
        for i in indices[:200]:  # warm up: page cache and prepared statements
            ledger.inclusion_proof(i, count)
        started = time.perf_counter()
        for i in indices:
            ledger.inclusion_proof(i, count)
        figures["ours_inclusion"] = rate(proofs, time.perf_counter() - started)
        started = time.perf_counter()
        for old in olds:
            ledger.consistency_proof(old, count)
        figures["ours_consistency"] = rate(proofs, time.perf_counter() - started)
    tree = pymerkle_tree(theirs)
    few = max(proofs // 5, 200)
    for i in indices[:200]:
        tree.prove_inclusion(i + 1, count)
    started = time.perf_counter()
    for i in indices[:few]:
        tree.prove_inclusion(i + 1, count)  # pymerkle counts leaves from one
    figures["pymerkle_inclusion"] = rate(few, time.perf_counter() - started)
    started = time.perf_counter()
    for old in olds[:few]:
        tree.prove_consistency(old, count)
    figures["pymerkle_consistency"] = rate(few, time.perf_counter() - started)
    tree.close()
    for kind in ("inclusion", "consistency"):
        ratio = figures[f"ours_{kind}"] / figures[f"pymerkle_{kind}"]
        figures[f"ratio_{kind}"] = ratio
        line(f"warm {kind}: ledger", f"{figures[f'ours_{kind}']:,.0f} /s")
        line(f"warm {kind}: pymerkle SqliteTree", f"{figures[f'pymerkle_{kind}']:,.0f} /s")
        line(f"warm {kind}: ratio", f"{ratio:,.1f}x", f"(goal >= {GOALS['proof_ratio']}x)")
    for who, path in (("ledger", ours), ("pymerkle", theirs)):
        runs = [cold(who, path, rng.randrange(count), count) for _ in range(5)]
        first = statistics.median(r["first_ms"] for r in runs)
        total = statistics.median(r["open_ms"] + r["first_ms"] for r in runs)
        figures[f"{who}_cold_first_ms"], figures[f"{who}_cold_total_ms"] = first, total
        goal = f"(goal <= {GOALS['cold_ms']} ms)" if who == "ledger" else ""
        line(f"cold inclusion, fresh process: {who}", f"{first:,.2f} ms first proof", goal)
        line("  (open + first proof, median of 5)", f"{total:,.2f} ms")
    return figures


def cold(who: str, path: Path, index: int, size: int) -> dict[str, float]:
    """One fresh interpreter: open the store, then make one inclusion proof."""
    out = subprocess.run([sys.executable, __file__, "--cold-worker", who, str(path),
                          str(index), str(size)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def cold_worker(who: str, path: str, index: int, size: int) -> None:
    if who == "ledger":
        started = time.perf_counter()
        ledger = Ledger.open(Path(path), origin=ORIGIN, log_key=None)
        opened = time.perf_counter()
        ledger.inclusion_proof(index, size)
    else:
        from pymerkle import SqliteTree

        started = time.perf_counter()
        tree = SqliteTree(path)
        opened = time.perf_counter()
        tree.prove_inclusion(index + 1, size)
    done = time.perf_counter()
    print(json.dumps({"open_ms": (opened - started) * 1000, "first_ms": (done - opened) * 1000}))


# --- 4. offline verification -------------------------------------------------------------


def bench_verify(workdir: Path, ours: Path, count: int) -> dict[str, float]:
    print(f"\n4. Offline verification of {count:,} entries")
    bundle = workdir / "large.bundle"
    started = time.perf_counter()
    export_bundle(ours, bundle)
    line("export the bundle", f"{time.perf_counter() - started:,.1f} s")
    log = log_verifier(ORIGIN, KEY.verify_key)
    figures: dict[str, float] = {}
    started = time.perf_counter()
    with LedgerSource.open(bundle) as source:
        edge = TreeEdge()
        for _, der, _ in source.entries():
            edge.append(hash_leaf(der))
        edge.root()
    figures["baseline"] = rate(count, time.perf_counter() - started)
    line("baseline: read, hash each entry, fold the root", f"{figures['baseline']:,.0f} /s")
    for label, path in (("bundle", bundle), ("node database (and its nodes)", ours)):
        started = time.perf_counter()
        report = verify_file(path, log=log)
        seconds = time.perf_counter() - started
        assert report.size == count
        figures[label] = rate(count, seconds)
        line(f"verify: {label}", f"{figures[label]:,.0f} /s",
             f"({seconds:,.1f} s; goal >= {GOALS['verify']:,} /s)")
    sample = min(count, 20_000)
    sample_path = workdir / "sample.bundle"
    conn = sqlite3.connect(sample_path)
    conn.execute("ATTACH ? AS b", (str(bundle),))
    conn.execute("CREATE TABLE ledger_meta AS SELECT * FROM b.ledger_meta")
    conn.execute("CREATE TABLE ledger_entries AS SELECT * FROM b.ledger_entries WHERE idx < ?",
                 (sample,))
    for table in ("ledger_checkpoints", "ledger_cosignatures"):
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM b.{table} WHERE size <= ?",
                     (sample,))
    conn.commit()
    conn.close()
    started = time.perf_counter()
    verify_file(sample_path, log=log, deep=True)
    line(f"verify --deep (every field decoded; {sample:,})",
         f"{rate(sample, time.perf_counter() - started):,.0f} /s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000,
                        help="size of the ledgers for proofs and verification")
    parser.add_argument("--appends", type=int, default=20_000,
                        help="appends per run of the 32-appender test")
    parser.add_argument("--proofs", type=int, default=5_000, help="warm proofs per kind")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--appends-only", action="store_true",
                        help="run section 1 only (it depends most on the disk's mood)")
    parser.add_argument("--cold-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_worker:
        who, path, index, size = args.cold_worker
        cold_worker(who, path, int(index), int(size))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"ledger benchmark: Python {sys.version.split()[0]}, SQLite "
          f"{sqlite3.sqlite_version}, {os.cpu_count()} cores, work in {workdir}")
    try:
        appends = bench_appends(workdir, args.appends)
        if args.appends_only:
            return
        ours, theirs = build(workdir, args.entries)
        proofs = bench_proofs(ours, theirs, args.entries, args.proofs)
        verify = bench_verify(workdir, ours, args.entries)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nGoals")
    best32 = max(appends["ours_threads_32"], appends["ours_tasks_32"])
    checks = [
        ("durable appends, 32 appenders", best32 >= GOALS["appends32"],
         f"{appends['ours_tasks_32']:,.0f} /s tasks, {appends['ours_threads_32']:,.0f} /s "
         f"threads; bare SQLite {appends['raw']:,.0f} commits/s"),
        ("proof generation vs pymerkle", min(proofs["ratio_inclusion"],
                                             proofs["ratio_consistency"]) >= GOALS["proof_ratio"],
         f"{proofs['ratio_inclusion']:,.1f}x inclusion, {proofs['ratio_consistency']:,.1f}x "
         f"consistency"),
        ("cold proof", proofs["ledger_cold_first_ms"] <= GOALS["cold_ms"],
         f"{proofs['ledger_cold_first_ms']:,.2f} ms (pymerkle "
         f"{proofs['pymerkle_cold_first_ms']:,.0f} ms)"),
        ("offline verify", verify["bundle"] >= GOALS["verify"],
         f"{verify['bundle']:,.0f} /s ({verify['bundle'] / verify['baseline']:.2f}x the "
         f"raw baseline)"),
    ]
    for label, met, figure in checks:
        print(f"  {'met ' if met else 'MISSED'}  {label:<32} {figure}")


if __name__ == "__main__":
    main()
