"""The Party directory and its history (A2.1, A2.2, A14; docs/keys.md "Party directory")."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from keys import schema, signed
from keys.directory import (
    CLOCK_SKEW,
    MAX_AUTHORITIES,
    MAX_DIRECTORY_SIZE,
    Authority,
    DirectoryHistory,
    NodeIdentity,
    PartyDirectory,
    decode_directory,
    root_fingerprint,
)
from keys.errors import KeysError
from keys.keyid import key_id


def seeded(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


ROOT = SigningKey(seeded("test KZ root"))
OTHER_ROOT = SigningKey(seeded("test BY root"))
NODE = SigningKey(seeded("test KZ node")).verify_key
WITNESS = SigningKey(seeded("test KZ witness")).verify_key
MVD_KEY = PrivateKey(seeded("test KZ-MVD")).public_key
MLSP_KEY = PrivateKey(seeded("test KZ-MLSP")).public_key
T0 = datetime(2021, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
YEAR = 365 * DAY

MVD = Authority(
    id="KZ-MVD",
    name_ru="Министерство внутренних дел Республики Казахстан",
    name_lat="Ministry of Internal Affairs of the Republic of Kazakhstan",
    encryption_key=MVD_KEY,
    valid_from=T0,
)
MLSP = Authority(
    id="KZ-MLSP",
    name_ru="Министерство труда и социальной защиты населения Республики Казахстан",
    name_lat="Ministry of Labour and Social Protection of the Population",
    encryption_key=MLSP_KEY,
    valid_from=T0,
)
NODE_ID = NodeIdentity(
    node_key=NODE,
    witness_key=WITNESS,
    tls_cert_sha256=bytes(range(32)),
    url="https://kz.gateway.example:8443",
    ledger_origin="kz.gateway.example/ledger",
)


def code(e: pytest.ExceptionInfo[KeysError]) -> str:
    return e.value.code


def directory(version: int = 1, issued: datetime = T0, **kw: Any) -> PartyDirectory:
    fields: dict[str, Any] = {
        "party": "KZ",
        "version": version,
        "issued": issued,
        "expires": issued + YEAR,
        "root_key": ROOT.verify_key,
        "node": NODE_ID,
        "authorities": (MVD, MLSP),
    }
    fields.update(kw)
    return PartyDirectory(**fields)


def resigned(tbs: bytes, key: SigningKey) -> bytes:
    """A SignedDirectory over ``tbs`` signed by any key, to test what the decoder trusts."""
    signature = signed.sign(key, signed.DIRECTORY_CONTEXT, tbs)
    data: bytes = schema.SignedDirectory(
        {"tbs": schema.DirectoryTBS.load(tbs), "signature": signature}
    ).dump()
    return data


NOW = T0 + 30 * DAY


# Encoding and decoding -----------------------------------------------------------------


def test_round_trip_with_pinned_root_a2_1() -> None:
    d = directory()
    assert decode_directory(d.sign(ROOT), pinned_root=ROOT.verify_key, now=NOW) == d


def test_first_import_checks_the_self_signature() -> None:
    d = directory()
    decoded = decode_directory(d.sign(ROOT), pinned_root=None, now=NOW)
    assert decoded.root_key == ROOT.verify_key
    assert root_fingerprint(decoded.root_key) == root_fingerprint(ROOT.verify_key)


def test_first_import_refuses_a_bad_self_signature() -> None:
    """A document naming ROOT but signed by another key fails even with nothing pinned."""
    data = resigned(directory().tbs(), OTHER_ROOT)
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=None, now=NOW)
    assert code(e) == "keys.bad_signature"


def test_root_fingerprint_shape() -> None:
    fingerprint = root_fingerprint(ROOT.verify_key)
    groups = fingerprint.split(" ")
    assert len(groups) == 16
    assert all(len(g) == 4 and set(g) <= set("0123456789abcdef") for g in groups)
    assert "".join(groups).startswith(key_id(ROOT.verify_key).hex())


def test_other_root_is_root_mismatch() -> None:
    data = directory(root_key=OTHER_ROOT.verify_key).sign(OTHER_ROOT)
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=ROOT.verify_key, now=NOW)
    assert code(e) == "keys.root_mismatch"


def test_pinned_root_named_but_signed_by_another_key() -> None:
    data = resigned(directory().tbs(), OTHER_ROOT)
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=ROOT.verify_key, now=NOW)
    assert code(e) == "keys.bad_signature"


def test_sign_with_the_wrong_root() -> None:
    with pytest.raises(KeysError) as e:
        directory().sign(OTHER_ROOT)
    assert code(e) == "keys.root_mismatch"


def test_signatory_list_context_does_not_verify_as_a_directory() -> None:
    tbs = directory().tbs()
    signature = signed.sign(ROOT, signed.SIGNATORY_LIST_CONTEXT, tbs)
    data = schema.SignedDirectory(
        {"tbs": schema.DirectoryTBS.load(tbs), "signature": signature}
    ).dump()
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=ROOT.verify_key, now=NOW)
    assert code(e) == "keys.bad_signature"


def test_every_single_byte_flip_is_refused() -> None:
    small = directory(authorities=(MVD,))
    data = small.sign(ROOT)
    signature_start = len(data) - 64
    allowed = {
        "keys.not_der",
        "keys.bad_signature",
        "keys.root_mismatch",
        "keys.unsupported_format",
    }
    for i in range(len(data)):
        mutated = bytearray(data)
        mutated[i] ^= 0x01
        with pytest.raises(KeysError) as e:
            decode_directory(bytes(mutated), pinned_root=ROOT.verify_key, now=NOW)
        assert code(e) in allowed
        if i >= signature_start:
            assert code(e) == "keys.bad_signature", i


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: b"\x30\x80" + d[4:] + b"\x00\x00", id="indefinite-length"),
        pytest.param(lambda d: b"\x30\x83\x00" + d[2:], id="non-minimal-length"),
    ],
)
def test_non_der_refused(mutate: Any) -> None:
    data = directory().sign(ROOT)
    assert data[:2] == b"\x30\x82"
    with pytest.raises(KeysError) as e:
        decode_directory(mutate(data), pinned_root=ROOT.verify_key, now=NOW)
    assert code(e) == "keys.not_der"


def test_size_bounded_before_parsing() -> None:
    with pytest.raises(KeysError) as e:
        decode_directory(bytes(MAX_DIRECTORY_SIZE + 1), pinned_root=None, now=NOW)
    assert code(e) == "keys.too_large"


def test_a_signatory_list_is_not_a_directory() -> None:
    from keys.signatories import SignatoryList

    data = SignatoryList("KZ", "KZ-MVD", 1, T0, ()).sign(ROOT)
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=ROOT.verify_key, now=NOW)
    assert code(e) == "keys.not_der"


# Freshness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "want"),
    [
        (T0 - CLOCK_SKEW - timedelta(seconds=1), "keys.directory_not_yet_valid"),
        (T0 - CLOCK_SKEW, None),
        (T0, None),
        (T0 + YEAR - timedelta(seconds=1), None),
        (T0 + YEAR, "keys.directory_expired"),
    ],
)
def test_freshness(now: datetime, want: str | None) -> None:
    data = directory().sign(ROOT)
    if want is None:
        decode_directory(data, pinned_root=ROOT.verify_key, now=now)
        return
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=ROOT.verify_key, now=now)
    assert code(e) == want


def test_reloading_an_expired_version_kept_in_history() -> None:
    data = directory().sign(ROOT)
    assert decode_directory(data, pinned_root=ROOT.verify_key, now=None).version == 1


# Authorities -----------------------------------------------------------------------------


def test_authority_lookup_a2_1() -> None:
    d = directory()
    assert d.authority("KZ-MVD", NOW) == MVD
    with pytest.raises(KeysError) as e:
        d.authority("KZ-KNB", NOW)
    assert code(e) == "keys.unknown_authority"


@pytest.mark.parametrize(
    ("at", "want"),
    [
        (T0 + 10 * DAY - timedelta(seconds=1), "keys.authority_not_in_force"),
        (T0 + 10 * DAY, None),
        (T0 + 20 * DAY - timedelta(seconds=1), None),
        (T0 + 20 * DAY, "keys.authority_not_in_force"),
    ],
)
def test_authority_validity(at: datetime, want: str | None) -> None:
    bounded = replace(MVD, valid_from=T0 + 10 * DAY, valid_until=T0 + 20 * DAY)
    d = directory(authorities=(bounded,))
    if want is None:
        assert d.authority("KZ-MVD", at) == bounded
        return
    with pytest.raises(KeysError) as e:
        d.authority("KZ-MVD", at)
    assert code(e) == want


def test_authority_encryption_key_id() -> None:
    assert MVD.key_id == key_id(MVD_KEY)


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"id": "KZ-M"}, "keys.bad_authority_id"),
        ({"id": "kz-mvd"}, "keys.bad_authority_id"),
        ({"id": "KZMVD"}, "keys.bad_authority_id"),
        ({"id": "KZ-MVD-1"}, "keys.bad_authority_id"),
        ({"name_ru": "Ministry of Internal Affairs"}, "keys.bad_name"),
        ({"name_lat": "Министерство внутренних дел"}, "keys.bad_name"),
        ({"name_ru": "Министерство внутренних дел\t"}, "keys.bad_name"),
        ({"encryption_key": NODE}, "keys.invalid_document"),
        ({"valid_until": T0}, "keys.invalid_document"),
    ],
)
def test_authority_rules_a14(kw: dict[str, Any], want: str) -> None:
    """A2.1 ids, and A14: the Russian name in Cyrillic, the Latin one in Latin."""
    with pytest.raises(KeysError) as e:
        replace(MVD, **kw)
    assert code(e) == want


def test_authority_names_in_quotes_a14() -> None:
    name = "Комитет «Тестовый» № 2 (г. Минск)"
    assert replace(MVD, name_ru=name).name_ru == name


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"party": "RU"}, "keys.invalid_document"),
        ({"party": "BY"}, "keys.bad_authority_id"),  # KZ-MVD in a BY directory
        ({"version": 0}, "keys.invalid_document"),
        ({"expires": T0}, "keys.invalid_document"),
        ({"issued": datetime(2021, 1, 1)}, "keys.invalid_document"),
        ({"authorities": (MVD, MVD)}, "keys.invalid_document"),
        ({"authorities": (MVD,) * (MAX_AUTHORITIES + 1)}, "keys.limit_exceeded"),
        ({"root_key": ROOT}, "keys.invalid_document"),
    ],
)
def test_directory_rules(kw: dict[str, Any], want: str) -> None:
    with pytest.raises(KeysError) as e:
        directory(**kw)
    assert code(e) == want


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"url": "http://kz.gateway.example"}, "keys.invalid_document"),
        ({"url": "https://"}, "keys.invalid_document"),
        ({"url": "https://kz gateway"}, "keys.invalid_document"),
        ({"url": "https://" + "a" * 600}, "keys.limit_exceeded"),
        ({"ledger_origin": ""}, "keys.limit_exceeded"),
        ({"ledger_origin": "kz\nledger"}, "keys.invalid_document"),
        ({"tls_cert_sha256": bytes(20)}, "keys.invalid_document"),
        ({"node_key": MVD_KEY}, "keys.invalid_document"),
    ],
)
def test_node_identity_rules(kw: dict[str, Any], want: str) -> None:
    with pytest.raises(KeysError) as e:
        replace(NODE_ID, **kw)
    assert code(e) == want


@pytest.mark.parametrize(
    ("field", "value", "want"),
    [
        ("party", "RU", "keys.invalid_document"),
        ("version", 0, "keys.invalid_document"),
        ("root_key", bytes(31), "keys.invalid_document"),
    ],
)
def test_signed_but_breaking_a_rule(field: str, value: object, want: str) -> None:
    """Rules hold for documents the root really signed, not only for our own encoder."""
    tbs = schema.DirectoryTBS.load(directory().tbs()).native
    tbs[field] = value
    data = resigned(schema.DirectoryTBS(tbs).dump(), ROOT)
    with pytest.raises(KeysError) as e:
        decode_directory(data, pinned_root=None, now=NOW)
    assert code(e) == want


# History (A2.2) ----------------------------------------------------------------------------


RENAMED = replace(MVD, name_ru="Министерство внутренних дел", name_lat="Ministry of the Interior")


def history(*directories: PartyDirectory) -> DirectoryHistory:
    h = DirectoryHistory(ROOT.verify_key)
    for d in directories:
        assert h.add(d) is True
    return h


def test_old_envelopes_see_the_old_names_a2_2() -> None:
    """A2.2: after a rename, a time before it still resolves to the name valid then."""
    v1 = directory(1, T0)
    v2 = directory(2, T0 + 100 * DAY, authorities=(RENAMED, MLSP))
    h = history(v1, v2)
    assert h.authority("KZ-MVD", T0 + 50 * DAY).name_lat == MVD.name_lat
    assert h.authority("KZ-MVD", T0 + 100 * DAY).name_lat == RENAMED.name_lat
    assert h.current == v2
    assert h.versions() == (v1, v2)


def test_authority_withdrawn_in_a_new_version_a2_2() -> None:
    h = history(directory(1, T0), directory(2, T0 + 100 * DAY, authorities=(MVD,)))
    assert h.authority("KZ-MLSP", T0 + 99 * DAY) == MLSP
    with pytest.raises(KeysError) as e:
        h.authority("KZ-MLSP", T0 + 100 * DAY)
    assert code(e) == "keys.unknown_authority"


def test_history_in_force() -> None:
    h = history(directory(1, T0), directory(2, T0 + 100 * DAY))
    assert h.in_force(T0).version == 1
    assert h.in_force(T0 + 100 * DAY).version == 2
    with pytest.raises(KeysError) as e:
        h.in_force(T0 - DAY)
    assert code(e) == "keys.no_directory"
    with pytest.raises(KeysError) as e:
        h.in_force(T0 + 100 * DAY + YEAR)
    assert code(e) == "keys.directory_expired"


def test_empty_history() -> None:
    h = DirectoryHistory(ROOT.verify_key)
    with pytest.raises(KeysError) as e:
        _ = h.current
    assert code(e) == "keys.no_directory"
    assert h.versions() == ()


def test_same_version_again_is_a_no_op() -> None:
    v1 = directory(1, T0)
    h = history(v1)
    again = decode_directory(v1.sign(ROOT), pinned_root=ROOT.verify_key, now=NOW)
    assert h.add(again) is False


def test_same_version_other_content() -> None:
    h = history(directory(1, T0))
    with pytest.raises(KeysError) as e:
        h.add(directory(1, T0, authorities=(MVD,)))
    assert code(e) == "keys.directory_conflict"


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param(directory(1, T0 + DAY), id="lower-version"),
        pytest.param(directory(3, T0 - DAY), id="issued-before-current"),
    ],
)
def test_new_version_must_be_higher_a2_2(stale: PartyDirectory) -> None:
    h = history(directory(2, T0))
    with pytest.raises(KeysError) as e:
        h.add(stale)
    assert code(e) == "keys.stale_directory"


def test_history_refuses_another_root() -> None:
    h = history(directory(1, T0))
    with pytest.raises(KeysError) as e:
        h.add(directory(2, T0 + DAY, root_key=OTHER_ROOT.verify_key))
    assert code(e) == "keys.root_mismatch"


def test_history_refuses_another_party() -> None:
    by = directory(
        2,
        T0 + DAY,
        party="BY",
        authorities=(replace(MVD, id="BY-MVD", name_ru="Министерство", name_lat="Ministry"),),
    )
    h = history(directory(1, T0))
    with pytest.raises(KeysError) as e:
        h.add(by)
    assert code(e) == "keys.invalid_document"
