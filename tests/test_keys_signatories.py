"""Signatory lists and the registry (A9.3, A9.4; docs/keys.md "Signatory lists").

Names below are invented test names; the rule that they never reach an error message is
checked as if they were real.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from keys import schema, signed
from keys.errors import KeysError
from keys.signatories import (
    MAX_FORMS,
    MAX_LIST_SIZE,
    MAX_SIGNATORIES,
    FormSample,
    Signatory,
    SignatoryList,
    SignatoryRegistry,
    decode_signatory_list,
)

ROOT = SigningKey(hashlib.sha256(b"test KZ root").digest())
OTHER_ROOT = SigningKey(hashlib.sha256(b"test BY root").digest())
ALICE = SigningKey(hashlib.sha256(b"test signatory 1").digest())
BORIS = SigningKey(hashlib.sha256(b"test signatory 2").digest())
CLARA = SigningKey(hashlib.sha256(b"test signatory 3").digest())
NAMES = {
    ALICE: ("Алиева Алия Тестовна", "Aliyeva Aliya Testovna"),
    BORIS: ("Борисов Борис Тестович", "Borisov Boris Testovich"),
    CLARA: ("Кларова Клара", "Klarova Klara"),
}
T0 = datetime(2021, 1, 10, tzinfo=UTC)
DAY = timedelta(days=1)


def code(e: pytest.ExceptionInfo[KeysError]) -> str:
    return e.value.code


def entry(signer: SigningKey, role: str = "authorised", **kw: Any) -> Signatory:
    cyrillic, latin = NAMES[signer]
    fields: dict[str, Any] = {
        "key": signer.verify_key,
        "name_cyrillic": cyrillic,
        "name_latin": latin,
        "role": role,
        "valid_from": T0,
    }
    fields.update(kw)
    return Signatory(**fields)


def make(version: int, effective: datetime, *entries: Signatory, **kw: Any) -> SignatoryList:
    fields: dict[str, Any] = {
        "party": "KZ",
        "authority": "KZ-MVD",
        "version": version,
        "effective": effective,
        "signatories": entries,
        "forms": (FormSample("бланк.pdf", "application/pdf", bytes(32)),),
    }
    fields.update(kw)
    return SignatoryList(**fields)


def signed_bytes(tbs: dict[str, Any], root: SigningKey = ROOT) -> bytes:
    """Sign a hand-built TBS, to reach rules that the constructors never let through."""
    der = schema.SignatoryListTBS(tbs).dump()
    signature = signed.sign(root, signed.SIGNATORY_LIST_CONTEXT, der)
    value = schema.SignedSignatoryList(
        {"tbs": schema.SignatoryListTBS.load(der), "signature": signature}
    )
    result: bytes = value.dump()
    return result


def raw_tbs(**kw: Any) -> dict[str, Any]:
    tbs: dict[str, Any] = {
        "format_version": 1,
        "party": "KZ",
        "authority": "KZ-MVD",
        "version": 1,
        "effective": T0,
        "signatories": [],
        "forms": [],
    }
    tbs.update(kw)
    return tbs


# Encoding and decoding -----------------------------------------------------------------


def test_round_trip_a9_3() -> None:
    """A9.3: the list of persons authorised to sign, and the form samples, survive intact."""
    lst = make(1, T0, entry(ALICE, "head"), entry(BORIS, "deputy", valid_until=T0 + 90 * DAY))
    assert decode_signatory_list(lst.sign(ROOT), root_key=ROOT.verify_key) == lst


def test_empty_list_round_trips() -> None:
    lst = make(1, T0, forms=())
    assert decode_signatory_list(lst.sign(ROOT), root_key=ROOT.verify_key) == lst


def test_lists_become_tuples() -> None:
    lst = make(1, T0, forms=[])
    assert lst.forms == ()
    assert hash(lst) == hash(make(1, T0, forms=()))


def test_wrong_root() -> None:
    data = make(1, T0, entry(ALICE)).sign(ROOT)
    with pytest.raises(KeysError) as e:
        decode_signatory_list(data, root_key=OTHER_ROOT.verify_key)
    assert code(e) == "keys.bad_signature"


def test_every_single_byte_flip_is_refused() -> None:
    """Flip each byte in turn: decoding fails, and inside the signature it says so."""
    data = make(1, T0, entry(ALICE, "head")).sign(ROOT)
    signature_start = len(data) - 64
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[i] ^= bit
            with pytest.raises(KeysError) as e:
                decode_signatory_list(bytes(mutated), root_key=ROOT.verify_key)
            assert code(e) in {"keys.not_der", "keys.bad_signature", "keys.unsupported_format"}
            if i >= signature_start:
                assert code(e) == "keys.bad_signature", i


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: d[:-1], id="truncated"),
        pytest.param(lambda d: b"\x30\x80" + d[4:] + b"\x00\x00", id="indefinite-length"),
        pytest.param(lambda d: b"\x30\x83\x00" + d[2:], id="non-minimal-length"),
    ],
)
def test_non_der_refused(mutate: Any) -> None:
    data = make(1, T0, entry(ALICE)).sign(ROOT)
    assert data[:2] == b"\x30\x82"  # a two-byte length, as the mutations assume
    with pytest.raises(KeysError) as e:
        decode_signatory_list(mutate(data), root_key=ROOT.verify_key)
    assert code(e) == "keys.not_der"


def test_size_bounded_before_parsing() -> None:
    with pytest.raises(KeysError) as e:
        decode_signatory_list(b"\x30" * (MAX_LIST_SIZE + 1), root_key=ROOT.verify_key)
    assert code(e) == "keys.too_large"


def test_unknown_format_version() -> None:
    data = signed_bytes(raw_tbs(format_version=2))
    with pytest.raises(KeysError) as e:
        decode_signatory_list(data, root_key=ROOT.verify_key)
    assert code(e) == "keys.unsupported_format"


def test_directory_signature_does_not_verify_as_a_list() -> None:
    """The context label separates the two documents signed by one root key."""
    der = schema.SignatoryListTBS(raw_tbs()).dump()
    signature = signed.sign(ROOT, signed.DIRECTORY_CONTEXT, der)
    data = schema.SignedSignatoryList(
        {"tbs": schema.SignatoryListTBS.load(der), "signature": signature}
    ).dump()
    with pytest.raises(KeysError) as e:
        decode_signatory_list(data, root_key=ROOT.verify_key)
    assert code(e) == "keys.bad_signature"


@pytest.mark.parametrize(
    ("tbs", "want"),
    [
        pytest.param(raw_tbs(party="RU"), "keys.invalid_document", id="party"),
        pytest.param(raw_tbs(authority="BY-MVD"), "keys.bad_authority_id", id="other-party"),
        pytest.param(raw_tbs(authority="KZ-mvd"), "keys.bad_authority_id", id="lower-case"),
        pytest.param(raw_tbs(version=0), "keys.invalid_document", id="version-0"),
        pytest.param(
            raw_tbs(effective=T0.replace(microsecond=5)), "keys.invalid_document", id="fraction"
        ),
        pytest.param(
            raw_tbs(
                signatories=[
                    {
                        "key": bytes(ALICE.verify_key),
                        "name_cyrillic": "Aliyeva Aliya",
                        "name_latin": "Aliyeva Aliya",
                        "role": "head",
                        "valid_from": T0,
                    }
                ]
            ),
            "keys.bad_name",
            id="latin-in-cyrillic-field",
        ),
        pytest.param(
            raw_tbs(
                signatories=[
                    {
                        "key": bytes(31),
                        "name_cyrillic": "Алия",
                        "name_latin": "Aliya",
                        "role": "head",
                        "valid_from": T0,
                    }
                ]
            ),
            "keys.invalid_document",
            id="short-key",
        ),
        pytest.param(
            raw_tbs(forms=[{"file_name": "a/b.pdf", "media_type": "a/b", "sha256": bytes(32)}]),
            "keys.invalid_document",
            id="path-in-file-name",
        ),
        pytest.param(
            raw_tbs(forms=[{"file_name": "a.pdf", "media_type": "a/b", "sha256": bytes(31)}]),
            "keys.invalid_document",
            id="short-hash",
        ),
    ],
)
def test_signed_but_breaking_a_rule(tbs: dict[str, Any], want: str) -> None:
    """Rules hold for documents the root really signed, not only for our own encoder."""
    with pytest.raises(KeysError) as e:
        decode_signatory_list(signed_bytes(tbs), root_key=ROOT.verify_key)
    assert code(e) == want


def test_unknown_role_value_refused() -> None:
    """A role outside the ENUMERATED is not a value of the schema, even when signed."""
    tbs = bytearray(schema.SignatoryListTBS(raw_tbs(signatories=[_raw_entry(ALICE)])).dump())
    at = tbs.index(b"\x0a\x01\x00")  # ENUMERATED role = head(0)
    tbs[at + 2] = 7
    signature = signed.sign(ROOT, signed.SIGNATORY_LIST_CONTEXT, bytes(tbs))
    data = b"\x30\x82" + (len(tbs) + 66).to_bytes(2, "big") + tbs + b"\x04\x40" + signature
    with pytest.raises(KeysError) as e:
        decode_signatory_list(data, root_key=ROOT.verify_key)
    assert code(e) == "keys.not_der"


def _raw_entry(key: SigningKey) -> dict[str, Any]:
    cyrillic, latin = NAMES[key]
    return {
        "key": bytes(key.verify_key),
        "name_cyrillic": cyrillic,
        "name_latin": latin,
        "role": "head",
        "valid_from": T0,
    }


def test_too_many_signatories_in_a_signed_document() -> None:
    entries = [_raw_entry(ALICE)] * (MAX_SIGNATORIES + 1)
    with pytest.raises(KeysError) as e:
        decode_signatory_list(signed_bytes(raw_tbs(signatories=entries)), root_key=ROOT.verify_key)
    assert code(e) == "keys.limit_exceeded"


def test_too_many_forms() -> None:
    forms = [FormSample(f"{i}.pdf", "application/pdf", bytes(32)) for i in range(MAX_FORMS + 1)]
    with pytest.raises(KeysError) as e:
        make(1, T0, forms=forms)
    assert code(e) == "keys.limit_exceeded"


# Field rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Әлиева Ғалия Қайратқызы", "Äliyeva Ğaliya Qairatqyzy"),  # Kazakh letters
        ("Шчасны Ўладзімір", "Ščasny Uładzimir"),  # Belarusian letters
        ("Д'Артаньянова-Тестова Анна", "D'Artanyanova-Testova Anna"),
        ("Петров П. П.", "Petrov P. P."),
    ],
)
def test_names_in_their_scripts_a14(cyrillic: str, latin: str) -> None:
    """A14: Russian is the working language; the Latin form is for the other systems."""
    entry_ = Signatory(ALICE.verify_key, cyrillic, latin, "head", T0)
    assert entry_.name_cyrillic == cyrillic


@pytest.mark.parametrize(
    ("cyrillic", "latin", "want"),
    [
        ("Ivanov Ivan", "Ivanov Ivan", "keys.bad_name"),
        ("Иванов Иван", "Иванов Иван", "keys.bad_name"),
        ("Иванов Ivan", "Ivanov Ivan", "keys.bad_name"),  # mixed scripts
        ("Иванов Иван", "Ivanov Ιvan", "keys.bad_name"),  # a Greek capital iota
        ("Иванов\nИван", "Ivanov Ivan", "keys.bad_name"),
        (" Иванов", "Ivanov", "keys.bad_name"),
        ("Иванов  Иван", "Ivanov Ivan", "keys.bad_name"),
        ("-- --", "Ivanov", "keys.bad_name"),  # no letter at all
        ("Йошкин", "Yoshkin", None),
        ("Й" * 257, "Ivanov", "keys.limit_exceeded"),
        ("", "Ivanov", "keys.limit_exceeded"),
        ("Иванов", "", "keys.limit_exceeded"),
    ],
)
def test_name_rules_a14(cyrillic: str, latin: str, want: str | None) -> None:
    """A14: name_cyrillic in Cyrillic script, name_latin in Latin script, NFC, tidy spaces."""
    if want is None:
        Signatory(ALICE.verify_key, cyrillic, latin, "head", T0)
        return
    with pytest.raises(KeysError) as e:
        Signatory(ALICE.verify_key, cyrillic, latin, "head", T0)
    assert code(e) == want
    assert cyrillic not in e.value.message or not cyrillic
    assert latin not in e.value.message or not latin


def test_decomposed_name_refused() -> None:
    """'Й' written as 'И' + combining breve is not NFC: one name, one encoding."""
    with pytest.raises(KeysError) as e:
        Signatory(ALICE.verify_key, "\u0418\u0306ошкин", "Yoshkin", "head", T0)
    assert code(e) == "keys.bad_name"


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"role": "president"}, "keys.invalid_document"),
        ({"valid_until": T0}, "keys.invalid_document"),
        ({"valid_until": T0 - DAY}, "keys.invalid_document"),
        ({"valid_from": datetime(2021, 1, 10)}, "keys.invalid_document"),
        ({"valid_from": T0.replace(microsecond=1)}, "keys.invalid_document"),
        ({"key": ALICE}, "keys.invalid_document"),  # a private key where a public one belongs
    ],
)
def test_signatory_rules(kw: dict[str, Any], want: str) -> None:
    with pytest.raises(KeysError) as e:
        entry(ALICE, **kw)
    assert code(e) == want


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"party": "BY"}, "keys.bad_authority_id"),
        ({"authority": "KZ-M"}, "keys.bad_authority_id"),
        ({"authority": "KZ-MVD\n"}, "keys.bad_authority_id"),
        ({"authority": "KZ-" + "A" * 17}, "keys.bad_authority_id"),
        ({"version": 2**63}, "keys.invalid_document"),
        ({"version": True}, "keys.invalid_document"),
        ({"signatories": [entry(ALICE)] * 2}, "keys.invalid_document"),
        ({"signatories": [entry(ALICE), entry(ALICE, "head")]}, "keys.invalid_document"),
        ({"signatories": "nope"}, "keys.invalid_document"),
        ({"signatories": (entry(ALICE),) * (MAX_SIGNATORIES + 1)}, "keys.limit_exceeded"),
        ({"forms": [FormSample("a.pdf", "text/plain", bytes(32))] * 2}, "keys.invalid_document"),
    ],
)
def test_list_rules(kw: dict[str, Any], want: str) -> None:
    fields = {"version": 1, "effective": T0, **kw}
    with pytest.raises(KeysError) as e:
        make(**fields)
    assert code(e) == want


@pytest.mark.parametrize(
    ("file_name", "media_type"),
    [
        ("..", "application/pdf"),
        ("a\\b.pdf", "application/pdf"),
        ("a\x00.pdf", "application/pdf"),
        (" a.pdf", "application/pdf"),
        ("a" * 256, "application/pdf"),
        ("a.pdf", "Application/PDF"),
        ("a.pdf", "application"),
        ("a.pdf", "application/pdf; charset=x"),
    ],
)
def test_form_rules(file_name: str, media_type: str) -> None:
    with pytest.raises(KeysError):
        FormSample(file_name, media_type, bytes(32))


def test_names_never_in_repr() -> None:
    """Officials' names are personal data: a logged object must not carry them."""
    text = repr(make(1, T0, entry(ALICE)))
    for cyrillic, latin in NAMES.values():
        assert cyrillic not in text
        assert latin not in text


# The registry: was key K authorised to sign for authority X at time T? ------------------


def registry(*lists: SignatoryList) -> SignatoryRegistry:
    reg = SignatoryRegistry()
    for lst in lists:
        assert reg.add(lst) is True
    return reg


def test_authorised_key_in_force_a9_3() -> None:
    reg = registry(make(1, T0, entry(ALICE, "head")))
    found = reg.authorised_key("KZ-MVD", entry(ALICE).key_id, T0)
    assert found == entry(ALICE, "head")


def test_no_list_before_the_first_takes_effect_a9_3() -> None:
    reg = registry(make(1, T0, entry(ALICE)))
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(ALICE).key_id, T0 - timedelta(seconds=1))
    assert code(e) == "keys.no_signatory_list"


def test_no_list_for_the_authority() -> None:
    reg = registry(make(1, T0, entry(ALICE)))
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MLSP", entry(ALICE).key_id, T0 + DAY)
    assert code(e) == "keys.no_signatory_list"
    assert reg.versions("KZ-MLSP") == ()


def test_unknown_signatory() -> None:
    reg = registry(make(1, T0, entry(ALICE)))
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(BORIS).key_id, T0 + DAY)
    assert code(e) == "keys.unknown_signatory"


def test_empty_list_rejects_everyone() -> None:
    """An empty list is a policy that rejects, never one that passes vacuously."""
    reg = registry(make(1, T0, entry(ALICE)), make(2, T0 + DAY))
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(ALICE).key_id, T0 + 2 * DAY)
    assert code(e) == "keys.signatory_not_in_force"
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(BORIS).key_id, T0 + 2 * DAY)
    assert code(e) == "keys.unknown_signatory"


def test_revoked_by_new_version_a9_4() -> None:
    """A9.4: revocation is a new version without the key. Envelopes signed before it took
    effect still verify; after it, the key is refused."""
    revoked_at = T0 + 30 * DAY
    reg = registry(make(1, T0, entry(ALICE), entry(BORIS)), make(2, revoked_at, entry(BORIS)))
    alice = entry(ALICE).key_id
    assert reg.authorised_key("KZ-MVD", alice, revoked_at - timedelta(seconds=1)) == entry(ALICE)
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", alice, revoked_at)
    assert code(e) == "keys.signatory_not_in_force"
    assert reg.authorised_key("KZ-MVD", entry(BORIS).key_id, revoked_at) == entry(BORIS)


def test_revoked_by_valid_until_a9_4() -> None:
    """A9.4: or a new version keeps the key with valid_until set."""
    until = T0 + 10 * DAY
    reg = registry(make(1, T0, entry(ALICE)), make(2, T0 + DAY, entry(ALICE, valid_until=until)))
    alice = entry(ALICE).key_id
    assert reg.authorised_key("KZ-MVD", alice, until - timedelta(seconds=1)).valid_until == until
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", alice, until)
    assert code(e) == "keys.signatory_not_in_force"


def test_not_yet_valid_signatory() -> None:
    reg = registry(make(1, T0, entry(ALICE, valid_from=T0 + DAY)))
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(ALICE).key_id, T0)
    assert code(e) == "keys.signatory_not_in_force"


# Several versions, read as a table: (version, effective day, who is on it).
HISTORY = [(1, 0, (ALICE,)), (2, 10, (ALICE, BORIS)), (3, 20, (BORIS,)), (4, 30, (CLARA,))]


def history_registry() -> SignatoryRegistry:
    return registry(
        *(make(v, T0 + day * DAY, *(entry(k) for k in keys)) for v, day, keys in HISTORY)
    )


@pytest.mark.parametrize(
    ("day", "key", "want"),
    [
        (-1, ALICE, "keys.no_signatory_list"),
        (0, ALICE, None),
        (5, BORIS, "keys.signatory_not_in_force"),  # listed only from version 2
        (10, BORIS, None),
        (15, ALICE, None),
        (20, ALICE, "keys.signatory_not_in_force"),  # removed in version 3
        (25, BORIS, None),
        (30, BORIS, "keys.signatory_not_in_force"),
        (30, CLARA, None),
        (9999, CLARA, None),
        (5, CLARA, "keys.signatory_not_in_force"),
    ],
)
def test_several_versions_a9_4(day: int, key: SigningKey, want: str | None) -> None:
    """A9.4: each envelope is judged by the version in force at its created time."""
    reg = history_registry()
    at = T0 + day * DAY
    if want is None:
        assert reg.authorised_key("KZ-MVD", entry(key).key_id, at).key == key.verify_key
        return
    with pytest.raises(KeysError) as e:
        reg.authorised_key("KZ-MVD", entry(key).key_id, at)
    assert code(e) == want


def test_in_force_and_versions() -> None:
    reg = history_registry()
    assert [lst.version for lst in reg.versions("KZ-MVD")] == [1, 2, 3, 4]
    assert reg.in_force("KZ-MVD", T0 + 15 * DAY).version == 2
    assert reg.in_force("KZ-MVD", T0 + 20 * DAY).version == 3
    with pytest.raises(KeysError) as e:
        reg.in_force("KZ-MVD", T0 - DAY)
    assert code(e) == "keys.no_signatory_list"


def test_versions_received_out_of_order() -> None:
    reg = registry(*(make(v, T0 + d * DAY, *(entry(k) for k in ks)) for v, d, ks in HISTORY[::-1]))
    assert reg.in_force("KZ-MVD", T0 + 15 * DAY).version == 2


def test_same_version_again_is_a_no_op() -> None:
    lst = make(1, T0, entry(ALICE))
    reg = registry(lst)
    again = decode_signatory_list(lst.sign(ROOT), root_key=ROOT.verify_key)
    assert reg.add(again) is False
    assert reg.versions("KZ-MVD") == (lst,)


def test_version_reused_with_other_content_a9_4() -> None:
    reg = registry(make(1, T0, entry(ALICE)))
    with pytest.raises(KeysError) as e:
        reg.add(make(1, T0, entry(BORIS)))
    assert code(e) == "keys.signatory_list_conflict"
    assert reg.versions("KZ-MVD") == (make(1, T0, entry(ALICE)),)


@pytest.mark.parametrize(
    ("version", "day"),
    [
        pytest.param(2, 15, id="lower-version-later"),
        pytest.param(2, -1, id="lower-version-before-version-1"),
        pytest.param(4, 5, id="higher-version-earlier"),
    ],
)
def test_effective_time_out_of_order(version: int, day: int) -> None:
    """A higher version may not take effect before a lower one, nor the reverse."""
    reg = registry(make(1, T0, entry(ALICE)), make(3, T0 + 10 * DAY, entry(ALICE)))
    with pytest.raises(KeysError) as e:
        reg.add(make(version, T0 + day * DAY, entry(BORIS)))
    assert code(e) == "keys.signatory_list_conflict"
    reg.add(make(2, T0 + 10 * DAY, entry(BORIS)))  # equal times are fine


def test_naive_time_is_a_programming_error() -> None:
    reg = registry(make(1, T0, entry(ALICE)))
    with pytest.raises(TypeError):
        reg.authorised_key("KZ-MVD", entry(ALICE).key_id, datetime(2021, 2, 1))


def test_registry_errors_name_no_person() -> None:
    reg = history_registry()
    messages = []
    for day, key in [(-1, ALICE), (20, ALICE), (0, CLARA)]:
        with pytest.raises(KeysError) as e:
            reg.authorised_key("KZ-MVD", entry(key).key_id, T0 + day * DAY)
        messages.append(e.value.message)
    with pytest.raises(KeysError) as e:
        reg.add(make(1, T0, entry(BORIS)))
    messages.append(e.value.message)
    for message in messages:
        for cyrillic, latin in NAMES.values():
            for part in cyrillic.split() + latin.split():
                assert part not in message, message
