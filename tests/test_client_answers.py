"""The agency client reads a node's answer strictly: a body that is not a JSON object, or
lacks a field the call needs, is ``client.bad_answer``, never a bare ValueError or
KeyError (docs/node.md, "Error codes")."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.client import ClientError, inbox_page, parse_answer, signatory_versions


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null",
                                  b"{", b"1"])
def test_a_body_that_is_not_a_json_object_is_a_bad_answer(body: bytes) -> None:
    with pytest.raises(ClientError) as e:
        parse_answer(body)
    assert e.value.code == "client.bad_answer"


def test_a_json_object_is_the_answer() -> None:
    page = {"items": [{"seq": 1}], "next": 1}
    assert inbox_page(parse_answer(b'{"items": [{"seq": 1}], "next": 1}')) == page


@pytest.mark.parametrize("answer", [{}, {"versions": None}, {"versions": "AAAA"},
                                    {"versions": {"0": "AAAA"}}, {"versions": [1]},
                                    {"versions": ["not base64!"]}])
def test_signatory_versions_missing_or_malformed_is_a_bad_answer(answer: dict[str, Any]
                                                                 ) -> None:
    with pytest.raises(ClientError) as e:
        signatory_versions(answer)
    assert e.value.code == "client.bad_answer"


def test_signatory_versions_are_decoded() -> None:
    answer = {"versions": [base64.b64encode(b"\x30\x00").decode("ascii")]}
    assert signatory_versions(answer) == [b"\x30\x00"]


@pytest.mark.parametrize("answer", [{"items": []}, {"items": [], "next": "0"},
                                    {"items": [], "next": True}, {"items": {}, "next": 0}])
def test_an_inbox_page_without_its_fields_is_a_bad_answer(answer: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as e:
        inbox_page(answer)
    assert e.value.code == "client.bad_answer"
