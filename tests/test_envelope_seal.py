"""Sealing, opening and the node-side check, end to end through the SDK.

Rules are cited as in docs/protocol.md (R1 ...) and agreement clauses as in AGREEMENT.md.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from gateway import sdk
from gateway.envelope import body as bodies
from gateway.envelope import kinds, limits
from gateway.envelope.check import EnvelopeVerifier
from gateway.envelope.errors import EnvelopeError
from gateway.envelope.seal import encrypt_body
from gateway.envelope.wire import ciphertext_length, decode, encode, signed_message
from gateway.errors import CODED_ERRORS
from keys.signatories import Signatory, SignatoryList, SignatoryRegistry

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

KZ_SIGNATORY = SigningKey(hashlib.sha256(b"test signatory KZ-MVD").digest())
BY_SIGNATORY = SigningKey(hashlib.sha256(b"test signatory BY-MVD").digest())
KZ_MVD = PrivateKey(hashlib.sha256(b"test encryption KZ-MVD").digest())
BY_MVD = PrivateKey(hashlib.sha256(b"test encryption BY-MVD").digest())


def example(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    return body


def request(**overrides: Any) -> bytes:
    args: dict[str, Any] = dict(
        kind="request", sender="KZ-MVD", recipient="BY-MVD", body=example("request"),
        signatory_key=KZ_SIGNATORY, recipient_key=BY_MVD.public_key, now=T0,
    )
    args.update(overrides)
    return sdk.seal(**args)


def reply(to: bytes, kind: str = "acknowledgement", **overrides: Any) -> bytes:
    body = {"envelope_id": sdk.inspect(to).envelope_id.hex()} if kind == "acknowledgement" \
        else example(kind)
    args: dict[str, Any] = dict(
        kind=kind, sender="BY-MVD", recipient="KZ-MVD", body=body, signatory_key=BY_SIGNATORY,
        recipient_key=KZ_MVD.public_key, in_reply_to=to, now=T0 + timedelta(hours=1),
    )
    args.update(overrides)
    return sdk.seal(**args)


def registry(*lists: SignatoryList) -> SignatoryRegistry:
    held = SignatoryRegistry()
    for lst in lists:
        held.add(lst)
    return held


def signatory_list(
    authority: str,
    *keys: SigningKey,
    version: int = 1,
    effective: datetime = T0 - timedelta(days=60),
    valid_from: datetime = T0 - timedelta(days=60),
    valid_until: datetime | None = None,
) -> SignatoryList:
    return SignatoryList(
        party=authority[:2], authority=authority, version=version, effective=effective,
        signatories=tuple(
            Signatory(key=k.verify_key, name_cyrillic="Тестов Тест", name_latin="Testov Test",
                      role="authorised", valid_from=valid_from, valid_until=valid_until)
            for k in keys
        ),
    )


BOTH_LISTS = registry(signatory_list("KZ-MVD", KZ_SIGNATORY), signatory_list("BY-MVD",
                                                                              BY_SIGNATORY))


def code_of(action: Any) -> str:
    with pytest.raises(CODED_ERRORS) as failure:
        action()
    code: str = failure.value.code  # type: ignore[attr-defined]
    return code


# Round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k.name for k in kinds.KINDS])
def test_every_kind_round_trips_from_its_docs_example(kind: str) -> None:
    """docs/examples/<kind>.json seals and opens unchanged, for every kind."""
    the_request = request()
    body = example(kind)
    opening = kinds.by_name(kind).opens_case
    if kind == "acknowledgement":
        body["envelope_id"] = sdk.inspect(the_request).envelope_id.hex()
    sealed = sdk.seal(
        kind=kind, sender="BY-MVD", recipient="KZ-MVD", body=body,
        signatory_key=BY_SIGNATORY, recipient_key=KZ_MVD.public_key,
        in_reply_to=None if opening else the_request, now=T0 + timedelta(hours=1),
    )
    opened = sdk.open(sealed, recipient_key=KZ_MVD, signatory_key=BOTH_LISTS)
    assert opened.body == body
    assert opened.header.kind == kind
    assert (opened.header.in_reply_to is None) == opening


def test_reply_takes_id_hash_and_case_of_the_envelope_answered() -> None:
    the_request = request()
    answered = sdk.inspect(the_request)
    header = sdk.inspect(reply(the_request, "answer"))
    assert header.in_reply_to == answered.envelope_id
    assert header.in_reply_to_hash == hashlib.sha256(the_request).digest()
    assert header.case_id == answered.case_id


def test_each_request_gets_fresh_random_ids() -> None:
    one, two = sdk.inspect(request()), sdk.inspect(request())
    assert one.envelope_id != two.envelope_id and one.case_id != two.case_id
    assert len(one.envelope_id) == len(one.case_id) == 16


def test_created_is_stored_as_utc_whole_seconds() -> None:
    moment = datetime(2025, 3, 3, 12, 0, 0, 987_654, tzinfo=timezone(timedelta(hours=5)))
    assert sdk.inspect(request(now=moment)).created == datetime(2025, 3, 3, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"kind": "requets"}, "envelope.unknown_kind"),
        ({"sender": "KZ_MVD"}, "envelope.bad_authority"),
        ({"recipient": "KZ-MLSP"}, "envelope.bad_authority"),
        ({"case_id": b"short"}, "envelope.bad_field"),
        ({"now": datetime(2025, 3, 3, 9, 0)}, "envelope.bad_field"),
        ({"body": {"subject": "no other field"}}, "body.missing_field"),
    ],
)
def test_seal_refuses_what_a_node_would_refuse(overrides: dict[str, Any], code: str) -> None:
    assert code_of(lambda: request(**overrides)) == code


def test_reply_rules_R8() -> None:
    the_request = request()
    assert code_of(lambda: reply(the_request, "answer", case_id=b"\x00" * 16)) == \
        "envelope.bad_reply"
    assert code_of(lambda: request(in_reply_to=the_request)) == "envelope.bad_reply"
    assert code_of(lambda: reply(the_request, "answer", in_reply_to=None)) == \
        "envelope.bad_reply"


def test_acknowledgement_names_the_envelope_it_answers() -> None:
    the_request = request()
    other = {"envelope_id": "00" * 16}
    assert code_of(lambda: reply(the_request, body=other)) == "body.bad_value"


# Encryption in chunks -------------------------------------------------------------------


def _signatory_list_of_der_size(size: int) -> dict[str, Any]:
    """A signatory_list body whose DER is exactly ``size`` bytes."""
    document_size = size
    for _ in range(3):  # the length octets grow with the size; settle in a step or two
        body = {"document": base64.b64encode(b"\x01" * document_size).decode()}
        document_size -= len(bodies.encode("signatory_list", body)) - size
    assert len(bodies.encode("signatory_list", body)) == size
    return body


@pytest.mark.parametrize("size", [300, 65_535, 65_536, 65_537, 2 * 65_536, 2 * 65_536 + 1])
def test_bodies_across_chunk_boundaries_round_trip(size: int) -> None:
    body = _signatory_list_of_der_size(size)
    sealed = sdk.seal(kind="signatory_list", sender="KZ-MVD", recipient="BY-MVD", body=body,
                      signatory_key=KZ_SIGNATORY, recipient_key=BY_MVD.public_key, now=T0)
    header = sdk.inspect(sealed)
    chunks = -(-size // limits.CHUNK_SIZE)
    assert header.ciphertext_length == size + 17 * chunks == ciphertext_length(size)
    assert sdk.open(sealed, recipient_key=BY_MVD, signatory_key=KZ_SIGNATORY.verify_key).body \
        == body


def _resealed(sealed: bytes, ciphertext: bytes) -> bytes:
    """``sealed`` with another ciphertext, its header's length adjusted and re-signed, so
    only the decryption can fail."""
    parts = decode(sealed)
    header = dataclasses.replace(parts.header, ciphertext_length=len(ciphertext))
    header_der = bytes(header.to_schema().dump())
    signature = KZ_SIGNATORY.sign(signed_message(header_der, parts.wrapped_key, ciphertext))
    return encode(header_der, parts.wrapped_key, ciphertext, signature.signature)


def test_a_stream_cut_or_reordered_at_a_chunk_boundary_cannot_open() -> None:
    sealed = sdk.seal(kind="signatory_list", sender="KZ-MVD", recipient="BY-MVD",
                      body=_signatory_list_of_der_size(3 * 65_536), signatory_key=KZ_SIGNATORY,
                      recipient_key=BY_MVD.public_key, now=T0)
    ciphertext = decode(sealed).ciphertext
    step = limits.CHUNK_SIZE + limits.CHUNK_OVERHEAD
    chunks = [ciphertext[i : i + step] for i in range(0, len(ciphertext), step)]
    for changed in (b"".join(chunks[:2]), b"".join([chunks[1], chunks[0], chunks[2]])):
        assert code_of(lambda c=changed: sdk.open(  # type: ignore[misc]
            _resealed(sealed, c), recipient_key=BY_MVD,
            signatory_key=KZ_SIGNATORY.verify_key)) == "envelope.cannot_open"


def test_every_chunk_is_bound_to_the_header() -> None:
    """The header DER is the associated data of every chunk, not only the first: a
    second chunk pulled with other associated data fails even after a good first one."""
    key, stream = b"\x03" * 32, b"\x04" * 24
    ciphertext = encrypt_body(b"\x02" * (2 * limits.CHUNK_SIZE), key, stream, b"header")
    step = limits.CHUNK_SIZE + limits.CHUNK_OVERHEAD

    def second_chunk_with(ad: bytes) -> None:
        state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
        nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, stream, key)
        nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(state, ciphertext[:step],
                                                                 b"header")
        nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(state, ciphertext[step:], ad)

    second_chunk_with(b"header")
    with pytest.raises(nacl.exceptions.CryptoError):
        second_chunk_with(b"another header")


# Recipient failures give one opaque code --------------------------------------------------


def test_wrong_recipient_key_cannot_open() -> None:
    assert code_of(lambda: sdk.open(request(), recipient_key=KZ_MVD,
                                    signatory_key=KZ_SIGNATORY.verify_key)) == \
        "envelope.cannot_open"
    assert code_of(lambda: sdk.open(request(), recipient_key=PrivateKey.generate(),
                                    signatory_key=KZ_SIGNATORY.verify_key)) == \
        "envelope.cannot_open"


def test_open_failures_give_no_oracle() -> None:
    """A wrong key and a re-signed, tampered ciphertext fail with the same code and
    message, so a forger learns nothing about which part worked."""
    sealed = request()
    tampered = bytearray(decode(sealed).ciphertext)
    tampered[3] ^= 1
    messages = set()
    for envelope, key in ((sealed, KZ_MVD), (_resealed(sealed, bytes(tampered)), BY_MVD)):
        with pytest.raises(EnvelopeError) as failure:
            sdk.open(envelope, recipient_key=key, signatory_key=KZ_SIGNATORY.verify_key)
        messages.add((failure.value.code, failure.value.message))
    assert messages == {("envelope.cannot_open", "cannot open the envelope with this key")}


def test_open_with_the_wrong_signatory_key() -> None:
    assert code_of(lambda: sdk.open(request(), recipient_key=BY_MVD,
                                    signatory_key=BY_SIGNATORY.verify_key)) == \
        "envelope.unknown_signatory"


def test_flipping_any_single_byte_fails_open_and_verify_R3_R13() -> None:
    """Every position of a small envelope, three ways each: never accepted, always a
    coded error."""
    the_request = request()
    sealed = reply(the_request)
    verifier = EnvelopeVerifier(BOTH_LISTS)
    now = T0 + timedelta(hours=1)
    for index in range(len(sealed)):
        for mask in (0x01, 0x80, 0xFF):
            changed = bytearray(sealed)
            changed[index] ^= mask
            with pytest.raises(CODED_ERRORS):
                sdk.open(bytes(changed), recipient_key=KZ_MVD, signatory_key=BOTH_LISTS)
            with pytest.raises(CODED_ERRORS):
                verifier.verify(bytes(changed), now)


# The node-side check ----------------------------------------------------------------------


def test_verifier_needs_no_private_key_and_cites_the_hash() -> None:
    sealed = request()
    checked = EnvelopeVerifier(BOTH_LISTS).verify(sealed, T0)
    assert checked.envelope_hash == hashlib.sha256(sealed).digest()
    assert checked.header == sdk.inspect(sealed)


def test_signatory_not_on_the_list_is_refused_A9_3() -> None:
    """A9.3: only persons on the sender's signatory list may sign."""
    stranger = SigningKey.generate()
    sealed = request(signatory_key=stranger)
    assert code_of(lambda: EnvelopeVerifier(BOTH_LISTS).verify(sealed, T0)) == \
        "envelope.unknown_signatory"
    assert code_of(lambda: sdk.open(sealed, recipient_key=BY_MVD,
                                    signatory_key=BOTH_LISTS)) == "envelope.unknown_signatory"


def test_no_list_for_the_sender_is_refused_A9_3() -> None:
    only_by = registry(signatory_list("BY-MVD", BY_SIGNATORY))
    assert code_of(lambda: EnvelopeVerifier(only_by).verify(request(), T0)) == \
        "envelope.no_signatory_list"


def test_signatory_outside_validity_is_refused_A9_4() -> None:
    expired = registry(signatory_list("KZ-MVD", KZ_SIGNATORY, valid_until=T0 - timedelta(days=1)))
    assert code_of(lambda: EnvelopeVerifier(expired).verify(request(), T0)) == \
        "envelope.signatory_not_in_force"
    later = registry(signatory_list("KZ-MVD", KZ_SIGNATORY, valid_from=T0 + timedelta(days=1)))
    assert code_of(lambda: EnvelopeVerifier(later).verify(request(), T0)) == \
        "envelope.signatory_not_in_force"


def test_a_changed_list_judges_envelopes_by_their_created_time_A9_4() -> None:
    """A9.4: after a list changes, envelopes signed before it still verify; new ones
    signed by the removed signatory do not."""
    successor = SigningKey.generate()
    lists = registry(
        signatory_list("KZ-MVD", KZ_SIGNATORY),
        signatory_list("KZ-MVD", successor, version=2, effective=T0 + timedelta(days=1)),
    )
    verifier = EnvelopeVerifier(lists)
    later = T0 + timedelta(days=2)
    verifier.verify(request(), later)
    assert code_of(lambda: verifier.verify(request(now=later), later)) == \
        "envelope.signatory_not_in_force"
    verifier.verify(request(now=later, signatory_key=successor), later)


def test_created_in_the_future_beyond_the_skew_R11() -> None:
    sealed = request()
    verifier = EnvelopeVerifier(BOTH_LISTS)
    verifier.verify(sealed, T0 - timedelta(minutes=5))
    assert code_of(lambda: verifier.verify(sealed, T0 - timedelta(minutes=5, seconds=1))) == \
        "envelope.created_in_future"


def test_envelope_over_64_mib_is_refused_before_parsing_R1() -> None:
    assert code_of(lambda: sdk.inspect(b"\x30" + b"\x00" * limits.MAX_ENVELOPE)) == \
        "envelope.too_large"


def test_inspect_refuses_what_is_not_bytes() -> None:
    assert code_of(lambda: sdk.inspect("30 00")) == "envelope.not_der"  # type: ignore[arg-type]
