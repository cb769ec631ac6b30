"""Signed peer answers: every answer on the peer API is signed by the answering node.

A relay receipt is the evidence for one envelope; the answer signature covers the whole
HTTP answer (errors included), so a node can prove what its peer told it, and a
man-in-the-middle that somehow got past the pinned TLS still could not forge a refusal.

The signature is Ed25519 by the node key over::

    "KZBY-GW peer answer v1" || 0x00 || METHOD || " " || PATH_QS || 0x0A
        || SHA-256(request body) || STATUS (3 ASCII digits) || SHA-256(answer body)

and travels base64 (RFC 4648 §4, padded) in the ``Gateway-Signature`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from gateway.errors import GatewayError

HEADER = "Gateway-Signature"
_CONTEXT = b"KZBY-GW peer answer v1\x00"


class AnswerError(GatewayError):
    code = "peer.bad_answer_signature"


def _message(method: str, path_qs: str, request_body: bytes, status: int,
             answer_body: bytes) -> bytes:
    return (_CONTEXT + method.encode("ascii") + b" " + path_qs.encode("utf-8") + b"\n"
            + hashlib.sha256(request_body).digest() + b"%03d" % status
            + hashlib.sha256(answer_body).digest())


def sign_answer(key: SigningKey, method: str, path_qs: str, request_body: bytes,
                status: int, answer_body: bytes) -> str:
    signature = key.sign(_message(method, path_qs, request_body, status, answer_body)).signature
    return base64.b64encode(signature).decode("ascii")


def verify_answer(key: VerifyKey, header: str | None, method: str, path_qs: str,
                  request_body: bytes, status: int, answer_body: bytes) -> None:
    """Raise ``AnswerError`` unless ``header`` signs this answer to this request.

    A refusal made before the request body was read (too large, the wrong certificate
    or listener) is signed over an empty request body: the node never saw ours. For a
    4xx, that one is accepted too; it still binds the method, path, status and answer.
    """
    if header is None:
        raise AnswerError("the peer's answer is not signed")
    bodies = [request_body, b""] if 400 <= status < 500 and request_body else [request_body]
    try:
        signature = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        raise AnswerError("the peer's answer signature is not base64") from None
    for body in bodies:
        try:
            key.verify(_message(method, path_qs, body, status, answer_body), signature)
            return
        except (ValueError, BadSignatureError):
            continue
    raise AnswerError("the peer's answer signature does not verify")
