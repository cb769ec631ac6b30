"""`gateway envelope ...`: seal, open and inspect envelopes from files.

Each command reads and checks all of its inputs before the slow work (unlocking a key
file), then makes one call into ``gateway.sdk``. Failures are coded errors that the root
group prints as ``error: <code>: <message>``; an output file appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click
from nacl.public import PublicKey
from nacl.signing import VerifyKey

from gateway import sdk
from gateway.envelope import limits
from gateway.envelope.errors import CannotRead, CannotWrite, NotJson
from gateway.envelope.wire import envelope_hash
from keys import keyfile

#: A JSON payload may carry a body of up to MAX_BODY bytes of DER as base64 (4/3 larger),
#: plus JSON punctuation.
MAX_PAYLOAD = limits.MAX_BODY * 4 // 3 + limits.MiB

_FILE = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise CannotRead(f"{what} {path}: cannot read ({e.strerror})") from None
    if len(data) > limit:
        raise CannotRead(f"{what} {path}: larger than {limit} bytes")
    return data


def _reject_constant(name: str) -> Any:
    raise NotJson(f"payload holds {name}, which is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise NotJson("payload has an object with a repeated key")
    return dict(pairs)


def _read_payload(path: Path) -> object:
    """The body's JSON form: UTF-8, strict JSON (no NaN, no repeated keys)."""
    raw = _read(path, MAX_PAYLOAD, "payload")
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError):
        raise NotJson(f"payload {path.name} is not UTF-8 JSON") from None


def _read_envelope(path: Path) -> bytes:
    # One byte over the limit is enough for the decoder to say envelope.too_large.
    return _read(path, limits.MAX_ENVELOPE + 1, "envelope")


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file in the same directory and a rename."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise CannotWrite(f"{path}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        os.unlink(temporary)
        raise CannotWrite(f"{path}: cannot write ({e.strerror})") from None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
def envelope() -> None:
    """Seal, open and inspect envelopes."""


@envelope.command()
@click.option("--kind", required=True, help="The kind, e.g. request, answer, refusal.")
@click.option("--from", "sender", required=True, help="Sending authority, e.g. KZ-MVD.")
@click.option("--to", "recipient", required=True, help="Receiving authority, e.g. BY-MVD.")
@click.option("--signatory-key", type=_FILE, required=True,
              help="The signatory's private signing key file.")
@click.option("--recipient-key", type=_FILE, required=True,
              help="The receiving authority's public encryption key (PATH.pub).")
@click.option("--payload", type=_FILE, required=True, help="The body as JSON.")
@click.option("--in-reply-to", type=_FILE, default=None,
              help="The sealed envelope this one answers.")
@click.option("--out", type=_FILE, required=True, help="Where to write the sealed envelope.")
def seal(
    kind: str,
    sender: str,
    recipient: str,
    signatory_key: Path,
    recipient_key: Path,
    payload: Path,
    in_reply_to: Path | None,
    out: Path,
) -> None:
    """Seal PAYLOAD for the recipient authority, signed by the signatory.

    The passphrase comes from GATEWAY_PASSPHRASE, or is asked for on a terminal.
    """
    body = _read_payload(payload)
    answered = None if in_reply_to is None else _read_envelope(in_reply_to)
    recipient_public = keyfile.load_public_key(recipient_key, kind="encryption")
    assert isinstance(recipient_public, PublicKey)
    signing = keyfile.load_signing_key(signatory_key, keyfile.passphrase())
    sealed = sdk.seal(kind=kind, sender=sender, recipient=recipient, body=body,
                      signatory_key=signing, recipient_key=recipient_public,
                      in_reply_to=answered)
    _write_whole(out, sealed)
    header = sdk.inspect(sealed)
    click.echo(f"wrote {out}: {header.kind} {header.envelope_id.hex()}, "
               f"case {header.case_id.hex()}, {len(sealed)} bytes")


@envelope.command(name="open")
@click.option("--recipient-key", type=_FILE, required=True,
              help="The receiving authority's private encryption key file.")
@click.option("--signatory-pub", type=_FILE, required=True,
              help="The signatory's public signing key (PATH.pub).")
@click.argument("sealed", metavar="ENV", type=_FILE)
def open_(recipient_key: Path, signatory_pub: Path, sealed: Path) -> None:
    """Check the signature, decrypt ENV and print its body as JSON."""
    data = _read_envelope(sealed)
    signatory = keyfile.load_public_key(signatory_pub, kind="signing")
    assert isinstance(signatory, VerifyKey)
    sdk.inspect(data)  # a malformed envelope fails before the passphrase is asked for
    private = keyfile.load_encryption_key(recipient_key, keyfile.passphrase())
    _echo_json(sdk.open(data, recipient_key=private, signatory_key=signatory).body)


@envelope.command()
@click.argument("sealed", metavar="ENV", type=_FILE)
def inspect(sealed: Path) -> None:
    """Check ENV's format (no keys needed) and print its header as JSON."""
    data = _read_envelope(sealed)
    header = sdk.inspect(data)
    _echo_json({**header.to_json(), "envelope_hash": envelope_hash(data).hex()})


COMMANDS = [envelope]
