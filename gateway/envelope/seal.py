"""Sealing and opening: docs/protocol.md, "Sealing" (steps 1-7) and "Opening" (R14,
R15). The comments in ``seal_envelope`` carry the step numbers.

Opening gives the same ``envelope.cannot_open``, with the same message, for every key,
unwrap, commitment and decryption problem: a recipient's error must not tell a forger
which part of a forgery worked.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.bindings import (
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
)
from nacl.encoding import RawEncoder
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey

from gateway.envelope import body as bodies
from gateway.envelope import limits
from gateway.envelope.check import SignatoryPolicy, check_signature
from gateway.envelope.errors import BadReply, BadValue, CannotOpen
from gateway.envelope.wire import (
    Header,
    ciphertext_length,
    decode,
    encode,
    envelope_hash,
    signed_message,
    utc_seconds,
)
from keys.keyid import key_id

#: The message BLAKE2b hashes under the content key to commit to it.
COMMITMENT_LABEL = b"KZBY-GW content key commitment v1"

Rng = Callable[[int], bytes]
Wrap = Callable[[bytes, PublicKey], bytes]

_TAG_MESSAGE = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = crypto_secretstream_xchacha20poly1305_TAG_FINAL
_CANNOT_OPEN = "cannot open the envelope with this key"


def key_commitment(content_key: bytes) -> bytes:
    """Makes the encryption key-committing: the signed header pins the one content key
    under which the ciphertext opens, so no second key can open it to another body."""
    return bytes(
        nacl.hash.blake2b(
            COMMITMENT_LABEL,
            digest_size=limits.COMMITMENT_SIZE,
            key=content_key,
            encoder=RawEncoder,
        )
    )


def wrap_key(content_key: bytes, recipient_key: PublicKey) -> bytes:
    """The content key in a sealed box for the recipient authority's X25519 key."""
    return bytes(SealedBox(recipient_key).encrypt(content_key))


def _stream(content_key: bytes, stream_header: bytes) -> Any:
    # libsodium's init_push is randombytes_buf(header) followed by exactly the key and
    # nonce set-up init_pull does from that header. Drawing the header from ``_rng``
    # ourselves lets test vectors fix it; in use it comes from libsodium's generator too.
    state = crypto_secretstream_xchacha20poly1305_state()
    crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, content_key)
    return state


def encrypt_body(body_der: bytes, content_key: bytes, stream_header: bytes, ad: bytes) -> bytes:
    """Chunks of 64 KiB (the last one shorter, never empty), each with ``ad``."""
    state = _stream(content_key, stream_header)
    chunks = []
    size = limits.CHUNK_SIZE
    for start in range(0, len(body_der), size):
        last = start + size >= len(body_der)
        chunks.append(
            crypto_secretstream_xchacha20poly1305_push(
                state, body_der[start : start + size], ad, _TAG_FINAL if last else _TAG_MESSAGE
            )
        )
    return b"".join(chunks)


def decrypt_body(ciphertext: bytes, content_key: bytes, stream_header: bytes, ad: bytes) -> bytes:
    state = _stream(content_key, stream_header)
    chunks = []
    size = limits.CHUNK_SIZE + limits.CHUNK_OVERHEAD
    for start in range(0, len(ciphertext), size):
        last = start + size >= len(ciphertext)
        try:
            chunk, tag = crypto_secretstream_xchacha20poly1305_pull(
                state, ciphertext[start : start + size], ad
            )
        except nacl.exceptions.CryptoError:
            raise CannotOpen(_CANNOT_OPEN) from None
        # A stream cut short after a chunk, or carried on past TAG_FINAL, fails here.
        if tag != (_TAG_FINAL if last else _TAG_MESSAGE):
            raise CannotOpen(_CANNOT_OPEN)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class InReplyTo:
    """What a reply takes from the envelope it answers."""

    envelope_id: bytes
    envelope_hash: bytes
    case_id: bytes

    @classmethod
    def of(cls, envelope: bytes) -> InReplyTo:
        """From the sealed envelope answered, decoded strictly (no keys needed)."""
        header = decode(envelope).header
        return cls(header.envelope_id, envelope_hash(envelope), header.case_id)


def _check_acknowledged(kind: str, body: Any, in_reply_to: bytes | None) -> None:
    """An acknowledgement names, in its body, the envelope its header answers."""
    if kind == "acknowledgement" and (
        in_reply_to is None or body["envelope_id"] != in_reply_to.hex()
    ):
        raise BadValue("body.envelope_id must equal the header's in-reply-to id")


def seal_envelope(
    *,
    kind: str,
    sender: str,
    recipient: str,
    body: object,
    signatory_key: SigningKey,
    recipient_key: PublicKey,
    now: datetime,
    case_id: bytes | None = None,
    in_reply_to: InReplyTo | None = None,
    _rng: Rng = nacl.utils.random,
    _wrap: Wrap = wrap_key,
) -> bytes:
    """The sealed envelope DER. ``_rng`` and ``_wrap`` exist for test vectors only."""
    body_der = bodies.encode(kind, body)  # (1)
    envelope_id = _rng(limits.ID_SIZE)  # (2)
    if in_reply_to is not None:
        if case_id is not None and case_id != in_reply_to.case_id:
            raise BadReply("a reply carries the case id of the envelope it answers")
        case_id = in_reply_to.case_id
    elif case_id is None:
        case_id = _rng(limits.ID_SIZE)
    content_key = _rng(limits.CONTENT_KEY_SIZE)
    stream_header = _rng(limits.STREAM_HEADER_SIZE)
    header = Header(  # (3)
        envelope_id=envelope_id,
        kind=kind,
        sender=sender,
        recipient=recipient,
        case_id=case_id,
        in_reply_to=None if in_reply_to is None else in_reply_to.envelope_id,
        in_reply_to_hash=None if in_reply_to is None else in_reply_to.envelope_hash,
        created=utc_seconds(now),
        signatory_key_id=key_id(signatory_key.verify_key),
        recipient_key_id=key_id(recipient_key),
        ciphertext_length=ciphertext_length(len(body_der)),
        key_commitment=key_commitment(content_key),
        stream_header=stream_header,
    )
    _check_acknowledged(kind, body, header.in_reply_to)
    header_der = header.to_der()
    ciphertext = encrypt_body(body_der, content_key, stream_header, header_der)  # (4)
    wrapped_key = _wrap(content_key, recipient_key)  # (5)
    signature = signatory_key.sign(signed_message(header_der, wrapped_key, ciphertext))  # (6)
    return encode(header_der, wrapped_key, ciphertext, bytes(signature.signature))  # (7)


@dataclass(frozen=True)
class Opened:
    header: Header
    #: The body in its JSON form, checked against its kind's table.
    body: dict[str, Any]


def open_envelope(envelope: bytes, *, recipient_key: PrivateKey, policy: SignatoryPolicy) -> Opened:
    """Check (R1-R10, R12-R13), then decrypt and decode the body (R14-R15)."""
    sealed = decode(envelope)
    check_signature(sealed, policy)
    header = sealed.header
    # R14
    if header.recipient_key_id != key_id(recipient_key.public_key):
        raise CannotOpen(_CANNOT_OPEN)
    try:
        content_key = SealedBox(recipient_key).decrypt(sealed.wrapped_key)
    except nacl.exceptions.CryptoError:
        raise CannotOpen(_CANNOT_OPEN) from None
    if len(content_key) != limits.CONTENT_KEY_SIZE or not hmac.compare_digest(
        key_commitment(content_key), header.key_commitment
    ):
        raise CannotOpen(_CANNOT_OPEN)
    body_der = decrypt_body(sealed.ciphertext, content_key, header.stream_header, sealed.header_der)
    body = bodies.decode(header.kind, body_der)  # R15
    _check_acknowledged(header.kind, body, header.in_reply_to)
    return Opened(header=header, body=body)
