"""The node-side check of an envelope, without decrypting it.

``EnvelopeVerifier.verify`` runs the steps of docs/protocol.md, "Verifying", in order,
and each failure raises that step's code:

1. size: at most 64 MiB (R1) .................................... envelope.too_large
2. header size: at most 16 KiB (R2) ...................... envelope.header_too_large
3. DER: one Envelope, DER only, no trailing bytes (R3) ............. envelope.not_der
4. version is 1 (R4) ................................. envelope.unsupported_version
5. kind is in the registry (R5) ........................... envelope.unknown_kind
6. header field sizes and forms (R6) ............................ envelope.bad_field
7. authority ids (R7) ........................................ envelope.bad_authority
8. reply fields both or neither, as the kind requires (R8) ....... envelope.bad_reply
9. ciphertext length (R9) ................................. envelope.length_mismatch
10. wrapped key 80 bytes, signature 64 bytes (R10) ............. envelope.bad_field
11. created at most 5 minutes after ``now`` (R11) ......... envelope.created_in_future
12. signatory on the sender's list, in force at created (R12, A9.3, A9.4)
    ........ envelope.unknown_signatory, .signatory_not_in_force, .no_signatory_list
13. signature (R13) ........................................ envelope.bad_signature

Steps 1-10 are ``wire.decode``; a recipient's ``open`` shares steps 12-13
(``check_signature``). Who may sign is a policy object with one method, so the node
passes its signatory registry and the SDK can pass a single pinned key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gateway.envelope import limits
from gateway.envelope.errors import (
    BadSignature,
    CreatedInFuture,
    NoSignatoryList,
    SignatoryNotInForce,
    UnknownSignatory,
)
from gateway.envelope.wire import Header, Sealed, decode, envelope_hash
from keys.errors import KeysError
from keys.keyid import key_id


class Signatory(Protocol):
    @property
    def key(self) -> VerifyKey: ...


class SignatoryPolicy(Protocol):
    """Answers "was the key with this id authorised to sign for ``authority`` at ``at``",
    returning the signatory or raising ``keys.unknown_signatory``,
    ``keys.signatory_not_in_force`` or ``keys.no_signatory_list`` (A9.3, A9.4)."""

    def authorised_key(self, authority: str, key_id: bytes, at: datetime) -> Signatory: ...


@dataclass(frozen=True)
class PinnedKey:
    """A policy that accepts one known key for any authority and time: for a recipient
    who was handed the signatory's public key, not for a node."""

    key: VerifyKey

    def authorised_key(self, authority: str, key_id_: bytes, at: datetime) -> PinnedKey:
        if key_id_ != key_id(self.key):
            raise UnknownSignatory("the envelope names a signatory key other than the given one")
        return self


# The keys package cannot import ours, so its failures arrive with keys.* codes.
_FROM_KEYS: dict[str, type[UnknownSignatory | SignatoryNotInForce | NoSignatoryList]] = {
    "keys.unknown_signatory": UnknownSignatory,
    "keys.signatory_not_in_force": SignatoryNotInForce,
    "keys.no_signatory_list": NoSignatoryList,
}


def check_signature(sealed: Sealed, policy: SignatoryPolicy) -> None:
    """Steps 12 and 13: the signatory was authorised, and the signature verifies."""
    header = sealed.header
    try:
        signatory = policy.authorised_key(header.sender, header.signatory_key_id, header.created)
    except KeysError as e:
        mapped = _FROM_KEYS.get(e.code)
        if mapped is None:
            raise
        raise mapped(e.message) from None
    if key_id(signatory.key) != header.signatory_key_id:
        # A policy that answers with another key is a bug; never verify against it.
        raise UnknownSignatory("the policy returned a key other than the one named")
    try:
        signatory.key.verify(sealed.signed_message(), sealed.signature)
    except BadSignatureError:
        raise BadSignature("the signature does not verify") from None


@dataclass(frozen=True)
class Checked:
    header: Header
    #: SHA-256 of the whole envelope: what receipts, replies and the ledger cite.
    envelope_hash: bytes


class EnvelopeVerifier:
    """The check a node makes before it accepts or forwards an envelope."""

    def __init__(
        self, policy: SignatoryPolicy, *, max_clock_skew: timedelta = limits.MAX_CLOCK_SKEW
    ) -> None:
        self._policy = policy
        self._max_clock_skew = max_clock_skew

    def verify(self, envelope: bytes, now: datetime) -> Checked:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        sealed = decode(envelope)  # (1)-(10)
        if sealed.header.created > now + self._max_clock_skew:  # (11)
            raise CreatedInFuture(
                f"created is more than {self._max_clock_skew} after the verifier's clock"
            )
        check_signature(sealed, self._policy)  # (12), (13)
        return Checked(header=sealed.header, envelope_hash=envelope_hash(envelope))
