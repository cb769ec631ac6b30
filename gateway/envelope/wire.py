"""The sealed envelope on the wire: the header value, the four parts, strict decoding.

``decode`` applies rules R1-R10 of docs/protocol.md, the checks that need no key and no
clock, so a node (``inspect``, ``EnvelopeVerifier``) and a recipient (``open``) share
them. A ``Header`` that exists is valid: its constructor enforces R4-R9 whether the
value comes from the wire or from ``seal``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import parser

from gateway.envelope import der, kinds, limits
from gateway.envelope.errors import (
    BadAuthority,
    BadField,
    BadReply,
    HeaderTooLarge,
    LengthMismatch,
    NotDer,
    TooLarge,
    UnsupportedVersion,
)
from gateway.envelope.schema import EnvelopeSchema, HeaderSchema
from keys.errors import KeysError
from keys.fields import check_authority_id, check_party

VERSION = 1
#: Prefix of the bytes the signatory signs (docs/protocol.md, "Sealing", step 6).
SIGNATURE_CONTEXT = b"KZBY-GW envelope v1\x00"

_FULL_CHUNK = limits.CHUNK_SIZE + limits.CHUNK_OVERHEAD
_HEADER = der.codec(HeaderSchema)
_ENVELOPE = der.codec(EnvelopeSchema)


def ciphertext_length(body_length: int) -> int:
    """Bytes of ciphertext for a body: 17 per chunk of up to 64 KiB, at least one chunk."""
    chunks = max(1, -(-body_length // limits.CHUNK_SIZE))
    return body_length + chunks * limits.CHUNK_OVERHEAD


def _is_stream_length(length: int) -> bool:
    """True if some non-empty body encrypts to exactly ``length`` bytes."""
    last = length % _FULL_CHUNK or _FULL_CHUNK
    return length > limits.CHUNK_OVERHEAD and last > limits.CHUNK_OVERHEAD


def _check_size(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise BadField(f"{what} must be {size} bytes")


def _check_authority(value: str, field: str) -> str:
    """R7: an authority id of one of the two Parties; the syntax is keys.fields'."""
    try:
        return check_authority_id(value, check_party(value[:2]))
    except (KeysError, TypeError):
        raise BadAuthority(
            f"header {field} is not an authority id of KZ or BY ([A-Z]{{2}}-[A-Z0-9]{{2,16}})"
        ) from None


@dataclass(frozen=True)
class Header:
    """The cleartext header. It names no person, subject or purpose (A11.1)."""

    envelope_id: bytes
    kind: str
    sender: str
    recipient: str
    case_id: bytes
    created: datetime
    signatory_key_id: bytes
    recipient_key_id: bytes
    ciphertext_length: int
    key_commitment: bytes
    stream_header: bytes
    in_reply_to: bytes | None = None
    in_reply_to_hash: bytes | None = None
    version: int = VERSION

    def __post_init__(self) -> None:
        # R4-R9, in the order docs/protocol.md numbers them (R9 only as far as the
        # header alone can tell).
        if self.version != VERSION:
            raise UnsupportedVersion(f"envelope version {self.version} is not supported")
        kind = kinds.by_name(self.kind)
        _check_size(self.envelope_id, limits.ID_SIZE, "header envelope id")
        _check_size(self.case_id, limits.ID_SIZE, "header case id")
        _check_size(self.signatory_key_id, limits.KEY_ID_SIZE, "header signatory key id")
        _check_size(self.recipient_key_id, limits.KEY_ID_SIZE, "header recipient key id")
        _check_size(self.key_commitment, limits.COMMITMENT_SIZE, "header key commitment")
        _check_size(self.stream_header, limits.STREAM_HEADER_SIZE, "header stream header")
        if self.in_reply_to is not None:
            _check_size(self.in_reply_to, limits.ID_SIZE, "header in-reply-to id")
        if self.in_reply_to_hash is not None:
            _check_size(self.in_reply_to_hash, limits.HASH_SIZE, "header in-reply-to hash")
        created = self.created
        if (
            not isinstance(created, datetime)
            or created.utcoffset() != timedelta(0)
            or created.microsecond != 0
        ):
            raise BadField("header created must be a UTC time in whole seconds")
        sender = _check_authority(self.sender, "sender")
        recipient = _check_authority(self.recipient, "recipient")
        if sender[:2] == recipient[:2]:
            raise BadAuthority("sender and recipient must belong to different Parties")
        if (self.in_reply_to is None) != (self.in_reply_to_hash is None):
            raise BadReply("in-reply-to id and hash must be both present or both absent")
        if kind.opens_case and self.in_reply_to is not None:
            raise BadReply(f"a {kind.name} opens a case and answers no envelope")
        if not kind.opens_case and self.in_reply_to is None:
            raise BadReply(f"a {kind.name} must name the envelope it answers")
        if (
            isinstance(self.ciphertext_length, bool)
            or not isinstance(self.ciphertext_length, int)
            or self.ciphertext_length > limits.MAX_ENVELOPE
            or not _is_stream_length(self.ciphertext_length)
        ):
            raise LengthMismatch("header ciphertext length is not a possible stream length")

    def to_schema(self) -> Any:
        """The header as an asn1crypto value (``to_der`` writes the same bytes)."""
        return HeaderSchema(self._fields())

    def to_der(self) -> bytes:
        """The header's DER: what is signed and authenticated with the body."""
        return _HEADER.dump(self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "envelope_id": self.envelope_id,
            "kind": kinds.by_name(self.kind).number,
            "sender": self.sender,
            "recipient": self.recipient,
            "case_id": self.case_id,
            "in_reply_to": self.in_reply_to,
            "in_reply_to_hash": self.in_reply_to_hash,
            "created": self.created,
            "signatory_key_id": self.signatory_key_id,
            "recipient_key_id": self.recipient_key_id,
            "ciphertext_length": self.ciphertext_length,
            "key_commitment": self.key_commitment,
            "stream_header": self.stream_header,
        }

    @classmethod
    def from_native(cls, native: dict[str, Any]) -> Header:
        """The header from asn1crypto's native form of a ``HeaderSchema``."""
        version = native["version"]
        if version != VERSION:
            # Checked before the kind, whose numbers belong to this version.
            raise UnsupportedVersion(f"envelope version {version} is not supported")
        fields = dict(native)
        fields["kind"] = kinds.by_number(native["kind"]).name
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        """The agency- and operator-facing form (``gateway envelope inspect``)."""

        def hex_or_none(value: bytes | None) -> str | None:
            return None if value is None else value.hex()

        return {
            "version": self.version,
            "envelope_id": self.envelope_id.hex(),
            "kind": self.kind,
            "sender": self.sender,
            "recipient": self.recipient,
            "case_id": self.case_id.hex(),
            "in_reply_to": hex_or_none(self.in_reply_to),
            "in_reply_to_hash": hex_or_none(self.in_reply_to_hash),
            "created": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "signatory_key_id": self.signatory_key_id.hex(),
            "recipient_key_id": self.recipient_key_id.hex(),
            "ciphertext_length": self.ciphertext_length,
            "key_commitment": self.key_commitment.hex(),
            "stream_header": self.stream_header.hex(),
        }


@dataclass(frozen=True)
class Sealed:
    """A decoded envelope: the header, its exact DER, and the three other parts."""

    header: Header
    header_der: bytes
    wrapped_key: bytes
    ciphertext: bytes
    signature: bytes

    def signed_message(self) -> bytes:
        return signed_message(self.header_der, self.wrapped_key, self.ciphertext)


def signed_message(header_der: bytes, wrapped_key: bytes, ciphertext: bytes) -> bytes:
    """What the signatory signs: context || header DER || SHA-256(wrapped key) ||
    SHA-256(ciphertext). The header DER is self-delimiting and the hashes have a fixed
    size, so the concatenation is unambiguous."""
    return b"".join(
        (
            SIGNATURE_CONTEXT,
            header_der,
            hashlib.sha256(wrapped_key).digest(),
            hashlib.sha256(ciphertext).digest(),
        )
    )


def envelope_hash(envelope: bytes) -> bytes:
    """SHA-256 of the whole sealed DER: what replies, receipts and the ledger cite."""
    return hashlib.sha256(envelope).digest()


def encode(header_der: bytes, wrapped_key: bytes, ciphertext: bytes, signature: bytes) -> bytes:
    return _ENVELOPE.dump(
        {
            # Loaded, not rebuilt: asn1crypto dumps a loaded value as the bytes it was
            # given, so the envelope holds exactly the header that was signed.
            "header": HeaderSchema.load(header_der),
            "wrapped_key": wrapped_key,
            "ciphertext": ciphertext,
            "signature": signature,
        }
    )


def _header_bounds(data: bytes) -> tuple[int, int]:
    """Where the header's DER starts and ends, read from the length octets by
    asn1crypto's parser, so that R2 holds before anything inside the header is parsed."""
    try:
        _class, _method, _tag, outer, contents, _trailer = parser.parse(data)
        return len(outer), len(outer) + int(parser.peek(contents))
    except (ValueError, TypeError):
        raise NotDer("envelope: not a DER value of the schema") from None


def decode(data: bytes) -> Sealed:
    """R1-R10: parse ``data`` strictly into its parts, or raise the rule's error."""
    if not isinstance(data, bytes):
        raise NotDer(f"envelope: expected bytes, got {type(data).__name__}")
    if len(data) > limits.MAX_ENVELOPE:  # R1
        raise TooLarge(f"envelope: {len(data)} bytes is over the limit of {limits.MAX_ENVELOPE}")
    header_start, header_end = _header_bounds(data)
    if header_end - header_start > limits.MAX_HEADER:  # R2
        raise HeaderTooLarge(f"envelope: header is over the limit of {limits.MAX_HEADER} bytes")
    native = der.load_strict(  # R3
        _ENVELOPE, data, limits.MAX_ENVELOPE, NotDer, too_large_cls=TooLarge, what="envelope"
    )
    header = Header.from_native(native["header"])  # R4-R9 but the actual length
    sealed = Sealed(
        header=header,
        # The header is the Envelope's first element, and R3 held: these bytes are
        # its DER, exactly as signed.
        header_der=data[header_start:header_end],
        wrapped_key=native["wrapped_key"],
        ciphertext=native["ciphertext"],
        signature=native["signature"],
    )
    if len(sealed.ciphertext) != header.ciphertext_length:  # R9
        raise LengthMismatch("ciphertext length differs from the header's")
    _check_size(sealed.wrapped_key, limits.WRAPPED_KEY_SIZE, "wrapped key")  # R10
    _check_size(sealed.signature, limits.SIGNATURE_SIZE, "signature")
    return sealed


def utc_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to whole seconds: the one form ``created`` takes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadField("time must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)
