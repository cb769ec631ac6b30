"""A11.5: stored envelopes are destroyed after their retention period; the evidence and
the ledger stay and still verify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from gateway.admin import admin_session
from gateway.cli.main import cli
from gateway.client import ClientError
from gateway.demo import REQUEST_BODY
from gateway.node import store
from gateway.retention import apply_retention
from tests.nodes import PASSPHRASE, client, eventually, homes, serving


async def test_retention_destroys_bodies_and_answers_410_A11_5(tmp_path: Path,
                                                              monkeypatch) -> None:
    """A11.5: kept no longer than needed, then destroyed; the API says 410."""
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        await eventually(lambda: store.Reader(by.db_path).all("SELECT 1 FROM inbox"),
                         what="delivery")
        sealed = await kz_mvd.fetch(sent["envelope_id"])

    # Nothing is due yet.
    dry = CliRunner().invoke(cli, ["retention", "apply", "--home", str(by.root), "--dry-run"])
    assert dry.exit_code == 0 and "would destroy 0 envelope(s)" in dry.output

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=366)
    with admin_session(by, PASSPHRASE) as session:
        due = apply_retention(by.db_path, session.ledger, session.config, later, dry_run=True)
        assert [d.envelope_id.hex() for d in due] == [sent["envelope_id"]]
        destroyed = apply_retention(by.db_path, session.ledger, session.config, later)
        assert len(destroyed) == 1
        types = [e.event.type for e in session.ledger.entries(0, session.ledger.size)]
        assert types.count("destroyed") == 1
    # No copy of the ciphertext is left in the database files.
    chunk = sealed[-200:-100]
    for path in by.root.glob("node.db*"):
        assert chunk not in path.read_bytes(), f"ciphertext left in {path.name}"
    row = store.Reader(by.db_path).one("SELECT sealed, hash, destroyed_at FROM envelopes")
    assert row["sealed"] is None and row["destroyed_at"] and row["hash"]

    verify = CliRunner().invoke(cli, ["ledger", "verify", "--home", str(by.root)])
    assert verify.exit_code == 0, verify.output

    async with serving(kz, by), client(by, "BY-MVD") as by_mvd:
        try:
            await by_mvd.fetch(sent["envelope_id"])
            raise AssertionError("a destroyed envelope was served")
        except ClientError as e:
            assert e.code == "envelope.destroyed"


def test_retention_does_not_claim_success_while_a_reader_pins_old_pages_A11_5(
        tmp_path: Path) -> None:
    """A11.5: while a reader holds an old snapshot the WAL cannot be emptied; reclaiming
    says so (retention.incomplete) instead of pretending the bytes are gone."""
    from gateway.retention import RetentionIncomplete, reclaim_space

    path = tmp_path / "t.db"
    db = store.connect(path)
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("INSERT INTO t VALUES (randomblob(10000))")
    reader = store.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds a snapshot
    db.execute("DELETE FROM t")
    try:
        reclaim_space(path, attempts=2, busy_ms=100)
        raise AssertionError("reclaim_space claimed success under a pinned snapshot")
    except RetentionIncomplete as e:
        assert e.code == "retention.incomplete"
    reader.execute("COMMIT")
    reclaim_space(path, attempts=2, busy_ms=100)
