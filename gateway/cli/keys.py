"""`gateway keys ...`: generate and show key files.

Each command is a thin call into ``keys.keyfile``; failures are coded ``KeysError``s that
the root group prints as ``error: <code>: <message>``.
"""

from __future__ import annotations

from pathlib import Path

import click
from nacl.signing import VerifyKey

from keys import keyfile
from keys.directory import root_fingerprint
from keys.errors import KeyFileExists
from keys.keyid import key_id


@click.group()
def keys() -> None:
    """Generate and show key files."""


@keys.command()
@click.option(
    "--kind",
    type=click.Choice(["signing", "encryption"]),
    required=True,
    help="signing: Ed25519 (signatories, roots, nodes); encryption: X25519 (authorities).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Private key file to write (mode 0600); PATH.pub is written beside it.",
)
def generate(kind: keyfile.KeyKind, out: Path) -> None:
    """Write a new private key file PATH (encrypted) and its public half PATH.pub.

    The passphrase comes from GATEWAY_PASSPHRASE, or is asked for twice on a terminal.
    """
    for path in (out, keyfile.public_path(out)):
        if path.exists():
            raise KeyFileExists(f"{path} already exists; refusing to overwrite a key")
    secret = keyfile.passphrase(confirm=True)
    key = keyfile.generate(kind)
    keyfile.save_private_key(out, key, secret)
    public = keyfile.public_of(key)
    click.echo(f"wrote {out} and {keyfile.public_path(out)}")
    click.echo(f"key id: {key_id(public).hex()}")


@keys.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def show(path: Path) -> None:
    """Print the kind, key id and public key of PATH (a .pub file or a private key file).

    Needs no passphrase. For a signing key it also prints the fingerprint that people
    compare out of band before pinning a Party's root key.
    """
    public = keyfile.load_public_key(path)
    click.echo(f"kind: {keyfile.kind_of(public)}")
    click.echo(f"key id: {key_id(public).hex()}")
    click.echo(f"public: {keyfile.public_document(public)['public']}")
    if isinstance(public, VerifyKey):
        click.echo(f"fingerprint: {root_fingerprint(public)}")


COMMANDS = [keys]
