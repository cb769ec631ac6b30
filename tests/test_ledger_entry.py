"""Ledger entries: the registry, the no-personal-data rule by construction (A6.1, A11.1,
A11.5), and the DER encoding (equal to asn1crypto's encoding of the schema, strictly
decoded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from asn1crypto import core, parser
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entry import (
    EVENT_NAMES,
    EVENT_TYPES,
    MAX_DETAILS,
    MAX_ENTRY_SIZE,
    ZERO_HASH,
    Event,
    LedgerEntrySchema,
    decode_entry,
    encode_entry,
    encode_event,
)
from ledger.errors import BadEntry, BadEvent, FreeTextRefused, UnknownEventType
from ledger.hashing import hash_leaf

T0 = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)

# The registry the node relies on: issue 3 item 1, the node's own events, and A17's
# termination notice.
REQUIRED_TYPES = {
    "submitted", "forwarded", "received_from_peer", "receipt", "delivered_to_agency",
    "acknowledged", "rejected", "signatory_list_sent", "signatory_list_received",
    "signatory_list_in_force", "directory_changed", "case_state_changed", "deadline_passed",
    "setup_overdue", "termination_received", "consent_asked", "consent_decided",
    "destroyed", "checkpoint_cosigned", "operator_action", "alarm",
}

# The full example of docs/ledger.md ("Example"): entry 7 of some ledger.
EXAMPLE_EVENT = Event(
    type="submitted",
    time=T0,
    envelope_id=bytes(range(16)),
    case_id=bytes(range(16, 32)),
    from_authority="KZ-MVD",
    to_authority="BY-MVD",
    envelope_hash=bytes(range(32, 64)),
    signatory_key_id=bytes(range(64, 80)),
    details=(("kind", "request"), ("attempt", 1)),
)
EXAMPLE_PREV = bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
EXAMPLE_DER = bytes.fromhex(
    "3081c504206e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d020107"
    "020101181232303236303330343035303630372e38395a8010000102030405060708090a0b0c0d0e"
    "0f8110101112131415161718191a1b1c1d1e1f82064b5a2d4d5644830642592d4d56448420202122"
    "232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f8510404142434445464748"
    "494a4b4c4d4e4fa61f300f1a046b696e641a0772657175657374300c1a07617474656d7074020101")


def _schema_encoding(index: int, prev: bytes, event: Event) -> bytes:
    """asn1crypto's own encoding of the full schema: the reference for the fast path."""
    native = {
        "prev_leaf_hash": prev, "index": index, "type": EVENT_TYPES[event.type],
        "time": event.time, "envelope_id": event.envelope_id, "case_id": event.case_id,
        "from_authority": event.from_authority, "to_authority": event.to_authority,
        "envelope_hash": event.envelope_hash, "signatory_key_id": event.signatory_key_id,
        "details": [{"key": k, "value": ("number", v) if isinstance(v, int) else ("token", v)}
                    for k, v in event.details] or None,
    }
    return LedgerEntrySchema({k: v for k, v in native.items() if v is not None}).dump()  # type: ignore[no-any-return]


# --- the registry ------------------------------------------------------------------------


def test_registry_covers_every_event_the_issue_names() -> None:
    assert set(EVENT_TYPES) == REQUIRED_TYPES
    assert len(set(EVENT_TYPES.values())) == len(EVENT_TYPES)
    assert all(1 <= number < 80 for number in EVENT_TYPES.values())  # assigned ranges only
    assert {EVENT_NAMES[n]: n for n in EVENT_NAMES} == dict(EVENT_TYPES)


def test_unknown_type_refused() -> None:
    with pytest.raises(UnknownEventType) as caught:
        Event(type="gossip", time=T0)
    assert caught.value.code == "ledger.unknown_event_type"


# --- no personal data, by construction ---------------------------------------------------


@pytest.mark.parametrize("value", [
    "Ivanov Ivan",          # free text with a space
    "Иванов",               # Cyrillic (A6.1 names are written in Cyrillic and Latin)
    "Zhaksylykova",         # a capitalised name
    "passport no 1234567",  # a sentence
    "a" * 65,               # longer than a token
    "",                     # empty
    "line\nbreak",
])
def test_free_text_detail_is_refused_and_never_echoed(value: str) -> None:
    """A11.5: the ledger outlives destruction, so nothing in it may be personal data."""
    with pytest.raises(FreeTextRefused) as caught:
        Event(type="operator_action", time=T0, details=(("note", value),))
    assert caught.value.code == "ledger.free_text_refused"
    if value:
        assert value not in caught.value.message


@pytest.mark.parametrize("key", ["Surname", "имя", "date of birth", "", "x" * 65])
def test_free_text_key_is_refused_and_never_echoed(key: str) -> None:
    with pytest.raises(FreeTextRefused) as caught:
        Event(type="operator_action", time=T0, details=((key, "x"),))
    if key:
        assert key not in caught.value.message


def test_tokens_authorities_and_bounded_integers_are_accepted() -> None:
    event = Event(type="rejected", time=T0, details=(
        ("code", "envelope.bad_signature"), ("authority", "KZ-MVD"), ("hex", "00ff" * 8),
        ("count", 2**63 - 1), ("delta", -(2**63)), ("state", "waiting_for_confirmation")))
    assert decode_entry(encode_entry(0, ZERO_HASH, encode_event(event))).event == event


@pytest.mark.parametrize("details", [
    (("n", True),),
    (("n", 2**63),),
    (("n", -(2**63) - 1),),
    (("n", 1.5),),
    (("n", None),),
    (("a", "x"), ("a", "y")),
    tuple((f"k{i}", i) for i in range(MAX_DETAILS + 1)),
    ("not a pair",),
])
def test_bad_details_refused(details: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadEvent):
        Event(type="operator_action", time=T0, details=details)


@pytest.mark.parametrize("field,value", [
    ("envelope_id", bytes(15)), ("case_id", bytes(17)), ("envelope_hash", bytes(31)),
    ("signatory_key_id", "00" * 16), ("from_authority", "kz-mvd"), ("to_authority", "KZMVD"),
    ("from_authority", "KZ-" + "A" * 17),
])
def test_field_ranges(field: str, value: object) -> None:
    with pytest.raises(BadEvent):
        Event(type="submitted", time=T0, **{field: value})  # type: ignore[arg-type]


def test_time_must_be_aware_and_is_kept_in_utc() -> None:
    with pytest.raises(BadEvent):
        Event(type="submitted", time=datetime(2026, 1, 1))
    almaty = timezone(timedelta(hours=5))
    event = Event(type="submitted", time=datetime(2026, 1, 1, 10, tzinfo=almaty))
    assert event.time == datetime(2026, 1, 1, 5, tzinfo=UTC) and event.time.tzinfo is UTC


# --- DER ---------------------------------------------------------------------------------


def test_example_entry_bytes() -> None:
    """The example of docs/ledger.md, byte for byte."""
    der = encode_entry(7, EXAMPLE_PREV, encode_event(EXAMPLE_EVENT))
    assert der == EXAMPLE_DER == _schema_encoding(7, EXAMPLE_PREV, EXAMPLE_EVENT)
    stored = decode_entry(der)
    assert (stored.index, stored.prev_leaf_hash, stored.event) == (7, EXAMPLE_PREV,
                                                                     EXAMPLE_EVENT)
    assert stored.leaf_hash == hash_leaf(der)


tokens = st.from_regex(r"[a-z0-9][a-z0-9_.:+-]{0,63}", fullmatch=True)
authorities = st.from_regex(r"[A-Z]{2}-[A-Z0-9]{2,16}", fullmatch=True)
values = st.one_of(tokens, authorities, st.integers(-(2**63), 2**63 - 1))
events = st.builds(
    Event,
    type=st.sampled_from(sorted(EVENT_TYPES)),
    time=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1),
                      timezones=st.just(UTC)),
    envelope_id=st.none() | st.binary(min_size=16, max_size=16),
    case_id=st.none() | st.binary(min_size=16, max_size=16),
    from_authority=st.none() | authorities,
    to_authority=st.none() | authorities,
    envelope_hash=st.none() | st.binary(min_size=32, max_size=32),
    signatory_key_id=st.none() | st.binary(min_size=16, max_size=16),
    details=st.dictionaries(tokens, values, max_size=MAX_DETAILS).map(lambda d: tuple(d.items())),
)


@settings(max_examples=150, deadline=None)
@given(event=events, index=st.integers(0, 2**63 - 1), prev=st.binary(min_size=32, max_size=32))
def test_fast_encoding_equals_the_schema_encoding(event: Event, index: int, prev: bytes) -> None:
    der = encode_entry(index, prev, encode_event(event))
    assert der == _schema_encoding(index, prev, event)
    assert len(der) <= MAX_ENTRY_SIZE
    stored = decode_entry(der)
    assert (stored.index, stored.prev_leaf_hash, stored.event) == (index, prev, event)


def _rewrapped(old: bytes, new: bytes) -> bytes:
    """The example entry with ``old`` bytes of its contents replaced by ``new``, in a
    correct outer header: only the replaced field is off."""
    contents = LedgerEntrySchema.load(EXAMPLE_DER).contents
    assert old in contents
    return parser.emit(0, 1, 16, contents.replace(old, new))  # type: ignore[no-any-return]


def _with(der: bytes, **changes: object) -> bytes:
    """The example entry with some fields replaced, encoded by asn1crypto (maybe BER)."""
    parsed = LedgerEntrySchema.load(der)
    for name, value in changes.items():
        parsed[name] = value
    return parsed.dump(force=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name,der", [
    ("trailing byte", EXAMPLE_DER + b"\x00"),
    ("truncated", EXAMPLE_DER[:-1]),
    ("long-form length", b"\x30\x82\x00" + EXAMPLE_DER[2:]),
    ("indefinite length", b"\x30\x80" + EXAMPLE_DER[3:] + b"\x00\x00"),
    ("too large", b"\x30\x82\x10\x00" + bytes(4096)),
    ("unknown type", _with(EXAMPLE_DER, type=99)),
    ("private-use type", _with(EXAMPLE_DER, type=40000)),
    ("short prev hash", _with(EXAMPLE_DER, prev_leaf_hash=bytes(31))),
    ("negative index", _with(EXAMPLE_DER, index=-1)),
    ("empty details", _with(EXAMPLE_DER, details=[])),
    ("free text detail", _with(EXAMPLE_DER, details=[
        {"key": "name", "value": ("token", "Ivanov Ivan")}])),
    ("time with zero fraction",
     _rewrapped(b"\x18\x1220260304050607.89Z", b"\x18\x1320260304050607.890Z")),
    ("time with an offset",
     _rewrapped(b"\x18\x1220260304050607.89Z", b"\x18\x1620260304100607.89+0500")),
    ("index not minimal", _rewrapped(b"\x02\x01\x07\x02\x01\x01",
                                     b"\x02\x02\x00\x07\x02\x01\x01")),
    ("fields out of order", _rewrapped(b"\x82\x06KZ-MVD\x83\x06BY-MVD",
                                       b"\x83\x06BY-MVD\x82\x06KZ-MVD")),
    ("unknown field", _rewrapped(b"\xa6\x1f", b"\x87\x00\xa6\x1f")),
    ("not a sequence", b"\x04\x01\x00"),
    ("empty", b""),
])
def test_non_der_or_invalid_entries_refused(name: str, der: bytes) -> None:
    with pytest.raises(BadEntry) as caught:
        decode_entry(der)
    assert caught.value.code == "ledger.bad_entry"


@settings(max_examples=500, deadline=None)
@given(time=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                         timezones=st.just(UTC)))
def test_time_encoding_is_asn1cryptos(time: datetime) -> None:
    """The event encoder writes GeneralizedTime text itself (speed); it must be exactly
    what asn1crypto writes, fractions included (.5, .000001, none)."""
    event = Event(type="alarm", time=time)
    assert encode_event(event)[3:] == core.GeneralizedTime(time).dump()
    for microsecond in (0, 1, 10, 500000, 999999):
        exact = time.replace(microsecond=microsecond)
        assert encode_event(Event(type="alarm", time=exact))[3:] == \
            core.GeneralizedTime(exact).dump()
