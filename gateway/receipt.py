"""Signed receipts: a node's evidence that it took responsibility for an envelope.

Two kinds, as in eDelivery AS4's signed receipts:

- a **submission receipt**, given by a node to its own agency system on
  ``POST /v1/envelopes``: "I accepted this envelope, it is ledger entry N";
- a **relay receipt**, given by the receiving node to the sending node on
  ``POST /peer/v1/envelopes``: "I received this envelope from you, it is entry N of my
  ledger". The sender checks it against what it sent and keeps it.

A third kind, **control**, acknowledges a signed control document (a signatory list or
a Party directory) sent between nodes.

::

    Receipt ::= SEQUENCE {
        version       INTEGER (1),
        type          ENUMERATED { submission(1), relay(2), control(3) },
        party         PrintableString (SIZE(2)),      -- the issuing node's Party
        subjectId     OCTET STRING (SIZE(16)),        -- envelope id (control: first 16
                                                      -- bytes of the document hash)
        subjectHash   OCTET STRING (SIZE(32)),        -- SHA-256 of the sealed envelope
                                                      -- or of the control document
        ledgerIndex   INTEGER (0..MAX),               -- the issuer's ledger entry
        time          GeneralizedTime,                -- UTC
        nodeKeyId     OCTET STRING (SIZE(16)) }       -- key id of the issuing node key
    SignedReceipt ::= SEQUENCE { receipt Receipt, signature OCTET STRING (SIZE(64)) }

The signature is Ed25519 by the issuing node key over
``"KZBY-GW receipt v1" || 0x00 || DER(Receipt)``.
"""

# mypy: allow-subclassing-any
# (asn1crypto ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from asn1crypto import core, parser
from asn1crypto.parser import _parse  # asn1crypto's TLV reader at an offset
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from gateway.envelope.der import Encoded, codec, load_strict
from gateway.errors import GatewayError
from keys.keyid import key_id

ReceiptType = Literal["submission", "relay", "control"]
_CONTEXT = b"KZBY-GW receipt v1\x00"
MAX_RECEIPT_BYTES = 1024


class ReceiptError(GatewayError):
    code = "receipt.invalid"


class _Type(core.Enumerated):
    _map = {1: "submission", 2: "relay", 3: "control"}


class _Receipt(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("type", _Type),
        ("party", core.PrintableString),
        ("subject_id", core.OctetString),
        ("subject_hash", core.OctetString),
        ("ledger_index", core.Integer),
        ("time", core.GeneralizedTime),
        ("node_key_id", core.OctetString),
    ]


class _SignedReceipt(core.Sequence):
    _fields = [("receipt", _Receipt), ("signature", core.OctetString)]


# Compiled once: asn1crypto's generic classes cost ~150 µs a receipt, and a node signs
# one per envelope (gateway/envelope/der.py says how the bytes stay asn1crypto's own).
_RECEIPT = codec(_Receipt)
_SIGNED = codec(_SignedReceipt)


@dataclass(frozen=True)
class Receipt:
    type: ReceiptType
    party: str
    subject_id: bytes
    subject_hash: bytes
    ledger_index: int
    time: dt.datetime
    node_key_id: bytes

    def _native(self) -> dict[str, object]:
        return {
            "version": 1,
            "type": self.type,
            "party": self.party,
            "subject_id": self.subject_id,
            "subject_hash": self.subject_hash,
            "ledger_index": self.ledger_index,
            "time": self.time.astimezone(dt.UTC),
            "node_key_id": self.node_key_id,
        }

    def sign(self, node_key: SigningKey) -> bytes:
        if self.node_key_id != key_id(node_key.verify_key):
            raise ReceiptError("node_key_id does not name the signing key")
        receipt_der = _RECEIPT.dump(self._native())
        signature = node_key.sign(_CONTEXT + receipt_der).signature
        return _SIGNED.dump({"receipt": Encoded(receipt_der), "signature": signature})


def make_receipt(type: ReceiptType, party: str, subject_id: bytes, subject_hash: bytes,
                 ledger_index: int, time: dt.datetime, node_key: SigningKey) -> bytes:
    return Receipt(type, party, subject_id, subject_hash, ledger_index, time,
                   key_id(node_key.verify_key)).sign(node_key)


def verify_receipt(data: bytes, node_key: VerifyKey, *, type: ReceiptType,
                   subject_hash: bytes | None = None) -> Receipt:
    """Check a signed receipt against the issuing node's key; return what it says.

    With ``subject_hash`` it also checks that the receipt covers exactly those bytes.
    """
    signed = load_strict(_SIGNED, data, MAX_RECEIPT_BYTES, ReceiptError,
                         too_large_cls=ReceiptError, what="receipt")
    fields = signed["receipt"]
    try:
        # The bytes signed are the Receipt's DER: the first element of the SignedReceipt,
        # exactly as load_strict just accepted it.
        contents = parser.parse(data)[4]
        receipt_der = contents[:_parse(contents, len(contents))[1]]
        node_key.verify(_CONTEXT + receipt_der, signed["signature"])
    except (BadSignatureError, ValueError, TypeError):
        raise ReceiptError("receipt signature does not verify with the node key",
                           code="receipt.bad_signature") from None
    if fields["version"] != 1:
        raise ReceiptError(f"unsupported receipt version {fields['version']}")
    receipt = Receipt(fields["type"], fields["party"], fields["subject_id"],
                      fields["subject_hash"], fields["ledger_index"], fields["time"],
                      fields["node_key_id"])
    if receipt.node_key_id != key_id(node_key):
        raise ReceiptError("receipt names another node key", code="receipt.wrong_key")
    if receipt.type != type:
        raise ReceiptError(f"expected a {type} receipt, got {receipt.type}",
                           code="receipt.wrong_type")
    if subject_hash is not None and receipt.subject_hash != subject_hash:
        raise ReceiptError("receipt covers other bytes than were sent",
                           code="receipt.hash_mismatch")
    if len(receipt.subject_id) != 16 or len(receipt.subject_hash) != 32:
        raise ReceiptError("receipt ids have the wrong length")
    return receipt
