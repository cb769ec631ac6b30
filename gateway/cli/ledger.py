"""`gateway ledger ...`: checkpoints, verifier keys, entries, proofs, export and offline
verification. Each command is a thin call into ``ledger``; docs/ledger.md describes the
formats printed here (hashes and entries in standard base64 with padding).

A home holds the ledger in ``node.db``, its origin in ``ledger-origin`` and the node's
log and witness keys in ``keys/``. Only ``checkpoint --new`` needs the passphrase;
``verify --bundle`` needs nothing but the bundle and the keys given with ``--vkey``.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import home_option, json_option, passphrase
from gateway.home import Home
from ledger.audit import AuditReport
from ledger.bundle import LedgerSource, export_bundle, verify_file
from ledger.entry import decode_entry
from ledger.errors import BadVerifierKey, NoCheckpoint, NotALedger
from ledger.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteVerifier,
    log_verifier,
    witness_verifier,
)
from ledger.store import Ledger


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _origin(home: Home) -> str:
    if not home.origin_path.is_file():
        raise NotALedger(f"{home.root}: no ledger-origin file; is this a node home?")
    return home.origin()


def _witness_name(home: Home) -> str:
    # The node's rule (gateway.node.witness.witness_name): its origin, then /witness.
    return _origin(home) + "/witness"


@contextmanager
def _reading(home_dir: Path) -> Iterator[Ledger]:
    home = Home(home_dir)
    ledger = Ledger.open(home.db_path, origin=_origin(home), log_key=None)
    try:
        yield ledger
    finally:
        ledger.close()


def _newest_size(ledger: Ledger) -> int:
    latest = ledger.latest_checkpoint()
    if latest is None:
        raise NoCheckpoint("the ledger has no checkpoint yet; give the size explicitly")
    return latest.size


def _echo_line(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, sort_keys=True))


@click.group()
def ledger() -> None:
    """Ledger checkpoints, proofs, export and offline verification."""


@ledger.command()
@home_option
@click.option("--new", is_flag=True,
              help="Sign a checkpoint at the current size first (needs the passphrase and "
                   "a stopped node).")
def checkpoint(home: Path, new: bool) -> None:
    """Print the newest checkpoint note, with its signature and cosignatures."""
    if new:
        node_home = Home(home)
        key = node_home.signing_key("node", passphrase())
        with node_home.writer_lock(), Ledger.open(node_home.db_path, origin=_origin(node_home),
                                                  log_key=key) as writable:
            signed = writable.checkpoint()
        click.echo(signed.note, nl=False)
        return
    with _reading(home) as reader:
        latest = reader.latest_checkpoint()
    if latest is None:
        raise NoCheckpoint("the ledger has no checkpoint yet (gateway ledger checkpoint --new)")
    click.echo(latest.note, nl=False)


@ledger.command()
@home_option
def vkey(home: Path) -> None:
    """Print the node's note verifier key: <name>+<key id>+<base64(0x01 || key)>."""
    node_home = Home(home)
    click.echo(log_verifier(_origin(node_home), node_home.public_key("node")).vkey)


@ledger.command("witness-vkey")
@home_option
def witness_vkey(home: Path) -> None:
    """Print the node's cosigner key: <name>+<key id>+<base64(0x04 || key)>."""
    node_home = Home(home)
    click.echo(witness_verifier(_witness_name(node_home), node_home.public_key("witness")).vkey)


@ledger.command()
@home_option
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First index.")
@click.option("--end", type=click.IntRange(min=0), default=None,
              help="One past the last index (default: every entry).")
@json_option
def entries(home: Path, start: int, end: int | None, as_json: bool) -> None:
    """Print entries: one JSON object a line with --json, else a line of text each."""
    with _reading(home) as reader:
        for _, der, _ in reader.raw_entries(start, end):
            stored = decode_entry(der)
            if as_json:
                _echo_line(stored.as_json())
                continue
            event = stored.event
            route = f"{event.from_authority or '-'} -> {event.to_authority or '-'}"
            details = " ".join(f"{k}={v}" for k, v in event.details)
            click.echo(f"{stored.index}  {event.time.isoformat()}  {event.type}  {route}  "
                       f"{details}".rstrip())


@ledger.group()
def proof() -> None:
    """RFC 9162 inclusion and consistency proofs, as JSON."""


@proof.command()
@home_option
@click.option("--index", type=click.IntRange(min=0), required=True)
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Tree size (default: the newest checkpoint's).")
def inclusion(home: Path, index: int, size: int | None) -> None:
    """Prove that entry INDEX is in the tree of SIZE entries."""
    with _reading(home) as reader:
        size = _newest_size(reader) if size is None else size
        hashes = reader.inclusion_proof(index, size)
        leaf = reader.leaf_hash(index)
    _echo_line({"index": index, "tree_size": size, "leaf_hash": _b64(leaf),
                "proof": [_b64(h) for h in hashes]})


@proof.command()
@home_option
@click.option("--old", type=click.IntRange(min=1), required=True, help="The older tree size.")
@click.option("--new", type=click.IntRange(min=1), default=None,
              help="The newer tree size (default: the newest checkpoint's).")
def consistency(home: Path, old: int, new: int | None) -> None:
    """Prove that the tree of NEW entries extends the tree of OLD entries."""
    with _reading(home) as reader:
        new = _newest_size(reader) if new is None else new
        hashes = reader.consistency_proof(old, new)
    _echo_line({"old_size": old, "new_size": new, "proof": [_b64(h) for h in hashes]})


def _split_vkeys(vkeys: tuple[str, ...]) -> tuple[list[NoteVerifier], list[NoteVerifier]]:
    parsed = [NoteVerifier.from_vkey(v) for v in vkeys]
    logs = [v for v in parsed if v.type == SIG_ED25519]
    witnesses = [v for v in parsed if v.type == SIG_COSIGNATURE_V1]
    return logs, witnesses


def _pick_log(logs: list[NoteVerifier], origin: str) -> NoteVerifier:
    named = [v for v in logs if v.name == origin]
    if len(named) == 1:
        return named[0]
    raise BadVerifierKey(f"give exactly one --vkey of type 0x01 for the log {origin!r}")


@ledger.command()
@click.option("--home", "home", type=click.Path(file_okay=False, path_type=Path),
              help="Verify the ledger in this node home.")
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path),
              help="Verify an exported bundle (needs --vkey for the log).")
@click.option("--vkey", "vkeys", multiple=True, metavar="KEY",
              help="A verifier key: the log's (type 0x01) or a witness's (type 0x04). "
                   "Repeatable.")
@click.option("--checkpoint", "held", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A checkpoint note obtained elsewhere (say, the last one the peer "
                   "cosigned): detects a restored older copy. Repeatable.")
@click.option("--deep", is_flag=True, help="Also decode every entry field by field (slow).")
def verify(home: Path | None, bundle: Path | None, vkeys: tuple[str, ...], held: tuple[Path, ...],
           deep: bool) -> None:
    """Verify a whole ledger offline; name the first bad index and what is wrong."""
    if (home is None) == (bundle is None):
        raise click.UsageError("give exactly one of --home DIR and --bundle FILE")
    logs, witnesses = _split_vkeys(vkeys)
    if home is not None:
        node_home = Home(home)
        origin, path = _origin(node_home), node_home.db_path
        log = _pick_log(logs, origin) if logs else \
            log_verifier(origin, node_home.public_key("node"))
    else:
        assert bundle is not None
        path = bundle
        with LedgerSource.open(bundle) as source:
            origin = source.origin
        log = _pick_log(logs, origin)
    trusted = [p.read_text(encoding="utf-8") for p in held]
    with LedgerSource.open(path) as source:
        total = source.size
    with ExitStack() as stack:
        update = None
        if sys.stderr.isatty():  # a progress bar for a person, never in a pipe or a log
            bar = stack.enter_context(click.progressbar(length=total, label="verifying",
                                                        file=sys.stderr))
            update = bar.update
        report = verify_file(path, log=log, witnesses=witnesses, trusted=trusted, deep=deep,
                             progress=update)
    _print_report(origin, report)


def _print_report(origin: str, report: AuditReport) -> None:
    click.echo(f"ok: {origin}: {report.size} entries verified")
    if report.latest is None:
        click.echo("no checkpoint")
    else:
        click.echo(f"{report.checkpoints} checkpoints verified; newest at size "
                   f"{report.latest.size}, root {_b64(report.latest.root)}")
    for name, size in sorted(report.cosigned.items()):
        click.echo(f"cosigned by {name} up to size {size}")


@ledger.command()
@home_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The bundle file to write (refuses to overwrite).")
def export(home: Path, out: Path) -> None:
    """Write a self-contained auditor bundle: entries, checkpoints, cosignatures, keys."""
    node_home = Home(home)
    origin = _origin(node_home)
    vkeys = [(log_verifier(origin, node_home.public_key("node")).vkey, "log"),
             (witness_verifier(_witness_name(node_home), node_home.public_key("witness")).vkey,
              "witness")]
    size = export_bundle(node_home.db_path, out, vkeys=vkeys)
    click.echo(f"wrote {out}: {size} entries")


COMMANDS = [ledger]
