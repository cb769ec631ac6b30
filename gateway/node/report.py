"""What operators see: status, queue, setup exchange, deadlines and cases.

Read-only views over a home's database; they need no passphrase and work whether or not
the node is running. Each returns JSON-ready data; the CLI prints it as a table or,
with ``--json``, as is.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from typing import Any

from gateway import tls
from gateway.config import parse_hostport
from gateway.home import Home
from gateway.node import store
from gateway.node.service import case_summary
from gateway.node.trust import load_trust
from gateway.rules import cases as case_rules
from gateway.rules.deadlines import days_left, setup_due


def _reader(home: Home) -> store.Reader:
    home.check()  # `gateway init` made the tables; a view never writes
    return store.Reader(home.db_path)


def queue(home: Home) -> list[dict[str, Any]]:
    """Everything waiting for the peer, and why."""
    reader = _reader(home)
    party = home.config().party
    rows = reader.all(
        "SELECT o.seq, o.envelope_id, o.case_id, o.attempts, o.next_attempt, o.last_error, "
        "e.kind, e.from_authority, e.to_authority, e.size, e.stored_at FROM outbox o "
        "JOIN envelopes e ON e.id = o.envelope_id WHERE o.sent_at IS NULL AND "
        "o.rejected IS NULL ORDER BY o.seq")
    out: list[dict[str, Any]] = []
    for kind, table in (("directory", "directories"), ("signatory_list", "signatory_lists")):
        for row in reader.all(f"SELECT version, stored_at FROM {table} WHERE party = ? AND "
                              "sent_at IS NULL ORDER BY version", party):
            out.append({"item": kind, "version": row["version"], "since": row["stored_at"],
                        "why": "waiting for the peer"})
    delivered = {r["authority"] for r in reader.all(
        "SELECT authority FROM signatory_lists WHERE party = ? AND sent_at IS NOT NULL", party)}
    for row in rows:
        if row["from_authority"] not in delivered:
            why = "waiting: signatory list not yet delivered to the peer (A9.3)"
        elif row["last_error"]:
            why = f"retrying after {row['last_error']} (attempt {row['attempts']})"
        else:
            why = "waiting for the peer"
        out.append({"item": "envelope", "seq": row["seq"],
                    "envelope_id": row["envelope_id"].hex(), "kind": row["kind"],
                    "from": row["from_authority"], "to": row["to_authority"],
                    "size": row["size"], "since": row["stored_at"],
                    "attempts": row["attempts"],
                    "next_attempt": dt.datetime.fromtimestamp(row["next_attempt"], dt.UTC
                                                              ).isoformat()
                    if row["next_attempt"] else None,
                    "why": why})
    return out


def setup_state(home: Home, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """A9.3: per authority and side, the signatory-list exchange and its 45-day due date."""
    now = now or dt.datetime.now(dt.UTC)
    reader = _reader(home)
    config = home.config()
    trust = load_trust(reader.db, config.party)
    out: list[dict[str, Any]] = []
    for side, history in (("own", trust.own), ("peer", trust.peer)):
        if history is None:
            continue
        directory = history.current
        due = setup_due(config.entry_into_force, directory.party)
        for authority in directory.authorities:
            rows = reader.all("SELECT version, stored_at, sent_at FROM signatory_lists WHERE "
                              "authority = ? ORDER BY version", authority.id)
            first = rows[0] if rows else None
            delivered = next((r for r in rows if r["sent_at"]), None)
            done_at = (delivered["sent_at"] if side == "own" and delivered else
                       first["stored_at"] if side == "peer" and first else None)
            if done_at == "out-of-band":
                done_at = first["stored_at"] if first else None
            state: dict[str, Any] = {
                "side": side, "party": directory.party, "authority": authority.id,
                "versions": len(rows),
                "sent": bool(rows) if side == "own" else None,
                "received": bool(rows) if side == "peer" else None,
                "acknowledged": bool(delivered) if side == "own" else None,
                "due": due.isoformat(),
            }
            if done_at:
                on_time = dt.datetime.fromisoformat(done_at) < due
                state.update(done_at=done_at, status="on time" if on_time else "late")
            else:
                left = days_left(due, now, directory.party)
                state.update(status=left.label(), overdue=left.overdue,
                             days_left=left.days_left)
            out.append(state)
    return out


def deadlines(home: Home, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """A10.3: open cases with their due date, days left, due soon and overdue."""
    now = now or dt.datetime.now(dt.UTC)
    reader = _reader(home)
    out = []
    for row in reader.all("SELECT * FROM cases WHERE due IS NOT NULL ORDER BY due"):
        if row["state"] in case_rules.CLOSED:
            continue
        summary = case_summary(row, reader, now)
        notices = [e for e in summary["envelopes"]
                   if e["kind"] in ("delay_notice", "postponement", "conditional_execution")]
        out.append({k: summary[k] for k in ("case_id", "state", "requesting", "requested",
                                            "due", "days_left", "due_soon", "overdue")}
                   | {"notices": [n["kind"] for n in notices]})
    return out


def cases(home: Home, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    now = now or dt.datetime.now(dt.UTC)
    reader = _reader(home)
    return [case_summary(row, reader, now)
            for row in reader.all("SELECT * FROM cases ORDER BY opened_at")]


def _peer_reachable(home: Home, url: str, certificate_pem: bytes) -> str:
    """Open a TLS connection to the peer and check its pinned certificate (no client
    certificate, so no passphrase: under TLS 1.3 the peer refuses us only afterwards)."""
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    try:
        host, port = parse_hostport(host_port, "peer url")
        context = tls.client_context(certificate_pem)
        with socket.create_connection((host, port), timeout=3) as raw, \
                context.wrap_socket(raw) as conn:
            conn.getpeercert(binary_form=True)
        return "yes"
    except (OSError, ssl.SSLError, ValueError) as e:
        return f"no ({type(e).__name__})"


def status(home: Home, *, probe_peer: bool = True) -> dict[str, Any]:
    reader = _reader(home)
    config = home.config()
    trust = load_trust(reader.db, config.party)
    serving_path = home.root / "serve.json"
    serving = json.loads(serving_path.read_text()) if serving_path.exists() else None
    size_row = reader.one("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND "
                          "rejected IS NULL")
    own_checkpoint = _own_checkpoint(home)
    peer_checkpoint = reader.one("SELECT size, cosigned_at FROM peer_checkpoints ORDER BY "
                                 "size DESC LIMIT 1")
    result: dict[str, Any] = {
        "party": config.party,
        "home": str(home.root),
        "running": serving is not None,
        "agency_listen": (serving or {}).get("agency_listen", config.agency_listen),
        "peer_listen": (serving or {}).get("peer_listen", config.listen),
        "public_url": config.url,
        "peer": None,
        "queue_depth": size_row[0] if size_row else 0,
        "ledger": own_checkpoint,
        "peer_checkpoint": dict(peer_checkpoint) if peer_checkpoint else None,
        "alarms": [dict(r) for r in reader.all(
            "SELECT code, raised FROM alarms WHERE cleared IS NULL ORDER BY id")],
        "setup": setup_state(home),
        "agreement_ends_at": (reader.one("SELECT value FROM agreement WHERE key = 'ends_at'")
                              or {"value": None})["value"],
    }
    if trust.peer is not None and trust.peer_tls_pem is not None:
        peer = trust.peer.current
        result["peer"] = {"party": peer.party, "url": peer.node.url,
                          "directory_version": peer.version,
                          "reachable": _peer_reachable(home, peer.node.url, trust.peer_tls_pem)
                          if probe_peer else "not probed"}
    return result


def _own_checkpoint(home: Home) -> dict[str, Any]:
    from gateway.node.witness import cosignature_count
    from ledger.store import Ledger

    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        latest = ledger.latest_checkpoint()
        return {"size": ledger.size,
                "checkpoint_size": latest.size if latest else None,
                "cosignatures": cosignature_count(latest) if latest else 0}
    finally:
        ledger.close()
