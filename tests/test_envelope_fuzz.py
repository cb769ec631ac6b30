"""Fuzzing: hostile bytes and JSON never raise outside the coded error families.

``inspect``, ``EnvelopeVerifier.verify`` and ``open`` see bytes from anyone; the body
decoder sees whatever a signatory encrypted; ``seal`` sees any JSON an agency system
writes. Each may fail, but only with a ``GatewayError`` or ``KeysError`` that carries a
code, never with an exception from asn1crypto or pynacl.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from gateway import sdk
from gateway.envelope import body as bodies
from gateway.envelope.check import EnvelopeVerifier
from gateway.envelope.errors import BodyError
from gateway.errors import CODED_ERRORS
from keys.signatories import Signatory, SignatoryList, SignatoryRegistry

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SIGNATORY = SigningKey(hashlib.sha256(b"fuzz signatory").digest())
RECIPIENT = PrivateKey(hashlib.sha256(b"fuzz recipient").digest())
REGISTRY = SignatoryRegistry()
REGISTRY.add(SignatoryList(
    party="KZ", authority="KZ-MVD", version=1, effective=T0 - timedelta(days=1),
    signatories=(Signatory(key=SIGNATORY.verify_key, name_cyrillic="Тестов Тест",
                           name_latin="Testov Test", role="authorised",
                           valid_from=T0 - timedelta(days=1)),),
))
REQUEST = sdk.seal(
    kind="request", sender="KZ-MVD", recipient="BY-MVD", signatory_key=SIGNATORY,
    recipient_key=RECIPIENT.public_key, now=T0,
    body={"requesting_authority": "МВД", "requested_authority": "МВД", "subject": "s",
          "purpose": "p", "grounds": "g", "topic": "document_misuse"},
)
GOOD = sdk.seal(kind="withdrawal", sender="KZ-MVD", recipient="BY-MVD",
                body={"reason": "Заявление отозвано."}, signatory_key=SIGNATORY,
                recipient_key=RECIPIENT.public_key, now=T0, in_reply_to=REQUEST)
EXAMPLE_DER = {
    kind: bodies.encode(kind, json.loads((EXAMPLES / f"{kind}.json").read_text("utf-8")))
    for kind in bodies.BODIES
}
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _every_way(data: bytes) -> None:
    for action in (
        lambda: sdk.inspect(data),
        lambda: EnvelopeVerifier(REGISTRY).verify(data, T0),
        lambda: sdk.open(data, recipient_key=RECIPIENT, signatory_key=REGISTRY),
        lambda: sdk.open(data, recipient_key=RECIPIENT, signatory_key=SIGNATORY.verify_key),
    ):
        try:
            action()
        except CODED_ERRORS as e:
            assert isinstance(e.code, str) and e.code.count(".") >= 1  # type: ignore[attr-defined]


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _every_way(data)


@FUZZ
@given(st.data())
def test_mutated_envelopes(data: st.DataObject) -> None:
    envelope = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(envelope) - 1))
        how = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if how == "set":
            envelope[where] = data.draw(st.integers(0, 255))
        elif how == "insert":
            envelope[where:where] = data.draw(st.binary(min_size=1, max_size=4))
        elif how == "delete":
            del envelope[where]
        else:
            del envelope[where:]
        if not envelope:
            break
    _every_way(bytes(envelope))


def _mutate(data: st.DataObject, value: bytes) -> bytes:
    changed = bytearray(value)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, max(0, len(changed) - 1)))
        how = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if how == "set" and changed:
            changed[where] = data.draw(st.integers(0, 255))
        elif how == "insert":
            changed[where:where] = data.draw(st.binary(min_size=1, max_size=3))
        elif changed:
            del changed[where]
    return bytes(changed)


@FUZZ
@given(st.data(), st.sampled_from(list(bodies.BODIES)))
def test_body_decoder_on_mutated_der(data: st.DataObject, kind: str) -> None:
    """What a signatory could encrypt: near-valid DER of every kind's body."""
    source = data.draw(st.sampled_from(list(EXAMPLE_DER)))
    with contextlib.suppress(BodyError):
        bodies.decode(kind, _mutate(data, EXAMPLE_DER[source]))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**40) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["reasons", "persons", "category", "name", "latin",
                                       "surname", "document", "envelope_id", "x", "data"])
                      | st.text(max_size=6), inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(_json, st.sampled_from(list(bodies.BODIES)))
def test_body_encoder_on_any_json(value: Any, kind: str) -> None:
    try:
        der = bodies.encode(kind, value)
    except BodyError:
        return
    assert bodies.decode(kind, der) == value
