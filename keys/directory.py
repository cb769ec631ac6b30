"""The Party directory (A2.1, A2.2): who a Party is on the wire.

A Party directory is a DER document signed by the Party's root Ed25519 key. It names
the Party, carries a version, an issue time and an expiry, the node's identity (the key
that signs receipts and ledger checkpoints, the key that cosigns the peer's checkpoints,
the SHA-256 of its TLS certificate, its URL and ledger origin) and the competent
authorities with their X25519 encryption keys and validity.

The peer's root key is pinned on first import, after a person has compared its
``root_fingerprint`` out of band; every later directory must verify under that key and
carry a higher version. ``DirectoryHistory`` keeps every version, so an envelope is
judged under the authorities that were in force when it was sent (A2.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey

from keys import schema, signed
from keys.errors import (
    AuthorityNotInForce,
    BadAuthorityId,
    DirectoryConflict,
    DirectoryExpired,
    DirectoryNotYetValid,
    InvalidDocument,
    LimitExceeded,
    NoDirectory,
    RootMismatch,
    StaleDirectory,
    UnknownAuthority,
)
from keys.fields import (
    Party,
    check_ascii,
    check_authority_id,
    check_cyrillic,
    check_key_bytes,
    check_latin,
    check_party,
    check_time,
    check_validity,
    check_version,
)
from keys.keyid import key_id

MAX_DIRECTORY_SIZE = 256 * 1024
MAX_AUTHORITIES = 64
MAX_URL_CHARS = 512
MAX_ORIGIN_CHARS = 256
# A directory issued a little "in the future" by a peer whose clock runs ahead is
# still accepted; beyond this it is refused as not yet valid.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """A competent authority (A2.1) and the key envelopes for it are encrypted to."""

    id: str
    name_ru: str
    name_lat: str
    encryption_key: PublicKey
    valid_from: datetime
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        party = self.id[:2] if isinstance(self.id, str) else ""
        check_authority_id(self.id, party)
        check_cyrillic(self.name_ru, f"authority {self.id} name_ru")
        check_latin(self.name_lat, f"authority {self.id} name_lat")
        if not isinstance(self.encryption_key, PublicKey):
            raise InvalidDocument(f"authority {self.id}: encryption_key must be an X25519 key")
        check_validity(self.valid_from, self.valid_until, f"authority {self.id}")

    @property
    def key_id(self) -> bytes:
        return key_id(self.encryption_key)


@dataclass(frozen=True)
class NodeIdentity:
    """The Party's node: ``node_key`` signs receipts and ledger checkpoints,
    ``witness_key`` cosigns the peer's checkpoints."""

    node_key: VerifyKey
    witness_key: VerifyKey
    tls_cert_sha256: bytes
    url: str
    ledger_origin: str

    def __post_init__(self) -> None:
        if not isinstance(self.node_key, VerifyKey) or not isinstance(self.witness_key, VerifyKey):
            raise InvalidDocument("node_key and witness_key must be Ed25519 verify keys")
        check_key_bytes(self.tls_cert_sha256, "node tls_cert_sha256")
        check_ascii(self.url, "node url", MAX_URL_CHARS)
        if not self.url.startswith("https://") or len(self.url) == len("https://"):
            raise InvalidDocument("node url must be an https:// URL (never plain HTTP)")
        check_ascii(self.ledger_origin, "node ledger_origin", MAX_ORIGIN_CHARS)


@dataclass(frozen=True)
class PartyDirectory:
    """One version of a Party's directory. Constructing it checks every rule."""

    party: Party
    version: int
    issued: datetime
    expires: datetime
    root_key: VerifyKey
    node: NodeIdentity
    authorities: tuple[Authority, ...]

    def __post_init__(self) -> None:
        check_party(self.party)
        check_version(self.version)
        check_time(self.issued, "issued")
        check_time(self.expires, "expires")
        if self.expires <= self.issued:
            raise InvalidDocument("directory expires must be after issued")
        if not isinstance(self.root_key, VerifyKey):
            raise InvalidDocument("root_key must be an Ed25519 verify key")
        if not isinstance(self.node, NodeIdentity):
            raise InvalidDocument("node must be a NodeIdentity")
        authorities = self.authorities
        if not isinstance(authorities, tuple | list):
            raise InvalidDocument("authorities must be a tuple")
        if len(authorities) > MAX_AUTHORITIES:
            raise LimitExceeded(f"more than {MAX_AUTHORITIES} authorities")
        if not all(isinstance(a, Authority) for a in authorities):
            raise InvalidDocument("authorities must hold Authority entries")
        for a in authorities:
            if a.id[:2] != self.party:
                raise BadAuthorityId(f"authority id {a.id} does not belong to party {self.party}")
        if len({a.id for a in authorities}) != len(authorities):
            raise InvalidDocument("an authority id appears twice")
        object.__setattr__(self, "authorities", tuple(authorities))

    def authority(self, id: str, at: datetime) -> Authority:
        """The authority ``id`` as this directory lists it, if in force at ``at``."""
        _check_instant(at)
        for a in self.authorities:
            if a.id == id:
                if a.valid_from <= at and (a.valid_until is None or at < a.valid_until):
                    return a
                raise AuthorityNotInForce(
                    f"authority {id} is not in force at {at.isoformat()} "
                    f"(directory {self.party} version {self.version})"
                )
        raise UnknownAuthority(
            f"authority {id[:40]!r} is not in directory {self.party} version {self.version}"
        )

    def check_fresh(self, now: datetime) -> None:
        """Return None if ``now`` lies in [issued - CLOCK_SKEW, expires), else raise."""
        _check_instant(now)
        if now < self.issued - CLOCK_SKEW:
            raise DirectoryNotYetValid(
                f"directory {self.party} version {self.version} is issued "
                f"{self.issued.isoformat()}, after now"
            )
        if now >= self.expires:
            raise DirectoryExpired(
                f"directory {self.party} version {self.version} expired {self.expires.isoformat()}"
            )

    def tbs(self) -> bytes:
        """DER of the DirectoryTBS: the bytes the root key signs (after the context)."""
        value = schema.DirectoryTBS(
            {
                "format_version": schema.FORMAT_V1,
                "party": self.party,
                "version": self.version,
                "issued": self.issued,
                "expires": self.expires,
                "root_key": bytes(self.root_key),
                "node": {
                    "node_key": bytes(self.node.node_key),
                    "witness_key": bytes(self.node.witness_key),
                    "tls_cert_sha256": self.node.tls_cert_sha256,
                    "url": self.node.url,
                    "ledger_origin": self.node.ledger_origin,
                },
                "authorities": [_authority_value(a) for a in self.authorities],
            }
        )
        der: bytes = value.dump()
        return der

    def sign(self, root: SigningKey) -> bytes:
        """DER of SignedDirectory {tbs, signature}; ``root`` must be this ``root_key``."""
        if root.verify_key != self.root_key:
            raise RootMismatch("the signing key is not the directory's root_key")
        tbs = self.tbs()
        signature = signed.sign(root, signed.DIRECTORY_CONTEXT, tbs)
        value = schema.SignedDirectory(
            {"tbs": schema.DirectoryTBS.load(tbs), "signature": signature}
        )
        der: bytes = value.dump()
        return der


def _authority_value(a: Authority) -> dict[str, object]:
    value: dict[str, object] = {
        "id": a.id,
        "name_ru": a.name_ru,
        "name_lat": a.name_lat,
        "encryption_key": bytes(a.encryption_key),
        "valid_from": a.valid_from,
    }
    if a.valid_until is not None:
        value["valid_until"] = a.valid_until
    return value


def root_fingerprint(root_key: VerifyKey) -> str:
    """SHA-256("ed25519" || 0x0A || key) as 16 groups of 4 hex digits, for people to compare.

    Its first 32 hex digits are the key id (keys/keyid.py).
    """
    digest = hashlib.sha256(b"ed25519\n" + bytes(root_key)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def decode_directory(
    data: bytes, *, pinned_root: VerifyKey | None, now: datetime | None
) -> PartyDirectory:
    """Verify and decode a signed Party directory, or raise a ``KeysError``.

    ``pinned_root`` None means first import: the signature is checked against the root
    key inside the document, and a person must compare ``root_fingerprint`` out of band
    before pinning it. ``now`` None skips the freshness check; use it only to re-load a
    directory that was accepted earlier (a kept history version, now expired).

    Steps (docs/keys.md, "Decoding"): (1) size bound, (2) strict DER, (3) format version,
    (4) root key equals the pinned one, (5) signature, (6) every field rule,
    (7) issued - CLOCK_SKEW <= now < expires.
    """
    what = "party directory"
    tbs, signature = signed.open_signed(schema.SignedDirectory, data, MAX_DIRECTORY_SIZE, what)
    # (4)
    raw_root = check_key_bytes(tbs["root_key"].native, "root_key")
    if pinned_root is not None and raw_root != bytes(pinned_root):
        raise RootMismatch(f"{what}: root key is not the pinned root key")
    root = pinned_root if pinned_root is not None else VerifyKey(raw_root)
    # (5) Before any field is interpreted.
    signed.verify(root, signed.DIRECTORY_CONTEXT, tbs.dump(), signature, what)
    # (6)
    if len(tbs["authorities"]) > MAX_AUTHORITIES:
        raise LimitExceeded(f"{what}: more than {MAX_AUTHORITIES} authorities")
    native = tbs.native
    node = native["node"]
    directory = PartyDirectory(
        party=native["party"],
        version=native["version"],
        issued=native["issued"],
        expires=native["expires"],
        root_key=root,
        node=NodeIdentity(
            node_key=VerifyKey(check_key_bytes(node["node_key"], "node_key")),
            witness_key=VerifyKey(check_key_bytes(node["witness_key"], "witness_key")),
            tls_cert_sha256=node["tls_cert_sha256"],
            url=node["url"],
            ledger_origin=node["ledger_origin"],
        ),
        authorities=tuple(
            Authority(
                id=a["id"],
                name_ru=a["name_ru"],
                name_lat=a["name_lat"],
                encryption_key=PublicKey(check_key_bytes(a["encryption_key"], "encryption_key")),
                valid_from=a["valid_from"],
                valid_until=a["valid_until"],
            )
            for a in native["authorities"]
        ),
    )
    # (7)
    if now is not None:
        directory.check_fresh(now)
    return directory


class DirectoryHistory:
    """Every version of one Party's directory under one pinned root key (A2.2).

    A new version must be higher than every version held; the version in force at T is
    the highest one issued at or before T, and it must not have expired by T.
    """

    def __init__(self, root_key: VerifyKey) -> None:
        if not isinstance(root_key, VerifyKey):
            raise TypeError("root_key must be an Ed25519 VerifyKey")
        self.root_key = root_key
        self._versions: dict[int, PartyDirectory] = {}

    def add(self, directory: PartyDirectory) -> bool:
        """Keep ``directory``; True if new, False if this exact version was already held."""
        if not isinstance(directory, PartyDirectory):
            raise TypeError("add() takes a PartyDirectory")
        if directory.root_key != self.root_key:
            raise RootMismatch("directory root key is not the pinned root key")
        known = self._versions.get(directory.version)
        if known is not None:
            if known == directory:
                return False
            raise DirectoryConflict(
                f"directory {directory.party} version {directory.version} was already "
                "received with different content"
            )
        if self._versions:
            latest = self.current
            if directory.party != latest.party:
                raise InvalidDocument(
                    f"directory of party {directory.party} added to the history of {latest.party}"
                )
            if directory.version < latest.version:
                raise StaleDirectory(
                    f"directory version {directory.version} is lower than version "
                    f"{latest.version} already held"
                )
            if directory.issued < latest.issued:
                raise StaleDirectory(
                    f"directory version {directory.version} is issued before version "
                    f"{latest.version} that it would replace"
                )
        self._versions[directory.version] = directory
        return True

    @property
    def current(self) -> PartyDirectory:
        """The highest version held."""
        if not self._versions:
            raise NoDirectory("no directory has been received")
        return self._versions[max(self._versions)]

    def versions(self) -> tuple[PartyDirectory, ...]:
        """Every version held, lowest first."""
        return tuple(self._versions[v] for v in sorted(self._versions))

    def in_force(self, at: datetime) -> PartyDirectory:
        _check_instant(at)
        for directory in reversed(self.versions()):
            if directory.issued <= at:
                if at >= directory.expires:
                    raise DirectoryExpired(
                        f"directory {directory.party} version {directory.version}, the latest "
                        f"issued by {at.isoformat()}, had expired by then"
                    )
                return directory
        raise NoDirectory(f"no directory version was issued by {at.isoformat()}")

    def authority(self, id: str, at: datetime) -> Authority:
        """The authority ``id`` under the directory version in force at ``at`` (A2.2)."""
        return self.in_force(at).authority(id, at)


def _check_instant(at: datetime) -> None:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise TypeError("times must be timezone-aware datetimes")
