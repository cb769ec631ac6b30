"""The peer client against a peer that signs answers it should not give: too large, or
not the shape the call expects. Each is refused as ``peer.bad_answer`` (a whole-request
failure the outbox retries with backoff, its code shown by `gateway queue`), never a
bare KeyError that would leave the same batch retried every second (N13, N14).

The "peer" is an aiohttp server with the BY node's real certificate and node key on
127.0.0.1, mutual TLS with the KZ node's certificate, as the real peer API."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from gateway import tls
from gateway.node import peer
from gateway.node.answers import HEADER, sign_answer
from gateway.node.peer import BadAnswer, PeerClient, PeerRefused
from tests.nodes import PASSPHRASE, homes

Answer = Callable[[web.Request], tuple[int, bytes]]


@asynccontextmanager
async def fake_peer(tmp_path: Path, answer: Answer, *, body_read: bool = True
                    ) -> AsyncIterator[PeerClient]:
    """A client of a fake BY peer; with ``body_read=False`` it signs as a node that
    refused before reading the request body."""
    kz, by = homes(tmp_path)
    by_key = by.signing_key("node", PASSPHRASE)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read() if body_read else b""
        status, text = answer(request)
        signature = sign_answer(by_key, request.method, request.path_qs, body, status, text)
        return web.Response(status=status, body=text, headers={HEADER: signature},
                            content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    context = tls.server_context(by.tls_certificate, by.tls_key, PASSPHRASE,
                                 trust_pem=kz.tls_certificate.read_bytes())
    await web.SockSite(runner, sock, ssl_context=context).start()
    client = PeerClient(f"https://127.0.0.1:{sock.getsockname()[1]}",
                        tls.client_context(by.tls_certificate.read_bytes(),
                                           certificate=kz.tls_certificate, key=kz.tls_key,
                                           passphrase=PASSPHRASE),
                        by_key.verify_key)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


def always(status: int, document: object) -> Answer:
    return lambda request: (status, json.dumps(document).encode())


@pytest.mark.parametrize("document", [
    ["not", "an", "object"],
    {"results": ["not an object"]},
    {"results": [{"receipt": "not base64!"}]},
    {"results": [{"receipt": 12}]},
], ids=["list", "item", "base64", "type"])
async def test_a_malformed_batch_answer_is_a_bad_answer(tmp_path: Path, document: object
                                                        ) -> None:
    async with fake_peer(tmp_path, always(200, document)) as client:
        with pytest.raises(BadAnswer) as refused:
            await client.send_envelopes([b"x"])
    assert refused.value.code == "peer.bad_answer"


async def test_control_and_checkpoint_answers_without_their_fields(tmp_path: Path) -> None:
    async with fake_peer(tmp_path, always(200, {"ok": True})) as client:
        with pytest.raises(BadAnswer):
            await client.send_control("signatory_list", b"list")
        with pytest.raises(BadAnswer):
            await client.checkpoint(0)
    async with fake_peer(tmp_path / "2", always(200, {"checkpoint": "x", "proof": "AA=="})
                         ) as client:
        with pytest.raises(BadAnswer):
            await client.checkpoint(0)


async def test_an_answer_over_the_limit_is_not_read_whole(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(peer, "MAX_ANSWER", 1000)
    big = {"results": [{"code": "x" * 2000}]}
    async with fake_peer(tmp_path, always(200, big)) as client:
        with pytest.raises(BadAnswer, match="over 1000 bytes"):
            await client.send_envelopes([b"x"])


async def test_a_well_formed_answer_still_passes(tmp_path: Path) -> None:
    async with fake_peer(tmp_path, always(200, {"results": [{"code": "case.exists"}]})
                         ) as client:
        results = await client.send_envelopes([b"x"])
    assert results[0].receipt is None and results[0].code == "case.exists"



async def test_a_refusal_signed_before_the_body_was_read_verifies(tmp_path: Path) -> None:
    """A peer that refuses a request as too large never reads it: its signed answer binds
    an empty request body (N6), and is still a signed refusal, not a forgery."""
    refusal = always(413, {"code": "request.too_large", "message": "over the limit"})
    async with fake_peer(tmp_path, refusal, body_read=False) as client:
        with pytest.raises(PeerRefused) as refused:
            await client.send_envelopes([b"x" * 100])
    assert refused.value.code == "request.too_large"
