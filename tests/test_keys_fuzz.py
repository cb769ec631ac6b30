"""Hypothesis fuzzing: the decoders raise nothing but KeysError subclasses.

Inputs are random bytes, and single mutations (flip, insert, delete, truncate, splice)
of real signed documents, which reach far deeper into the parser than noise does.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from keys.der import load_strict
from keys.directory import Authority, NodeIdentity, PartyDirectory, decode_directory
from keys.errors import KeysError, NotDer
from keys.schema import DirectoryTBS, SignatoryListTBS
from keys.signatories import FormSample, Signatory, SignatoryList, decode_signatory_list

ROOT = SigningKey(hashlib.sha256(b"fuzz root").digest())
T0 = datetime(2021, 1, 1, tzinfo=UTC)
NOW = datetime(2021, 6, 1, tzinfo=UTC)

LIST = SignatoryList(
    "KZ",
    "KZ-MVD",
    1,
    T0,
    (Signatory(SigningKey(bytes(32)).verify_key, "Тестов Тест", "Testov Test", "head", T0),),
    (FormSample("a.pdf", "application/pdf", bytes(32)),),
).sign(ROOT)
DIRECTORY = PartyDirectory(
    "KZ",
    1,
    T0,
    datetime(2022, 1, 1, tzinfo=UTC),
    ROOT.verify_key,
    NodeIdentity(
        SigningKey(bytes([1]) * 32).verify_key,
        SigningKey(bytes([2]) * 32).verify_key,
        bytes(32),
        "https://kz.example",
        "kz.example/ledger",
    ),
    (Authority("KZ-MVD", "Министерство", "Ministry", PrivateKey(bytes(32)).public_key, T0),),
).sign(ROOT)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        if action == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[i] = draw(st.sampled_from([0x00, 0x80, 0x81, 0x82, 0x84, 0xFF]))
        elif action == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[i]
        elif action == "truncate":
            del data[i:]
        else:
            j = draw(st.integers(0, len(data)))
            data[i:j] = draw(st.binary(max_size=8))
    return bytes(data)


def only_keys_errors(decode: Callable[[bytes], object], data: bytes) -> None:
    try:
        decode(data)
    except KeysError as e:
        assert e.code.startswith("keys."), e.code


def decode_list(data: bytes) -> object:
    return decode_signatory_list(data, root_key=ROOT.verify_key)


def decode_dir_pinned(data: bytes) -> object:
    return decode_directory(data, pinned_root=ROOT.verify_key, now=NOW)


def decode_dir_first(data: bytes) -> object:
    return decode_directory(data, pinned_root=None, now=None)


@FUZZ
@given(st.binary(max_size=512))
def test_signatory_list_random_bytes(data: bytes) -> None:
    only_keys_errors(decode_list, data)


@FUZZ
@given(mutated(LIST))
def test_signatory_list_mutations(data: bytes) -> None:
    only_keys_errors(decode_list, data)


@FUZZ
@given(st.binary(max_size=512))
def test_directory_random_bytes(data: bytes) -> None:
    only_keys_errors(decode_dir_pinned, data)


@FUZZ
@given(mutated(DIRECTORY))
def test_directory_mutations(data: bytes) -> None:
    only_keys_errors(decode_dir_pinned, data)
    only_keys_errors(decode_dir_first, data)


@FUZZ
@given(st.one_of(mutated(LIST[4:-66]), mutated(DIRECTORY[4:-66])))
def test_strict_der_on_unsigned_bodies(data: bytes) -> None:
    """No signature to stop the mutation early: every field parser sees the damage."""
    for spec in (SignatoryListTBS, DirectoryTBS):
        with contextlib.suppress(NotDer):
            load_strict(spec, data, 4096, NotDer)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def resign(tbs: bytes, context: bytes) -> bytes:
    """Wrap any bytes as SEQUENCE { tbs, OCTET STRING signature } with a valid signature."""
    signature = ROOT.sign(context + b"\n" + tbs).signature
    body = tbs + b"\x04\x40" + signature
    return b"\x30" + _length(len(body)) + body


@FUZZ
@given(mutated(LIST[4:-66]))
def test_signatory_list_signed_mutations(tbs: bytes) -> None:
    """Mutated, then signed by the root: the field rules see every damaged value."""
    only_keys_errors(decode_list, resign(tbs, b"kzby signatory list v1"))


@FUZZ
@given(mutated(DIRECTORY[4:-66]))
def test_directory_signed_mutations(tbs: bytes) -> None:
    only_keys_errors(decode_dir_pinned, resign(tbs, b"kzby directory v1"))
    only_keys_errors(decode_dir_first, resign(tbs, b"kzby directory v1"))


def test_resign_reproduces_the_real_encoding() -> None:
    assert resign(LIST[4:-66], b"kzby signatory list v1") == LIST
    assert resign(DIRECTORY[4:-66], b"kzby directory v1") == DIRECTORY
