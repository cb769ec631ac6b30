"""Generate the envelope test vectors (docs/protocol.md, "Test vectors").

    .venv/bin/python -m tests.vectors.envelope.generate

writes ``good/<kind>.json``, one sealed envelope per kind built from
docs/examples/<kind>.json, and ``bad/<case>.json``, each a mutation of a good envelope
that breaks exactly one rule and names the code it must fail with. Everything is fixed:
keys, ids, times, the content key, the secretstream header and the sealed box's
ephemeral key, so every byte is reproducible; tests/test_envelope_vectors.py calls
``build()`` and requires the committed files to equal its output.

A libsodium sealed box draws its ephemeral key inside libsodium. To fix it, ``wrap_with``
computes the same construction from an explicit ephemeral secret:
``epk || crypto_box(content_key, nonce = BLAKE2b-192(epk || recipient_pk), recipient_pk,
esk)``; the tests prove each wrapped key opens with ``SealedBox.decrypt``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.hash
from asn1crypto import parser
from nacl.encoding import RawEncoder
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from gateway.envelope import body as bodies
from gateway.envelope import kinds
from gateway.envelope.schema import HeaderSchema
from gateway.envelope.seal import InReplyTo, Wrap, encrypt_body, key_commitment, seal_envelope
from gateway.envelope.wire import ciphertext_length, encode, envelope_hash, signed_message
from keys.keyid import key_id
from keys.signatories import Signatory, SignatoryList, SignatoryRegistry

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

EXAMPLES = ROOT / "docs" / "examples"

#: Kinds the requesting authority (KZ-MVD) sends; every other kind comes from BY-MVD.
FROM_KZ = {
    "request", "additional_info", "confirmation", "confidentiality_decision",
    "consent_request", "withdrawal", "spontaneous_disclosure", "signatory_list",
    "directory_update", "termination_notice",
}
LIST_EFFECTIVE = datetime(2025, 1, 1, tzinfo=UTC)
REQUEST_CREATED = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def fixed(label: str, size: int = 32) -> bytes:
    """A fixed, labelled value: the first ``size`` bytes of SHA-256 of the label."""
    return hashlib.sha256(b"KZBY-GW vector: " + label.encode()).digest()[:size]


SIGNATORY = {a: SigningKey(fixed(f"signatory {a}")) for a in ("KZ-MVD", "BY-MVD")}
ENCRYPTION = {a: PrivateKey(fixed(f"encryption {a}")) for a in ("KZ-MVD", "BY-MVD")}


def wrap_with(ephemeral_secret: bytes) -> Wrap:
    """libsodium's crypto_box_seal with the ephemeral key given instead of drawn."""

    def wrap(content_key: bytes, recipient_key: PublicKey) -> bytes:
        esk = PrivateKey(ephemeral_secret)
        epk, rpk = bytes(esk.public_key), bytes(recipient_key)
        nonce = nacl.hash.blake2b(epk + rpk, digest_size=24, encoder=RawEncoder)
        return epk + nacl.bindings.crypto_box(content_key, nonce, rpk, bytes(esk))

    return wrap


def rng_of(*values: bytes) -> Callable[[int], bytes]:
    queue = list(values)

    def rng(size: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == size, f"the vector's random values are out of order ({size})"
        return value

    return rng


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signatory_table(
    valid_from: datetime = LIST_EFFECTIVE, valid_until: datetime | None = None
) -> list[dict[str, Any]]:
    """Who may sign: one signatory per authority, on version 1 of its list."""
    return [
        {
            "authority": authority,
            "public": bytes(key.verify_key).hex(),
            "list_effective": _iso(LIST_EFFECTIVE),
            "valid_from": _iso(valid_from),
            "valid_until": None if valid_until is None else _iso(valid_until),
        }
        for authority, key in SIGNATORY.items()
    ]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def registry_from(table: list[dict[str, Any]]) -> SignatoryRegistry:
    """The real signatory registry (keys/) holding a vector's ``signatories`` table:
    version 1 of each authority's list, one signatory each."""
    registry = SignatoryRegistry()
    for row in table:
        registry.add(
            SignatoryList(
                party=row["authority"][:2],
                authority=row["authority"],
                version=1,
                effective=_time(row["list_effective"]),
                signatories=(
                    Signatory(
                        key=VerifyKey(bytes.fromhex(row["public"])),
                        name_cyrillic="Тестов Тест",
                        name_latin="Testov Test",
                        role="authorised",
                        valid_from=_time(row["valid_from"]),
                        valid_until=None if row["valid_until"] is None
                        else _time(row["valid_until"]),
                    ),
                ),
            )
        )
    return registry


# Good vectors ---------------------------------------------------------------------------


def good_vector(kind: str, number: int, answering: bytes | None) -> dict[str, Any]:
    sender, recipient = ("KZ-MVD", "BY-MVD") if kind in FROM_KZ else ("BY-MVD", "KZ-MVD")
    body = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    created = REQUEST_CREATED + timedelta(hours=number - 1)
    envelope_id = fixed(f"envelope id {kind}", 16)
    case_id = fixed(f"case id {kind}", 16)  # drawn only by kinds that open a case
    content_key = fixed(f"content key {kind}")
    stream_header = fixed(f"stream header {kind}", 24)
    ephemeral = fixed(f"ephemeral {kind}")
    reply = None if answering is None else InReplyTo.of(answering)
    random = (envelope_id, content_key, stream_header) if reply else (
        envelope_id, case_id, content_key, stream_header)
    sealed = seal_envelope(
        kind=kind,
        sender=sender,
        recipient=recipient,
        body=body,
        signatory_key=SIGNATORY[sender],
        recipient_key=ENCRYPTION[recipient].public_key,
        now=created,
        in_reply_to=reply,
        _rng=rng_of(*random),
        _wrap=wrap_with(ephemeral),
    )
    parts = _parts(sealed)
    body_der = bodies.encode(kind, body)
    return {
        "desc": f"{kind} ({kinds.by_name(kind).number}) from {sender} to {recipient}",
        "expect": "success",
        "kind": kind,
        "sender": sender,
        "recipient": recipient,
        "created": _iso(created),
        "signatory_seed": fixed(f"signatory {sender}").hex(),
        "signatory_public": bytes(SIGNATORY[sender].verify_key).hex(),
        "recipient_secret": fixed(f"encryption {recipient}").hex(),
        "recipient_public": bytes(ENCRYPTION[recipient].public_key).hex(),
        "envelope_id": envelope_id.hex(),
        "case_id": (reply.case_id if reply else case_id).hex(),
        "in_reply_to": None if reply is None else reply.envelope_id.hex(),
        "in_reply_to_hash": None if reply is None else reply.envelope_hash.hex(),
        "content_key": content_key.hex(),
        "stream_header": stream_header.hex(),
        "ephemeral_secret": ephemeral.hex(),
        "body": body,
        "body_der": body_der.hex(),
        "key_commitment": key_commitment(content_key).hex(),
        "header_der": parts["header_der"].hex(),
        "wrapped_key": parts["wrapped_key"].hex(),
        "ciphertext": parts["ciphertext"].hex(),
        "signed_message": signed_message(
            parts["header_der"], parts["wrapped_key"], parts["ciphertext"]
        ).hex(),
        "signature": parts["signature"].hex(),
        "envelope": sealed.hex(),
        "envelope_hash": envelope_hash(sealed).hex(),
        "signatories": signatory_table(),
    }


def _tlv_split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(identifier and length octets, contents, the bytes after this value)."""
    _, _, _, head, contents, trailer = parser.parse(data)
    return head, contents, data[len(head) + len(contents) + len(trailer) :]


def _parts(sealed: bytes) -> dict[str, bytes]:
    _, contents, _ = _tlv_split(sealed)
    out: dict[str, bytes] = {}
    for name in ("header_der", "wrapped_key", "ciphertext", "signature"):
        head, value, contents = _tlv_split(contents)
        out[name] = head + value if name == "header_der" else value
    return out


# Bad vectors ----------------------------------------------------------------------------


def _length(size: int, extra: int = 0) -> bytes:
    """DER length octets for ``size``; ``extra`` > 0 pads the long form with zeros, the
    non-minimal encoding DER forbids."""
    if size < 0x80 and extra == 0:
        return bytes([size])
    body = size.to_bytes(max(1, (size.bit_length() + 7) // 8), "big")
    body = b"\x00" * extra + body
    return bytes([0x80 | len(body)]) + body


def _tlv(identifier: int, contents: bytes, extra: int = 0) -> bytes:
    return bytes([identifier]) + _length(len(contents), extra) + contents


class Mutator:
    """Builds envelopes like ``good`` with one thing changed, re-signed where the
    change is to signed bytes, so each vector breaks exactly one rule."""

    def __init__(self, good: dict[str, Any]) -> None:
        self.fields = dict(HeaderSchema.load(bytes.fromhex(good["header_der"])).native)
        self.body_der = bytes.fromhex(good["body_der"])
        self.content_key = bytes.fromhex(good["content_key"])
        self.stream_header = bytes.fromhex(good["stream_header"])
        self.wrap = wrap_with(bytes.fromhex(good["ephemeral_secret"]))
        self.signatory = SIGNATORY[good["sender"]]
        self.recipient = PublicKey(bytes.fromhex(good["recipient_public"]))

    def header(self, **changes: Any) -> bytes:
        fields = dict(self.fields, **changes)
        return bytes(HeaderSchema(fields).dump())

    def sealed(
        self,
        header_der: bytes | None = None,
        *,
        body_der: bytes | None = None,
        ad: bytes | None = None,
        final: bool = True,
        wrap_for: PublicKey | None = None,
    ) -> bytes:
        header_der = header_der or self.header()
        key = self.content_key
        body_der = self.body_der if body_der is None else body_der
        if final:
            ciphertext = encrypt_body(
                body_der, key, self.stream_header, header_der if ad is None else ad
            )
        else:
            # A one-chunk stream whose only chunk is not marked final.
            state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
            nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(
                state, self.stream_header, key
            )
            ciphertext = nacl.bindings.crypto_secretstream_xchacha20poly1305_push(
                state, body_der, header_der,
                nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
            )
        wrapped = self.wrap(key, wrap_for or self.recipient)
        signature = self.signatory.sign(signed_message(header_der, wrapped, ciphertext)).signature
        return encode(header_der, wrapped, ciphertext, bytes(signature))

    def with_body(self, body_der: bytes) -> bytes:
        """Another body, its ciphertext length in the header to match."""
        header = self.header(ciphertext_length=ciphertext_length(len(body_der)))
        return self.sealed(header, body_der=body_der)


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    changed = bytearray(data)
    changed[index] ^= mask
    return bytes(changed)


def bad_vectors(good: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    request, answer = good["request"], good["answer"]
    envelope = bytes.fromhex(request["envelope"])
    created = _time(request["created"])
    m, a = Mutator(request), Mutator(answer)

    _, outer, _ = _tlv_split(envelope)
    header_tl, header_contents, rest = _tlv_split(outer)
    assert header_contents[:3] == b"\x02\x01\x01", "the header starts with version 1"

    def with_header(new_header_contents: bytes, extra: int = 0) -> bytes:
        header = _tlv(0x30, new_header_contents, extra)
        return _tlv(0x30, header + rest)

    out: dict[str, dict[str, Any]] = {}

    def add(name: str, desc: str, sealed: bytes, expect: str, operation: str = "verify",
            base: dict[str, Any] = request, **overrides: Any) -> None:
        vector = {
            "desc": desc,
            "operation": operation,
            "expect": expect,
            "now": _iso(_time(base["created"]) + timedelta(minutes=1)),
            "signatories": signatory_table(),
            "recipient_secret": base["recipient_secret"],
            "envelope": sealed.hex(),
        }
        vector.update(overrides)
        out[name] = vector

    # R1-R3: framing and DER.
    add("truncated_by_one", "the last byte removed", envelope[:-1], "envelope.not_der")
    add("truncated_to_half", "only the first half", envelope[: len(envelope) // 2],
        "envelope.not_der")
    add("trailing_byte", "one zero byte after the envelope", envelope + b"\x00",
        "envelope.not_der")
    add("empty", "no bytes at all", b"", "envelope.not_der")
    add("outer_length_non_minimal", "the Envelope length in a longer form than needed",
        _tlv(0x30, outer, extra=1), "envelope.not_der")
    add("outer_length_indefinite", "the Envelope with a BER indefinite length",
        b"\x30\x80" + outer + b"\x00\x00", "envelope.not_der")
    add("header_length_non_minimal", "the Header length in a longer form than needed",
        with_header(header_contents, extra=1), "envelope.not_der")
    add("version_integer_non_minimal", "version 1 encoded as 02 02 00 01",
        with_header(b"\x02\x02\x00\x01" + header_contents[3:]), "envelope.not_der")
    stamp = created.strftime("%Y%m%d%H%M%S").encode()
    offset_time = _tlv_split(m.header())[1].replace(
        b"\x18\x0f" + stamp + b"Z", b"\x18\x13" + stamp + b"+0000"
    )
    add("created_with_offset", "created as GeneralizedTime with +0000, not Z (re-signed)",
        m.sealed(_tlv(0x30, offset_time)), "envelope.not_der")
    add("header_too_large", "a 17,000-character sender makes the header over 16 KiB",
        m.sealed(m.header(sender="KZ-" + "A" * 17_000)), "envelope.header_too_large")
    # R4-R10: header rules, each re-signed so that only the rule fails.
    add("version_2", "version 2 (re-signed)", m.sealed(m.header(version=2)),
        "envelope.unsupported_version")
    add("kind_0", "kind number 0, reserved (re-signed)", m.sealed(m.header(kind=0)),
        "envelope.unknown_kind")
    add("kind_99", "kind number 99, unassigned (re-signed)", m.sealed(m.header(kind=99)),
        "envelope.unknown_kind")
    add("envelope_id_15_bytes", "a 15-byte envelope id (re-signed)",
        m.sealed(m.header(envelope_id=b"\x01" * 15)), "envelope.bad_field")
    add("created_fraction", "created with a fraction of a second (re-signed)",
        m.sealed(m.header(created=created.replace(microsecond=500_000))), "envelope.bad_field")
    add("sender_lower_case", "sender kz-mvd (re-signed)",
        m.sealed(m.header(sender="kz-mvd")), "envelope.bad_authority")
    add("sender_unknown_party", "sender RU-MVD, not a Party (re-signed)",
        m.sealed(m.header(sender="RU-MVD")), "envelope.bad_authority")
    add("same_party", "KZ-MVD to KZ-MLSP (re-signed)",
        m.sealed(m.header(recipient="KZ-MLSP")), "envelope.bad_authority")
    add("request_with_reply_fields", "a request naming an envelope it answers (re-signed)",
        m.sealed(m.header(in_reply_to=b"\x02" * 16, in_reply_to_hash=b"\x03" * 32)),
        "envelope.bad_reply")
    add("reply_id_without_hash", "an answer with in-reply-to id but no hash (re-signed)",
        a.sealed(a.header(in_reply_to_hash=None)), "envelope.bad_reply", base=answer)
    add("answer_without_reply_fields", "an answer naming no envelope (re-signed)",
        a.sealed(a.header(in_reply_to=None, in_reply_to_hash=None)), "envelope.bad_reply",
        base=answer)
    add("ciphertext_length_plus_one", "the header's ciphertext length one too large "
        "(re-signed)", m.sealed(m.header(ciphertext_length=ciphertext_length(len(m.body_der)) + 1)),
        "envelope.length_mismatch")
    add("ciphertext_length_impossible", "a ciphertext length no stream can have (re-signed)",
        m.sealed(m.header(ciphertext_length=17)), "envelope.length_mismatch")
    short_signature = _tlv(0x30, header_tl + header_contents + _replace_last(rest, 63))
    add("signature_63_bytes", "a 63-byte signature", short_signature, "envelope.bad_field")
    # R11-R13: the node's checks.
    add("created_in_future", "created 6 minutes after the verifier's clock", envelope,
        "envelope.created_in_future", now=_iso(created - timedelta(minutes=6)))
    add("created_within_skew", "created 4 minutes after the verifier's clock: accepted",
        envelope, "success", now=_iso(created - timedelta(minutes=4)))
    add("no_signatory_list", "no list of KZ-MVD in force at created", envelope,
        "envelope.no_signatory_list",
        signatories=[s for s in signatory_table() if s["authority"] != "KZ-MVD"])
    stranger = SigningKey(fixed("signatory not on any list"))
    add("unknown_signatory", "signed by a key on no list (A9.3)",
        _resigned(m, stranger), "envelope.unknown_signatory")
    add("signatory_expired", "the signatory's validity ended before created (A9.4)",
        envelope, "envelope.signatory_not_in_force",
        signatories=signatory_table(valid_until=created - timedelta(days=1)))
    add("signatory_not_yet_valid", "the signatory's validity starts after created (A9.4)",
        envelope, "envelope.signatory_not_in_force",
        signatories=signatory_table(valid_from=created + timedelta(days=1)))
    add("signature_bit_flipped", "one bit of the signature flipped",
        _flip(envelope, len(envelope) - 1), "envelope.bad_signature")
    add("ciphertext_bit_flipped", "one bit of the ciphertext flipped",
        _flip(envelope, envelope.index(bytes.fromhex(request["ciphertext"])) + 5),
        "envelope.bad_signature")
    add("wrapped_key_bit_flipped", "one bit of the wrapped key flipped",
        _flip(envelope, envelope.index(bytes.fromhex(request["wrapped_key"])) + 5),
        "envelope.bad_signature")
    add("case_id_bit_flipped", "one bit of the header's case id flipped",
        _flip(envelope, envelope.index(bytes.fromhex(request["case_id"]))),
        "envelope.bad_signature")
    # R14-R15: the recipient's checks.
    add("wrong_recipient_key", "opened with KZ-MVD's key, not BY-MVD's", envelope,
        "envelope.cannot_open", operation="open",
        recipient_secret=fixed("encryption KZ-MVD").hex())
    add("wrapped_for_another_key", "the content key wrapped for another X25519 key "
        "(re-signed)", m.sealed(wrap_for=PrivateKey(fixed("someone else")).public_key),
        "envelope.cannot_open", operation="open")
    add("commitment_mismatch", "a key commitment of another content key (re-signed)",
        m.sealed(m.header(key_commitment=key_commitment(b"\x07" * 32))),
        "envelope.cannot_open", operation="open")
    add("stream_not_final", "the only chunk tagged MESSAGE, not FINAL (re-signed)",
        m.sealed(final=False), "envelope.cannot_open", operation="open")
    add("other_associated_data", "chunks authenticated with other associated data "
        "(re-signed)", m.sealed(ad=b"not the header"), "envelope.cannot_open",
        operation="open")
    junk = b"\x04\x03abc"
    add("body_not_request", "a body that is not a Request SEQUENCE (re-signed)",
        m.with_body(junk), "body.not_der", operation="open")
    bad_script = _der_breaking_rule(
        "request",
        request["body"],
        lambda native: native["persons"][0]["name"]["latin"].update(surname="Тестова"),
    )
    add("body_latin_name_in_cyrillic", "a Latin name field holding Cyrillic letters "
        "(A14, re-signed)", m.with_body(bad_script), "body.bad_script", operation="open")
    ack = Mutator(good["acknowledgement"])
    other = bodies.encode("acknowledgement", {"envelope_id": "00" * 16})
    add("acknowledgement_of_another", "an acknowledgement whose body names another "
        "envelope (re-signed)", ack.with_body(other), "body.bad_value", operation="open",
        base=good["acknowledgement"])
    not_limited_der = _der_breaking_rule(
        "answer", answer["body"], lambda native: native.update(use_limited_to_purpose=False)
    )
    add("answer_not_purpose_limited", "an answer with use_limited_to_purpose false "
        "(A11.2, re-signed)", a.with_body(not_limited_der), "body.bad_value",
        operation="open", base=answer)
    return out


def _replace_last(rest: bytes, size: int) -> bytes:
    """``rest`` (wrapped key, ciphertext, signature) with a signature of ``size`` bytes."""
    head, value, after = _tlv_split(rest)
    parts = [head + value]
    head, value, after = _tlv_split(after)
    parts.append(head + value)
    parts.append(_tlv(0x04, b"\x05" * size))
    return b"".join(parts)


def _resigned(m: Mutator, key: SigningKey) -> bytes:
    signatory, m.signatory = m.signatory, key
    try:
        return m.sealed(m.header(signatory_key_id=key_id(key.verify_key)))
    finally:
        m.signatory = signatory


def _der_breaking_rule(
    kind: str, body: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> bytes:
    """The DER of a valid body after ``change``: what ``encode`` would have refused."""
    schema = bodies.BODIES[kind]
    native = schema.check(body, "body")
    change(native)
    return schema.encode(native)


# Files ----------------------------------------------------------------------------------


def build() -> dict[str, dict[str, Any]]:
    """Every vector, keyed by its path under tests/vectors/envelope/."""
    good: dict[str, dict[str, Any]] = {}
    request: bytes | None = None
    for kind in kinds.KINDS:
        answering = None if kind.opens_case else request
        vector = good_vector(kind.name, kind.number, answering)
        good[kind.name] = vector
        if kind.name == "request":
            request = bytes.fromhex(vector["envelope"])
    files = {f"good/{name}.json": vector for name, vector in good.items()}
    files.update({f"bad/{name}.json": v for name, v in bad_vectors(good).items()})
    return files


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    for sub in ("good", "bad"):
        for old in (HERE / sub).glob("*.json"):
            old.unlink()
    for relative, vector in build().items():
        path = HERE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(vector), encoding="utf-8")
    print(f"wrote {len(build())} vectors under {HERE}")


if __name__ == "__main__":
    main()
