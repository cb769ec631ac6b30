"""The ASN.1 schema of the sealed envelope, as asn1crypto classes.

``MODULE`` is the normative text; docs/protocol.md quotes it verbatim and a test keeps
the two equal. The classes below must describe the same encoding: the vectors in
tests/vectors/envelope/ pin their bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from asn1crypto import core

MODULE = """\
KZBY-Envelope-v1 DEFINITIONS IMPLICIT TAGS ::= BEGIN

Envelope ::= SEQUENCE {
    header            Header,
    wrappedKey        OCTET STRING (SIZE (80)),  -- sealed box of the content key
    ciphertext        OCTET STRING,              -- secretstream chunks of the body
    signature         OCTET STRING (SIZE (64))   -- Ed25519 by the signatory
}

Header ::= SEQUENCE {
    version           INTEGER (1),
    envelopeId        OCTET STRING (SIZE (16)),
    kind              INTEGER (1..255),          -- the kind registry
    sender            AuthorityId,
    recipient         AuthorityId,
    caseId            OCTET STRING (SIZE (16)),
    inReplyTo         [0] OCTET STRING (SIZE (16)) OPTIONAL,
    inReplyToHash     [1] OCTET STRING (SIZE (32)) OPTIONAL,
    created           GeneralizedTime,           -- YYYYMMDDHHMMSSZ
    signatoryKeyId    OCTET STRING (SIZE (16)),
    recipientKeyId    OCTET STRING (SIZE (16)),
    ciphertextLength  INTEGER (18..67108864),
    keyCommitment     OCTET STRING (SIZE (32)),
    streamHeader      OCTET STRING (SIZE (24))
}

AuthorityId ::= PrintableString (SIZE (5..19))  -- [A-Z]{2}-[A-Z0-9]{2,16}

END
"""


class HeaderSchema(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("envelope_id", core.OctetString),
        ("kind", core.Integer),
        ("sender", core.PrintableString),
        ("recipient", core.PrintableString),
        ("case_id", core.OctetString),
        ("in_reply_to", core.OctetString, {"implicit": 0, "optional": True}),
        ("in_reply_to_hash", core.OctetString, {"implicit": 1, "optional": True}),
        ("created", core.GeneralizedTime),
        ("signatory_key_id", core.OctetString),
        ("recipient_key_id", core.OctetString),
        ("ciphertext_length", core.Integer),
        ("key_commitment", core.OctetString),
        ("stream_header", core.OctetString),
    ]


class EnvelopeSchema(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("header", HeaderSchema),
        ("wrapped_key", core.OctetString),
        ("ciphertext", core.OctetString),
        ("signature", core.OctetString),
    ]
