"""A node's configuration: ``DIR/node.toml``, read once at start.

Every setting has a default except the Party; ``gateway init`` writes a commented file.
Unknown keys are an error (a misspelt setting must not be silently ignored).
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError

PARTIES = ("KZ", "BY")
AGREEMENT_IN_FORCE = dt.date(2020, 12, 3)  # A17: receipt of the last notification
# A10.3 counts days in the requested Party's legal time (docs/compliance.md).
LEGAL_TIME_ZONES = {"KZ": "Asia/Almaty", "BY": "Europe/Minsk"}


class ConfigError(GatewayError):
    code = "config.invalid"


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class RetentionConfig:
    """Days a stored envelope body is kept, by kind; ``default`` for the rest (A11.5)."""

    default_days: int = 365
    by_kind: dict[str, int] = field(default_factory=dict)

    def days_for(self, kind: str) -> int:
        return self.by_kind.get(kind, self.default_days)


@dataclass(frozen=True)
class NodeConfig:
    party: str
    listen: str = "127.0.0.1:8443"          # the peer API
    agency_listen: str = "127.0.0.1:8444"   # the agency API
    public_url: str = ""                    # how the peer reaches our peer API
    entry_into_force: dt.date = AGREEMENT_IN_FORCE
    checkpoint_interval: float = 10.0       # seconds between signed checkpoints
    witness_interval: float = 10.0          # seconds between cosigning rounds
    outbox_batch: int = 256                 # envelopes per peer request at most
    outbox_linger: float = 0.0              # seconds to let a small batch fill up
    retry_base: float = 0.5                 # seconds; doubles per failed attempt
    retry_cap: float = 300.0
    max_envelope_bytes: int = 64 * 1024 * 1024
    inbox_waiters_per_authority: int = 8    # inbox long-polls parked at once, per
    inbox_waiters_total: int = 256          # authority and in all (more: answered now)
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    def __post_init__(self) -> None:
        if self.party not in PARTIES:
            raise ConfigError(f"party must be one of {', '.join(PARTIES)}, got {self.party!r}")
        parse_hostport(self.listen, "listen")
        parse_hostport(self.agency_listen, "agency_listen")
        for name in ("inbox_waiters_per_authority", "inbox_waiters_total"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ConfigError(f"{name}: expected a whole number, 0 or more")

    @property
    def peer_party(self) -> str:
        return "BY" if self.party == "KZ" else "KZ"

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url
        host, port = parse_hostport(self.listen, "listen")
        return f"https://{host}:{port}"


def load_config(path: Path) -> NodeConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no node configuration here (run `gateway init`)",
                          code="config.missing") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> NodeConfig:
    known = {f.name for f in fields(NodeConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values = dict(raw)
    if "entry_into_force" in values:
        value = values["entry_into_force"]
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError("entry_into_force: expected YYYY-MM-DD") from None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise ConfigError("entry_into_force: expected a date")
        values["entry_into_force"] = value
    if "retention" in values:
        retention = values["retention"]
        if not isinstance(retention, dict):
            raise ConfigError("retention: expected a table")
        default = retention.get("default_days", 365)
        by_kind = {k: v for k, v in retention.items() if k != "default_days"}
        for name, days in [("default_days", default), *by_kind.items()]:
            if not isinstance(days, int) or days < 0:
                raise ConfigError(f"retention.{name}: expected a whole number of days")
        values["retention"] = RetentionConfig(default, by_kind)
    try:
        return NodeConfig(**values)
    except TypeError as e:
        raise ConfigError(f"bad setting types: {e}") from None


def render_config(config: NodeConfig) -> str:
    """The TOML text ``gateway init`` writes (strings quoted as JSON, which TOML accepts)."""
    q = json.dumps
    lines = [
        "# Gateway node configuration. Times are seconds unless named otherwise.",
        f"party = {q(config.party)}",
        "# The peer API (mutual TLS, only the pinned peer certificate).",
        f"listen = {q(config.listen)}",
        "# The agency API (mutual TLS, client certificates from this node's agency CA).",
        f"agency_listen = {q(config.agency_listen)}",
        f"public_url = {q(config.url)}",
        "# A17/A9.3: the agreement's entry into force; the 45-day setup exchange counts",
        "# from it. 2020-12-03 is the real date.",
        f"entry_into_force = {config.entry_into_force.isoformat()}",
        f"checkpoint_interval = {config.checkpoint_interval}",
        f"witness_interval = {config.witness_interval}",
        f"outbox_batch = {config.outbox_batch}",
        "# Batches form by themselves while a peer request is in flight. A positive",
        "# linger also waits this long for more envelopes before a small batch: fewer",
        "# peer requests, each envelope later.",
        f"outbox_linger = {config.outbox_linger}",
        f"retry_base = {config.retry_base}",
        f"retry_cap = {config.retry_cap}",
        f"max_envelope_bytes = {config.max_envelope_bytes}",
        "# Inbox long-polls parked at once, per authority and in all; one more is",
        "# answered at once with what there is (an empty page), and its client polls again.",
        f"inbox_waiters_per_authority = {config.inbox_waiters_per_authority}",
        f"inbox_waiters_total = {config.inbox_waiters_total}",
        "",
        "# A11.5: days a stored envelope body is kept before `gateway retention apply`",
        "# destroys it. Per kind: e.g. request = 730",
        "[retention]",
        f"default_days = {config.retention.default_days}",
    ]
    lines += [f"{kind} = {days}" for kind, days in sorted(config.retention.by_kind.items())]
    return "\n".join(lines) + "\n"
