"""C2SP signed notes, checkpoints, cosignatures (``cosignature/v1``) and the witness's
refusals: a fork, a rollback or an inconsistent history is never cosigned."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from nacl.signing import SigningKey

from ledger.errors import (
    BadCheckpoint,
    BadCosignature,
    BadNote,
    BadSignature,
    BadVerifierKey,
    WitnessFork,
    WitnessInconsistent,
    WitnessRollback,
    WrongOrigin,
)
from ledger.hashing import hash_leaf
from ledger.note import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteVerifier,
    cosign_body,
    cosignature_message,
    cosignatures_by,
    key_id,
    log_verifier,
    open_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_signature_line,
    sign_checkpoint,
    sign_note,
    verify_cosignature,
    verify_note,
    witness_verifier,
)
from ledger.proof import consistency, rehash
from ledger.tree import TreeEdge
from ledger.witness import cosign

ORIGIN = "by.gateway.test/ledger"
LOG_KEY = SigningKey(bytes(range(32)))
WITNESS_KEY = SigningKey(bytes(range(32, 64)))
WITNESS = "kz.gateway.test/ledger/witness"
NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
LEAVES = [hash_leaf(i.to_bytes(2, "big")) for i in range(40)]


def root(size: int) -> bytes:
    edge = TreeEdge()
    for leaf in LEAVES[:size]:
        edge.append(leaf)
    return edge.root()


def proof(old: int, new: int) -> list[bytes]:
    def lookup(node):  # type: ignore[no-untyped-def]
        edge = TreeEdge()
        for leaf in LEAVES[node.begin : node.end]:
            edge.append(leaf)
        return edge.root()

    return rehash(consistency(old, new), lookup)


def note_for(size: int, root_hash: bytes | None = None, key: SigningKey = LOG_KEY) -> str:
    checkpoint = Checkpoint(ORIGIN, size, root(size) if root_hash is None else root_hash)
    return sign_checkpoint(checkpoint, key).note


# --- notes and verifier keys -------------------------------------------------------------


def test_key_id_is_the_c2sp_rule() -> None:
    public = bytes(LOG_KEY.verify_key)
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id(ORIGIN, 0x01, public) == expected == log_verifier(
        ORIGIN, LOG_KEY.verify_key).key_id


def test_vkey_round_trip_and_form() -> None:
    for verifier in (log_verifier(ORIGIN, LOG_KEY.verify_key),
                     witness_verifier(WITNESS, WITNESS_KEY.verify_key)):
        name, hex_id, encoded = verifier.vkey.split("+", 2)
        assert name == verifier.name and hex_id == verifier.key_id.hex() and len(hex_id) == 8
        assert base64.b64decode(encoded)[0] == verifier.type
        assert NoteVerifier.from_vkey(verifier.vkey) == verifier


@pytest.mark.parametrize("vkey", [
    "no-plus-signs",
    f"{ORIGIN}+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),  # wrong id
    f"{ORIGIN}+{'0' * 8}+AQ",                                                   # not canonical
    "a b+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),           # space in name
    f"{ORIGIN}+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),     # ECDSA type
])
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(BadVerifierKey):
        NoteVerifier.from_vkey(vkey)


def test_note_round_trip_and_unknown_signatures_ignored() -> None:
    note = sign_note("hello\nworld\n", ORIGIN, LOG_KEY)
    other = sign_note("hello\nworld\n", "someone.else/key", SigningKey.generate())
    both = note.with_signatures(*other.signatures)
    text = str(both)
    assert text.startswith("hello\nworld\n\n\u2014 ")
    parsed = parse_note(text)
    assert parsed == both
    verify_note(parsed, log_verifier(ORIGIN, LOG_KEY.verify_key))


def test_note_signature_failures() -> None:
    log = log_verifier(ORIGIN, LOG_KEY.verify_key)
    unsigned = sign_note("hello\n", "someone.else/key", SigningKey.generate())
    with pytest.raises(BadSignature):
        verify_note(unsigned, log)
    good = sign_note("hello\n", ORIGIN, LOG_KEY)
    tampered = parse_note(str(good).replace("hello", "hallo"))
    with pytest.raises(BadSignature):
        verify_note(tampered, log)


@pytest.mark.parametrize("text", [
    "no blank line\n\u2014 a AAAAAAA=\n",
    "text\n\n",                                          # no signature
    "text\n\n- a AAAAAAAA\n",                            # not an em dash
    "text\n\n\u2014 a AAAAAAAA",                         # no final newline
    "text\n\n\u2014 a AAAAAA==\n",                       # only 4 bytes: no signature bytes
    "text\n\n\u2014 a AAAAAAAA=\n",                      # bad padding
    "text\n\n\u2014 a+b AAAAAAAAAA==\n",                 # plus in the name
    "te\x01xt\n\n\u2014 a AAAAAAAAAA==\n",               # control character
    "text\n\n" + "\u2014 a AAAAAAAAAA==\n" * (MAX_SIGNATURES + 1),
    "x" * 20000 + "\n\n\u2014 a AAAAAAAAAA==\n",
])
def test_strict_note_parsing(text: str) -> None:
    with pytest.raises(BadNote):
        parse_note(text)


def test_note_must_be_utf8() -> None:
    with pytest.raises(BadNote):
        parse_note(b"\xff\n\n\xe2\x80\x94 a AAAAAAAAAA==\n")


# --- checkpoints -------------------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    signed = open_checkpoint(note_for(5), log_verifier(ORIGIN, LOG_KEY.verify_key))
    assert signed.checkpoint == Checkpoint(ORIGIN, 5, root(5))
    assert signed.note.startswith(f"{ORIGIN}\n5\n{base64.b64encode(root(5)).decode()}\n\n")


@pytest.mark.parametrize("body", [
    f"{ORIGIN}\n05\n{base64.b64encode(bytes(32)).decode()}\n",          # leading zero
    f"{ORIGIN}\n-1\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{ORIGIN}\n+5\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{ORIGIN}\n9223372036854775808\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{ORIGIN}\n5\n{base64.b64encode(bytes(31)).decode()}\n",          # short root
    f"{ORIGIN}\n5\n{base64.urlsafe_b64encode(bytes([255]) * 32).decode()}\n",  # URL alphabet
    f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode().rstrip('=')}\n",  # no padding
    f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}\nextension\n",
    f"\n5\n{base64.b64encode(bytes(32)).decode()}\n",
    f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}",             # no final newline
])
def test_strict_checkpoint_bodies(body: str) -> None:
    with pytest.raises(BadCheckpoint):
        parse_checkpoint_body(body)


def test_checkpoint_of_another_origin_refused() -> None:
    other = sign_checkpoint(Checkpoint("kz.gateway.test/ledger", 5, root(5)), LOG_KEY).note
    with pytest.raises(BadSignature):  # signed under another key name
        open_checkpoint(other, log_verifier(ORIGIN, LOG_KEY.verify_key))
    mislabelled = sign_note(Checkpoint("elsewhere/log", 5, root(5)).body, ORIGIN, LOG_KEY)
    with pytest.raises(WrongOrigin):
        open_checkpoint(str(mislabelled), log_verifier(ORIGIN, LOG_KEY.verify_key))


# --- cosignatures ------------------------------------------------------------------------


def test_cosignature_message_is_the_c2sp_one() -> None:
    body = Checkpoint(ORIGIN, 20852163, bytes(32)).body
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode())


def test_cosignature_round_trip() -> None:
    body = Checkpoint(ORIGIN, 5, root(5)).body
    signature = cosign_body(body, 1_700_000_000, WITNESS, WITNESS_KEY)
    raw = base64.b64decode(signature.line.split(" ")[2])
    assert raw[:4] == key_id(WITNESS, 0x04, bytes(WITNESS_KEY.verify_key))
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000 and len(raw) == 4 + 8 + 64
    witness = witness_verifier(WITNESS, WITNESS_KEY.verify_key)
    assert verify_cosignature(body, parse_signature_line(signature.line), witness) \
        == 1_700_000_000
    other_body = Checkpoint(ORIGIN, 6, root(6)).body
    with pytest.raises(BadCosignature):
        verify_cosignature(other_body, signature, witness)


def test_cosignatures_ride_in_the_note() -> None:
    signed = open_checkpoint(note_for(5), log_verifier(ORIGIN, LOG_KEY.verify_key))
    line = cosign_body(signed.checkpoint.body, 1, WITNESS, WITNESS_KEY)
    with_cosignature = parse_note(str(signed.signed.with_signatures(line)))
    # The log's verification ignores the cosignature line (an unknown key to it).
    open_checkpoint(str(with_cosignature), log_verifier(ORIGIN, LOG_KEY.verify_key))
    assert cosignatures_by(with_cosignature,
                           witness_verifier(WITNESS, WITNESS_KEY.verify_key)) == [1]


# --- the witness -------------------------------------------------------------------------


def _cosign(note: str, consistency_proof: list[bytes], old_note: str | None
            ) -> tuple[int, str] | None:
    return cosign(note, consistency_proof, old_note=old_note, log_key=LOG_KEY.verify_key,
                  origin=ORIGIN, witness_key=WITNESS_KEY, witness_name=WITNESS, now=NOW)


def test_witness_cosigns_a_consistent_extension() -> None:
    first = _cosign(note_for(3), [], None)  # first contact: nothing to compare with
    assert first is not None and first[0] == 3
    result = _cosign(note_for(17), proof(3, 17), note_for(3))
    assert result is not None
    size, line = result
    assert size == 17
    witness = witness_verifier(WITNESS, WITNESS_KEY.verify_key)
    assert verify_cosignature(Checkpoint(ORIGIN, 17, root(17)).body,
                              parse_signature_line(line), witness) == int(NOW.timestamp())


def test_witness_has_nothing_to_do_for_the_same_checkpoint() -> None:
    assert _cosign(note_for(9), [], note_for(9)) is None


def test_witness_refuses_a_fork() -> None:
    with pytest.raises(WitnessFork) as caught:
        _cosign(note_for(9, root_hash=b"\x42" * 32), [], note_for(9))
    assert caught.value.code == "ledger.witness_fork"


def test_witness_refuses_a_rollback() -> None:
    with pytest.raises(WitnessRollback) as caught:
        _cosign(note_for(5), [], note_for(9))
    assert caught.value.code == "ledger.witness_rollback"


def test_witness_refuses_an_inconsistent_history() -> None:
    forked_new = note_for(17, root_hash=hashlib.sha256(b"another history").digest())
    with pytest.raises(WitnessInconsistent):
        _cosign(forked_new, proof(9, 17), note_for(9))
    with pytest.raises(WitnessInconsistent):
        _cosign(note_for(17), proof(8, 17), note_for(9))  # a proof for other sizes
    with pytest.raises(WitnessInconsistent):
        _cosign(note_for(17), [], note_for(9))


def test_witness_refuses_a_checkpoint_the_log_did_not_sign() -> None:
    with pytest.raises(BadSignature):
        _cosign(note_for(17, key=SigningKey.generate()), proof(9, 17), note_for(9))
