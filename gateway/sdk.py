"""The SDK agency systems use: seal, open and inspect envelopes.

    from gateway import sdk

    sealed = sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD", body={...},
                      signatory_key=signing_key, recipient_key=by_mvd_public_key)
    opened = sdk.open(sealed, recipient_key=by_mvd_private_key,
                      signatory_key=signatory_verify_key_or_registry)
    header = sdk.inspect(sealed)

``seal`` and ``open`` take bodies in their JSON form (docs/protocol.md, "Bodies";
docs/examples/ has one per kind). Every failure is a ``GatewayError`` with a stable
``code`` (or a ``KeysError`` a signatory registry raises); ``open`` gives the one
``envelope.cannot_open`` for any key or decryption problem, and
``envelope.bad_signature`` when the signature fails. Nodes check envelopes
with ``EnvelopeVerifier``, which needs no private key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import nacl.utils
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from gateway.envelope.check import Checked, EnvelopeVerifier, PinnedKey, SignatoryPolicy
from gateway.envelope.seal import (
    InReplyTo,
    Opened,
    Rng,
    Wrap,
    open_envelope,
    seal_envelope,
    wrap_key,
)
from gateway.envelope.wire import Header, decode

__all__ = [
    "Checked",
    "EnvelopeVerifier",
    "Header",
    "Opened",
    "SignatoryPolicy",
    "inspect",
    "open",
    "seal",
]


def seal(
    *,
    kind: str,
    sender: str,
    recipient: str,
    body: object,
    signatory_key: SigningKey,
    recipient_key: PublicKey,
    case_id: bytes | None = None,
    in_reply_to: bytes | None = None,
    now: datetime | None = None,
    _rng: Rng | None = None,
    _wrap: Wrap | None = None,
) -> bytes:
    """Seal ``body`` (JSON form) for ``recipient``'s encryption key, signed by the
    signatory. A request opens a new case; a reply passes the sealed envelope it answers
    as ``in_reply_to``, and takes that envelope's id, hash and case id."""
    return seal_envelope(
        kind=kind,
        sender=sender,
        recipient=recipient,
        body=body,
        signatory_key=signatory_key,
        recipient_key=recipient_key,
        now=datetime.now(UTC) if now is None else now,
        case_id=case_id,
        in_reply_to=None if in_reply_to is None else InReplyTo.of(in_reply_to),
        _rng=_rng or nacl.utils.random,
        _wrap=_wrap or wrap_key,
    )


def open(  # the SDK verb: callers write sdk.open
    envelope: bytes,
    *,
    recipient_key: PrivateKey,
    signatory_key: VerifyKey | SignatoryPolicy,
) -> Opened:
    """Verify and decrypt. ``signatory_key`` is the signatory's public key, or a
    signatory registry that says who could sign for the sender when it was created."""
    policy = PinnedKey(signatory_key) if isinstance(signatory_key, VerifyKey) else signatory_key
    return open_envelope(envelope, recipient_key=recipient_key, policy=policy)


def inspect(envelope: bytes) -> Header:
    """The header, after the strict checks that need no key (R1-R10)."""
    return decode(envelope).header
