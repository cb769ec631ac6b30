"""Cross-witnessing: each node cosigns the other's checkpoints after checking them, and
refuses (with an alarm) a checkpoint that forks or rolls back the peer's history."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.demo import REQUEST_BODY
from gateway.node import store
from gateway.node.service import open_node
from gateway.node.witness import cosignature_count, witness_name, witness_once
from ledger.note import Checkpoint, cosignatures_by, sign_checkpoint, witness_verifier
from ledger.store import Ledger
from tests.nodes import PASSPHRASE, client, eventually, homes, serving


def latest(home):
    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        return ledger.latest_checkpoint(), ledger.size
    finally:
        ledger.close()


def peer_cosigned(home) -> int:
    row = store.Reader(home.db_path).one("SELECT max(size) FROM peer_checkpoints")
    return row[0] or 0


async def test_nodes_cosign_each_others_checkpoints(tmp_path: Path) -> None:
    kz, by = homes(tmp_path, interval=0.1)
    async with serving(kz, by):
        async with client(kz, "KZ-MVD") as kz_mvd:
            for _ in range(3):
                await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)

        def covered(home) -> bool:
            checkpoint, size = latest(home)
            return bool(checkpoint and checkpoint.size == size and cosignature_count(checkpoint))

        await eventually(lambda: covered(kz) and covered(by), what="cross-cosigned checkpoints")
    for home, peer in ((kz, by), (by, kz)):
        checkpoint, _ = latest(home)
        name = peer.origin() + "/witness"
        timestamps = cosignatures_by(checkpoint.signed,
                                     witness_verifier(name, peer.public_key("witness")))
        assert timestamps, f"{peer.config().party} did not cosign"
        assert peer_cosigned(peer) >= 1


async def test_fork_raises_alarm_and_is_never_cosigned(tmp_path: Path, monkeypatch) -> None:
    """A peer that shows another root for a size we cosigned has forked its log."""
    kz, by = homes(tmp_path, interval=0.1)
    async with serving(kz, by):
        await eventually(lambda: peer_cosigned(kz) >= 1, what="a first cosignature")
    last = store.Reader(kz.db_path).one("SELECT size, note FROM peer_checkpoints ORDER BY size "
                                        "DESC LIMIT 1")
    forged = sign_checkpoint(Checkpoint(by.origin(), last["size"], b"\x42" * 32),
                             by.signing_key("node", PASSPHRASE))
    node = await open_node(kz, PASSPHRASE)
    try:
        await witness_once(node, None, forged.note, [], last["note"])  # type: ignore[arg-type]
        assert witness_name(node) == kz.origin() + "/witness"
    finally:
        await node.close()
    rows = store.Reader(kz.db_path).all("SELECT size FROM peer_checkpoints")
    assert [r["size"] for r in rows] == sorted({r["size"] for r in rows})  # nothing new stored
    assert all(r["size"] <= last["size"] for r in rows)
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    result = CliRunner().invoke(cli, ["status", "--home", str(kz.root), "--json", "--no-probe"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert [a["code"] for a in status["alarms"]] == ["ledger.witness_fork"]
    ledger = Ledger.open(kz.db_path, origin=kz.origin(), log_key=None)
    try:
        assert ledger.entries(ledger.size - 1, ledger.size)[0].event.type == "alarm"
    finally:
        ledger.close()
