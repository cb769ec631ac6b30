"""Operator changes while the node runs: the node's local admin socket.

A running node holds its home's writer lock, so an operator command cannot open the
database beside it. Changes the agreement wants made at once (A9.4: a signatory added
or revoked; A2.2: an authority's key or name) would otherwise need the node stopped.
Instead the node listens on a Unix socket in its home (``DIR/admin.sock``: the home
is 0700, the socket 0600) and makes the change itself, in its own ledger, then reloads
its trust and wakes its outbox, which sends the new version to the peer at once.

The command still proves the passphrase: the node signs the new version with the
Party root key, and whoever can reach the socket but lacks the passphrase must not
get a signature the key files alone would not give them.

One request per change: ``POST /v1/{action}`` with JSON ``{"passphrase": ..., "args":
{...}}``; the answer is the action's result, or ``{"code", "message"}``. ``ACTIONS``
is shared with the offline path, so a change means the same whether the node runs or
not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from nacl.public import PublicKey
from nacl.signing import VerifyKey

from gateway.admin import AdminError, AdminSession
from gateway.errors import CODED_ERRORS, GatewayError
from gateway.home import Home
from gateway.node.status import status_code_for
from gateway.node.worker import debugging
from keys.signatories import Signatory

if TYPE_CHECKING:
    from gateway.node.service import Node

log = logging.getLogger("gateway.node")
SOCKET_NAME = "admin.sock"
MAX_REQUEST = 64 * 1024
WRONG_PASSPHRASE_PAUSE = 1.0  # seconds


class AdminSocketError(GatewayError):
    code = "admin.bad_request"


def _text(args: dict[str, Any], name: str, optional: bool = False) -> Any:
    value = args.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise AdminSocketError(f"{name}: expected a string", code="admin.bad_argument")
    return value


def _hex(args: dict[str, Any], name: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(_text(args, name))
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise AdminSocketError(f"{name}: expected {2 * size} hex digits",
                           code="admin.bad_argument")
    return raw


def _time(args: dict[str, Any], name: str) -> dt.datetime | None:
    value = _text(args, name, optional=True)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise AdminSocketError(f"{name}: expected an ISO 8601 time with its zone",
                           code="admin.bad_argument")
    return parsed


def signatory_add(session: AdminSession, args: dict[str, Any]) -> dict[str, Any]:
    authority = _text(args, "authority")
    valid_from = _time(args, "valid_from")
    if valid_from is None:
        raise AdminSocketError("valid_from: required", code="admin.bad_argument")
    entry = Signatory(key=VerifyKey(_hex(args, "key", 32)),
                      name_cyrillic=_text(args, "name_cyrillic"),
                      name_latin=_text(args, "name_latin"), role=_text(args, "role"),
                      valid_from=valid_from, valid_until=_time(args, "valid_until"))
    lst = session.add_signatory(authority, entry)
    return {"authority": authority, "version": lst.version,
            "signatories": len(lst.signatories)}


def signatory_revoke(session: AdminSession, args: dict[str, Any]) -> dict[str, Any]:
    authority = _text(args, "authority")
    lst = session.revoke_signatory(authority, _hex(args, "key_id", 16))
    return {"authority": authority, "version": lst.version,
            "signatories": len(lst.signatories)}


def authority_add(session: AdminSession, args: dict[str, Any]) -> dict[str, Any]:
    added = session.add_authority(_text(args, "id"),
                                  PublicKey(_hex(args, "encryption_key", 32)),
                                  _text(args, "name_ru", optional=True),
                                  _text(args, "name_lat", optional=True))
    return {"authority": added.id, "directory_version": session.own_directory().version}


def agency_revoke(session: AdminSession, args: dict[str, Any]) -> dict[str, Any]:
    authority = _text(args, "authority")
    one = _hex(args, "certificate_sha256", 32) if args.get("certificate_sha256") else None
    revoked = session.revoke_certificates(authority, one)
    return {"authority": authority, "revoked": [r.hex() for r in revoked]}


def agency_enroll(session: AdminSession, args: dict[str, Any]) -> dict[str, Any]:
    """A new agency profile, written where the operator said (an absolute path: the
    node's working directory is not the operator's)."""
    out = Path(_text(args, "out"))
    if not out.is_absolute():
        raise AdminSocketError("out: expected an absolute path", code="admin.bad_argument")
    return session.enroll(
        _text(args, "authority"), out,
        signatory_name_cyrillic=_text(args, "signatory_name_cyrillic"),
        signatory_name_latin=_text(args, "signatory_name_latin"), role=_text(args, "role"),
        name_ru=_text(args, "name_ru", optional=True),
        name_lat=_text(args, "name_lat", optional=True),
        profile_passphrase=_text(args, "profile_passphrase").encode())


Action = Callable[[AdminSession, dict[str, Any]], dict[str, Any]]
ACTIONS: dict[str, Action] = {
    "signatory_add": signatory_add,
    "signatory_revoke": signatory_revoke,
    "authority_add": authority_add,
    "agency_revoke": agency_revoke,
    "agency_enroll": agency_enroll,
}


# --- the node's side ---------------------------------------------------------------

def admin_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST)
    # One change at a time: two would compute the same next version, and a wrong
    # passphrase's pause (below) holds it, so guesses go one a second at most.
    one_at_a_time = asyncio.Lock()

    async def handle(request: web.Request) -> web.Response:
        try:
            async with one_at_a_time:
                return web.json_response(await _perform(node, request))
        except CODED_ERRORS as e:
            code = getattr(e, "code", "error")
            return web.json_response({"code": code, "message": getattr(e, "message", str(e))},
                                     status=status_code_for(code))
        except Exception as e:
            # The type only: the arguments carry signatories' names.
            log.error("admin socket: %s failed (%s)", request.match_info["action"],
                      type(e).__name__, exc_info=debugging())
            return web.json_response({"code": "internal.error",
                                      "message": "internal error; see the node log"},
                                     status=500)

    app.router.add_post("/v1/{action}", handle)
    return app


async def _perform(node: Node, request: web.Request) -> dict[str, Any]:
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise AdminSocketError("no such admin action", code="admin.unknown_action")
    try:
        body = await request.json()
    except (ValueError, web.HTTPRequestEntityTooLarge):
        raise AdminSocketError("expected a JSON object of at most 64 KiB") from None
    if not isinstance(body, dict) or not isinstance(body.get("args"), dict) \
            or not isinstance(body.get("passphrase"), str):
        raise AdminSocketError('expected {"passphrase": "...", "args": {...}}')
    if not hmac.compare_digest(body["passphrase"].encode(), node.tls_passphrase):
        # The key files cost an Argon2id derivation per guess; this answer must not be
        # a faster oracle.
        log.warning("admin socket: wrong passphrase")
        await asyncio.sleep(WRONG_PASSPHRASE_PAUSE)
        raise AdminSocketError("wrong passphrase", code="admin.wrong_passphrase")
    session = AdminSession(node.home, node.config, node.ledger, node.reader,
                           node.tls_passphrase)
    loop = asyncio.get_running_loop()
    try:
        # The session writes with the ledger's blocking calls: off the loop, which goes
        # on serving (the ledger's write lock keeps its batches and the session's apart).
        result = await loop.run_in_executor(None, action, session, body["args"])
    finally:
        # Even after a failure: an action may have committed some of its changes (each
        # is a unit of its own) before the one that failed.
        node.reload_trust()
        node.control_documents_added()
    log.info("admin socket: %s done", request.match_info["action"])
    if session.in_force_at is not None:
        # As offline: the command returns once its change is in force.
        wait = (session.in_force_at - dt.datetime.now(dt.UTC)).total_seconds()
        await asyncio.sleep(max(0.0, wait))
    return result


async def start_admin_socket(node: Node, runner_options: dict[str, Any]) -> web.AppRunner | None:
    """Listen on ``DIR/admin.sock``; None (and a warning) where that cannot be."""
    path = node.home.root / SOCKET_NAME
    runner = web.AppRunner(admin_app(node), **runner_options)
    await runner.setup()
    try:
        # We hold the writer lock: a socket file here is a stale one.
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        await web.SockSite(runner, sock).start()
    except OSError as e:
        log.warning("admin socket not started (%s): operator changes need the node "
                    "stopped", type(e).__name__)
        await runner.cleanup()
        return None
    return runner


# --- the operator's side -----------------------------------------------------------

def send(home: Home, action: str, args: dict[str, Any], passphrase: bytes
         ) -> dict[str, Any] | None:
    """Have the running node make a change; None if no node listens on the socket."""
    path = home.root / SOCKET_NAME
    if not path.exists():
        return None
    return asyncio.run(_send(path, action, args, passphrase))


async def _send(path: Path, action: str, args: dict[str, Any], passphrase: bytes
                ) -> dict[str, Any] | None:
    body = {"passphrase": passphrase.decode(), "args": args}
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(path)),
                timeout=aiohttp.ClientTimeout(total=60)) as client, \
                client.post(f"http://node/v1/{action}", json=body) as response:
            answer = await response.json(content_type=None)
    except (aiohttp.ClientConnectorError, FileNotFoundError):
        return None  # a stale socket: no node runs (nothing was sent)
    except aiohttp.ClientConnectionError:
        # Sent, then the connection dropped: the node may have made the change. Never
        # make it again here.
        raise AdminSocketError("the running node dropped the connection; see "
                               "`gateway status` before trying again",
                               code="admin.no_answer") from None
    except (aiohttp.ClientError, ValueError, TimeoutError):
        raise AdminSocketError("the running node gave no usable answer",
                           code="admin.no_answer") from None
    if not isinstance(answer, dict):
        raise AdminSocketError("the running node gave no usable answer", code="admin.no_answer")
    if response.status != 200:
        raise AdminError(str(answer.get("message", "refused")),
                         code=str(answer.get("code", "admin.refused")))
    return answer

