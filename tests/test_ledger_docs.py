"""docs/ledger.md says what the code does: its example bytes, checkpoint, cosignature and
keys are rebuilt here, its registry table is the registry, and every error code the
ledger can raise is listed (codes are public API)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey

import ledger.errors
from ledger.entry import EVENT_TYPES, ZERO_HASH, Event, decode_entry, encode_entry, encode_event
from ledger.hashing import hash_leaf
from ledger.note import (
    Checkpoint,
    NoteVerifier,
    cosign_body,
    cosignatures_by,
    log_verifier,
    open_checkpoint,
    sign_checkpoint,
    witness_verifier,
)

DOC = (Path(__file__).resolve().parent.parent / "docs" / "ledger.md").read_text("utf-8")
ORIGIN = "kz.gateway.example/ledger"
WITNESS = "by.gateway.example/ledger/witness"
LOG_KEY = SigningKey(bytes(range(32)))
WITNESS_KEY = SigningKey(bytes(range(32, 64)))
EVENT = Event(type="submitted", time=datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC),
              envelope_id=bytes(range(16)), case_id=bytes(range(16, 32)),
              from_authority="KZ-MVD", to_authority="BY-MVD",
              envelope_hash=bytes(range(32, 64)), signatory_key_id=bytes(range(64, 80)),
              details=(("kind", "request"), ("attempt", 1)))


def _blocks(language: str = "") -> list[str]:
    """The page's fenced blocks (opening and closing fences paired in order)."""
    fenced = re.findall(r"```([a-z0-9]*)\n(.*?)```", DOC, flags=re.S)
    return [body for lang, body in fenced if lang == language]


def test_example_entry() -> None:
    der = bytes.fromhex("".join(_blocks("hex")[0].split()))
    assert der == encode_entry(0, ZERO_HASH, encode_event(EVENT))
    assert decode_entry(der).event == EVENT
    assert base64.b64encode(hash_leaf(der)).decode() in DOC


def test_example_checkpoint_cosignature_and_keys() -> None:
    leaf = hash_leaf(encode_entry(0, ZERO_HASH, encode_event(EVENT)))
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, leaf), LOG_KEY)
    cosignature = cosign_body(signed.checkpoint.body, 1772600000, WITNESS, WITNESS_KEY)
    note = str(signed.signed.with_signatures(cosignature))
    assert note in _blocks()
    log = log_verifier(ORIGIN, LOG_KEY.verify_key)
    witness = witness_verifier(WITNESS, WITNESS_KEY.verify_key)
    assert f"{log.vkey}\n{witness.vkey}\n" in _blocks()
    parsed = open_checkpoint(note, NoteVerifier.from_vkey(log.vkey))
    assert cosignatures_by(parsed.signed, NoteVerifier.from_vkey(witness.vkey)) == [1772600000]


def test_registry_table_is_the_registry() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", DOC, flags=re.M))
    assert {name: int(number) for number, name in rows.items()} == dict(EVENT_TYPES)


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in vars(ledger.errors).values()
             if isinstance(cls, type) and issubclass(cls, ledger.errors.LedgerError)}
    codes -= {"ledger.error", "ledger.witness_refused", "ledger.audit_failed"}  # bases only
    assert sorted(code for code in codes if f"`{code}`" not in DOC) == []
