"""Signatory lists (A9.3, A9.4): who may sign for an authority, and when.

A signatory list is a DER document signed by the Party's root key. It names one
authority, carries a version and the time it takes effect, the signatories (Ed25519 key,
full name in Cyrillic and Latin, role, validity) and the official form samples
(file name, media type, SHA-256 of the file).

Every version received is kept: an envelope is judged by the list in force at its
created time (signing-time semantics, docs/keys.md), so an old envelope stays
verifiable after its signatory has been revoked. The version in force at T is the
highest version whose effective time is at or before T.

Names of signatories are personal data of officials: they never appear in an error
message or a ``repr``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal, TypeVar

from nacl.signing import SigningKey, VerifyKey

from keys import schema, signed
from keys.errors import (
    InvalidDocument,
    LimitExceeded,
    NoSignatoryList,
    SignatoryListConflict,
    SignatoryNotInForce,
    UnknownSignatory,
)
from keys.fields import (
    Party,
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

Role = Literal["head", "deputy", "authorised"]
ROLES: tuple[Role, ...] = ("head", "deputy", "authorised")

MAX_LIST_SIZE = 1024 * 1024
MAX_SIGNATORIES = 1000
MAX_FORMS = 100
MAX_FILE_NAME_CHARS = 255
MAX_MEDIA_TYPE_CHARS = 127

# RFC 6838 §4.2 restricted names, lower case: "type/subtype".
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


@dataclass(frozen=True)
class Signatory:
    """One person allowed to sign for the authority, with the key they sign with."""

    key: VerifyKey
    name_cyrillic: str = field(repr=False)
    name_latin: str = field(repr=False)
    role: Role
    valid_from: datetime
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, VerifyKey):
            raise InvalidDocument("signatory key must be an Ed25519 verify key")
        check_cyrillic(self.name_cyrillic, "signatory name_cyrillic")
        check_latin(self.name_latin, "signatory name_latin")
        if self.role not in ROLES:
            raise InvalidDocument("signatory role must be head, deputy or authorised")
        check_validity(self.valid_from, self.valid_until, "signatory")

    @cached_property
    def key_id(self) -> bytes:
        return key_id(self.key)


@dataclass(frozen=True)
class FormSample:
    """An official form (letterhead) sample, bound by the hash of its file (A9.3)."""

    file_name: str
    media_type: str
    sha256: bytes

    def __post_init__(self) -> None:
        _check_file_name(self.file_name)
        if not isinstance(self.media_type, str) or not (
            len(self.media_type) <= MAX_MEDIA_TYPE_CHARS and _MEDIA_TYPE.fullmatch(self.media_type)
        ):
            raise InvalidDocument("form media_type must be a lower-case type/subtype")
        check_key_bytes(self.sha256, "form sha256")


def _check_file_name(name: object) -> None:
    if not isinstance(name, str):
        raise InvalidDocument("form file_name must be text")
    if not 1 <= len(name) <= MAX_FILE_NAME_CHARS:
        raise LimitExceeded(f"form file_name must be 1 to {MAX_FILE_NAME_CHARS} characters")
    if (
        unicodedata.normalize("NFC", name) != name
        or name in (".", "..")
        or name != name.strip()
        or any(ch in "/\\" or unicodedata.category(ch).startswith("C") for ch in name)
    ):
        raise InvalidDocument(
            "form file_name must be one NFC path component without control characters"
        )


@dataclass(frozen=True)
class SignatoryList:
    """One version of one authority's signatory list. Constructing it checks every rule."""

    party: Party
    authority: str
    version: int
    effective: datetime
    signatories: tuple[Signatory, ...]
    forms: tuple[FormSample, ...] = ()

    def __post_init__(self) -> None:
        check_party(self.party)
        check_authority_id(self.authority, self.party)
        check_version(self.version)
        check_time(self.effective, "effective")
        signatories = _as_tuple(self.signatories, Signatory, "signatories", MAX_SIGNATORIES)
        forms = _as_tuple(self.forms, FormSample, "forms", MAX_FORMS)
        if len({bytes(s.key) for s in signatories}) != len(signatories):
            raise InvalidDocument(f"{self.authority} list: a signatory key appears twice")
        if len({f.file_name for f in forms}) != len(forms):
            raise InvalidDocument(f"{self.authority} list: a form file name appears twice")
        # Lists passed in are frozen here, so the object stays immutable and hashable.
        object.__setattr__(self, "signatories", signatories)
        object.__setattr__(self, "forms", forms)

    @cached_property
    def _by_key_id(self) -> dict[bytes, Signatory]:
        # A node asks once per envelope; hashing up to 1,000 keys each time would show.
        return {signatory.key_id: signatory for signatory in self.signatories}

    def find(self, key_id_: bytes) -> Signatory | None:
        """The entry for the key with this id, or None if the key is not on this version."""
        return self._by_key_id.get(bytes(key_id_))

    def tbs(self) -> bytes:
        """DER of the SignatoryListTBS: the bytes the root key signs (after the context)."""
        value = schema.SignatoryListTBS(
            {
                "format_version": schema.FORMAT_V1,
                "party": self.party,
                "authority": self.authority,
                "version": self.version,
                "effective": self.effective,
                "signatories": [_signatory_value(s) for s in self.signatories],
                "forms": [
                    {"file_name": f.file_name, "media_type": f.media_type, "sha256": f.sha256}
                    for f in self.forms
                ],
            }
        )
        der: bytes = value.dump()
        return der

    def sign(self, root: SigningKey) -> bytes:
        """DER of SignedSignatoryList {tbs, signature} under the Party's root key."""
        tbs = self.tbs()
        signature = signed.sign(root, signed.SIGNATORY_LIST_CONTEXT, tbs)
        value = schema.SignedSignatoryList(
            {"tbs": schema.SignatoryListTBS.load(tbs), "signature": signature}
        )
        der: bytes = value.dump()
        return der


_Entry = TypeVar("_Entry", Signatory, FormSample)


def _as_tuple(items: object, kind: type[_Entry], what: str, limit: int) -> tuple[_Entry, ...]:
    if not isinstance(items, tuple | list):
        raise InvalidDocument(f"{what} must be a tuple")
    if len(items) > limit:
        raise LimitExceeded(f"{what}: {len(items)} entries is over the limit of {limit}")
    if not all(isinstance(item, kind) for item in items):
        raise InvalidDocument(f"{what} must hold {kind.__name__} entries")
    return tuple(items)


def _signatory_value(s: Signatory) -> dict[str, object]:
    value: dict[str, object] = {
        "key": bytes(s.key),
        "name_cyrillic": s.name_cyrillic,
        "name_latin": s.name_latin,
        "role": s.role,
        "valid_from": s.valid_from,
    }
    if s.valid_until is not None:
        value["valid_until"] = s.valid_until
    return value


def decode_signatory_list(data: bytes, *, root_key: VerifyKey) -> SignatoryList:
    """Verify and decode a signed signatory list, or raise a ``KeysError``.

    Steps (docs/keys.md, "Decoding"): (1) size bound, (2) strict DER, (3) format version,
    (4) signature under ``root_key``, (5) every field rule.
    """
    what = "signatory list"
    tbs, signature = signed.open_signed(schema.SignedSignatoryList, data, MAX_LIST_SIZE, what)
    # (4) Before any field is interpreted.
    signed.verify(root_key, signed.SIGNATORY_LIST_CONTEXT, tbs.dump(), signature, what)
    # (5) The constructors check every rule; the counts first, before building entries.
    n_signatories, n_forms = len(tbs["signatories"]), len(tbs["forms"])
    if n_signatories > MAX_SIGNATORIES or n_forms > MAX_FORMS:
        raise LimitExceeded(f"{what}: more than {MAX_SIGNATORIES} signatories or {MAX_FORMS} forms")
    native = tbs.native
    return SignatoryList(
        party=native["party"],
        authority=native["authority"],
        version=native["version"],
        effective=native["effective"],
        signatories=tuple(
            Signatory(
                key=VerifyKey(check_key_bytes(s["key"], "signatory key")),
                name_cyrillic=s["name_cyrillic"],
                name_latin=s["name_latin"],
                role=s["role"],
                valid_from=s["valid_from"],
                valid_until=s["valid_until"],
            )
            for s in native["signatories"]
        ),
        forms=tuple(
            FormSample(file_name=f["file_name"], media_type=f["media_type"], sha256=f["sha256"])
            for f in native["forms"]
        ),
    )


def _in_force(signatory: Signatory, at: datetime) -> bool:
    return signatory.valid_from <= at and (
        signatory.valid_until is None or at < signatory.valid_until
    )


class SignatoryRegistry:
    """Every version received of every authority's signatory list (A9.3, A9.4).

    Answers one question: was key K authorised to sign for authority X at time T?
    An empty list in force rejects every key.
    """

    def __init__(self) -> None:
        self._lists: dict[str, dict[int, SignatoryList]] = {}

    def add(self, lst: SignatoryList) -> bool:
        """Keep ``lst``; True if it is new, False if this exact version was already held.

        A version number re-used with other content, or a version whose effective time is
        out of order with the versions around it, raises ``SignatoryListConflict``.
        """
        if not isinstance(lst, SignatoryList):
            raise TypeError("add() takes a SignatoryList")
        held = self._lists.get(lst.authority, {})
        known = held.get(lst.version)
        if known is not None:
            if known == lst:
                return False
            raise SignatoryListConflict(
                f"{lst.authority} list version {lst.version} was already received "
                "with different content"
            )
        for other in held.values():
            earlier_but_later = other.version < lst.version and other.effective > lst.effective
            later_but_earlier = other.version > lst.version and other.effective < lst.effective
            if earlier_but_later or later_but_earlier:
                raise SignatoryListConflict(
                    f"{lst.authority} list version {lst.version} takes effect out of order "
                    f"with version {other.version}"
                )
        self._lists.setdefault(lst.authority, {})[lst.version] = lst
        return True

    def versions(self, authority: str) -> tuple[SignatoryList, ...]:
        """Every version held for ``authority``, lowest first (empty if none)."""
        held = self._lists.get(authority, {})
        return tuple(held[v] for v in sorted(held))

    def in_force(self, authority: str, at: datetime) -> SignatoryList:
        """The highest version whose effective time is at or before ``at``."""
        _check_instant(at)
        for lst in reversed(self.versions(authority)):
            if lst.effective <= at:
                return lst
        raise NoSignatoryList(f"no signatory list of {authority} was in force at {_iso(at)}")

    def authorised_key(self, authority: str, key_id: bytes, at: datetime) -> Signatory:
        """The entry that authorised key ``key_id`` to sign for ``authority`` at ``at``.

        Raises ``NoSignatoryList``, ``UnknownSignatory`` or ``SignatoryNotInForce``.
        """
        current = self.in_force(authority, at)
        entry = current.find(key_id)
        if entry is not None and _in_force(entry, at):
            return entry
        key = bytes(key_id).hex()
        if entry is not None:
            raise SignatoryNotInForce(
                f"key {key} is on version {current.version} of the {authority} list "
                f"but not valid at {_iso(at)}"
            )
        if any(lst.find(key_id) is not None for lst in self.versions(authority)):
            raise SignatoryNotInForce(
                f"key {key} is not on version {current.version} of the {authority} list, "
                f"in force at {_iso(at)}"
            )
        raise UnknownSignatory(f"key {key} is on no version of the {authority} signatory list")


def _check_instant(at: datetime) -> None:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise TypeError("times must be timezone-aware datetimes")


def _iso(at: datetime) -> str:
    return at.isoformat()
