"""A crash at any instant leaves a ledger that verifies, holding every append that had
returned: a real process appends in a loop (plain appends and units of work with their
own rows, from several threads) and is killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ledger.bundle import verify_file
from ledger.note import log_verifier
from ledger.store import Ledger

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "kz.gateway.test/ledger"
KEY = SigningKey(bytes(range(32)))

CHILD = """
import sys, threading
from datetime import UTC, datetime
from nacl.signing import SigningKey
from ledger.entry import Event
from ledger.store import Ledger

ledger = Ledger.open(sys.argv[1], origin=sys.argv[2], log_key=SigningKey(bytes(range(32))))
ledger.transact(lambda db, a: db.execute("CREATE TABLE IF NOT EXISTS work (idx INTEGER)"))
lock = threading.Lock()

def unit(db, appender):
    index = appender.append(Event(type="submitted", time=datetime.now(UTC))).index
    db.execute("INSERT INTO work VALUES (?)", (index,))
    return index

def loop(worker):
    n = 0
    while True:
        if worker % 2:
            index = ledger.transact(unit)
        else:
            index = ledger.append(Event(type="operator_action", time=datetime.now(UTC),
                                        details=(("n", n),))).index
        if n % 50 == 0:
            ledger.checkpoint()
        with lock:
            print(index, flush=True)
        n += 1

for worker in range(4):
    threading.Thread(target=loop, args=(worker,), daemon=True).start()
threading.Event().wait()
"""


def _run_and_kill(path: Path, after: int) -> list[int]:
    """Start the appender, SIGKILL it once ``after`` appends have returned; return the
    indices it had reported (complete lines only)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), ORIGIN], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(reported) < after and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.append(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert len(reported) >= after, child.stderr.read().decode() if child.stderr else ""
    return reported


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    acknowledged: set[int] = set()
    rounds = (150, 400, 90)
    for after in rounds:  # kill, restart on the same file, kill again …
        acknowledged |= set(_run_and_kill(path, after))
        report = verify_file(path, log=log_verifier(ORIGIN, KEY.verify_key))
        assert max(acknowledged) < report.size
        # Each unit's own row and its ledger entry committed together or not at all.
        conn = sqlite3.connect(path)
        work = {row[0] for row in conn.execute("SELECT idx FROM work")}
        conn.close()
        with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:  # the writer reopens
            submitted = {e.index for e in ledger.entries() if e.event.type == "submitted"}
            assert ledger.size == report.size
        assert work == submitted
    assert len(acknowledged) == sum(rounds)  # no index was ever handed out twice
