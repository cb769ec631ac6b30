"""`gateway directory|authority|signatory|signatories|agency`: the operator's trust work."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import click

from gateway import tls
from gateway.admin import (
    admin_session,
    encryption_key_of,
    fingerprint_of,
    now_seconds,
    verify_key_of,
)
from gateway.cli.common import echo_table, home_of, home_option, passphrase
from gateway.node import admin_socket
from keys import keyfile
from keys.directory import root_fingerprint


def change(home: Path, action: str, args: dict[str, Any]) -> dict[str, Any]:
    """One operator change: made by the running node through its admin socket (sent
    to the peer at once), or here in the home of a stopped one (sent on start)."""
    node_home, secret = home_of(home), passphrase()
    done = admin_socket.send(node_home, action, args, secret)
    if done is not None:
        return {**done, "delivery": "the running node sends it to the peer now"}
    with admin_session(node_home, secret) as session:
        done = admin_socket.ACTIONS[action](session, args)
    return {**done, "delivery": "queued for the peer (sent when the node starts)"}


@click.group()
def directory() -> None:
    """Exchange Party directories with the peer (the out-of-band trust anchor)."""


@directory.command("export")
@home_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def directory_export(home: Path, out: Path) -> None:
    """Write our signed directory and TLS certificate for the peer's operator."""
    node_home = home_of(home)
    with admin_session(node_home, passphrase()) as session:
        data = session.export_directory()
        root = root_fingerprint(node_home.public_key("root"))
    out.write_bytes(data)
    click.echo(f"wrote {out}")
    click.echo(f"root key fingerprint (tell the peer's operator): {root}")


@directory.command("import")
@home_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def directory_import(home: Path, file: Path) -> None:
    """Import the peer's directory; the first import pins its root key."""
    with admin_session(home_of(home), passphrase()) as session:
        imported = session.import_directory(file.read_bytes())
    click.echo(f"imported {imported.party} directory version {imported.version} "
               f"({len(imported.authorities)} authorities), node {imported.node.url}")
    click.echo(f"root key fingerprint (compare out of band!): {fingerprint_of(imported)}")


@click.group()
def authority() -> None:
    """Register this Party's competent authorities (A2.1, A2.2)."""


@authority.command("add")
@home_option
@click.option("--id", "authority_id", required=True, help="e.g. KZ-MVD")
@click.option("--encryption-pub", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The authority's X25519 public key file (PATH.pub).")
@click.option("--name-ru", help="Official name in Russian (A14); defaults for A2.1 bodies.")
@click.option("--name-lat", help="Official name in Latin letters.")
def authority_add(home: Path, authority_id: str, encryption_pub: Path,
                  name_ru: str | None, name_lat: str | None) -> None:
    """Add an authority, or give it a new key or name: a new directory version."""
    done = change(home, "authority_add", {
        "id": authority_id, "encryption_key": bytes(encryption_key_of(encryption_pub)).hex(),
        "name_ru": name_ru, "name_lat": name_lat})
    click.echo(f"{done['authority']} in directory version {done['directory_version']}; "
               f"{done['delivery']}")


@click.group()
def signatory() -> None:
    """Change an authority's signatory list (A9.3, A9.4)."""


@signatory.command("add")
@home_option
@click.option("--authority", required=True)
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signatory's Ed25519 public key file (PATH.pub).")
@click.option("--name-cyrillic", required=True)
@click.option("--name-latin", required=True)
@click.option("--role", type=click.Choice(["head", "deputy", "authorised"]), required=True)
@click.option("--valid-until", type=click.DateTime(["%Y-%m-%d"]), default=None)
def signatory_add(home: Path, authority: str, key_path: Path, name_cyrillic: str,
                  name_latin: str, role: str, valid_until: dt.datetime | None) -> None:
    """Add a signatory: a new list version, in force now, sent to the peer at once."""
    until = valid_until.replace(tzinfo=dt.UTC) if valid_until else None
    done = change(home, "signatory_add", {
        "authority": authority, "key": bytes(verify_key_of(key_path)).hex(),
        "name_cyrillic": name_cyrillic, "name_latin": name_latin, "role": role,
        "valid_from": now_seconds().isoformat(),
        "valid_until": until.isoformat() if until else None})
    click.echo(f"{authority} signatory list version {done['version']}: "
               f"{done['signatories']} signatories; {done['delivery']}")


@signatory.command("revoke")
@home_option
@click.option("--authority", required=True)
@click.option("--key-id", required=True, help="32 hex digits (gateway keys show).")
def signatory_revoke(home: Path, authority: str, key_id: str) -> None:
    """A9.4: remove a signatory from now on; what they signed before stays valid."""
    try:
        raw = bytes.fromhex(key_id)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise click.BadParameter("expected 32 hex digits", param_hint="--key-id")
    done = change(home, "signatory_revoke", {"authority": authority, "key_id": raw.hex()})
    click.echo(f"{authority} signatory list version {done['version']}: key {key_id} "
               f"revoked; {done['delivery']}")


@click.group()
def signatories() -> None:
    """Signatory lists: what was published and delivered (A9.3)."""


@signatories.command("publish")
@home_option
def signatories_publish(home: Path) -> None:
    """Show every own list version and whether the peer has acknowledged it.

    New versions are queued the moment they are made (A9.4); a running node delivers
    them at once, a stopped one on start.
    """
    from gateway.node import store

    node_home = home_of(home)
    reader = store.Reader(node_home.db_path)
    rows = [dict(r) for r in reader.all(
        "SELECT authority, version, stored_at, sent_at FROM signatory_lists WHERE party = ? "
        "ORDER BY authority, version", node_home.config().party)]
    for row in rows:
        row["delivered"] = row.pop("sent_at") or "queued"
    echo_table(rows, ["authority", "version", "stored_at", "delivered"],
               empty="no signatory lists yet (gateway signatory add / agency enroll)")


@click.group()
def agency() -> None:
    """Credentials for this Party's authority systems."""


@agency.command("enroll")
@home_option
@click.option("--authority", required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--signatory-name-cyrillic", default="Уполномоченное лицо", show_default=True)
@click.option("--signatory-name-latin", default="Authorised Person", show_default=True)
@click.option("--role", type=click.Choice(["head", "deputy", "authorised"]),
              default="authorised", show_default=True)
@click.option("--name-ru", help="Authority name in Russian, if not an A2.1 body.")
@click.option("--name-lat", help="Authority name in Latin letters.")
def agency_enroll(home: Path, authority: str, out: Path, signatory_name_cyrillic: str,
                  signatory_name_latin: str, role: str, name_ru: str | None,
                  name_lat: str | None) -> None:
    """Write a client profile: TLS certificate, encryption key, registered signatory key.

    The profile's keys get their own passphrase (GATEWAY_PROFILE_PASSPHRASE, or a
    prompt), so the agency never learns the node's.
    """
    profile_secret = keyfile.passphrase(confirm=True, env="GATEWAY_PROFILE_PASSPHRASE",
                                        prompt="Passphrase for the agency profile: ")
    profile = change(home, "agency_enroll", {
        "authority": authority, "out": str(out.resolve()),
        "signatory_name_cyrillic": signatory_name_cyrillic,
        "signatory_name_latin": signatory_name_latin, "role": role, "name_ru": name_ru,
        "name_lat": name_lat, "profile_passphrase": profile_secret.decode()})
    click.echo(f"wrote profile for {profile['authority']} to {out}")
    click.echo(f"node: {profile['node_url']}; signatory key id {profile['signatory_key_id']}")


@agency.command("revoke")
@home_option
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client certificate to revoke (a profile's tls.pem).")
@click.option("--authority", help="Revoke every certificate issued to this authority.")
def agency_revoke(home: Path, certificate: Path | None, authority: str | None) -> None:
    """Refuse an agency system's client certificate from now on (a lost or compromised
    profile); enroll a new profile for the authority afterwards."""
    if (certificate is None) == (authority is None):
        raise click.UsageError("give --certificate FILE or --authority AUTHORITY")
    sha256 = None
    if certificate is not None:
        pem = certificate.read_bytes()
        try:
            der = tls.der_of(pem)
        except ValueError:
            raise click.BadParameter("not a PEM or DER certificate",
                                     param_hint="--certificate") from None
        authority = tls.authority_of(der)
        if authority is None:
            raise click.BadParameter("not an agency client certificate",
                                     param_hint="--certificate")
        sha256 = hashlib.sha256(der).digest()
    assert authority is not None
    done = change(home, "agency_revoke", {
        "authority": authority, "certificate_sha256": sha256.hex() if sha256 else None})
    for revoked in done["revoked"]:
        click.echo(f"{authority}: certificate {revoked} revoked")


COMMANDS = [directory, authority, signatory, signatories, agency]
