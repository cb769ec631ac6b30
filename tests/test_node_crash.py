"""Crash safety with real processes: SIGKILL a node under load, restart it, and check
that nothing acknowledged was lost and nothing was duplicated (issue 4, item 12).

Evidence compared: the submission receipts the KZ agency holds, the relay receipts the
KZ node holds, and the BY inbox.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.client import ClientError
from gateway.demo import REQUEST_BODY
from gateway.home import Home
from gateway.node import store
from tests.nodes import PASSPHRASE, client, eventually, homes

pytestmark = pytest.mark.slow


def start_node(home: Home) -> subprocess.Popen[bytes]:
    (home.root / "serve.json").unlink(missing_ok=True)
    env = {**os.environ, "GATEWAY_PASSPHRASE": PASSPHRASE.decode()}
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--home",
                                str(home.root)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (home.root / "serve.json").exists():
        if process.poll() is not None:
            raise AssertionError(f"node exited: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("node did not start")
        time.sleep(0.05)
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert process.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    return stderr


async def send_load(home: Home, count: int, receipts: dict[str, dict],
                    during: asyncio.Event | None = None) -> None:
    """Send ``count`` requests, 16 at a time; keep the receipts of those acknowledged."""
    failures: list[str] = []
    done: list[dict] = []
    async with client(home, "KZ-MVD") as kz_mvd:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                try:
                    result = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
                except ClientError as e:
                    failures.append(e.code)
                    return  # not acknowledged: the agency would retry, we just count
                receipts[result["envelope_id"]] = result
                done.append(result)
                if during is not None and len(done) == count // 3:
                    during.set()

        await asyncio.gather(*(one(i) for i in range(count)))
    # Refusals other than "node down" would be a bug, not the crash we are testing.
    assert set(failures) <= {"client.unreachable", "peer.unavailable"}, set(failures)


def relayed(home: Home) -> set[str]:
    return {r["envelope_id"].hex() for r in store.Reader(home.db_path).all(
        "SELECT envelope_id FROM outbox WHERE sent_at IS NOT NULL")}


def inbox(home: Home) -> list[str]:
    return [r["envelope_id"].hex() for r in store.Reader(home.db_path).all(
        "SELECT envelope_id FROM inbox")]


async def test_sigkill_receiver_and_sender_under_load_loses_nothing(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    kz_process, by_process = start_node(kz), start_node(by)
    receipts: dict[str, dict] = {}
    try:
        # 1. Kill the receiving node while envelopes stream to it, then restart it.
        third = asyncio.Event()
        load = asyncio.create_task(send_load(kz, 150, receipts, third))
        await asyncio.wait_for(third.wait(), 60)
        await asyncio.to_thread(kill, by_process)
        await asyncio.sleep(0.5)
        by_process = await asyncio.to_thread(start_node, by)
        await load

        # 2. Kill the sending node under load (it holds acknowledged submissions).
        third = asyncio.Event()
        load = asyncio.create_task(send_load(kz, 150, receipts, third))
        await asyncio.wait_for(third.wait(), 60)
        await asyncio.to_thread(kill, kz_process)
        await load
        kz_process = await asyncio.to_thread(start_node, kz)

        acknowledged = set(receipts)
        await eventually(lambda: acknowledged <= set(inbox(by)), timeout=60,
                         what="every acknowledged envelope in the BY inbox")
        delivered = inbox(by)
        assert len(delivered) == len(set(delivered)), "an envelope was stored twice"
        # Every relay receipt KZ holds names an envelope BY has, and vice versa.
        await eventually(lambda: relayed(kz) == set(delivered), timeout=60,
                         what="KZ relay receipts to match the BY inbox")
        assert len(acknowledged) >= 100
    finally:
        for process in (kz_process, by_process):
            if process.poll() is None:
                stop(process)

    # Both ledgers still verify after the crashes.
    for home in (kz, by):
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home.root)],
            capture_output=True, text=True, env={**os.environ,
                                                 "GATEWAY_PASSPHRASE": PASSPHRASE.decode()})
        assert result.returncode == 0, result.stdout + result.stderr
