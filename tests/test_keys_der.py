"""Strict DER (keys/der.py): one encoding per value, nothing after it, size bounded first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asn1crypto import core

from keys import schema
from keys.der import load_strict
from keys.errors import NotDer, TooLarge


class Refused(Exception):
    """A caller's own error class: load_strict must raise exactly what it is given."""


class Pair(core.Sequence):  # type: ignore[misc]
    _fields = [("n", core.Integer), ("when", core.GeneralizedTime)]


INT5 = b"\x02\x01\x05"
TIME = b"\x18\x0f" + b"20210101000000Z"


def seq(body: bytes) -> bytes:
    return b"\x30" + bytes([len(body)]) + body


GOOD = seq(INT5 + TIME)
assert Pair({"n": 5, "when": datetime(2021, 1, 1, tzinfo=UTC)}).dump() == GOOD

# BER that asn1crypto reads happily: only the re-encode check refuses these.
BER_NOT_DER = {
    "indefinite-length": b"\x30\x80" + INT5 + TIME + b"\x00\x00",
    "non-minimal-length": b"\x30\x81" + bytes([len(INT5 + TIME)]) + INT5 + TIME,
    "long-form-length": b"\x30\x82\x00" + bytes([len(INT5 + TIME)]) + INT5 + TIME,
    "non-minimal-integer": seq(b"\x02\x02\x00\x05" + TIME),
    "time-with-offset": seq(INT5 + b"\x18\x13" + b"20210101050000+0500"),
    "time-with-fraction": seq(INT5 + b"\x18\x12" + b"20210101000000.50Z"),
}
MALFORMED = {
    "trailing-byte": GOOD + b"\x00",
    "truncated": GOOD[:-1],
    "empty": b"",
    "wrong-outer-tag": b"\x31" + GOOD[1:],
    "wrong-inner-type": seq(INT5 + INT5),
    "time-without-seconds": seq(INT5 + b"\x18\x0d" + b"202101010000Z"),
}


def load(data: bytes, max_size: int = 1024) -> Pair:
    return load_strict(Pair, data, max_size, Refused)


def test_accepts_der() -> None:
    assert load(GOOD).native == {"n": 5, "when": datetime(2021, 1, 1, tzinfo=UTC)}


@pytest.mark.parametrize("data", BER_NOT_DER.values(), ids=BER_NOT_DER.keys())
def test_refuses_ber_that_is_not_der(data: bytes) -> None:
    assert Pair.load(data).native["n"] == 5  # readable BER ...
    with pytest.raises(Refused, match="not DER"):  # ... but not DER
        load(data)


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_refuses_malformed(data: bytes) -> None:
    with pytest.raises(Refused):
        load(data)


def test_size_checked_before_parsing() -> None:
    """Over the limit is refused even when the bytes are a fine DER value."""
    with pytest.raises(Refused, match="over the limit"):
        load(GOOD, max_size=len(GOOD) - 1)
    assert load(GOOD, max_size=len(GOOD)).native["n"] == 5


def test_separate_error_for_size() -> None:
    with pytest.raises(TooLarge):
        load_strict(Pair, GOOD, 4, NotDer, too_large_cls=TooLarge)


def test_not_bytes() -> None:
    with pytest.raises(Refused):
        load_strict(Pair, "0\x00", 1024, Refused)  # type: ignore[arg-type]


def test_accepts_bytearray_and_memoryview() -> None:
    assert load_strict(Pair, bytearray(GOOD), 1024, Refused).native["n"] == 5
    assert load_strict(Pair, memoryview(GOOD), 1024, Refused).native["n"] == 5


def test_inner_fields_are_parsed_eagerly() -> None:
    """A bad field deep inside fails in load_strict, not later in the caller."""
    bad_utf8 = schema.FormSample(
        {"file_name": "x", "media_type": "a/b", "sha256": bytes(32)}
    ).dump()
    bad_utf8 = bad_utf8.replace(b"\x0c\x01x", b"\x0c\x01\xff")
    with pytest.raises(Refused):
        load_strict(schema.FormSample, bad_utf8, 1024, Refused)


def test_message_never_quotes_the_input() -> None:
    secret = "Тестов".encode()
    value = schema.FormSample({"file_name": "Тестов", "media_type": "a/b", "sha256": b""}).dump()
    with pytest.raises(Refused) as e:
        load_strict(schema.FormSample, value + b"\x00", 1024, Refused)
    assert secret.hex() not in str(e.value)
    assert "Тестов" not in str(e.value)
