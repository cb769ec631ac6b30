"""Documents signed by a Party's root key: the Party directory and signatory lists.

Each is ``SEQUENCE { tbs, signature }``. The Ed25519 signature covers a context label,
a newline and the DER of ``tbs``::

    signature = Ed25519(root, context || 0x0A || DER(tbs))

The label keeps one kind of document from ever verifying as another, since the same
root key signs both. Opening a document is the first half of every decoder:
size bound, strict DER, known format version; the caller then picks the key and calls
``verify``. Nothing in ``tbs`` is interpreted before its signature has been checked.
"""

from __future__ import annotations

from typing import Any

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from keys.der import load_strict
from keys.errors import BadSignature, NotDer, TooLarge, UnsupportedFormat
from keys.schema import FORMAT_V1

DIRECTORY_CONTEXT = b"kzby directory v1"
SIGNATORY_LIST_CONTEXT = b"kzby signatory list v1"
SIGNATURE_SIZE = 64


def signed_message(context: bytes, tbs_der: bytes) -> bytes:
    return context + b"\n" + tbs_der


def sign(root: SigningKey, context: bytes, tbs_der: bytes) -> bytes:
    signature: bytes = root.sign(signed_message(context, tbs_der)).signature
    return signature


def verify(key: VerifyKey, context: bytes, tbs_der: bytes, signature: bytes, what: str) -> None:
    """Return None if ``signature`` is the root's over ``tbs_der``, else raise BadSignature."""
    if len(signature) != SIGNATURE_SIZE:
        raise BadSignature(f"{what}: signature is not {SIGNATURE_SIZE} bytes")
    try:
        key.verify(signed_message(context, tbs_der), signature)
    except nacl.exceptions.BadSignatureError:
        raise BadSignature(f"{what}: signature does not verify under the root key") from None


def open_signed(spec_class: type[Any], data: bytes, max_size: int, what: str) -> tuple[Any, bytes]:
    """Steps 1-3 of every decoder: bound, strict DER, format version.

    Returns the (still unverified) ``tbs`` value and the signature bytes.
    """
    signed = load_strict(spec_class, data, max_size, NotDer, too_large_cls=TooLarge, what=what)
    tbs = signed["tbs"]
    if tbs["format_version"].native != FORMAT_V1:
        raise UnsupportedFormat(f"{what}: format version is not {FORMAT_V1}")
    signature: bytes = signed["signature"].native
    return tbs, signature
