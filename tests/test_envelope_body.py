"""Body schemas: closed tables per kind, JSON <-> DER (docs/protocol.md, "Bodies")."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.envelope import body as bodies
from gateway.envelope import kinds, schema
from gateway.envelope.errors import BodyError

DOCS = Path(__file__).resolve().parent.parent / "docs"


def example(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DOCS / "examples" / f"{kind}.json").read_text("utf-8"))
    return body


def code_of(kind: str, body: object) -> str:
    with pytest.raises(BodyError) as failure:
        bodies.encode(kind, body)
    return failure.value.code


def person(**changes: Any) -> dict[str, Any]:
    p = copy.deepcopy(example("request")["persons"][0])
    p.update(changes)
    return p


def request_with(p: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    body = example("request")
    if p is not None:
        body["persons"] = [p]
    body.update(changes)
    return body


def test_one_table_per_kind_in_registry_order() -> None:
    assert list(bodies.BODIES) == [kind.name for kind in kinds.KINDS]
    assert sorted(p.stem for p in (DOCS / "examples").glob("*.json")) == sorted(bodies.BODIES)


@pytest.mark.parametrize("kind", list(bodies.BODIES))
def test_example_round_trips_and_der_is_what_plain_asn1crypto_writes(kind: str) -> None:
    """The fast codec (gateway/envelope/der.py) is only an optimisation: the bytes are
    asn1crypto's own."""
    body = example(kind)
    der = bodies.encode(kind, body)
    assert bodies.decode(kind, der) == body
    table = bodies.BODIES[kind]
    assert bytes(table.spec()(table.check(body, "body")).dump()) == der


# A5 and A6.1: persons -------------------------------------------------------------------


def test_person_field_outside_A6_1_is_rejected() -> None:
    """A6.1: the list of personal data fields is closed; more is an error, not a warning."""
    for extra in ("religion", "phone", "ethnicity"):
        assert code_of("request", request_with(person(**{extra: "x"}))) == "body.unknown_field"


def test_unknown_field_message_names_the_field_never_a_value() -> None:
    with pytest.raises(BodyError) as failure:
        bodies.encode("request", request_with(person(phone="+7 700 000 00 00")))
    assert "phone" in failure.value.message and "700" not in failure.value.message
    with pytest.raises(BodyError) as failure:
        bodies.encode("request", request_with(person(**{"Тестова Анна": 1})))
    assert "Тестова" not in failure.value.message


def test_person_without_or_with_an_unknown_A5_category_is_rejected() -> None:
    """A5: every person carries exactly one of the five categories."""
    without = person()
    del without["category"]
    assert code_of("request", request_with(without)) == "body.bad_category"
    assert code_of("request", request_with(person(category="tourist"))) == "body.bad_category"
    assert code_of("request", request_with(person(category=["temporary_stay", "expelled"]))) \
        == "body.bad_category"


@pytest.mark.parametrize("category", bodies.CATEGORY.names)
def test_each_A5_category_is_accepted(category: str) -> None:
    bodies.encode("request", request_with(person(category=category)))


def test_names_must_be_in_the_script_of_their_field_A14() -> None:
    """A6.1 item 1 and A14: Cyrillic fields hold Cyrillic, Latin fields Latin."""
    latin_in_cyrillic = person()
    latin_in_cyrillic["name"]["cyrillic"]["surname"] = "Testova"
    assert code_of("request", request_with(latin_in_cyrillic)) == "body.bad_script"
    cyrillic_in_latin = person()
    cyrillic_in_latin["name"]["latin"]["first_name"] = "Анна"
    assert code_of("request", request_with(cyrillic_in_latin)) == "body.bad_script"
    kazakh = person()
    kazakh["name"]["cyrillic"] = {"surname": "Әбілқасымова", "first_name": "Гүлнұр"}
    bodies.encode("request", request_with(kazakh))


def test_a_name_needs_at_least_one_script() -> None:
    assert code_of("request", request_with(person(name={}))) == "body.missing_field"


def test_photo_and_fingerprint_card_must_point_at_their_attachment() -> None:
    """A6.1 items 10 and 11 travel as attachments the person refers to."""
    assert code_of("request", request_with(person(photo=1))) == "body.bad_reference"
    assert code_of("request", request_with(person(fingerprint_card=0))) == "body.bad_reference"


def test_attachment_data_must_match_its_size_and_digest() -> None:
    body = request_with()
    body["attachments"][0]["size"] += 1
    assert code_of("request", body) == "body.bad_attachment"
    body = request_with()
    body["attachments"][0]["sha256"] = hashlib.sha256(b"other").hexdigest()
    assert code_of("request", body) == "body.bad_attachment"
    body = request_with()
    del body["attachments"][0]["data"]  # declared, sent separately: allowed
    bodies.encode("request", body)


# A3.1, A4, A9.2, A10.4, A11.2 ------------------------------------------------------------


def test_request_carries_the_A9_2_fields() -> None:
    for field in ("requesting_authority", "requested_authority", "subject", "purpose",
                  "grounds"):
        body = request_with()
        del body[field]
        assert code_of("request", body) == "body.missing_field", field


def test_request_has_exactly_one_of_direction_A3_1_or_topic_A4() -> None:
    both = request_with(topic="document_misuse")
    assert code_of("request", both) == "body.bad_value"
    neither = request_with()
    del neither["direction"]
    assert code_of("request", neither) == "body.missing_field"
    assert code_of("request", request_with(direction="tourism")) == "body.bad_value"
    bodies.encode("request", {**neither, "topic": "migration_legislation"})


def test_refusal_states_its_reasons_A10_4() -> None:
    """A10.4: a refusal, in full or in part, states non-empty reasons."""
    assert code_of("refusal", {"reasons": []}) == "body.bad_value"
    assert code_of("refusal", {}) == "body.missing_field"
    assert code_of("partial_refusal", {"reasons": ["x"], "refused_parts": []}) == \
        "body.bad_value"
    assert code_of("partial_refusal", {"reasons": ["x"]}) == "body.missing_field"


def test_results_carry_purpose_limitation_and_onward_transfer_A11_2_A11_3() -> None:
    """A11.2, A11.3: an answer or disclosure is limited to its purpose, and onward
    transfer needs prior consent; neither can be waived in the body."""
    for kind in ("answer", "spontaneous_disclosure"):
        assert code_of(kind, {**example(kind), "use_limited_to_purpose": False}) == \
            "body.bad_value"
        assert code_of(kind, {**example(kind), "onward_transfer": "free"}) == "body.bad_value"
        without = example(kind)
        del without["purpose"]
        assert code_of(kind, without) == "body.missing_field"


# Value forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"subject": None}, "body.bad_value"),
        ({"subject": ""}, "body.bad_value"),
        ({"subject": 12}, "body.bad_value"),
        ({"subject": "e\u0301"}, "body.bad_value"),  # not NFC
        ({"subject": "bell\x07"}, "body.bad_value"),
        ({"requesting_authority": "two\nlines"}, "body.bad_value"),
        ({"subject": "x" * 65_537}, "body.bad_value"),
        ({"persons": []}, "body.bad_value"),
        ({"persons": {}}, "body.bad_value"),
    ],
)
def test_bad_values(change: dict[str, Any], code: str) -> None:
    assert code_of("request", request_with(**change)) == code


@pytest.mark.parametrize("date", ["1990-02-30", "1990-1-01", "19900101", "１９９０-01-01", 1990])
def test_dates_are_calendar_dates_in_one_form(date: object) -> None:
    assert code_of("request", request_with(person(date_of_birth=date))) == "body.bad_value"


def test_base64_must_be_canonical_and_padded() -> None:
    document = base64.b64encode(b"\x01\x02").decode()
    for bad in (document.rstrip("="), "AQJ=", "AQI=\n", "AQ I="):  # AQJ=: stray bits
        assert code_of("directory_update", {"document": bad}) == "body.bad_value", bad


def test_hex_ids_are_lowercase_and_sized() -> None:
    for bad in ("AB" * 16, "ab" * 15, "zz" * 16):
        assert code_of("acknowledgement", {"envelope_id": bad}) == "body.bad_value"


def test_body_must_be_an_object() -> None:
    assert code_of("refusal", ["reasons"]) == "body.bad_value"


def test_decode_rejects_der_of_another_kind_and_trailing_bytes() -> None:
    der = bodies.encode("withdrawal", {"reason": "x"})
    with pytest.raises(BodyError) as failure:
        bodies.decode("refusal", der)
    assert failure.value.code == "body.not_der"
    with pytest.raises(BodyError) as failure:
        bodies.decode("withdrawal", der + b"\x00")
    assert failure.value.code == "body.not_der"


# The ASN.1 modules in docs/protocol.md are the code's --------------------------------------


def _asn1_blocks() -> list[str]:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    return re.findall(r"```asn1\n(.*?)```", text, flags=re.DOTALL)


def test_protocol_doc_quotes_both_asn1_modules_verbatim() -> None:
    blocks = _asn1_blocks()
    assert schema.MODULE in blocks
    assert bodies.MODULE in blocks
