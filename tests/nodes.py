"""Two real nodes on 127.0.0.1 for tests: homes, servers in this process, clients.

Keys use Argon2id's minimum cost so that a test makes a pair of homes in well under a
second; everything else is as in production: real certificates, real mutual TLS, real
SQLite files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nacl.pwhash

from gateway import tls
from gateway.client import AgencyClient, Profile
from gateway.demo import lists_delivered, make_homes
from gateway.home import Home
from gateway.node import store
from gateway.node.peer import PeerClient
from gateway.node.server import serve
from gateway.node.trust import load_trust

PASSPHRASE = b"test passphrase"
FAST_KDF = {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
            "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN}


def homes(root: Path, interval: float = 0.2) -> tuple[Home, Home]:
    return make_homes(root, PASSPHRASE, interval=interval, **FAST_KDF)


@dataclass
class Running:
    home: Home
    addresses: dict[str, str] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
            self.task = None


async def start(home: Home, clock: Callable[[], dt.datetime] | None = None) -> Running:
    running = Running(home)
    ready = asyncio.Event()

    def started(addresses: dict[str, str]) -> None:
        running.addresses.update(addresses)
        ready.set()

    kwargs = {"clock": clock} if clock is not None else {}
    running.task = asyncio.create_task(serve(home, PASSPHRASE, started=started,
                                             stop=running.stop, **kwargs))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({waiter, running.task}, timeout=30,
                                 return_when=asyncio.FIRST_COMPLETED)
    if running.task in done:
        waiter.cancel()
        running.task.result()  # raises the start-up failure
    assert waiter in done, "node did not start in 30 s"
    return running


def lists_exchanged(*hs: Home) -> bool:
    return all(lists_delivered(h) for h in hs)


@asynccontextmanager
async def serving(*hs: Home, exchanged: bool = True,
                  clock: Callable[[], dt.datetime] | None = None) -> AsyncIterator[list[Running]]:
    """Run the nodes; with ``exchanged`` wait until the A9.3 list exchange is done."""
    nodes = [await start(h, clock) for h in hs]
    try:
        if exchanged and len(hs) == 2:
            await eventually(lambda: lists_exchanged(*hs), what="signatory lists exchanged")
        yield nodes
    finally:
        for node in nodes:
            await node.halt()


@asynccontextmanager
async def client(home: Home, authority: str) -> AsyncIterator[AgencyClient]:
    async with AgencyClient(Profile.load(home.clients_dir / authority), PASSPHRASE) as c:
        yield c


async def eventually(check: Callable[[], object], timeout: float = 20.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def peer_client(sender: Home, receiver: Home, peer_listen: str) -> PeerClient:
    """The sender node's client of a running receiver's peer API, with the sender's
    certificate and the receiver's pinned one, as the sender's outbox makes it."""
    trust = load_trust(store.Reader(sender.db_path).db, sender.config().party)
    assert trust.peer_tls_pem is not None
    context = tls.client_context(trust.peer_tls_pem, certificate=sender.tls_certificate,
                                 key=sender.tls_key, passphrase=PASSPHRASE)
    return PeerClient("https://" + peer_listen, context, receiver.public_key("node"))
