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
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from gateway.errors import GatewayError

HEADER = "Gateway-Signature"
_CONTEXT = b"KZBY-GW peer answer v1\x00"


class AnswerError(GatewayError):
    code = "peer.bad_answer_signature"


def _message(method: str, path_qs: str, request_body: bytes, status: int,
             answer_body: bytes) -> bytes:
    return _message_for(method, path_qs, hashlib.sha256(request_body).digest(), status,
                        answer_body)


def _message_for(method: str, path_qs: str, request_sha256: bytes, status: int,
                 answer_body: bytes) -> bytes:
    return (_CONTEXT + method.encode("ascii") + b" " + path_qs.encode("utf-8") + b"\n"
            + request_sha256 + b"%03d" % status + hashlib.sha256(answer_body).digest())


@dataclass(frozen=True)
class SignedAnswer:
    """A peer answer as evidence: everything its signature covers, and the signature,
    so that it verifies later without the request (only the request's hash)."""

    method: str
    path_qs: str
    request_sha256: bytes
    status: int
    body: bytes
    signature: str

    def verify(self, key: VerifyKey) -> None:
        """``AnswerError`` unless the answering node's key signed exactly this."""
        try:
            key.verify(_message_for(self.method, self.path_qs, self.request_sha256,
                                    self.status, self.body),
                       base64.b64decode(self.signature, validate=True))
        except (binascii.Error, ValueError, BadSignatureError):
            raise AnswerError("the peer's answer signature does not verify") from None



def sign_answer(key: SigningKey, method: str, path_qs: str, request_body: bytes,
                status: int, answer_body: bytes) -> str:
    signature = key.sign(_message(method, path_qs, request_body, status, answer_body)).signature
    return base64.b64encode(signature).decode("ascii")


def verify_answer(key: VerifyKey, header: str | None, method: str, path_qs: str,
                  request_body: bytes, status: int, answer_body: bytes) -> SignedAnswer:
    """The answer as evidence, if ``header`` signs this answer to this request; else
    ``AnswerError``.

    A refusal made before the request body was read (too large, the wrong certificate
    or listener) is signed over an empty request body: the node never saw ours. For a
    4xx, that one is accepted too; it still binds the method, path, status and answer.
    """
    if header is None:
        raise AnswerError("the peer's answer is not signed")
    bodies = [request_body, b""] if 400 <= status < 500 and request_body else [request_body]
    for body in bodies:
        answer = SignedAnswer(method, path_qs, hashlib.sha256(body).digest(), status,
                              answer_body, header)
        try:
            answer.verify(key)
            return answer
        except AnswerError:
            continue
    raise AnswerError("the peer's answer signature does not verify")
