"""The client side of the peer API: what a node asks of the other Party's node.

Every call goes over mutual TLS with the peer's pinned certificate, and every answer's
signature is checked against the peer's node key (``answers.verify_answer``) before
anything in it is believed.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from nacl.signing import VerifyKey

from gateway import tls
from gateway.errors import GatewayError
from gateway.node.answers import HEADER, SignedAnswer, verify_answer
from gateway.node.batch import encode_batch
from gateway.node.worker import Worker
from ledger.entry import TOKEN_RE

if TYPE_CHECKING:
    from gateway.node.service import Node

TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)
#: The largest answer read: a batch answer of 1,024 receipts is about 1.5 MB.
MAX_ANSWER = 4 * 1024 * 1024


class PeerUnavailable(GatewayError):
    """The peer could not be reached or answered 5xx: try again later."""

    code = "peer.unavailable"


class BadAnswer(PeerUnavailable):
    """The peer's signed answer is too large or not what the call expects: retried like
    an unreachable peer (with backoff, its code in the queue), never believed."""

    code = "peer.bad_answer"


class PeerRefused(GatewayError):
    """The peer answered with a signed 4xx: it will not take this, retrying won't help.
    ``answer`` is that signed answer, the evidence of the refusal."""

    code = "peer.refused"
    answer: SignedAnswer | None = None


@dataclass(frozen=True)
class ItemResult:
    receipt: bytes | None
    code: str | None = None
    #: For a refusal: the peer's signed answer that says so (the whole batch's answer).
    answer: SignedAnswer | None = None


def _code(value: object) -> str:
    """A refusal code as the ledger can hold it; anything else the peer sent becomes
    ``peer.bad_code`` (it would otherwise be free text in our ledger and metrics)."""
    if isinstance(value, str) and TOKEN_RE.fullmatch(value):
        return value
    return "peer.bad_code"


def _base64(value: object) -> bytes:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            pass
    raise BadAnswer("peer answered a value that is not base64")


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The answer body, refused as soon as it passes ``limit`` (never buffered whole)."""
    if response.content_length is not None and response.content_length > limit:
        raise BadAnswer(f"peer answer over {limit} bytes")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BadAnswer(f"peer answer over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class PeerClient:
    def __init__(self, url: str, context: ssl.SSLContext, peer_node_key: VerifyKey) -> None:
        self._url = url.rstrip("/")
        self._key = peer_node_key
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=8), timeout=TIMEOUT)

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, path: str, body: bytes = b"",
                    content_type: str = "application/octet-stream") -> Any:
        return (await self._call_signed(method, path, body, content_type))[0]

    async def _call_signed(self, method: str, path: str, body: bytes = b"",
                           content_type: str = "application/octet-stream"
                           ) -> tuple[dict[str, Any], SignedAnswer]:
        """The answer's JSON object, and the signed answer it came in."""
        headers = {"Content-Type": content_type} if body else {}
        try:
            async with self._session.request(method, self._url + path, data=body or None,
                                             headers=headers) as response:
                answer = await _read_at_most(response, MAX_ANSWER)
                status = response.status
                signature = response.headers.get(HEADER)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise PeerUnavailable(f"peer not reachable ({type(e).__name__})") from None
        signed = verify_answer(self._key, signature, method, path, body, status, answer)
        try:
            document = json.loads(answer)
        except ValueError:
            raise BadAnswer(f"peer answered {status} without JSON") from None
        if not isinstance(document, dict):
            raise BadAnswer(f"peer answered {status} with JSON that is not an object")
        if status >= 500:
            raise PeerUnavailable(f"peer answered {status}: {document.get('code')}")
        if status >= 400:
            refused = PeerRefused("the peer refused the request",
                                  code=_code(document.get("code")))
            refused.answer = signed
            raise refused
        return document, signed

    async def send_envelopes(self, envelopes: list[bytes]) -> list[ItemResult]:
        document, signed = await self._call_signed("POST", "/peer/v1/envelopes",
                                                   encode_batch(envelopes))
        results = document.get("results")
        if not isinstance(results, list) or len(results) != len(envelopes):
            raise PeerUnavailable("peer answered a batch with the wrong number of results")
        out = []
        for item in results:
            if not isinstance(item, dict):
                raise BadAnswer("peer answered a batch result that is not an object")
            if "receipt" in item:
                out.append(ItemResult(_base64(item["receipt"])))
            else:
                out.append(ItemResult(None, _code(item.get("code")), signed))
        return out

    async def send_control(self, kind: str, document: bytes) -> bytes:
        """Send a signed control document (signatory list, directory); the receipt."""
        answer = await self._call("POST", f"/peer/v1/control/{kind}", document)
        return _base64(answer.get("receipt"))

    async def checkpoint(self, old_size: int) -> tuple[str, list[bytes]]:
        """The peer's newest checkpoint and a consistency proof from ``old_size``."""
        answer = await self._call("GET", f"/peer/v1/checkpoint?old={old_size}")
        proof, note = answer.get("proof"), answer.get("checkpoint")
        if not isinstance(proof, list) or not isinstance(note, str):
            raise BadAnswer("peer answered a checkpoint without its note or proof")
        return note, [_base64(p) for p in proof]

    async def cosign(self, size: int, cosignature: str) -> None:
        body = json.dumps({"size": size, "cosignature": cosignature}).encode()
        await self._call("POST", "/peer/v1/cosignature", body, "application/json")

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/peer/v1/health")
        return result


def make_peer_client(node: Node) -> PeerClient:
    """A client of the peer as the node's trust says it is now: pinned certificate, our
    own certificate as the client's, the peer's node key for answer signatures."""
    trust = node.trust
    assert trust.peer_tls_pem is not None
    context = tls.client_context(trust.peer_tls_pem, certificate=node.home.tls_certificate,
                                 key=node.home.tls_key, passphrase=node.tls_passphrase)
    return PeerClient(trust.peer_directory.node.url, context,
                      trust.peer_directory.node.node_key)


class PeerWorker(Worker):
    """A worker that talks to the peer through one client, opened on first use and
    opened again when the node's trust changes (a new peer directory may move the peer
    to another URL, certificate or node key: A2.2)."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self._peer: PeerClient | None = None
        self._made_for: object = None

    async def peer(self) -> PeerClient:
        if self._peer is not None and self._made_for is not self.node.trust:
            await self._peer.close()
            self._peer = None
        if self._peer is None:
            self._peer = make_peer_client(self.node)
            self._made_for = self.node.trust
        return self._peer

    async def stop(self) -> None:
        await super().stop()
        if self._peer is not None:
            await self._peer.close()
