"""Operator actions on a node home: the library under ``gateway init``, ``directory``,
``authority``, ``signatory``, ``signatories`` and ``agency`` commands.

Each action runs in an ``AdminSession``: it takes the home's writer lock (so it never
races a running node's ledger), and every change is one unit of work with its ledger
entry. Changes meant for the peer (a new directory version, a new signatory list
version) are stored as not yet sent; the running node's outbox delivers them at once
(A9.4 "immediately", A2.2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from gateway import tls
from gateway.config import NodeConfig
from gateway.errors import GatewayError
from gateway.home import Home, init_home
from gateway.node import store
from gateway.node.trust import (
    Trust,
    check_certificate_pin,
    export_directory_file,
    load_trust,
    read_directory_file,
)
from gateway.rules.authorities import KNOWN_AUTHORITIES
from keys import keyfile
from keys.directory import (
    Authority,
    NodeIdentity,
    PartyDirectory,
    decode_directory,
    root_fingerprint,
)
from keys.fields import check_party
from keys.keyid import key_id
from keys.signatories import Signatory, SignatoryList
from ledger.entry import Event
from ledger.store import Appender, Ledger

DIRECTORY_VALIDITY = dt.timedelta(days=2 * 365)


class AdminError(GatewayError):
    code = "admin.invalid"


def now_seconds() -> dt.datetime:
    """Now, in whole seconds: signed documents carry whole-second times (docs/keys.md)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _sleep_until(instant: dt.datetime) -> None:
    wait = (instant - dt.datetime.now(dt.UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)



@dataclass
class AdminSession:
    home: Home
    config: NodeConfig
    ledger: Ledger
    reader: store.Reader
    passphrase: bytes
    # The latest instant a change made in this session takes effect; the session ends
    # only after it, so an operator's command returns with its changes in force.
    in_force_at: dt.datetime | None = None

    def _in_force_at(self, instant: dt.datetime) -> None:
        self.in_force_at = max(instant, self.in_force_at or instant)

    # Trust as the tables hold it, loaded once and again only after a write: loading
    # decodes and verifies every directory and list version.
    _trust: Trust | None = None

    @property
    def trust(self) -> Trust:
        if self._trust is None:
            self._trust = load_trust(self.reader.db, self.config.party)
        return self._trust

    def transact(self, fn: Any) -> Any:
        try:
            return self.ledger.transact(fn)
        finally:
            self._trust = None

    def record(self, action: str, **details: str | int) -> None:
        self.ledger.append(Event(type="operator_action", time=dt.datetime.now(dt.UTC),
                                 details=(("action", action), *sorted(details.items()))))

    # --- our directory ----------------------------------------------------------------

    def own_directory(self) -> PartyDirectory:
        return self.trust.own_directory

    def publish_directory(self, authorities: tuple[Authority, ...]) -> PartyDirectory:
        """Sign and store a new version of our directory; the outbox sends it (A2.2)."""
        current = self.own_directory()
        # As with signatory lists: in force from the next whole second, and only once it
        # is in force does the command return (an envelope is judged by its created second).
        issued = max(now_seconds() + dt.timedelta(seconds=1), current.issued)
        directory = replace(current, version=current.version + 1, issued=issued,
                            expires=issued + DIRECTORY_VALIDITY, authorities=authorities)
        self._store_own_directory(directory, sent_at=None)
        self._in_force_at(issued)
        return directory

    def _store_own_directory(self, directory: PartyDirectory, sent_at: str | None) -> None:
        der = directory.sign(self.home.signing_key("root", self.passphrase))
        certificate = self.home.tls_certificate.read_bytes()
        now = dt.datetime.now(dt.UTC)

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.execute("INSERT INTO directories (party, version, der, tls_certificate, "
                       "stored_at, sent_at) VALUES (?,?,?,?,?,?)",
                       (directory.party, directory.version, der, certificate, store.iso(now),
                        sent_at))
            appender.append(Event(
                type="directory_changed", time=now,
                envelope_hash=hashlib.sha256(der).digest(),
                details=(("party", directory.party.lower()), ("version", directory.version))))

        self.transact(unit)

    def add_authority(self, authority_id: str, encryption_key: PublicKey,
                      name_ru: str | None = None, name_lat: str | None = None) -> Authority:
        """A2.1/A2.2: add an authority, or give an existing one a new key or name."""
        known = KNOWN_AUTHORITIES.get(authority_id)
        if (name_ru is None or name_lat is None) and known is None:
            raise AdminError(f"{authority_id} is not one of the agreement's authorities; "
                             "give --name-ru and --name-lat", code="admin.names_required")
        current = self.own_directory()
        others = tuple(a for a in current.authorities if a.id != authority_id)
        previous = next((a for a in current.authorities if a.id == authority_id), None)
        authority = Authority(
            id=authority_id,
            name_ru=name_ru or (previous.name_ru if previous else known[0]),  # type: ignore[index]
            name_lat=name_lat or (previous.name_lat if previous else known[1]),  # type: ignore[index]
            encryption_key=encryption_key,
            valid_from=previous.valid_from if previous else now_seconds(),
        )
        self.publish_directory((*others, authority))
        return authority

    # --- signatory lists (A9.3, A9.4) -------------------------------------------------

    def _latest_list(self, authority: str) -> SignatoryList | None:
        versions = self.trust.signatories.versions(authority)
        return versions[-1] if versions else None

    def publish_list(self, authority: str, signatories: tuple[Signatory, ...]) -> SignatoryList:
        """Sign and store a new list version, in force from now; the outbox sends it."""
        self.own_directory().authority(authority, dt.datetime.now(dt.UTC))
        previous = self._latest_list(authority)
        # Signed times are whole seconds, and an envelope is judged by the list in force
        # at its created second. A version takes effect at the next whole second, so an
        # envelope created in this second stays under the old list, and the command
        # returns only once the new one is in force (see docs/keys.md, A9.4).
        effective = now_seconds() + dt.timedelta(seconds=1)
        if previous is not None:
            effective = max(effective, previous.effective)
        lst = SignatoryList(party=check_party(self.config.party), authority=authority,
                            version=(previous.version + 1) if previous else 1,
                            effective=effective, signatories=signatories,
                            forms=previous.forms if previous else ())
        der = lst.sign(self.home.signing_key("root", self.passphrase))
        now = dt.datetime.now(dt.UTC)

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.execute("INSERT INTO signatory_lists (party, authority, version, der, stored_at)"
                       " VALUES (?,?,?,?,?)",
                       (lst.party, authority, lst.version, der, store.iso(now)))
            appender.append(Event(
                type="signatory_list_in_force", time=now, from_authority=authority,
                envelope_hash=hashlib.sha256(der).digest(),
                details=(("authority", authority.lower()), ("signatories", len(signatories)),
                         ("version", lst.version))))

        self.transact(unit)
        self._in_force_at(effective)
        return lst

    def add_signatory(self, authority: str, signatory: Signatory) -> SignatoryList:
        previous = self._latest_list(authority)
        kept = tuple(s for s in (previous.signatories if previous else ())
                     if s.key_id != signatory.key_id)
        return self.publish_list(authority, (*kept, signatory))

    def revoke_signatory(self, authority: str, signatory_key_id: bytes) -> SignatoryList:
        """A9.4: a new version without the key; envelopes it signed before stay valid."""
        previous = self._latest_list(authority)
        if previous is None or previous.find(signatory_key_id) is None:
            raise AdminError(f"key {signatory_key_id.hex()} is not on the current "
                             f"{authority} list", code="admin.unknown_signatory")
        kept = tuple(s for s in previous.signatories if s.key_id != signatory_key_id)
        return self.publish_list(authority, kept)

    # --- directory exchange -----------------------------------------------------------

    def export_directory(self) -> bytes:
        """The directory file for the peer; versions up to this one count as delivered."""
        row = self.reader.one("SELECT version, der, tls_certificate FROM directories WHERE "
                              "party = ? ORDER BY version DESC LIMIT 1", self.config.party)
        assert row is not None

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.execute("UPDATE directories SET sent_at = 'out-of-band' WHERE party = ? AND "
                       "version <= ? AND sent_at IS NULL", (self.config.party, row["version"]))

        self.transact(unit)
        self.record("directory_exported", version=row["version"])
        return export_directory_file(row["der"], row["tls_certificate"])

    def import_directory(self, data: bytes) -> PartyDirectory:
        """Pin the peer's root key on first import; later imports must verify under it."""
        der, certificate = read_directory_file(data)
        trust = self.trust
        # Self-signed check first, to say plainly when it is the wrong Party's file...
        unpinned = decode_directory(der, pinned_root=None, now=dt.datetime.now(dt.UTC))
        if unpinned.party != self.config.peer_party:
            raise AdminError(f"this is a {unpinned.party} directory; the peer Party is "
                             f"{self.config.peer_party}", code="directory.wrong_party")
        # ...then, after the first import, it must verify under the pinned root.
        pinned = trust.peer.root_key if trust.peer is not None else None
        directory = decode_directory(der, pinned_root=pinned, now=dt.datetime.now(dt.UTC))
        check_certificate_pin(directory, certificate)
        if trust.peer is not None:
            trust.peer.add(directory)  # refuses stale versions and conflicts
        now = dt.datetime.now(dt.UTC)

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.execute("INSERT OR IGNORE INTO directories (party, version, der, tls_certificate, "
                       "stored_at) VALUES (?,?,?,?,?)",
                       (directory.party, directory.version, der, certificate, store.iso(now)))
            appender.append(Event(
                type="directory_changed", time=now, envelope_hash=hashlib.sha256(der).digest(),
                details=(("party", directory.party.lower()), ("version", directory.version))))

        self.transact(unit)
        return directory

    # --- agency enrolment -------------------------------------------------------------

    def _record_certificate(self, authority: str, sha256: bytes) -> None:
        """Keep the fingerprint of a client certificate issued, so that it can be
        revoked by authority without its file."""
        now = dt.datetime.now(dt.UTC)

        def unit(db: sqlite3.Connection, appender: Appender) -> None:
            db.execute("INSERT INTO agency_certificates (sha256, authority, issued_at) "
                       "VALUES (?, ?, ?)", (sha256, authority, store.iso(now)))
            appender.append(Event(
                type="operator_action", time=now, from_authority=authority,
                details=(("action", "agency_certificate_issued"),
                         ("certificate", sha256.hex()))))

        self.transact(unit)

    def revoke_certificates(self, authority: str, sha256: bytes | None = None) -> list[bytes]:
        """Revoke one client certificate of ``authority`` (by the SHA-256 of its DER:
        issued before fingerprints were kept, or by another node of ours, it is added),
        or with None every one issued to it and not yet revoked. The agency listener
        refuses them from the next request on, open connections included."""
        now = dt.datetime.now(dt.UTC)

        def unit(db: sqlite3.Connection, appender: Appender) -> list[bytes]:
            if sha256 is not None:
                row = db.execute("SELECT authority, revoked_at FROM agency_certificates "
                                 "WHERE sha256 = ?", (sha256,)).fetchone()
                if row is not None and row["authority"] != authority:
                    raise AdminError("that certificate was issued to another authority",
                                     code="admin.wrong_authority")
                if row is None:
                    db.execute("INSERT INTO agency_certificates (sha256, authority) "
                               "VALUES (?, ?)", (sha256, authority))
                targets = [] if row is not None and row["revoked_at"] else [sha256]
            else:
                targets = [bytes(r[0]) for r in db.execute(
                    "SELECT sha256 FROM agency_certificates WHERE authority = ? AND "
                    "revoked_at IS NULL ORDER BY issued_at", (authority,))]
            if not targets:
                raise AdminError(
                    f"no certificate of {authority} recorded here is left to revoke (one "
                    "enrolled before this node kept fingerprints: --certificate FILE)",
                    code="admin.nothing_to_revoke")
            for target in targets:
                db.execute("UPDATE agency_certificates SET revoked_at = ? WHERE sha256 = ?",
                           (store.iso(now), target))
                appender.append(Event(
                    type="operator_action", time=now, from_authority=authority,
                    details=(("action", "agency_certificate_revoked"),
                             ("certificate", target.hex()))))
            return targets

        revoked: list[bytes] = self.transact(unit)
        return revoked

    def enroll(self, authority: str, out: Path, *, signatory_name_cyrillic: str,
               signatory_name_latin: str, role: str = "authorised",
               name_ru: str | None = None, name_lat: str | None = None,
               profile_passphrase: bytes | None = None) -> dict[str, str]:
        """Write an agency profile: client TLS certificate, the node's certificate, the
        authority's encryption key pair and a signatory key registered on its list.

        The profile's private keys are encrypted with ``profile_passphrase`` (the node's
        own when None, as the single-machine demo does). The node keeps none of them:
        only their public halves go into the directory and the signatory list.
        """
        secret = profile_passphrase or self.passphrase
        if authority[:2] != self.config.party:
            raise AdminError(f"{authority} is not a {self.config.party} authority",
                             code="admin.wrong_party")
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise AdminError(f"{out} exists and is not empty; refusing to overwrite a profile",
                             code="admin.profile_exists")
        signing = SigningKey.generate()
        # Built first: a bad name or role is refused before anything is written.
        signatory = Signatory(key=signing.verify_key, name_cyrillic=signatory_name_cyrillic,
                              name_latin=signatory_name_latin,
                              role=role,  # type: ignore[arg-type]
                              valid_from=now_seconds())
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        limits = _kdf_limits_of(self.home.key("node"))
        encryption = PrivateKey.generate()
        keyfile.save_private_key(out / "encryption.key", encryption, secret, **limits)
        keyfile.save_private_key(out / "signatory.key", signing, secret, **limits)
        ca = tls.Issued(self.home.agency_ca_certificate.read_bytes(),
                        self.home.agency_ca_key.read_bytes())
        client = tls.issue_agency_certificate(ca, self.passphrase, authority, secret)
        self._record_certificate(authority, tls.fingerprint(client.certificate_pem))
        (out / "tls.pem").write_bytes(client.certificate_pem)
        tls.write_private(out / "tls.key", client.key_pem)
        (out / "node.pem").write_bytes(self.home.tls_certificate.read_bytes())
        self.add_authority(authority, encryption.public_key, name_ru, name_lat)
        self.add_signatory(authority, replace(signatory, valid_from=now_seconds()))
        profile = {"format": "kzby-profile/1", "authority": authority,
                   "party": self.config.party, "node_url": "https://" + self.config.agency_listen,
                   "signatory_key_id": key_id(signing.verify_key).hex(),
                   "encryption_key_id": key_id(encryption.public_key).hex()}
        (out / "profile.json").write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
        # The roots the client checks every directory and signatory list against; the
        # peer's is pinned on first use if it was not imported yet.
        trust = self.trust
        pins = {d.current.party: bytes(d.root_key).hex()
                for d in (trust.own, trust.peer) if d is not None}
        (out / "pins.json").write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")
        self.record("agency_enrolled", authority=authority.lower(),
                    signatory=key_id(signing.verify_key).hex())
        return profile


def _kdf_limits_of(path: Path) -> dict[str, int]:
    """New key files use the same Argon2id cost as the node's own (tests use the minimum)."""
    kdf = json.loads(path.read_text(encoding="utf-8"))["kdf"]
    return {"opslimit": int(kdf["opslimit"]), "memlimit": int(kdf["memlimit"])}


@contextmanager
def admin_session(home: Home, passphrase: bytes) -> Iterator[AdminSession]:
    config = home.config()
    with home.writer_lock():
        store.create_schema(home.db_path)
        node_key = home.signing_key("node", passphrase)
        ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=node_key)
        session = AdminSession(home, config, ledger, store.Reader(home.db_path), passphrase)
        try:
            yield session
        finally:
            ledger.close()
        if session.in_force_at is not None:
            _sleep_until(session.in_force_at)


def init_node(root: Path, config: NodeConfig, passphrase: bytes, **kdf: int) -> Home:
    """``gateway init``: a new home, its database, and directory version 1."""
    home = init_home(root, config, passphrase, **kdf)
    with admin_session(home, passphrase) as session:
        issued = now_seconds()
        directory = PartyDirectory(
            party=config.party,  # type: ignore[arg-type]
            version=1, issued=issued, expires=issued + DIRECTORY_VALIDITY,
            root_key=home.public_key("root"),
            node=NodeIdentity(
                node_key=home.public_key("node"), witness_key=home.public_key("witness"),
                tls_cert_sha256=tls.fingerprint(home.tls_certificate.read_bytes()),
                url=config.url, ledger_origin=home.origin()),
            authorities=())
        # Version 1 reaches the peer out of band (`gateway directory export`).
        session._store_own_directory(directory, sent_at="out-of-band")
        session.record("init", party=config.party.lower())
    return home


def fingerprint_of(directory: PartyDirectory) -> str:
    return root_fingerprint(directory.root_key)


def verify_key_of(path: Path) -> VerifyKey:
    key = keyfile.load_public_key(path, kind="signing")
    assert isinstance(key, VerifyKey)
    return key


def encryption_key_of(path: Path) -> PublicKey:
    key = keyfile.load_public_key(path, kind="encryption")
    assert isinstance(key, PublicKey)
    return key
