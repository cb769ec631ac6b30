"""Every failure of the envelope package: ``envelope.*`` for the sealed envelope and
``body.*`` for the body schemas.

Codes are public API (docs/protocol.md, "Error codes"): never renamed. Messages name
the step, the field or the JSON path that failed, never a value: a body holds personal
data, and a message that quotes input can leak anything. A recipient's ``open`` raises
one opaque ``CannotOpen`` for every key, unwrap, commitment and decryption problem, so it
offers no oracle; a node's checks give the specific code.
"""

from __future__ import annotations

import re

from gateway.errors import GatewayError

_QUOTABLE = re.compile(r"[a-z][a-z0-9_]{0,47}")


def quotable(name: object) -> str:
    """``name`` quoted, if it is a short snake_case identifier (a field or kind name
    someone mistyped); otherwise a placeholder, since a key could hold anything."""
    if isinstance(name, str) and _QUOTABLE.fullmatch(name):
        return repr(name)
    return "(a name that is not a snake_case identifier)"


class EnvelopeError(GatewayError):
    """Base of every envelope and body failure."""

    code = "envelope.error"


# Decoding (docs/protocol.md R1-R7) ---------------------------------------------------


class TooLarge(EnvelopeError):
    code = "envelope.too_large"


class HeaderTooLarge(EnvelopeError):
    code = "envelope.header_too_large"


class NotDer(EnvelopeError):
    """Not one DER value of the schema: BER, a non-minimal form, or trailing bytes."""

    code = "envelope.not_der"


class BadField(EnvelopeError):
    """DER of the schema, but a field has the wrong size or form."""

    code = "envelope.bad_field"


class UnsupportedVersion(EnvelopeError):
    code = "envelope.unsupported_version"


class UnknownKind(EnvelopeError):
    code = "envelope.unknown_kind"


class BadAuthority(EnvelopeError):
    code = "envelope.bad_authority"


class BadReply(EnvelopeError):
    """In-reply-to id and hash not both present, or present on a kind that opens a case."""

    code = "envelope.bad_reply"


class LengthMismatch(EnvelopeError):
    code = "envelope.length_mismatch"


# Node-side checks (R8-R11) -----------------------------------------------------------


class CreatedInFuture(EnvelopeError):
    code = "envelope.created_in_future"


class UnknownSignatory(EnvelopeError):
    code = "envelope.unknown_signatory"


class SignatoryNotInForce(EnvelopeError):
    code = "envelope.signatory_not_in_force"


class NoSignatoryList(EnvelopeError):
    code = "envelope.no_signatory_list"


class BadSignature(EnvelopeError):
    code = "envelope.bad_signature"


# Recipient side ----------------------------------------------------------------------


class CannotOpen(EnvelopeError):
    """Wrong recipient key, or a wrapped key, commitment or ciphertext that fails."""

    code = "envelope.cannot_open"


# Files (the command line) -------------------------------------------------------------


class CannotRead(EnvelopeError):
    code = "envelope.cannot_read"


class CannotWrite(EnvelopeError):
    code = "envelope.cannot_write"


# Bodies ------------------------------------------------------------------------------


class BodyError(EnvelopeError):
    code = "body.error"


class BodyTooLarge(BodyError):
    code = "body.too_large"


class BodyNotDer(BodyError):
    code = "body.not_der"


class NotJson(BodyError):
    code = "body.not_json"


class UnknownField(BodyError):
    """A field outside the closed schema (A6.1 for persons)."""

    code = "body.unknown_field"


class MissingField(BodyError):
    code = "body.missing_field"


class BadValue(BodyError):
    code = "body.bad_value"


class BadCategory(BodyError):
    """A person without exactly one A5 category."""

    code = "body.bad_category"


class BadScript(BodyError):
    """A name not in the script of its field (A14)."""

    code = "body.bad_script"


class BadReference(BodyError):
    """A photo or fingerprint card that points at no attachment of that kind."""

    code = "body.bad_reference"


class BadAttachment(BodyError):
    """Attachment data whose size or SHA-256 differs from the declared ones."""

    code = "body.bad_attachment"
