"""What a node trusts: both Parties' directories and every signatory list received.

Loaded from the node's tables at start, and rebuilt after each change is committed,
so the in-memory view never runs ahead of what is durable.

The **directory file** that operators exchange out of band (``gateway directory export``
/ ``import``) is two PEM blocks (RFC 7468 armour, via asn1crypto.pem): the signed Party
directory (``KZBY PARTY DIRECTORY``) and the node's TLS certificate (``CERTIFICATE``),
whose SHA-256 the signed directory pins.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field

from asn1crypto import pem

from gateway import tls
from gateway.errors import GatewayError
from keys.directory import DirectoryHistory, PartyDirectory, decode_directory
from keys.signatories import SignatoryRegistry, decode_signatory_list

DIRECTORY_PEM = "KZBY PARTY DIRECTORY"


class TrustError(GatewayError):
    code = "directory.invalid"


def export_directory_file(directory_der: bytes, tls_certificate_pem: bytes) -> bytes:
    certificate_der = pem.unarmor(tls_certificate_pem)[2]
    return bytes(pem.armor(DIRECTORY_PEM, directory_der) + pem.armor("CERTIFICATE",
                                                                        certificate_der))


def read_directory_file(data: bytes) -> tuple[bytes, bytes]:
    """(directory DER, certificate PEM) from an exported directory file."""
    if len(data) > 1024 * 1024 or not pem.detect(data):
        raise TrustError("not a directory file (expected PEM blocks)")
    try:
        blocks = {name: der for name, _headers, der in pem.unarmor(data, multiple=True)}
    except ValueError:
        raise TrustError("directory file has a damaged PEM block") from None
    if set(blocks) != {DIRECTORY_PEM, "CERTIFICATE"}:
        raise TrustError(f"a directory file holds exactly one {DIRECTORY_PEM} and one "
                         "CERTIFICATE block")
    return blocks[DIRECTORY_PEM], pem.armor("CERTIFICATE", blocks["CERTIFICATE"])


def check_certificate_pin(directory: PartyDirectory, certificate_pem: bytes) -> None:
    if tls.fingerprint(certificate_pem) != directory.node.tls_cert_sha256:
        raise TrustError("the TLS certificate is not the one the directory pins",
                         code="directory.certificate_mismatch")


@dataclass
class Trust:
    party: str
    own: DirectoryHistory | None = None
    peer: DirectoryHistory | None = None
    peer_tls_pem: bytes | None = None
    own_tls_pem: bytes | None = None
    signatories: SignatoryRegistry = field(default_factory=SignatoryRegistry)
    list_ders: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def history(self, party: str) -> DirectoryHistory | None:
        return self.own if party == self.party else self.peer

    @property
    def own_directory(self) -> PartyDirectory:
        if self.own is None:
            raise TrustError("this node has no directory yet", code="directory.missing")
        return self.own.current

    @property
    def peer_directory(self) -> PartyDirectory:
        if self.peer is None:
            raise TrustError("no peer directory imported yet (gateway directory import)",
                             code="directory.no_peer")
        return self.peer.current


def load_trust(db: sqlite3.Connection, party: str) -> Trust:
    trust = Trust(party)
    for row in db.execute("SELECT party, der, tls_certificate FROM directories "
                          "ORDER BY party, version"):
        directory = decode_directory(row["der"], pinned_root=None, now=None)
        history = trust.history(row["party"])
        if history is None:
            history = DirectoryHistory(directory.root_key)
            if row["party"] == party:
                trust.own = history
            else:
                trust.peer = history
        history.add(directory)
        if row["party"] == party:
            trust.own_tls_pem = row["tls_certificate"]
        else:
            trust.peer_tls_pem = row["tls_certificate"]
    for row in db.execute("SELECT party, authority, version, der FROM signatory_lists "
                          "ORDER BY authority, version"):
        history = trust.history(row["party"])
        if history is None:
            continue
        trust.signatories.add(decode_signatory_list(row["der"], root_key=history.root_key))
        trust.list_ders[(row["authority"], row["version"])] = row["der"]
    return trust


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
