"""Ledger entries: the event type registry, the ``Event`` a node records, and its DER.

The ASN.1 module (docs/ledger.md holds the same text)::

    LedgerEntry ::= SEQUENCE {
        prevLeafHash    OCTET STRING (SIZE (32)),  -- leaf hash of entry index-1; zeros for 0
        index           INTEGER (0..MAX),
        type            INTEGER (1..65535),        -- the event type registry below
        time            GeneralizedTime,           -- UTC ("Z"), fraction only if non-zero
        envelopeId      [0] IMPLICIT OCTET STRING (SIZE (16)) OPTIONAL,
        caseId          [1] IMPLICIT OCTET STRING (SIZE (16)) OPTIONAL,
        fromAuthority   [2] IMPLICIT VisibleString OPTIONAL,
        toAuthority     [3] IMPLICIT VisibleString OPTIONAL,
        envelopeHash    [4] IMPLICIT OCTET STRING (SIZE (32)) OPTIONAL,
        signatoryKeyId  [5] IMPLICIT OCTET STRING (SIZE (16)) OPTIONAL,
        details         [6] IMPLICIT SEQUENCE SIZE (1..16) OF Detail OPTIONAL
    }
    Detail ::= SEQUENCE { key VisibleString, value DetailValue }
    DetailValue ::= CHOICE { token VisibleString, number INTEGER }

No field can hold free text: ids and hashes are fixed-size bytes, authorities match
``AUTHORITY_RE``, and a detail is a key and a token (``TOKEN_RE``, or an authority id)
or a bounded integer. This is how "no personal data in the ledger" holds by
construction: a name, a sentence or a Cyrillic word is refused before it is stored.

Speed. asn1crypto builds a 10-field SEQUENCE from a dict in about 100 µs, which alone
would cap a ledger at some 10,000 appends a second. A DER SEQUENCE's contents are its
fields' encodings in order, so ``encode_event`` has asn1crypto's own TLV writer
(``asn1crypto.parser.emit``, about 1 µs) write each field, writes the tag-and-length
bytes of the fixed-size fields once at import (with that same writer), and keeps the
encodings of repeated values (type numbers, authorities, token details, the last time).
The one value it formats itself is the GeneralizedTime text, exactly as asn1crypto's
class does. Tests check the bytes equal asn1crypto's encoding of the full schema, and
``decode_entry`` decodes through the schema and re-encodes to compare.

The first two fields are fixed so that an auditor can check the hash chain and the
index without decoding the rest: every entry's contents start with the 34 bytes
``0x04 0x20 || prevLeafHash`` followed by the DER INTEGER ``index`` (see audit.py).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import core, parser
from asn1crypto.util import int_to_bytes

from ledger.errors import BadEntry, BadEvent, FreeTextRefused, LedgerError, UnknownEventType
from ledger.hashing import HASH_SIZE, hash_leaf

ID_SIZE = 16
MAX_DETAILS = 16
MAX_ENTRY_SIZE = 4096  # the largest valid entry is about 2,600 bytes
DETAIL_INT_MIN, DETAIL_INT_MAX = -(2**63), 2**63 - 1
ZERO_HASH = bytes(HASH_SIZE)

TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_.:+-]{0,63}")
AUTHORITY_RE = re.compile(r"[A-Z]{2}-[A-Z0-9]{2,16}")

# The event type registry. Numbers are public and never reused; names are what the
# node passes in ``Event.type``. Ranges: 1-15 envelope flow, 16-31 setup and trust,
# 32-47 cases and deadlines, 48-63 consent and retention, 64-79 ledger and operations;
# 80-32767 unassigned (a later revision of docs/ledger.md assigns them); 32768-65535
# private use (a conforming node never writes them; decoders here reject them).
EVENT_TYPES: Mapping[str, int] = {
    "submitted": 1,
    "forwarded": 2,
    "received_from_peer": 3,
    "receipt": 4,
    "delivered_to_agency": 5,
    "acknowledged": 6,
    "rejected": 7,
    "signatory_list_sent": 16,
    "signatory_list_received": 17,
    "signatory_list_in_force": 18,
    "directory_changed": 19,
    "case_state_changed": 32,
    "deadline_passed": 33,
    "setup_overdue": 34,
    "termination_received": 35,
    "consent_asked": 48,
    "consent_decided": 49,
    "destroyed": 50,
    "checkpoint_cosigned": 64,
    "operator_action": 65,
    "alarm": 66,
}
EVENT_NAMES: Mapping[int, str] = {number: name for name, number in EVENT_TYPES.items()}

DetailValue = str | int
Details = tuple[tuple[str, DetailValue], ...]


# --- the event ---------------------------------------------------------------------------


def _check_bytes(name: str, value: bytes | None, size: int) -> None:
    if value is not None and (not isinstance(value, bytes) or len(value) != size):
        raise BadEvent(f"{name} must be {size} bytes")


def _check_authority(name: str, value: str | None) -> None:
    if value is not None and not (isinstance(value, str) and AUTHORITY_RE.fullmatch(value)):
        raise BadEvent(f"{name} is not an authority id like KZ-MVD")


# Details made only of tokens repeat from event to event ((kind, request) …): the ones
# found valid are kept, up to a bound, so that each is checked once.
_VALID_DETAILS: dict[Details, Details] = {}
_MAX_VALID_DETAILS = 4096


def _checked_details(details: Any) -> Details:
    if type(details) is tuple:
        try:
            known = _VALID_DETAILS.get(details)
        except TypeError:  # unhashable: not made of tokens; checked below
            known = None
        if known is not None:
            return known
    pairs = _check_details(details)
    if len(_VALID_DETAILS) < _MAX_VALID_DETAILS and \
            all(type(value) is str for _key, value in pairs):
        _VALID_DETAILS[pairs] = pairs
    return pairs


def _check_details(details: Any) -> Details:
    try:
        pairs = tuple((key, value) for key, value in details)
    except (TypeError, ValueError):
        raise BadEvent("details must be (key, value) pairs") from None
    if len(pairs) > MAX_DETAILS:
        raise BadEvent(f"{len(pairs)} details; at most {MAX_DETAILS}")
    seen = set()
    for position, (key, value) in enumerate(pairs):
        # Neither the key nor the value is quoted: either may be the free text refused.
        if not (isinstance(key, str) and TOKEN_RE.fullmatch(key)):
            raise FreeTextRefused(f"detail {position}: the key is not a token "
                                  "([a-z0-9][a-z0-9_.:+-], at most 64 characters)")
        if key in seen:
            raise BadEvent(f"detail {position}: key {key!r} repeated")
        seen.add(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadEvent(f"detail {key!r}: the value must be a token or an integer")
        if isinstance(value, int):
            if not DETAIL_INT_MIN <= value <= DETAIL_INT_MAX:
                raise BadEvent(f"detail {key!r}: the integer is outside 64 bits")
        elif not (TOKEN_RE.fullmatch(value) or AUTHORITY_RE.fullmatch(value)):
            raise FreeTextRefused(
                f"detail {key!r}: the value is not a token ([a-z0-9][a-z0-9_.:+-], at most "
                "64 characters) nor an authority id; free text, spaces, capitals and "
                "Cyrillic are never stored in the ledger")
    return pairs


@dataclass(frozen=True)
class Event:
    """What happened, with identifiers, hashes and a time: never personal data.

    ``time`` must be timezone-aware; it is kept in UTC. ``details`` are
    ``(key, value)`` pairs: keys are tokens, values tokens, authority ids or integers.
    """

    type: str
    time: datetime
    envelope_id: bytes | None = None
    case_id: bytes | None = None
    from_authority: str | None = None
    to_authority: str | None = None
    envelope_hash: bytes | None = None
    signatory_key_id: bytes | None = None
    details: Details = ()

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise UnknownEventType("event type is not in the registry (docs/ledger.md)")
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise BadEvent("time must be a timezone-aware datetime")
        if self.time.tzinfo is not UTC:
            object.__setattr__(self, "time", self.time.astimezone(UTC))
        _check_bytes("envelope_id", self.envelope_id, ID_SIZE)
        _check_bytes("case_id", self.case_id, ID_SIZE)
        _check_bytes("envelope_hash", self.envelope_hash, HASH_SIZE)
        _check_bytes("signatory_key_id", self.signatory_key_id, ID_SIZE)
        _check_authority("from_authority", self.from_authority)
        _check_authority("to_authority", self.to_authority)
        object.__setattr__(self, "details", _checked_details(self.details))


@dataclass(frozen=True)
class StoredEntry:
    """An event as the ledger holds it: its place, its chain link, its exact bytes."""

    index: int
    prev_leaf_hash: bytes
    event: Event
    der: bytes
    leaf_hash: bytes

    def as_json(self) -> dict[str, Any]:
        """The JSON form of docs/ledger.md: hashes and bytes in base64, ids in hex."""
        event = self.event

        def hexed(value: bytes | None) -> str | None:
            return None if value is None else value.hex()

        return {
            "index": self.index,
            "entry": _b64(self.der),
            "leaf_hash": _b64(self.leaf_hash),
            "prev_leaf_hash": _b64(self.prev_leaf_hash),
            "type": event.type,
            "time": event.time.isoformat().replace("+00:00", "Z"),
            "envelope_id": hexed(event.envelope_id),
            "case_id": hexed(event.case_id),
            "from_authority": event.from_authority,
            "to_authority": event.to_authority,
            "envelope_hash": None if event.envelope_hash is None else _b64(event.envelope_hash),
            "signatory_key_id": hexed(event.signatory_key_id),
            "details": dict(event.details),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the schema (asn1crypto) -------------------------------------------------------------


class _DetailValue(core.Choice):  # type: ignore[misc]
    _alternatives = [("token", core.VisibleString), ("number", core.Integer)]


class _Detail(core.Sequence):  # type: ignore[misc]
    _fields = [("key", core.VisibleString), ("value", _DetailValue)]


class _Details(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Detail


class LedgerEntrySchema(core.Sequence):  # type: ignore[misc]
    """``LedgerEntry`` as asn1crypto sees it (field names as in ``Event``)."""

    _fields = [
        ("prev_leaf_hash", core.OctetString),
        ("index", core.Integer),
        ("type", core.Integer),
        ("time", core.GeneralizedTime),
        ("envelope_id", core.OctetString, {"implicit": 0, "optional": True}),
        ("case_id", core.OctetString, {"implicit": 1, "optional": True}),
        ("from_authority", core.VisibleString, {"implicit": 2, "optional": True}),
        ("to_authority", core.VisibleString, {"implicit": 3, "optional": True}),
        ("envelope_hash", core.OctetString, {"implicit": 4, "optional": True}),
        ("signatory_key_id", core.OctetString, {"implicit": 5, "optional": True}),
        ("details", _Details, {"implicit": 6, "optional": True}),
    ]


# --- encoding ----------------------------------------------------------------------------
#
# ``parser.emit(class, method, tag, contents)`` is asn1crypto's own TLV writer (what its
# classes call inside ``dump``): it chooses the length form. The tags below are those of
# ``LedgerEntrySchema``; tests compare the result with that schema's own encoding.

_UNIVERSAL, _CONTEXT = 0, 2
_PRIMITIVE, _CONSTRUCTED = 0, 1
_INTEGER, _OCTET_STRING, _SEQUENCE, _GENERALIZED_TIME, _VISIBLE_STRING = 2, 4, 16, 24, 26


def _integer(value: int) -> bytes:
    return parser.emit(_UNIVERSAL, _PRIMITIVE, _INTEGER, int_to_bytes(value, signed=True))  # type: ignore[no-any-return]


def _octets(value: bytes, tag: int) -> bytes:
    return parser.emit(_CONTEXT, _PRIMITIVE, tag, value)  # type: ignore[no-any-return]


def _visible(value: str, tag: int | None = None) -> bytes:
    if tag is None:
        return parser.emit(_UNIVERSAL, _PRIMITIVE, _VISIBLE_STRING, value.encode("ascii"))  # type: ignore[no-any-return]
    return parser.emit(_CONTEXT, _PRIMITIVE, tag, value.encode("ascii"))  # type: ignore[no-any-return]


def _prev_field(prev_leaf_hash: bytes) -> bytes:
    return parser.emit(_UNIVERSAL, _PRIMITIVE, _OCTET_STRING, prev_leaf_hash)  # type: ignore[no-any-return]


# Every entry's contents start with ``PREV_HEADER || prevLeafHash``, then ``index_field``.
PREV_HEADER = _prev_field(ZERO_HASH)[:-HASH_SIZE]
PREV_FIELD_SIZE = len(PREV_HEADER) + HASH_SIZE
index_field = _integer

_TYPE_DER = {name: _integer(number) for name, number in EVENT_TYPES.items()}
# Authorities and (key, token) details repeat from event to event: their encodings are
# kept, up to a bound (a dict is safe to share between threads).
_CACHED: dict[tuple[str, str | int], bytes] = {}
_MAX_CACHED = 4096
_last_time: tuple[datetime, bytes] = (datetime.min.replace(tzinfo=UTC), b"")


def _cached(key: tuple[str, str | int], encode: Callable[[], bytes]) -> bytes:
    der = _CACHED.get(key)
    if der is None:
        der = encode()
        if len(_CACHED) < _MAX_CACHED:
            _CACHED[key] = der
    return der


def _time(value: datetime) -> bytes:
    """GeneralizedTime of a UTC time: the text ``asn1crypto.core.GeneralizedTime.set``
    writes (seconds, a fraction only when non-zero and without trailing zeroes, ``Z``),
    in asn1crypto's TLV. Its own class takes 8 µs, half of an event's encoding; tests
    check both give the same bytes."""
    global _last_time
    last = _last_time  # one read: another thread may replace it meanwhile
    if last[0] == value:  # a unit of work often records several events at one instant
        return last[1]
    text = value.strftime("%Y%m%d%H%M%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    der: bytes = parser.emit(_UNIVERSAL, _PRIMITIVE, _GENERALIZED_TIME, (text + "Z").encode())
    _last_time = (value, der)
    return der


def _authority(value: str, tag: int) -> bytes:
    return _cached((value, tag), lambda: _visible(value, tag))


def _detail(key: str, value: DetailValue) -> bytes:
    if isinstance(value, int):
        key_der = _cached((f"key:{key}", 0), lambda: _visible(key))
        return parser.emit(_UNIVERSAL, _CONSTRUCTED, _SEQUENCE,  # type: ignore[no-any-return]
                           key_der + _integer(value))
    return _cached((f"detail:{key}", value), lambda: parser.emit(
        _UNIVERSAL, _CONSTRUCTED, _SEQUENCE, _visible(key) + _visible(value)))


# The fixed-size fields always have the same tag and length: asn1crypto writes those
# header bytes once, here, and each event only appends its value to them.
_ID_HEADERS = {tag: _octets(bytes(ID_SIZE), tag)[:-ID_SIZE] for tag in (0, 1, 5)}
_HASH_HEADER = _octets(bytes(HASH_SIZE), 4)[:-HASH_SIZE]


def encode_event(event: Event) -> bytes:
    """The DER of every field after ``index``: the part of an entry known before it has
    a place in the log (so it is built by the caller, outside the writer)."""
    parts = [_TYPE_DER[event.type], _time(event.time)]
    if event.envelope_id is not None:
        parts.append(_ID_HEADERS[0] + event.envelope_id)
    if event.case_id is not None:
        parts.append(_ID_HEADERS[1] + event.case_id)
    if event.from_authority is not None:
        parts.append(_authority(event.from_authority, 2))
    if event.to_authority is not None:
        parts.append(_authority(event.to_authority, 3))
    if event.envelope_hash is not None:
        parts.append(_HASH_HEADER + event.envelope_hash)
    if event.signatory_key_id is not None:
        parts.append(_ID_HEADERS[5] + event.signatory_key_id)
    if event.details:
        details = b"".join(_detail(key, value) for key, value in event.details)
        parts.append(parser.emit(_CONTEXT, _CONSTRUCTED, 6, details))
    return b"".join(parts)


def entry_prefix(index: int, prev_leaf_hash: bytes) -> bytes:
    """The DER of the first two fields: what the hash chain and the position fix."""
    return PREV_HEADER + prev_leaf_hash + _integer(index)


def encode_entry(index: int, prev_leaf_hash: bytes, event_der: bytes) -> bytes:
    """The entry DER, from ``encode_event``'s output and the entry's place in the log."""
    if index < 0 or len(prev_leaf_hash) != HASH_SIZE:
        raise BadEntry("an entry needs an index >= 0 and a 32-byte previous leaf hash")
    contents = entry_prefix(index, prev_leaf_hash) + event_der
    return parser.emit(_UNIVERSAL, _CONSTRUCTED, _SEQUENCE, contents)  # type: ignore[no-any-return]


# --- decoding ----------------------------------------------------------------------------


def _event_from_native(native: dict[str, Any]) -> Event:
    number = native["type"]
    if number not in EVENT_NAMES:
        raise UnknownEventType(f"event type {number} is not in the registry")
    raw_details = native["details"]
    if raw_details is not None and not raw_details:
        raise BadEntry("details is present but empty (DER leaves it out)")
    details = tuple((d["key"], d["value"]) for d in raw_details or ())
    return Event(
        type=EVENT_NAMES[number],
        time=native["time"],
        envelope_id=native["envelope_id"],
        case_id=native["case_id"],
        from_authority=native["from_authority"],
        to_authority=native["to_authority"],
        envelope_hash=native["envelope_hash"],
        signatory_key_id=native["signatory_key_id"],
        details=details,
    )


def decode_entry(der: bytes) -> StoredEntry:
    """Strictly decode one entry: DER only, no trailing bytes, every field in range."""
    if len(der) > MAX_ENTRY_SIZE:
        raise BadEntry(f"entry is {len(der)} bytes; the limit is {MAX_ENTRY_SIZE}")
    try:
        native = LedgerEntrySchema.load(der, strict=True).native
    # asn1crypto has no exception contract for hostile input (ValueError, TypeError,
    # OverflowError … all occur): any failure here means "not an entry".
    except Exception as e:
        raise BadEntry(f"not a DER ledger entry ({type(e).__name__})") from None
    try:
        event = _event_from_native(native)
    except LedgerError as e:
        raise BadEntry(f"entry holds an invalid event ({e.code})") from None
    index, prev = native["index"], native["prev_leaf_hash"]
    if index < 0 or len(prev) != HASH_SIZE:
        raise BadEntry("entry index is negative or its previous leaf hash is not 32 bytes")
    if encode_entry(index, prev, encode_event(event)) != der:
        raise BadEntry("entry is not DER (a non-canonical encoding)")
    return StoredEntry(index=index, prev_leaf_hash=prev, event=event, der=der,
                       leaf_hash=hash_leaf(der))
