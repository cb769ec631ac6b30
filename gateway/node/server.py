"""Running a node: bind both listeners, serve until SIGTERM/SIGINT, stop gracefully.

``serve`` writes ``DIR/serve.json`` with the addresses it actually bound (useful when
the configuration asks for port 0) and removes it on exit. Graceful stop: the
listeners close, in-flight requests get up to ``SHUTDOWN_TIMEOUT`` seconds to finish,
then the workers finish their current step and the ledger closes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress

from aiohttp import web

from gateway import tls
from gateway.config import parse_hostport
from gateway.home import Home
from gateway.node.admin_socket import SOCKET_NAME, start_admin_socket
from gateway.node.app import create_app
from gateway.node.appkeys import LISTENERS, NODE
from gateway.node.trust import now_utc

log = logging.getLogger("gateway.node")
SHUTDOWN_TIMEOUT = 10.0


def _bind(text: str, what: str) -> socket.socket:
    host, port = parse_hostport(text, what)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


async def serve(home: Home, passphrase: bytes, *,
                started: Callable[[dict[str, str]], Awaitable[None] | None] | None = None,
                stop: asyncio.Event | None = None,
                clock: Callable[[], dt.datetime] = now_utc) -> None:
    """Serve until ``stop`` is set (or a signal arrives when ``stop`` is None)."""
    config = home.config()
    with home.writer_lock():
        app = create_app(home, passphrase, clock)
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        node = app[NODE]
        addresses: dict[str, str] = {}
        admin_socket = None
        try:
            agency_sock = _bind(config.agency_listen, "agency_listen")
            agency_context = tls.server_context(
                home.tls_certificate, home.tls_key, passphrase,
                trust_pem=home.agency_ca_certificate.read_bytes())
            await web.SockSite(runner, agency_sock, ssl_context=agency_context).start()
            app[LISTENERS]["agency"] = agency_sock.getsockname()[1]
            addresses["agency_listen"] = _address(agency_sock)
            if node.trust.peer_tls_pem is not None:
                peer_sock = _bind(config.listen, "listen")
                peer_context = tls.server_context(
                    home.tls_certificate, home.tls_key, passphrase,
                    trust_pem=node.trust.peer_tls_pem)
                await web.SockSite(runner, peer_sock, ssl_context=peer_context).start()
                node.peer_tls_context = peer_context
                app[LISTENERS]["peer"] = peer_sock.getsockname()[1]
                addresses["peer_listen"] = _address(peer_sock)
            else:
                log.warning("no peer directory imported: the peer listener is not started")
            admin_socket = await start_admin_socket(node, {"handle_signals": False,
                                                            "access_log": None})
            state = home.root / "serve.json"
            state.write_text(json.dumps({**addresses, "pid": os.getpid()}) + "\n")
            log.info("serving %s", addresses)
            if started is not None:
                result = started(addresses)
                if result is not None:
                    await result
            await _wait_for_stop(stop)
        finally:
            with suppress(FileNotFoundError):
                (home.root / "serve.json").unlink()
            if admin_socket is not None:
                await admin_socket.cleanup()
                (home.root / SOCKET_NAME).unlink(missing_ok=True)
            await runner.cleanup()


async def _wait_for_stop(stop: asyncio.Event | None) -> None:
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
