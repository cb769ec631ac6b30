"""Offline verification and tamper evidence (issue 3, item 8): every kind of damage to a
stored ledger is found by ``verify``, which names the first bad index and what is wrong;
a restored older copy is caught against a checkpoint the peer (or auditor) holds. The
auditor's path: export a bundle, verify it with nothing but the public keys."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ledger.audit import audit
from ledger.bundle import LedgerSource, export_bundle, verify_file
from ledger.entry import Event, LedgerEntrySchema, encode_entry, encode_event
from ledger.errors import (
    AuditFailure,
    BadBundle,
    ChainBroken,
    CheckpointInvalid,
    CheckpointMismatch,
    CosignatureInvalid,
    IndexMismatch,
    LeafHashMismatch,
    MalformedEntry,
    MissingEntry,
    NodeMismatch,
    NotALedger,
    Rollback,
    Truncated,
    WitnessInconsistent,
    WitnessRollback,
)
from ledger.hashing import hash_leaf
from ledger.note import Checkpoint, cosign_body, log_verifier, sign_checkpoint, witness_verifier
from ledger.store import Ledger
from ledger.witness import cosign

ORIGIN = "kz.gateway.test/ledger"
KEY = SigningKey(bytes([1]) * 32)
LOG = log_verifier(ORIGIN, KEY.verify_key)
PEER_WITNESS_KEY = SigningKey(bytes([2]) * 32)
PEER_WITNESS = witness_verifier("by.gateway.test/ledger/witness", PEER_WITNESS_KEY.verify_key)
T0 = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
SIZE = 40
CHECKPOINTS = (10, 20, 30, 40)


def event(n: int) -> Event:
    return Event(type="submitted", time=T0, envelope_id=n.to_bytes(16, "big"),
                 case_id=bytes(16), from_authority="KZ-MVD", to_authority="BY-MVD",
                 envelope_hash=hash_leaf(n.to_bytes(4, "big")), details=(("kind", "request"),))


def grow(ledger: Ledger, upto: int) -> None:
    """Append up to ``upto`` entries, checkpointing and cosigning at every 10."""
    while ledger.size < upto:
        ledger.append_many(event(n) for n in range(ledger.size, ledger.size + 10))
        signed = ledger.checkpoint()
        line = cosign_body(signed.checkpoint.body, 1_800_000_000 + signed.size,
                           PEER_WITNESS.name, PEER_WITNESS_KEY).line
        ledger.add_cosignature(signed.size, line, PEER_WITNESS)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "node.db"
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        grow(ledger, SIZE)
    return path


def verify(path: Path, **kwargs: object) -> None:
    verify_file(path, log=LOG, witnesses=[PEER_WITNESS], **kwargs)  # type: ignore[arg-type]


def sql(path: Path, *statements: str, args: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement, args if "?" in statement else ())
    conn.commit()
    conn.close()


def row(path: Path, index: int) -> tuple[bytes, bytes]:
    conn = sqlite3.connect(path)
    entry, leaf = conn.execute("SELECT entry, leaf_hash FROM ledger_entries WHERE idx = ?",
                               (index,)).fetchone()
    conn.close()
    return bytes(entry), bytes(leaf)


def fails(path: Path, kind: type[AuditFailure], index: int, **kwargs: object) -> AuditFailure:
    with pytest.raises(kind) as caught:
        verify(path, **kwargs)
    assert caught.value.index == index, caught.value.message
    assert f"index {index}" in caught.value.message or "checkpoint" in caught.value.message
    return caught.value


# --- an intact ledger --------------------------------------------------------------------


def test_intact_ledger_verifies_with_its_cosignatures(db: Path) -> None:
    report = verify_file(db, log=LOG, witnesses=[PEER_WITNESS], deep=True)
    assert report.size == SIZE and report.checkpoints == len(CHECKPOINTS)
    with Ledger.open(db, origin=ORIGIN, log_key=None) as ledger:
        assert report.latest == Checkpoint(ORIGIN, SIZE, ledger.root(SIZE))
    assert report.cosigned == {PEER_WITNESS.name: SIZE}


def test_progress_counts_every_entry(db: Path) -> None:
    seen: list[int] = []
    verify_file(db, log=LOG, progress=seen.append)
    assert sum(seen) == SIZE


# --- tampering, each named by index ------------------------------------------------------


def test_any_changed_byte_of_an_entry_is_named(db: Path, tmp_path: Path) -> None:
    """Every byte of entry 13 in turn: the entry no longer hashes to its leaf hash."""
    entry, _ = row(db, 13)
    for offset in range(len(entry)):
        copy = tmp_path / f"flip{offset}.db"
        shutil.copy(db, copy)
        flipped = entry[:offset] + bytes([entry[offset] ^ 0x01]) + entry[offset + 1 :]
        sql(copy, "UPDATE ledger_entries SET entry = ? WHERE idx = 13", args=(flipped,))
        fails(copy, LeafHashMismatch, 13)
        copy.unlink()


def test_changed_entry_with_recomputed_leaf_hash_breaks_the_chain(db: Path) -> None:
    entry, _ = row(db, 13)
    changed = entry[:-1] + bytes([entry[-1] ^ 0x01])
    sql(db, "UPDATE ledger_entries SET entry = ?, leaf_hash = ? WHERE idx = 13",
        args=(changed, hash_leaf(changed)))
    failure = fails(db, ChainBroken, 14)
    assert "previous leaf hash" in failure.message


def test_deleted_row_is_named(db: Path) -> None:
    sql(db, "DELETE FROM ledger_entries WHERE idx = 13")
    fails(db, MissingEntry, 13)


def test_deleted_row_with_renumbering_is_named(db: Path) -> None:
    sql(db, "DELETE FROM ledger_entries WHERE idx = 13",
        "UPDATE ledger_entries SET idx = idx - 1 WHERE idx > 13")
    fails(db, ChainBroken, 13)


def test_inserted_row_is_named(db: Path) -> None:
    """A copy of entry 5 slipped in at 13, the rest shifted up."""
    entry, leaf = row(db, 5)
    sql(db, "UPDATE ledger_entries SET idx = -idx - 1 WHERE idx >= 13",
        "UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
    sql(db, "INSERT INTO ledger_entries (idx, entry, leaf_hash) VALUES (13, ?, ?)",
        args=(entry, leaf))
    fails(db, ChainBroken, 13)


def test_forged_row_with_a_valid_link_is_named_where_the_chain_breaks(db: Path) -> None:
    """A forger who chains the new entry to entry 12 still breaks the link to the next."""
    _, prev = row(db, 12)
    forged = encode_entry(13, prev, encode_event(event(999)))
    sql(db, "UPDATE ledger_entries SET idx = -idx - 1 WHERE idx >= 13",
        "UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
    sql(db, "INSERT INTO ledger_entries (idx, entry, leaf_hash) VALUES (13, ?, ?)",
        args=(forged, hash_leaf(forged)))
    fails(db, ChainBroken, 14)


def test_swapped_rows_are_named(db: Path) -> None:
    a, b = row(db, 13), row(db, 17)
    sql(db, "UPDATE ledger_entries SET entry = ?, leaf_hash = ? WHERE idx = 13", args=b)
    sql(db, "UPDATE ledger_entries SET entry = ?, leaf_hash = ? WHERE idx = 17", args=a)
    fails(db, ChainBroken, 13)


def test_index_field_must_match_the_place(db: Path) -> None:
    """An entry whose bytes claim another index (re-hashed, re-chained) is caught."""
    stored, _ = row(db, 39)
    _, prev = row(db, 38)
    fields = LedgerEntrySchema.load(stored).contents
    moved = encode_entry(41, prev, fields[fields.index(b"\x02\x01\x27") + 3 :])
    sql(db, "UPDATE ledger_entries SET entry = ?, leaf_hash = ? WHERE idx = 39",
        args=(moved, hash_leaf(moved)))
    fails(db, IndexMismatch, 39)


def test_truncated_tail_is_named(db: Path) -> None:
    sql(db, "DELETE FROM ledger_entries WHERE idx >= 33")
    failure = fails(db, Truncated, 33)
    assert failure.size == 40


def test_truncated_tail_with_its_checkpoints_still_found_by_the_nodes(db: Path) -> None:
    sql(db, "DELETE FROM ledger_entries WHERE idx >= 33",
        "DELETE FROM ledger_checkpoints WHERE size > 30")
    fails(db, NodeMismatch, 33)


def test_replaced_checkpoint_is_named(db: Path) -> None:
    conn = sqlite3.connect(db)
    note30 = conn.execute("SELECT note FROM ledger_checkpoints WHERE size = 30").fetchone()[0]
    conn.close()
    sql(db, "UPDATE ledger_checkpoints SET note = ? WHERE size = 20", args=(note30,))
    failure = fails(db, CheckpointInvalid, 19)
    assert failure.size == 20


def test_checkpoint_signed_by_another_key_is_refused(db: Path) -> None:
    forged = sign_checkpoint(Checkpoint(ORIGIN, 20, bytes(32)), SigningKey.generate()).note
    sql(db, "UPDATE ledger_checkpoints SET note = ? WHERE size = 20", args=(forged,))
    failure = fails(db, CheckpointInvalid, 19)
    assert "ledger.bad_signature" in failure.message


def test_checkpoint_of_another_history_is_named(db: Path) -> None:
    """Even signed with the log key (a node that forks itself), a checkpoint whose root
    is not the entries' root is caught at its size."""
    forged = sign_checkpoint(Checkpoint(ORIGIN, 20, bytes(32)), KEY).note
    sql(db, "UPDATE ledger_checkpoints SET note = ? WHERE size = 20",
        "DELETE FROM ledger_cosignatures WHERE size = 20", args=(forged,))
    failure = fails(db, CheckpointMismatch, 19)
    assert failure.size == 20


def test_bad_cosignature_is_named(db: Path) -> None:
    line = cosign_body(Checkpoint(ORIGIN, 30, bytes(32)).body, 1, PEER_WITNESS.name,
                       PEER_WITNESS_KEY).line
    sql(db, "INSERT INTO ledger_cosignatures (size, line) VALUES (30, ?)", args=(line,))
    fails(db, CosignatureInvalid, 29)


def test_changed_tree_node_is_named(db: Path) -> None:
    # Node keys follow creation: 0 (1,0), 1 (1,1), 2 (2,0), 3 (1,2), 4 (1,3), 5 (2,1) …
    sql(db, "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE id = 5")
    failure = fails(db, NodeMismatch, 4)
    assert "level 2 over entries 4..7" in failure.message


def test_restored_older_copy_is_caught_against_a_cosigned_checkpoint(db: Path,
                                                                     tmp_path: Path) -> None:
    """The rollback attack: a whole older database put back. On its own it verifies;
    against the checkpoint the peer cosigned (and its witness) it does not."""
    older = tmp_path / "older.db"
    with Ledger.open(tmp_path / "start.db", origin=ORIGIN, log_key=KEY) as ledger:
        grow(ledger, 20)
    shutil.copy(tmp_path / "start.db", older)
    for suffix in ("-wal", "-shm"):
        if (tmp_path / f"start.db{suffix}").exists():
            shutil.copy(tmp_path / f"start.db{suffix}", tmp_path / f"older.db{suffix}")
    with Ledger.open(tmp_path / "start.db", origin=ORIGIN, log_key=KEY) as ledger:
        grow(ledger, 40)
        cosigned = ledger.latest_checkpoint()
        assert cosigned is not None and cosigned.size == 40
    verify(older)  # self-consistent: nothing inside it tells
    failure = fails(older, Rollback, 20, trusted=[cosigned.note])
    assert failure.size == 40

    # The peer's witness, having cosigned size 40, refuses whatever the restored log signs.
    with Ledger.open(older, origin=ORIGIN, log_key=KEY) as restored:
        restored.append_many(event(1000 + n) for n in range(5))
        smaller = restored.checkpoint()
        restored.append_many(event(2000 + n) for n in range(30))
        larger = restored.checkpoint()
        proof = restored.consistency_proof(40, 55)
    witness = dict(log_key=KEY.verify_key, origin=ORIGIN, witness_key=PEER_WITNESS_KEY,
                   witness_name=PEER_WITNESS.name, now=T0)
    with pytest.raises(WitnessRollback):
        cosign(smaller.note, [], old_note=cosigned.note, **witness)  # type: ignore[arg-type]
    with pytest.raises(WitnessInconsistent):
        cosign(larger.note, proof, old_note=cosigned.note, **witness)  # type: ignore[arg-type]


def test_deep_verification_reads_every_field(db: Path, tmp_path: Path) -> None:
    """A writer that bypassed Event (a bug, or a hostile node) and stored free text is
    invisible to the hash checks but not to --deep."""
    path = tmp_path / "deep.db"
    with Ledger.open(path, origin=ORIGIN, log_key=KEY) as ledger:
        ledger.append(event(0))
        raw = LedgerEntrySchema({"prev_leaf_hash": bytes(32), "index": 0, "type": 1,
                                 "time": T0, "details": [{"key": "name", "value": (
                                     "token", "Ivanov Ivan")}]}).contents
        event_part = raw[raw.index(b"\x02\x01\x01") :]
        ledger.transact(lambda db, appender: appender._batch.add(event_part))  # type: ignore[union-attr]
        ledger.checkpoint()
    verify(path)
    failure = fails(path, MalformedEntry, 1, deep=True)
    assert "Ivanov" not in failure.message


# --- the auditor bundle ------------------------------------------------------------------


def test_bundle_verifies_with_public_keys_only(db: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "audit.bundle"
    assert export_bundle(db, bundle, vkeys=[(LOG.vkey, "log"), (PEER_WITNESS.vkey,
                                                                "witness")]) == SIZE
    db.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    report = verify_file(bundle, log=LOG, witnesses=[PEER_WITNESS], deep=True)
    assert (report.size, report.cosigned) == (SIZE, {PEER_WITNESS.name: SIZE})
    with LedgerSource.open(bundle) as source:
        assert source.keys() == [(LOG.vkey, "log"), (PEER_WITNESS.vkey, "witness")]
        assert source.stored_nodes() is None
    with pytest.raises(BadBundle):
        export_bundle(db, bundle)


def test_tampered_bundle_is_named(db: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "audit.bundle"
    export_bundle(db, bundle)
    entry, _ = row(bundle, 7)
    changed = entry[:50] + bytes([entry[50] ^ 0x80]) + entry[51:]
    sql(bundle, "UPDATE ledger_entries SET entry = ? WHERE idx = 7", args=(changed,))
    fails(bundle, LeafHashMismatch, 7)
    sql(bundle, "UPDATE ledger_entries SET leaf_hash = ? WHERE idx = 7",
        args=(hash_leaf(changed),))
    fails(bundle, ChainBroken, 8)


def test_bundle_against_the_wrong_key(db: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "audit.bundle"
    export_bundle(db, bundle)
    with pytest.raises(CheckpointInvalid):
        verify_file(bundle, log=log_verifier(ORIGIN, SigningKey.generate().verify_key))


@pytest.mark.parametrize("damage", [
    lambda conn: conn.execute("DROP TABLE ledger_entries"),
    lambda conn: conn.executescript("ALTER TABLE ledger_entries RENAME TO x; "
                                    "CREATE VIEW ledger_entries AS SELECT * FROM x"),
])
def test_bundle_that_is_not_a_ledger(db: Path, tmp_path: Path,
                                     damage: Callable[[sqlite3.Connection], object]) -> None:
    bundle = tmp_path / "audit.bundle"
    export_bundle(db, bundle)
    conn = sqlite3.connect(bundle)
    damage(conn)
    conn.commit()
    conn.close()
    with pytest.raises(NotALedger):
        verify_file(bundle, log=LOG)


def test_not_sqlite_at_all(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(BadBundle):
        verify_file(junk, log=LOG)


def test_audit_is_pure_over_rows() -> None:
    """The verifier takes rows, not a database: an entry stream with a gap at 0."""
    with pytest.raises(MissingEntry) as caught:
        audit([(1, b"", None)], [], log=LOG)
    assert caught.value.index == 0
