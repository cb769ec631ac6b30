"""The node's aiohttp application: one app, two TLS listeners.

``create_app(home, passphrase)`` is the only way to get a node app; ``gateway serve``
and every server test use it. The app listens twice, with different TLS contexts:

- the **agency listener** (``agency_listen``) requires a client certificate from this
  node's agency CA and serves ``/v1/...``;
- the **peer listener** (``listen``) requires exactly the peer node's pinned certificate
  and serves ``/peer/v1/...``; every answer there is signed (``answers.py``).

A middleware refuses a route on the wrong listener, so an agency certificate can never
reach the peer API even if the two contexts were confused. Errors become JSON
``{"code", "message"}`` in one middleware, with one code-to-status table.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway import tls
from gateway.errors import CODED_ERRORS
from gateway.home import Home
from gateway.node.answers import HEADER, sign_answer
from gateway.node.appkeys import LISTENERS, NODE, REQUEST_BODY
from gateway.node.service import Node, NodeError, open_node
from gateway.node.status import status_code_for
from gateway.node.trust import now_utc
from gateway.node.worker import debugging

log = logging.getLogger("gateway.node")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, sort_keys=True))


def error_response(code: str, message: str, status: int) -> web.Response:
    return _json({"code": code, "message": message}, status)


@web.middleware
async def sign_peer_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost on the peer API: sign whatever answer leaves, errors included."""
    response = await handler(request)
    if request.path.startswith("/peer/") and isinstance(response, web.Response):
        node: Node = request.app[NODE]
        body = response.body if isinstance(response.body, bytes) else b""
        response.headers[HEADER] = sign_answer(
            node.node_key, request.method, request.path_qs, request.get(REQUEST_BODY, b""),
            response.status, body)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    node: Node = request.app[NODE]
    try:
        return await handler(request)
    except CODED_ERRORS as e:
        code = getattr(e, "code", "error")
        node.metrics.count("gateway_errors_total", "Refused requests by code", code=code)
        return error_response(code, getattr(e, "message", str(e)), status_code_for(code))
    except web.HTTPRequestEntityTooLarge:
        return error_response("request.too_large", "request body over the size limit", 413)
    except web.HTTPException as e:
        if e.status >= 400:
            code = f"http.{e.status}"
            return error_response(code, e.reason or "request refused", e.status)
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as e:
        # The type and where, not the text: an exception's text could carry input, and
        # no personal data reaches a log line. GATEWAY_DEBUG=1 adds the traceback.
        log.error("internal error on %s %s: %s", request.method, request.path,
                  type(e).__name__, exc_info=debugging())
        return error_response("internal.error", "internal error; see the node log", 500)


@web.middleware
async def listener_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Peer routes only on the peer listener, agency routes only on the agency one."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if sockname else None
    ports = request.app[LISTENERS]
    on_peer = port == ports.get("peer")
    wants_peer = request.path.startswith("/peer/")
    if request.path not in ("/healthz", "/metrics") and on_peer != wants_peer:
        return error_response("request.wrong_listener",
                              "this route is not served on this listener", 404)
    if on_peer and not _presents_pinned_peer(request):
        # The handshake trusts every certificate the peer ever pinned (contexts only
        # grow); this is where a certificate replaced by a newer directory stops working.
        return error_response("peer.wrong_certificate",
                              "not the certificate the peer's current directory pins", 403)
    return await handler(request)


def _presents_pinned_peer(request: web.Request) -> bool:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    node = request.app[NODE]
    return der is not None and node.trust.peer is not None and \
        hashlib.sha256(der).digest() == node.trust.peer_directory.node.tls_cert_sha256


def agency_authority(request: web.Request) -> str:
    """The authority named by the verified agency client certificate."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    authority = tls.authority_of(der) if der else None
    if der is None or authority is None:
        raise web.HTTPForbidden(reason="client certificate names no authority")
    if hashlib.sha256(der).digest() in request.app[NODE].revoked_certificates:
        # Per request, not per handshake: a keep-alive connection stops here too.
        raise NodeError("this client certificate was revoked (gateway agency revoke)",
                        code="agency.certificate_revoked")
    return authority


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the body, refusing as soon as it passes ``limit`` (never buffering more)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    body = b"".join(chunks)
    request[REQUEST_BODY] = body
    return body


def _hex_id(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise web.HTTPBadRequest(reason=f"{what} must be 32 hex digits")
    return raw


# ASCII digits only, and few: str.isdigit() takes "²", which int() refuses, and int()
# refuses more than 4300 digits. 19 digits hold every bound used here (2**62 included).
_QUERY_INT = re.compile(r"[0-9]{1,19}")


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not _QUERY_INT.fullmatch(text) or not low <= int(text) <= high:
        raise web.HTTPBadRequest(reason=f"query {name} must be a whole number {low}..{high}")
    return int(text)


# --- agency API -----------------------------------------------------------------------

async def post_envelope(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    sealed = await read_body(request, node.config.max_envelope_bytes)
    result = await node.submit(authority, sealed)
    return _json(result, 202)


async def get_inbox(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", 100, 1, 1000)
    wait = _int_query(request, "wait", 0, 0, 60)
    items = await node.inbox(authority, after, limit, wait)
    next_cursor = items[-1]["seq"] if items else after
    return _json({"items": items, "next": next_cursor})


async def get_envelope(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    envelope_id = _hex_id(request.match_info["id"], "envelope id")
    sealed = await node.fetch(authority, envelope_id)
    return web.Response(body=sealed, content_type="application/vnd.kzby.envelope")


async def get_envelope_status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    envelope_id = _hex_id(request.match_info["id"], "envelope id")
    return _json(node.envelope_status(authority, envelope_id))


async def post_ack(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    envelope_id = _hex_id(request.match_info["id"], "envelope id")
    return _json(await node.ack(authority, envelope_id))


async def get_case(request: web.Request) -> web.Response:
    node = request.app[NODE]
    authority = agency_authority(request)
    case_id = _hex_id(request.match_info["id"], "case id")
    return _json(node.case_view(authority, case_id))


async def get_directory(request: web.Request) -> web.Response:
    """The newest directory of a Party, as the directory file (for the SDK to seal to)."""
    node = request.app[NODE]
    agency_authority(request)
    data = node.directory_file(request.match_info["party"])
    return web.Response(body=data, content_type="application/x-pem-file")


async def get_signatories(request: web.Request) -> web.Response:
    """Every version of an authority's signatory list (for the SDK to check senders)."""
    node = request.app[NODE]
    agency_authority(request)
    versions = node.signatory_lists(request.match_info["authority"])
    return _json({"authority": request.match_info["authority"],
                  "versions": [base64.b64encode(v).decode("ascii") for v in versions]})


# --- peer API -------------------------------------------------------------------------

async def peer_post_envelopes(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_body(request, node.config.max_envelope_bytes + 64 * 1024)
    results = await node.receive_batch(body)
    return _json({"results": results})


async def peer_post_control(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_body(request, 1024 * 1024)
    receipt = await node.receive_control(request.match_info["kind"], body)
    return _json({"receipt": base64.b64encode(receipt).decode("ascii")})


async def peer_get_checkpoint(request: web.Request) -> web.Response:
    node = request.app[NODE]
    old = _int_query(request, "old", 0, 0, 2**62)
    return _json(await node.checkpoint_for_peer(old))


async def peer_post_cosignature(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_body(request, 16 * 1024)
    try:
        document = json.loads(body)
        size, cosignature = int(document["size"]), str(document["cosignature"])
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(reason="expected JSON {size, cosignature}") from None
    await node.accept_cosignature(size, cosignature)
    return _json({"ok": True})


async def peer_health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return _json({"party": node.config.party, "ledger_size": node.ledger.size})


# --- both -----------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return _json({"status": "ok", "party": node.config.party})


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.Response(text=node.metrics.render(), content_type="text/plain")


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/envelopes", post_envelope)
    app.router.add_get("/v1/envelopes/{id}", get_envelope)
    app.router.add_get("/v1/envelopes/{id}/status", get_envelope_status)
    app.router.add_get("/v1/inbox", get_inbox)
    app.router.add_post("/v1/inbox/{id}/ack", post_ack)
    app.router.add_get("/v1/cases/{id}", get_case)
    app.router.add_get("/v1/directory/{party}", get_directory)
    app.router.add_get("/v1/signatories/{authority}", get_signatories)
    app.router.add_post("/peer/v1/envelopes", peer_post_envelopes)
    app.router.add_post("/peer/v1/control/{kind}", peer_post_control)
    app.router.add_get("/peer/v1/checkpoint", peer_get_checkpoint)
    app.router.add_post("/peer/v1/cosignature", peer_post_cosignature)
    app.router.add_get("/peer/v1/health", peer_health)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


def create_app(home: Home, passphrase: bytes,
               clock: Callable[[], dt.datetime] = now_utc) -> web.Application:
    """The node app. Its resources (database, ledger, workers) live in cleanup_ctx."""
    app = web.Application(
        middlewares=[sign_peer_answers, errors, listener_guard],
        client_max_size=home.config().max_envelope_bytes + 64 * 1024,
    )
    app[LISTENERS] = {}

    async def node_ctx(app: web.Application) -> AsyncIterator[None]:
        node = await open_node(home, passphrase, clock)
        app[NODE] = node
        try:
            await node.start_workers()
            yield
        finally:
            await node.close()

    app.cleanup_ctx.append(node_ctx)
    setup_routes(app)
    return app
