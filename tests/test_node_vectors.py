"""The byte vectors in docs/node.md (receipts, peer batches), re-derived here."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from gateway.node.batch import BatchError, decode_batch, encode_batch
from gateway.receipt import ReceiptError, make_receipt, verify_receipt

DOC = (Path(__file__).resolve().parent.parent / "docs" / "node.md").read_text(encoding="utf-8")
KEY = SigningKey(bytes(range(32)))
TIME = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)


def vector(name: str) -> bytes:
    match = re.search(rf"<!-- vector: {name} -->\n```hex\n(.*?)```", DOC, re.S)
    assert match, f"docs/node.md has no vector {name}"
    return bytes.fromhex("".join(match.group(1).split()))


def test_relay_receipt_vector() -> None:
    receipt = make_receipt("relay", "BY", bytes(range(16)), bytes(range(32, 64)), 7, TIME, KEY)
    assert receipt == vector("relay-receipt")
    parsed = verify_receipt(receipt, KEY.verify_key, type="relay",
                            subject_hash=bytes(range(32, 64)))
    assert (parsed.ledger_index, parsed.time, parsed.party) == (7, TIME, "BY")


def test_receipt_checks_refuse_with_codes() -> None:
    receipt = make_receipt("relay", "BY", bytes(range(16)), bytes(range(32, 64)), 7, TIME, KEY)
    other = SigningKey.generate().verify_key
    cases = [
        (dict(data=receipt, node_key=other, type="relay"), "receipt.bad_signature"),
        (dict(data=receipt, node_key=KEY.verify_key, type="submission"), "receipt.wrong_type"),
        (dict(data=receipt, node_key=KEY.verify_key, type="relay", subject_hash=b"\0" * 32),
         "receipt.hash_mismatch"),
        (dict(data=receipt + b"\0", node_key=KEY.verify_key, type="relay"), "receipt.invalid"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ReceiptError) as info:
            verify_receipt(**kwargs)  # type: ignore[arg-type]
        assert info.value.code == code


def test_batch_vector_and_strictness() -> None:
    batch = encode_batch([b"\x30\x00", b"\x30\x01\x00"])
    assert batch == vector("batch")
    assert decode_batch(batch, 100) == [b"\x30\x00", b"\x30\x01\x00"]
    for bad in (batch + b"\0", b"\x30\x80\x04\x00\x00\x00", b"\x30\x00", batch[:-1]):
        with pytest.raises(BatchError):
            decode_batch(bad, 100)
    with pytest.raises(BatchError):
        decode_batch(batch, 5)
