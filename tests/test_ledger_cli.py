"""``gateway ledger …`` through CliRunner: exact command names, JSON shapes, exit codes
and the ``error: <code>:`` line; the auditor's path needs nothing but a bundle and keys."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result
from nacl.signing import SigningKey

from gateway.cli.main import cli
from keys import keyfile
from ledger.entry import Event
from ledger.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteVerifier,
    cosign_body,
    log_verifier,
    open_checkpoint,
    witness_verifier,
)
from ledger.store import Ledger
from ledger.verify import verify_consistency, verify_inclusion

ORIGIN = "kz.gateway.test/ledger"
PASSPHRASE = "correct horse battery staple"
PEER_WITNESS_KEY = SigningKey(bytes([9]) * 32)
PEER_WITNESS = witness_verifier("by.gateway.test/ledger/witness", PEER_WITNESS_KEY.verify_key)
EVENTS = [Event(type="received_from_peer", time=datetime(2026, 1, 1, 12, n, tzinfo=UTC),
               envelope_id=bytes([n]) * 16, from_authority="BY-MVD", to_authority="KZ-MVD",
               details=(("kind", "request"),)) for n in range(12)]


def make_home(root: Path, *, entries: int = 10, checkpoint: bool = True) -> Path:
    """A node home as the lead lays it out: node.db, ledger-origin, keys/."""
    (root / "keys").mkdir(parents=True)
    (root / "ledger-origin").write_text(ORIGIN + "\n", encoding="ascii")
    limits = {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
              "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN}
    node_key = SigningKey.generate()
    keyfile.save_private_key(root / "keys" / "node.key", node_key, PASSPHRASE.encode(), **limits)
    keyfile.save_private_key(root / "keys" / "witness.key", SigningKey.generate(),
                             PASSPHRASE.encode(), **limits)
    with Ledger.open(root / "node.db", origin=ORIGIN, log_key=node_key) as ledger:
        ledger.append_many(EVENTS[:entries])
        if checkpoint:
            signed = ledger.checkpoint()
            line = cosign_body(signed.checkpoint.body, 1_800_000_000, PEER_WITNESS.name,
                               PEER_WITNESS_KEY).line
            ledger.add_cosignature(signed.size, line, PEER_WITNESS)
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_home(tmp_path / "home")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, ["ledger", *args], env=env)
    assert "Traceback" not in result.output
    return result


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def error(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(*args, env=env)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {code}: "), result.stderr
    return result.stderr


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def reading(home: Path) -> Ledger:
    return Ledger.open(home / "node.db", origin=ORIGIN, log_key=None)


# --- keys and checkpoints ----------------------------------------------------------------


def test_vkey_and_witness_vkey(home: Path) -> None:
    log = NoteVerifier.from_vkey(ok("vkey", "--home", str(home)).strip())
    assert (log.name, log.type) == (ORIGIN, SIG_ED25519)
    witness = NoteVerifier.from_vkey(ok("witness-vkey", "--home", str(home)).strip())
    assert (witness.name, witness.type) == (ORIGIN + "/witness", SIG_COSIGNATURE_V1)
    assert bytes(witness.key) != bytes(log.key)  # a witness key of its own (C2SP)


def test_checkpoint_prints_the_newest_note_with_cosignatures(home: Path) -> None:
    printed = ok("checkpoint", "--home", str(home))
    with reading(home) as ledger:
        latest = ledger.latest_checkpoint()
    assert latest is not None and printed == latest.note
    assert printed.startswith(f"{ORIGIN}\n10\n") and printed.count("\u2014 ") == 2


def test_checkpoint_new_signs_at_the_current_size(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", checkpoint=False)
    error("ledger.no_checkpoint", "checkpoint", "--home", str(home))
    error("keys.no_passphrase", "checkpoint", "--home", str(home), "--new")
    printed = ok("checkpoint", "--home", str(home), "--new",
                 env={"GATEWAY_PASSPHRASE": PASSPHRASE})
    log = NoteVerifier.from_vkey(ok("vkey", "--home", str(home)).strip())
    assert open_checkpoint(printed, log).size == 10
    assert ok("checkpoint", "--home", str(home)) == printed


def test_not_a_home(tmp_path: Path) -> None:
    error("ledger.not_found", "checkpoint", "--home", str(tmp_path))


# --- entries and proofs ------------------------------------------------------------------


def test_entries_json_lines(home: Path) -> None:
    lines = ok("entries", "--home", str(home), "--json").splitlines()
    assert len(lines) == 10
    first = json.loads(lines[0])
    assert first["index"] == 0 and first["type"] == "received_from_peer"
    assert first["envelope_id"] == "00" * 16 and first["from_authority"] == "BY-MVD"
    assert first["details"] == {"kind": "request"} and first["time"] == "2026-01-01T12:00:00Z"
    assert len(b64(first["leaf_hash"])) == 32 and b64(first["prev_leaf_hash"]) == bytes(32)
    assert json.loads(lines[1])["prev_leaf_hash"] == first["leaf_hash"]
    some = ok("entries", "--home", str(home), "--json", "--start", "3", "--end", "5")
    assert [json.loads(line)["index"] for line in some.splitlines()] == [3, 4]
    text = ok("entries", "--home", str(home), "--start", "9")
    assert text.startswith("9  2026-01-01T12:09:00+00:00  received_from_peer  BY-MVD -> KZ-MVD")


def test_inclusion_proof(home: Path) -> None:
    with reading(home) as ledger:
        root = ledger.root(10)
    proof = json.loads(ok("proof", "inclusion", "--home", str(home), "--index", "3"))
    assert set(proof) == {"index", "tree_size", "leaf_hash", "proof"}
    assert (proof["index"], proof["tree_size"]) == (3, 10)  # the newest checkpoint's size
    verify_inclusion(3, 10, b64(proof["leaf_hash"]), [b64(h) for h in proof["proof"]], root)
    smaller = json.loads(ok("proof", "inclusion", "--home", str(home), "--index", "3",
                            "--size", "4"))
    assert smaller["tree_size"] == 4
    error("ledger.bad_proof", "proof", "inclusion", "--home", str(home), "--index", "10")
    error("ledger.out_of_range", "proof", "inclusion", "--home", str(home), "--index", "1",
          "--size", "11")


def test_consistency_proof(home: Path) -> None:
    with reading(home) as ledger:
        old_root, root = ledger.root(3), ledger.root(10)
    proof = json.loads(ok("proof", "consistency", "--home", str(home), "--old", "3"))
    assert proof == {"old_size": 3, "new_size": 10, "proof": proof["proof"]}
    verify_consistency(3, 10, [b64(h) for h in proof["proof"]], old_root, root)
    error("ledger.bad_proof", "proof", "consistency", "--home", str(home), "--old", "7",
          "--new", "5")


# --- verify and export -------------------------------------------------------------------


def test_verify_home(home: Path) -> None:
    out = ok("verify", "--home", str(home), "--vkey", PEER_WITNESS.vkey)
    assert out.splitlines()[0] == f"ok: {ORIGIN}: 10 entries verified"
    assert f"cosigned by {PEER_WITNESS.name} up to size 10" in out
    assert "verifying" not in out  # no progress bar off a terminal
    conn = sqlite3.connect(home / "node.db")
    conn.execute("UPDATE ledger_entries SET entry = entry || x'00' WHERE idx = 6")
    conn.commit()
    conn.close()
    line = error("ledger.leaf_hash_mismatch", "verify", "--home", str(home))
    assert "index 6:" in line


def test_verify_home_catches_a_restored_copy(home: Path, tmp_path: Path) -> None:
    held = tmp_path / "cosigned.note"
    with reading(home) as ledger:
        latest = ledger.latest_checkpoint()
    assert latest is not None
    held.write_text(latest.note, encoding="utf-8")
    conn = sqlite3.connect(home / "node.db")
    conn.execute("DELETE FROM ledger_entries WHERE idx >= 6")
    conn.execute("DELETE FROM ledger_checkpoints")
    conn.execute("DELETE FROM ledger_nodes WHERE id >= 4")
    conn.commit()
    conn.close()
    ok("verify", "--home", str(home))
    line = error("ledger.rollback", "verify", "--home", str(home), "--checkpoint", str(held))
    assert "checkpoint at size 10" in line


def test_export_then_verify_with_keys_only(home: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ledger.bundle"
    assert ok("export", "--home", str(home), "--out", str(bundle)) == \
        f"wrote {bundle}: 10 entries\n"
    log_vkey = ok("vkey", "--home", str(home)).strip()
    error("ledger.bad_bundle", "export", "--home", str(home), "--out", str(bundle))
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    moved = auditor / "ledger.bundle"
    bundle.rename(moved)
    monkeypatch.chdir(auditor)  # the auditor has the bundle and two keys, no home
    out = ok("verify", "--bundle", "ledger.bundle", "--vkey", log_vkey,
             "--vkey", PEER_WITNESS.vkey)
    assert out.splitlines()[0] == f"ok: {ORIGIN}: 10 entries verified"
    assert f"cosigned by {PEER_WITNESS.name} up to size 10" in out
    error("ledger.bad_vkey", "verify", "--bundle", "ledger.bundle")
    other = log_verifier(ORIGIN, SigningKey.generate().verify_key).vkey
    error("ledger.checkpoint_invalid", "verify", "--bundle", "ledger.bundle", "--vkey", other)
    error("ledger.bad_vkey", "verify", "--bundle", "ledger.bundle", "--vkey", "garbage")


def test_verify_needs_exactly_one_source(home: Path) -> None:
    assert run("verify").exit_code == 2
    assert run("verify", "--home", str(home), "--bundle", "x").exit_code == 2


@pytest.mark.slow
def test_installed_command_verifies_a_bundle(home: Path, tmp_path: Path) -> None:
    """The real `gateway` process, as an auditor runs it: exit codes, no traceback."""
    gateway = Path(sys.executable).parent / "gateway"
    bundle = tmp_path / "ledger.bundle"
    ok("export", "--home", str(home), "--out", str(bundle))
    log_vkey = ok("vkey", "--home", str(home)).strip()
    good = subprocess.run([str(gateway), "ledger", "verify", "--bundle", str(bundle),
                           "--vkey", log_vkey], capture_output=True, text=True, cwd=tmp_path)
    assert good.returncode == 0 and good.stdout.startswith(f"ok: {ORIGIN}: 10 entries")
    assert good.stderr == ""  # no progress bar when stderr is not a terminal
    conn = sqlite3.connect(bundle)
    conn.execute("DELETE FROM ledger_entries WHERE idx = 4")
    conn.commit()
    conn.close()
    bad = subprocess.run([str(gateway), "ledger", "verify", "--bundle", str(bundle),
                          "--vkey", log_vkey], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ledger.missing_entry: index 4: ")
    assert "Traceback" not in bad.stderr
