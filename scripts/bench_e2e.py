"""End-to-end benchmark: `scripts/bench e2e [--envelopes N] [--concurrency C] [--quick]`.

What an agency sees: a KZ-MVD system submits requests with 4 KiB bodies to the KZ node
(agency API, mutual TLS, keep-alive, C in flight); the KZ node checks, records and
queues each one, its outbox relays them to the BY node (peer API, batched), and the BY
node checks and records each one again and puts it in the BY-MVD inbox. The clock
stops when the BY inbox holds every envelope. Both nodes are real ``gateway serve``
processes on loopback, each with its own interpreter (and so its own core, when the
machine has one to spare).

Phases, in one run:

1. the **bare relay baseline**: client -> relay -> receiver, aiohttp with mutual TLS and
   the same body bytes and concurrency, one relay request per envelope, no crypto and
   no storage; the relay and the receiver are processes of their own;
2. the nodes' **throughput**: N envelopes, C in flight (closed loop);
3. the nodes' **latency** at an offered rate (open loop, 500 envelopes/s by default).

Envelopes are sealed by the bench before any clock starts: sealing is the agency's work,
not the node's. Latency is "submit -> visible in the BY inbox": a process of the bench
polls the BY node's SQLite inbox (read-only) every 2 ms; the BY node's own ``stored_at``
gives a lower bound. CPU figures come from /proc (utime + stime of each process, and
/proc/stat for the machine).

These machines are shared and their speed drifts, within a run and between runs. So
the bench prints, measured in the same run: raw Ed25519 rates on one core (against the
figures of ../shared/MEASURED.md), the bare relay (above), and for the throughput phase
the machine's ceiling: its cores divided by the CPU all the run's processes spent per
envelope, the rate no spreading of the work over the cores could beat.

``--pin`` keeps the KZ node (and the relay) on core 0 and the BY node (and the receiver)
on core 1. ``--profile`` runs instead a throughput phase with both nodes under cProfile
(every thread, the ledger writer's included, timed by each thread's CPU clock) and
prints where their CPU goes.

Internal modes (started by the bench itself): ``--serve-relay DIR``,
``--serve-receiver DIR``, ``--profiled-node HOME OUT``, ``--watch-inbox DB``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import datetime as dt
import json
import os
import platform
import pstats
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nacl.pwhash
import nacl.signing
from aiohttp import web

from gateway import sdk, tls
from gateway.client import AgencyClient, Profile
from gateway.demo import REQUEST_BODY, lists_delivered, make_homes, wait_for
from gateway.envelope import body as bodies
from gateway.home import Home
from keys import keyfile

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "bench passphrase: not for production"
BODY_DER_SIZE = 4 * 1024
POLL_SECONDS = 0.002
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
GOAL_RATE = 1500.0
GOAL_P99_MS = 50.0
GOAL_SHARE = 0.30
MEASURED_VERIFY, MEASURED_SIGN = 26_000, 67_000  # ../shared/MEASURED.md, 256 bytes


# --- the envelopes -------------------------------------------------------------------

def request_body(der_size: int = BODY_DER_SIZE) -> dict[str, Any]:
    """The demo request with ``other_information`` text sized so its DER is ``der_size``."""
    base = copy.deepcopy(REQUEST_BODY)

    def sized(fill: int) -> dict[str, Any]:
        return {**base, "other_information": ("Lorem ipsum dolor sit amet. " * (fill // 28 + 1))
                [:fill]}

    fill = der_size - len(bodies.encode("request", base))
    for _ in range(4):  # the length octets grow with the text; settle in a few steps
        fill -= len(bodies.encode("request", sized(fill))) - der_size
    return sized(fill)


@dataclass(frozen=True)
class Envelope:
    id: bytes
    sealed: bytes


def seal_all(count: int, body: dict[str, Any], signatory: Any, recipient_key: Any
             ) -> list[Envelope]:
    out = []
    for _ in range(count):
        sealed = sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD", body=body,
                          signatory_key=signatory, recipient_key=recipient_key)
        out.append(Envelope(sdk.inspect(sealed).envelope_id, sealed))
    return out


def libsodium_rates(seconds: float = 0.5) -> tuple[float, float]:
    """Ed25519 verifications and signatures per second of a 256-byte message on one core,
    now, as MEASURED.md states them: how fast this shared machine is during this run."""
    key = nacl.signing.SigningKey.generate()
    signed = key.sign(os.urandom(256))

    def rate(call: Callable[[], object]) -> float:
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(50):
                call()
            count += 50
        return count / elapsed

    return (rate(lambda: key.verify_key.verify(signed)),
            rate(lambda: key.sign(signed.message)))


# --- CPU from /proc ------------------------------------------------------------------

def process_cpu(pid: int) -> tuple[float, float]:
    """(utime + stime, stime) of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is field 3
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[12]) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine, summed over its cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values)
    return (total - idle) / CLK_TCK, total / CLK_TCK


class CpuMeter:
    """CPU used by some processes and by the machine between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: tuple[float, dict[str, tuple[float, float]], tuple[float, float]] | None \
            = None
        self.wall = 0.0
        self.used: dict[str, float] = {}
        self.kernel: dict[str, float] = {}
        self.machine_busy = 0.0  # fraction of all cores

    def _sample(self) -> tuple[float, dict[str, tuple[float, float]], tuple[float, float]]:
        return (time.monotonic(), {n: process_cpu(p) for n, p in self.pids.items()},
                machine_cpu())

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> None:
        assert self._start is not None
        t0, cpu0, (busy0, total0) = self._start
        t1, cpu1, (busy1, total1) = self._sample()
        self.wall = t1 - t0
        self.used = {n: cpu1[n][0] - cpu0[n][0] for n in self.pids}
        self.kernel = {n: cpu1[n][1] - cpu0[n][1] for n in self.pids}
        self.machine_busy = (busy1 - busy0) / max(total1 - total0, 1e-9)

    def lines(self, envelopes: int) -> list[str]:
        parts = []
        for name, seconds in self.used.items():
            per = f", {seconds / envelopes * 1e6:,.0f} us CPU/envelope" if envelopes else ""
            kernel = self.kernel[name] / seconds if seconds else 0.0
            parts.append(f"{name} {seconds / self.wall:.2f} cores ({kernel:.0%} in the "
                         f"kernel){per}")
        ours = sum(self.used.values()) / self.wall
        others = max(0.0, self.machine_busy * CORES - ours)
        return ["cpu: " + "; ".join(parts),
                f"machine: {self.machine_busy * CORES:.2f} of {CORES} cores busy "
                f"({self.machine_busy:.0%}), of which {others:.2f} cores by processes "
                "outside this bench"]


# --- child processes ----------------------------------------------------------------

def _before_exec(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        """In the child before exec: get SIGTERM if the bench dies, so nothing outlives
        it; with ``cpu``, stay on that core."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


class Children:
    """The processes this bench started; all stopped (by pid) on the way out."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], cpu: int | None = None
              ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "GATEWAY_PASSPHRASE": PASSPHRASE}
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_before_exec(cpu))
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def stop(self, *names: str, timeout: float = 20.0) -> None:
        """SIGTERM (the nodes stop gracefully), then SIGKILL whatever is left."""
        chosen = [n for n in (names or list(self.procs)) if n in self.procs]
        for name in chosen:
            if self.procs[name].poll() is None:
                self.procs[name].terminate()
        deadline = time.monotonic() + timeout
        for name in chosen:
            proc = self.procs.pop(name)
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class BenchError(Exception):
    pass


async def wait_file(path: Path, children: Children, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        children.check_alive(name)
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not start in {timeout:.0f} s")
        await asyncio.sleep(0.05)


# --- load generation ----------------------------------------------------------------

@dataclass
class Sent:
    """What the client saw: submit times (monotonic and wall clock), answers, errors."""

    submitted: dict[bytes, float] = field(default_factory=dict)
    submitted_wall: dict[bytes, float] = field(default_factory=dict)
    answered: dict[bytes, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    def first(self) -> float:
        return min(self.submitted.values())


async def post_one(session: aiohttp.ClientSession, url: str, envelope: Envelope, sent: Sent,
                   due: float | None = None) -> None:
    """POST one envelope; ``due`` (open loop) is when it should have left."""
    now = time.monotonic()
    start = now if due is None else due
    sent.submitted[envelope.id] = start
    sent.submitted_wall[envelope.id] = time.time() - (now - start)
    try:
        async with session.post(url, data=envelope.sealed,
                                headers={"Content-Type": "application/octet-stream"}
                                ) as response:
            answer = await response.read()
            if response.status in (200, 202):
                sent.answered[envelope.id] = time.monotonic()
                return
            try:
                code = str(json.loads(answer)["code"])
            except (ValueError, KeyError, TypeError):
                code = f"http.{response.status}"
            sent.errors[code] += 1
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        sent.errors[type(e).__name__] += 1


async def closed_loop(session: aiohttp.ClientSession, url: str, envelopes: list[Envelope],
                      concurrency: int) -> Sent:
    sent = Sent()
    pending = iter(envelopes)

    async def sender() -> None:
        for envelope in pending:
            await post_one(session, url, envelope, sent)

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return sent


async def open_loop(session: aiohttp.ClientSession, url: str, envelopes: list[Envelope],
                    rate: float) -> Sent:
    """One envelope every 1/rate s whatever the answers do (no coordinated omission:
    latency counts from when an envelope was due, not from when it left)."""
    sent = Sent()
    t0 = time.monotonic() + 0.05
    tasks = []
    for i, envelope in enumerate(envelopes):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post_one(session, url, envelope, sent, due)))
    await asyncio.gather(*tasks)
    return sent


def client_session(context: Any, limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=limit),
        timeout=aiohttp.ClientTimeout(total=120, sock_connect=10))


# --- the BY inbox, watched read-only -------------------------------------------------

class InboxWatch:
    """Notes when each envelope id became visible in the BY node's inbox.

    The polling runs in a process of its own (``--watch-inbox``): a thread here would
    wait for this process's GIL behind the client's event loop, and both the times and
    the client's CPU would suffer. ``time.monotonic`` is the system-wide monotonic
    clock, so its times compare with ours.
    """

    SQL = ("SELECT i.seq, i.envelope_id, e.stored_at FROM inbox i JOIN envelopes e "
           "ON e.id = i.envelope_id WHERE i.seq > ? ORDER BY i.seq")

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.seen: dict[bytes, float] = {}
        self.stored_at: dict[bytes, float] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InboxWatch:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--watch-inbox", str(self.db_path),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_before_exec(None))
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)
        if self.proc.returncode is None:
            self.proc.kill()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            envelope_id, seen, stored_at = line.split()
            key = bytes.fromhex(envelope_id.decode())
            self.seen[key] = float(seen)
            self.stored_at[key] = float(stored_at)

    async def wait_all(self, ids: list[bytes], timeout: float) -> int:
        """How many of ``ids`` arrived, waiting up to ``timeout`` for all of them."""
        deadline = time.monotonic() + timeout
        waiting = [i for i in ids if i not in self.seen]
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            waiting = [i for i in waiting if i not in self.seen]
        return len(ids) - len(waiting)


def watch_inbox(db_path: Path) -> None:
    """``--watch-inbox DB``: every ``POLL_SECONDS``, one line per new inbox row (id, when
    seen, the node's stored_at), until standard input closes."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None,
                         timeout=30)
    after = 0
    out = sys.stdout
    while True:
        rows = db.execute(InboxWatch.SQL, (after,)).fetchall()
        now = time.monotonic()
        for seq, envelope_id, stored_at in rows:
            stored = dt.datetime.fromisoformat(stored_at).timestamp()
            out.write(f"{bytes(envelope_id).hex()} {now:.6f} {stored:.6f}\n")
            after = seq
        if rows:
            out.flush()
        readable, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if readable and not os.read(sys.stdin.fileno(), 1024):
            return


# --- figures -------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def latency_line(label: str, values: list[float]) -> str:
    return (f"{label}: p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}, "
            f"max {ms(max(values))}")


def stages_line(sent: Sent, watch: InboxWatch, ids: list[bytes]) -> str:
    """Where an envelope's time went, stage by stage (p50 / p99 of each stage on its
    own). The BY node's ``stored_at`` is its wall clock when the peer request came in,
    so the middle two stages compare two processes' wall clocks on one machine."""
    def stage(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"

    done = [i for i in ids if i in sent.answered and i in watch.seen and i in watch.stored_at]
    if not done:
        return "stages: none measured"
    # Per envelope: submit -> receipt, receipt -> BY stored_at, BY stored_at -> visible.
    to_stored = {i: watch.stored_at[i] - sent.submitted_wall[i] for i in done}
    accept = [sent.answered[i] - sent.submitted[i] for i in done]
    arrive = [to_stored[i] - (sent.answered[i] - sent.submitted[i]) for i in done]
    visible = [watch.seen[i] - sent.submitted[i] - to_stored[i] for i in done]
    return (f"stages (p50 / p99): KZ accepts {stage(accept)}; KZ outbox -> BY peer request "
            f"{stage(arrive)}; BY checks, commits, inbox poll {stage(visible)}")


def middle_rate(times: list[float]) -> float:
    """Arrivals per second between the 10th and the 90th percentile arrival."""
    ordered = sorted(times)
    lo, hi = int(len(ordered) * 0.1), int(len(ordered) * 0.9) - 1
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else float("nan")


def error_line(sent: Sent) -> str | None:
    if not sent.errors:
        return None
    return "REFUSED/FAILED: " + ", ".join(f"{code} x{n}" for code, n in sent.errors.most_common())


# --- the bare relay baseline ---------------------------------------------------------

def _bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _write_port(path: Path, port: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.rename(path)


async def _serve_until_stopped(app: web.Application, context: Any, port_file: Path) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        sock = _bind_loopback()
        await web.SockSite(runner, sock, ssl_context=context).start()
        _write_port(port_file, sock.getsockname()[1])
        parent = os.getppid()
        deadline = time.monotonic() + 30 * 60  # belt and braces: never outlive a bench run
        while not stop.is_set() and os.getppid() == parent and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await runner.cleanup()


def serve_receiver(directory: Path) -> None:
    """Reads the body, answers a few bytes: the peer node with nothing to do."""
    passphrase = PASSPHRASE.encode()
    context = tls.server_context(directory / "receiver.pem", directory / "receiver.key",
                                 passphrase, trust_pem=(directory / "relay.pem").read_bytes())

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/peer/v1/envelopes", receive)
    asyncio.run(_serve_until_stopped(app, context, directory / "receiver.port"))


def serve_relay(directory: Path) -> None:
    """Reads the body, POSTs it to the receiver, answers 202: the node with nothing to do."""
    passphrase = PASSPHRASE.encode()
    server = tls.server_context(directory / "relay.pem", directory / "relay.key", passphrase,
                                trust_pem=(directory / "agency-ca.pem").read_bytes())
    client = tls.client_context((directory / "receiver.pem").read_bytes(),
                                certificate=directory / "relay.pem",
                                key=directory / "relay.key", passphrase=passphrase)
    target = f"https://127.0.0.1:{(directory / 'receiver.port').read_text()}/peer/v1/envelopes"
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def relay(request: web.Request) -> web.Response:
        body = await request.read()
        async with request.app[session_key].post(
                target, data=body, headers={"Content-Type": "application/octet-stream"}
        ) as response:
            answer = await response.read()
        return web.Response(status=202, body=answer, content_type="application/json")

    async def session_ctx(app: web.Application) -> Any:
        app[session_key] = client_session(client, 0)
        yield
        await app[session_key].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/envelopes", relay)
    asyncio.run(_serve_until_stopped(app, server, directory / "relay.port"))


def make_relay_certificates(directory: Path) -> None:
    """The same kinds of certificates the nodes use (Ed25519, TLS 1.3)."""
    passphrase = PASSPHRASE.encode()
    directory.mkdir()
    relay = tls.make_node_certificate("KZ", ["127.0.0.1"], passphrase)
    receiver = tls.make_node_certificate("BY", ["127.0.0.1"], passphrase)
    ca = tls.make_agency_ca("KZ", passphrase)
    agency = tls.issue_agency_certificate(ca, passphrase, "KZ-MVD", passphrase)
    for name, issued in (("relay", relay), ("receiver", receiver), ("agency", agency)):
        (directory / f"{name}.pem").write_bytes(issued.certificate_pem)
        (directory / f"{name}.key").write_bytes(issued.key_pem)
    (directory / "agency-ca.pem").write_bytes(ca.certificate_pem)


async def run_baseline(root: Path, children: Children, envelopes: list[Envelope],
                       warmup: list[Envelope], concurrency: int, pin: bool) -> float:
    directory = root / "relay"
    make_relay_certificates(directory)
    me = [sys.executable, str(Path(__file__).resolve())]
    children.start("receiver", [*me, "--serve-receiver", str(directory)], 1 if pin else None)
    await wait_file(directory / "receiver.port", children, "receiver")
    children.start("relay", [*me, "--serve-relay", str(directory)], 0 if pin else None)
    await wait_file(directory / "relay.port", children, "relay")
    url = f"https://127.0.0.1:{(directory / 'relay.port').read_text()}/v1/envelopes"
    context = tls.client_context((directory / "relay.pem").read_bytes(),
                                 certificate=directory / "agency.pem",
                                 key=directory / "agency.key", passphrase=PASSPHRASE.encode())
    cpu = CpuMeter({"relay": children.procs["relay"].pid,
                    "receiver": children.procs["receiver"].pid, "bench client": os.getpid()})
    try:
        async with client_session(context, concurrency) as session:
            await closed_loop(session, url, warmup, concurrency)
            cpu.start()
            sent = await closed_loop(session, url, envelopes, concurrency)
            cpu.stop()
    finally:
        children.stop("relay", "receiver")
    seconds = max(sent.answered.values()) - sent.first() if sent.answered else float("nan")
    rate = len(sent.answered) / seconds
    print("\n== bare relay baseline: aiohttp, mutual TLS 1.3, client -> relay -> receiver, "
          "no crypto, no storage")
    print(f"  {len(envelopes):,} requests, {concurrency} in flight, one relay request each: "
          f"{len(sent.answered):,} answered in {seconds:.2f} s = {rate:,.0f} /s")
    print("  " + latency_line("round trip", [sent.answered[k] - sent.submitted[k]
                                             for k in sent.answered]))
    for line in [error_line(sent), *cpu.lines(len(envelopes))]:
        if line:
            print("  " + line)
    return rate


# --- the nodes -----------------------------------------------------------------------

@dataclass
class Nodes:
    kz: Home
    by: Home
    url: str
    context: Any
    signatory: Any
    recipient_key: Any


async def start_nodes(root: Path, children: Children, profile_dir: Path | None,
                      pin: bool = False) -> Nodes:
    passphrase = PASSPHRASE.encode()
    kz, by = make_homes(root / "homes", passphrase, interval=10.0,
                        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
                        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN)
    for cpu, (name, home) in enumerate((("KZ node", kz), ("BY node", by))):
        if profile_dir is None:
            argv = [sys.executable, "-m", "gateway.cli", "serve", "--home", str(home.root)]
        else:
            argv = [sys.executable, str(Path(__file__).resolve()), "--profiled-node",
                    str(home.root), str(profile_dir / f"{name.split()[0]}.prof")]
        children.start(name, argv, cpu if pin else None)
    for name, home in (("KZ node", kz), ("BY node", by)):
        await wait_file(home.root / "serve.json", children, name)
    await wait_for("the signatory-list exchange (A9.3)",
                   lambda: lists_delivered(kz) and lists_delivered(by), timeout=60)
    profile = Profile.load(kz.clients_dir / "KZ-MVD")
    async with AgencyClient(profile, passphrase) as client:
        directory = await client.directory("BY")
    recipient = directory.authority("BY-MVD", dt.datetime.now(dt.UTC))
    context = tls.client_context((profile.root / "node.pem").read_bytes(),
                                 certificate=profile.root / "tls.pem",
                                 key=profile.root / "tls.key", passphrase=passphrase)
    signatory = keyfile.load_signing_key(profile.root / "signatory.key", passphrase)
    return Nodes(kz, by, profile.node_url.rstrip("/") + "/v1/envelopes", context, signatory,
                 recipient.encryption_key)


@dataclass
class Outcome:
    rate: float
    p99: float
    #: CPU of every process of the run (nodes, client, watcher) per envelope, seconds.
    cpu_per_envelope: float = 0.0


def arrival_timeout(count: int) -> float:
    return 30.0 + count / 100


async def node_phase(title: str, nodes: Nodes, children: Children, watch: InboxWatch,
                     envelopes: list[Envelope], run: Callable[[], Any],
                     open_loop_rate: float | None = None) -> Outcome:
    """Run ``run`` (which sends ``envelopes``), wait for all in the BY inbox, report."""
    assert watch.proc is not None
    cpu = CpuMeter({"KZ node": children.procs["KZ node"].pid,
                    "BY node": children.procs["BY node"].pid, "bench client": os.getpid(),
                    "inbox watcher": watch.proc.pid})
    ids = [e.id for e in envelopes]
    cpu.start()
    sent: Sent = await run()
    arrived = await watch.wait_all(ids, arrival_timeout(len(ids)))
    cpu.stop()
    for name in ("KZ node", "BY node"):
        children.check_alive(name)
    print(f"\n== {title}")
    answered = list(sent.answered.values())
    start = sent.first()
    if answered:
        span = max(answered) - start
        print(f"  accepted by KZ (202 + signed submission receipt): {len(answered):,} in "
              f"{span:.2f} s = {len(answered) / span:,.0f} /s")
        print("  " + latency_line("submit -> receipt", [sent.answered[k] - sent.submitted[k]
                                                          for k in sent.answered]))
    line = error_line(sent)
    if line:
        print("  " + line)
    if arrived < len(ids):
        print(f"  ONLY {arrived:,} of {len(ids):,} reached the BY inbox within "
              f"{arrival_timeout(len(ids)):.0f} s")
    seen = [watch.seen[i] for i in ids if i in watch.seen]
    if not seen:
        raise BenchError("nothing reached the BY inbox")
    span = max(seen) - start
    rate = len(seen) / span
    print(f"  in the BY-MVD inbox: {len(seen):,} in {span:.2f} s = {rate:,.0f} /s "
          f"(between the 10th and 90th percentile arrival: {middle_rate(seen):,.0f} /s)")
    e2e = [watch.seen[i] - sent.submitted[i] for i in ids if i in watch.seen]
    print("  " + latency_line("submit -> visible in BY inbox", e2e))
    if open_loop_rate is not None and rate < 0.95 * open_loop_rate:
        print(f"  NOTE: {open_loop_rate:,.0f}/s offered but only {rate:,.0f}/s delivered: the "
              "nodes are over capacity, and these latencies are mostly queueing")
    lower = [watch.stored_at[i] - sent.submitted_wall[i] for i in ids if i in watch.stored_at]
    print("  " + latency_line("submit -> BY stored_at (lower bound)", lower))
    print("  " + stages_line(sent, watch, ids))
    for line in cpu.lines(len(seen)):
        print("  " + line)
    return Outcome(rate if arrived == len(ids) else 0.0, percentile(e2e, 99),
                   sum(cpu.used.values()) / len(seen))


async def run_nodes(root: Path, children: Children, args: argparse.Namespace,
                    baseline_first: Callable[[list[Envelope], list[Envelope]], Any] | None
                    ) -> tuple[Outcome, Outcome | None, float | None]:
    profile_dir = root / "profiles" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir()
    nodes = await start_nodes(root, children, profile_dir, args.pin)
    body = request_body()
    warmup_count = 2 * args.concurrency
    latency_count = 0 if args.profile else int(args.rate * args.latency_seconds)
    total = warmup_count + args.envelopes + latency_count
    started = time.monotonic()
    everything = seal_all(total, body, nodes.signatory, nodes.recipient_key)
    sealed_seconds = time.monotonic() - started
    warmup = everything[:warmup_count]
    throughput = everything[warmup_count:warmup_count + args.envelopes]
    latency = everything[warmup_count + args.envelopes:]
    print(f"envelopes: kind request, body DER {len(bodies.encode('request', body)):,} bytes "
          f"(demo request + {len(body['other_information']):,} chars of other_information), "
          f"sealed {len(throughput[0].sealed):,} bytes")
    print(f"  {total:,} sealed by the bench in {sealed_seconds:.1f} s before any clock "
          "starts: sealing is the agency's work, not the node's")

    baseline = None
    if baseline_first is not None:
        # Nodes idle while the baseline runs; the same envelope bytes.
        children.check_alive("KZ node")
        baseline = await baseline_first(throughput, warmup)

    async with InboxWatch(nodes.by.db_path) as watch, \
            client_session(nodes.context, max(args.concurrency, 256)) as session:
        await closed_loop(session, nodes.url, warmup, args.concurrency)
        if await watch.wait_all([e.id for e in warmup], 60) < len(warmup):
            raise BenchError("the warm-up envelopes did not reach the BY inbox")
        await asyncio.sleep(0.5)
        title = (f"nodes, throughput: {len(throughput):,} envelopes, {args.concurrency} "
                 "in flight, KZ-MVD -> KZ node -> BY node -> BY-MVD inbox")
        if args.profile:
            title += " (UNDER cProfile: rates are not representative)"
        bulk = await node_phase(
            title, nodes, children, watch, throughput,
            lambda: closed_loop(session, nodes.url, throughput, args.concurrency))
        open_outcome = None
        if latency:
            await asyncio.sleep(1.0)
            open_outcome = await node_phase(
                f"nodes, latency: {args.rate:,.0f} envelopes/s offered (open loop) for "
                f"{args.latency_seconds:g} s = {len(latency):,} envelopes",
                nodes, children, watch, latency,
                lambda: open_loop(session, nodes.url, latency, args.rate), args.rate)
    return bulk, open_outcome, baseline


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_goals(bulk: Outcome, latency: Outcome | None, baseline: float | None,
                args: argparse.Namespace) -> None:
    print("\n== goals (issue 4, item 13: >= 1,500/s with 64 in flight; p99 <= 50 ms at 500/s "
          "offered; >= 30% of the bare relay)")
    label = f"sustained rate, {args.concurrency} in flight:"
    print(f"  {label:<32}{bulk.rate:>8,.0f} /s   goal >= {GOAL_RATE:,.0f} /s"
          f"   {verdict(bulk.rate >= GOAL_RATE)}")
    if bulk.cpu_per_envelope:
        # However the work were spread over the cores, the run's processes cannot go
        # faster than the cores' time divided by the CPU each envelope costs them.
        ceiling = CORES / bulk.cpu_per_envelope
        print(f"    (this machine's ceiling for this run: {ceiling:,.0f} /s = {CORES} cores / "
              f"{bulk.cpu_per_envelope * 1e6:,.0f} us CPU per envelope in all its processes)")
    if latency is not None:
        p99 = latency.p99 * 1000
        label = f"p99 at {args.rate:,.0f}/s offered:"
        print(f"  {label:<32}{p99:>8,.1f} ms   goal <= {GOAL_P99_MS:.0f} ms"
              f"      {verdict(p99 <= GOAL_P99_MS)}")
    if baseline:
        share = bulk.rate / baseline
        print(f"  share of the bare relay's rate: {share:>8.0%}      goal >= {GOAL_SHARE:.0%}"
              f"        {verdict(share >= GOAL_SHARE)}   "
              f"({bulk.rate:,.0f} / {baseline:,.0f} /s)")


# --- profiling ----------------------------------------------------------------------

def profiled_node(home_dir: Path, out: Path) -> None:
    """``gateway serve`` under cProfile, every thread profiled. On exit: the main thread's
    stats to ``out``, each other thread's to ``out`` + ``.<thread name>``.

    The timer is each thread's CPU time, not the wall clock: a thread waiting for the GIL,
    a lock, a queue or epoll does not count, so the figures say where the CPU goes."""
    import cProfile
    import logging

    from gateway.node.server import serve

    logging.basicConfig(level=logging.WARNING)
    profiles: list[tuple[threading.Thread, cProfile.Profile]] = []
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profiles.append((self, profiler))
        profiler.enable()
        try:
            original_run(self)
        finally:
            profiler.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        asyncio.run(serve(Home(home_dir), PASSPHRASE.encode()))
    finally:
        main.disable()
        main.dump_stats(out)
        for i, (thread, profiler) in enumerate(profiles):
            if not thread.is_alive():  # a live thread's profiler is still running
                profiler.dump_stats(f"{out}.{i}-{thread.name}")


def area(key: tuple[str, int, str]) -> str:
    """Where a function's own time goes, by library or by module of ours."""
    filename, _line, name = key
    if filename == "~":
        if "epoll" in name or "select" in name:
            return "idle: event loop waiting in epoll"
        if "acquire" in name or "_queue" in name or "wait" in name:
            return "idle: thread waiting on a lock/queue"
        for needle, label in (("sqlite3", "sqlite3 (C)"), ("_ssl", "ssl (C)"),
                              ("SSL", "ssl (C)"), ("_sodium", "libsodium (C)"),
                              ("hashlib", "hashlib (C)"), ("socket", "socket (C)")):
            if needle in name:
                return label
        return "other builtins"
    if "site-packages" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    path = Path(filename)
    with contextlib.suppress(ValueError):
        parts = path.resolve().relative_to(ROOT).parts
        return "/".join(parts[:2]) if len(parts) > 2 else "/".join(parts)
    return "Python stdlib"


Raw = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]


def _raw(stats: pstats.Stats) -> Raw:
    return stats.stats  # type: ignore[attr-defined,no-any-return]


def _label(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    return func if filename == "~" else f"{func} ({_short(filename)}:{line})"


def print_profile(name: str, main_path: Path, top: int = 20) -> None:
    """CPU time by area, per thread and merged; the hottest functions and their callers."""
    paths = [main_path, *sorted(main_path.parent.glob(main_path.name + ".*"))]
    merged = pstats.Stats(str(paths[0]))
    print(f"\n== profile of the {name} (cProfile, CPU time of each thread; own time by area)")
    for path in paths:
        stats = pstats.Stats(str(path))
        if path != paths[0]:
            merged.add(stats)
        thread = "main (event loop)" if path == paths[0] else path.name.split(".", 2)[2]
        raw = _raw(stats)
        print(f"  thread {thread}: {sum(v[2] for v in raw.values()):.2f} s CPU")
    raw = _raw(merged)
    areas: dict[str, float] = {}
    for key, (_cc, _nc, tt, _ct, _callers) in raw.items():
        areas[area(key)] = areas.get(area(key), 0.0) + tt
    busy = sum(t for a, t in areas.items() if not a.startswith("idle"))
    for label, seconds in sorted(areas.items(), key=lambda kv: kv[1], reverse=True)[:16]:
        share = "  idle" if label.startswith("idle") else f"{seconds / busy:6.1%}"
        print(f"  {seconds:8.2f} s {share}  {label}")
    print(f"  top {top} functions by own time (calls; own; cumulative), with their main callers:")
    ranked = sorted(((k, v) for k, v in raw.items() if not area(k).startswith("idle")),
                    key=lambda kv: kv[1][2], reverse=True)[:top]
    for key, (_cc, nc, tt, ct, callers) in ranked:
        print(f"  {nc:>9,} {tt:7.2f} s {ct:7.2f} s  {_label(key)}")
        if key[0] == "~":
            by_caller = sorted(callers.items(), key=lambda kv: kv[1][2], reverse=True)[:3]
            for caller, (_c, n, t, _t2) in by_caller:
                print(f"  {'':>9} {t:7.2f} s {'':>9} <- {n:,} from {_label(caller)}")
    ours = [(k, v) for k, v in raw.items()
            if any(f"/{p}/" in k[0] for p in ("gateway", "ledger", "keys"))]
    print(f"  top {top} functions of ours by cumulative time (calls; own; cumulative):")
    for key, (_cc, nc, tt, ct, _callers) in sorted(ours, key=lambda kv: kv[1][3],
                                                   reverse=True)[:top]:
        print(f"  {nc:>9,} {tt:7.2f} s {ct:7.2f} s  {_label(key)}")


def _short(filename: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(ROOT))
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return Path(filename).name


# --- the run -------------------------------------------------------------------------

async def bench(root: Path, children: Children, args: argparse.Namespace) -> int:
    print("e2e benchmark: KZ-MVD agency -> KZ node -> BY node -> BY-MVD inbox; loopback, "
          "mutual TLS 1.3 (Ed25519), keep-alive")
    load = os.getloadavg()
    print(f"machine: {CORES} cores, load average {load[0]:.2f} at start; Python "
          f"{platform.python_version()}; 3 busy processes share these cores (2 nodes + "
          "bench client; relay + receiver + client for the baseline)")
    if args.pin:
        print("pinned: KZ node and relay on core 0, BY node and receiver on core 1; the bench "
              "client floats")
    verify, sign = libsodium_rates()
    print(f"raw libsodium in this run (one core): Ed25519 verify {verify:,.0f}/s, sign "
          f"{sign:,.0f}/s (256 bytes); when the machines' figures were taken "
          f"(../shared/MEASURED.md): ~{MEASURED_VERIFY:,}/s and ~{MEASURED_SIGN:,}/s")

    async def baseline(envelopes: list[Envelope], warmup: list[Envelope]) -> float:
        return await run_baseline(root, children, envelopes, warmup, args.concurrency,
                                  args.pin)

    bulk, latency, base = await run_nodes(root, children, args,
                                          None if args.profile else baseline)
    children.stop("KZ node", "BY node")
    if args.profile:
        for name in ("KZ", "BY"):
            path = root / "profiles" / f"{name}.prof"
            if path.exists():
                print_profile(f"{name} node", path)
            else:
                print(f"\n(no profile written for the {name} node)")
        return 0
    print_goals(bulk, latency, base, args)
    return 0 if bulk.rate > 0 else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=None,
                        help="envelopes in the throughput phase (default 5000; 1000 quick)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="envelopes in flight in the throughput phases (default 64)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="offered rate of the latency phase (default 500/s)")
    parser.add_argument("--latency-seconds", type=float, default=None,
                        help="length of the latency phase (default 5; 2 quick)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--pin", action="store_true",
                        help="pin the KZ node (and the relay) to core 0, the BY node (and "
                             "the receiver) to core 1; the bench client floats")
    parser.add_argument("--profile", action="store_true",
                        help="profile both nodes during a throughput phase instead")
    parser.add_argument("--timeout", type=float, default=None,
                        help="the whole run stops after this many seconds (default: "
                             "from the sizes)")
    parser.add_argument("--serve-relay", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-receiver", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profiled-node", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--watch-inbox", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.envelopes is None:
        args.envelopes = 1000 if args.quick else 5000
    if args.latency_seconds is None:
        args.latency_seconds = 2.0 if args.quick else 5.0
    if args.envelopes < 10 or not 1 <= args.concurrency <= 1024 or args.rate <= 0:
        parser.error("need --envelopes >= 10, 1 <= --concurrency <= 1024, --rate > 0")
    if args.pin and CORES < 2:
        parser.error("--pin needs two cores")
    if args.timeout is None:
        args.timeout = 180 + args.envelopes / 50 + args.rate * args.latency_seconds / 50
    return args


@contextlib.contextmanager
def terminated_by_signals() -> Iterator[None]:
    """SIGTERM ends the bench like Ctrl-C does, so the cleanup below still runs."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_relay:
        serve_relay(args.serve_relay)
        return 0
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return 0
    if args.profiled_node:
        profiled_node(*args.profiled_node)
        return 0
    if args.watch_inbox:
        watch_inbox(args.watch_inbox)
        return 0
    root = Path(tempfile.mkdtemp(prefix="kzby-bench-e2e-"))
    children = Children(root)
    try:
        with terminated_by_signals():
            return asyncio.run(asyncio.wait_for(bench(root, children, args), args.timeout))
    except TimeoutError:
        print(f"error: the benchmark did not finish in {args.timeout:.0f} s", file=sys.stderr)
        return 1
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        children.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
