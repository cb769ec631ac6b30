"""The worked examples of docs/keys.md, re-derived from fixed seeds.

Ed25519 signatures are deterministic, so the bytes printed in the document must come out
of the code exactly; a change to the schema or the signing rule fails here until the
document is updated with it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from keys.directory import (
    Authority,
    NodeIdentity,
    PartyDirectory,
    decode_directory,
    root_fingerprint,
)
from keys.keyid import key_id
from keys.signatories import FormSample, Signatory, SignatoryList, decode_signatory_list

DOC = Path(__file__).resolve().parent.parent / "docs" / "keys.md"


def seed(label: str) -> bytes:
    """A fixed 32-byte seed: SHA-256 of a label, as docs/keys.md states."""
    return hashlib.sha256(label.encode("ascii")).digest()


ROOT = SigningKey(seed("kzby example KZ root"))
SIGNATORY = SigningKey(seed("kzby example KZ-MVD signatory"))
NODE = SigningKey(seed("kzby example KZ node"))
WITNESS = SigningKey(seed("kzby example KZ witness"))
MVD = PrivateKey(seed("kzby example KZ-MVD encryption"))
MLSP = PrivateKey(seed("kzby example KZ-MLSP encryption"))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def example_signatory_list() -> SignatoryList:
    return SignatoryList(
        party="KZ",
        authority="KZ-MVD",
        version=1,
        effective=t("2021-01-10T00:00:00"),
        signatories=(
            Signatory(
                key=SIGNATORY.verify_key,
                name_cyrillic="Тестов Тест Тестович",
                name_latin="Testov Test Testovich",
                role="head",
                valid_from=t("2021-01-10T00:00:00"),
            ),
        ),
        forms=(
            FormSample(
                file_name="бланк.pdf",
                media_type="application/pdf",
                sha256=hashlib.sha256(b"letterhead sample").digest(),
            ),
        ),
    )


def example_directory() -> PartyDirectory:
    return PartyDirectory(
        party="KZ",
        version=1,
        issued=t("2021-01-01T00:00:00"),
        expires=t("2022-01-01T00:00:00"),
        root_key=ROOT.verify_key,
        node=NodeIdentity(
            node_key=NODE.verify_key,
            witness_key=WITNESS.verify_key,
            tls_cert_sha256=hashlib.sha256(b"example certificate").digest(),
            url="https://kz.gateway.example",
            ledger_origin="kz.gateway.example/ledger",
        ),
        authorities=(
            Authority(
                id="KZ-MVD",
                name_ru="Министерство внутренних дел Республики Казахстан",
                name_lat="Ministry of Internal Affairs of the Republic of Kazakhstan",
                encryption_key=MVD.public_key,
                valid_from=t("2020-12-03T00:00:00"),
            ),
        ),
    )


def hex_block(data: bytes) -> str:
    """The layout used in docs/keys.md: 32 bytes a line, lower-case hex."""
    return "\n".join(data[i : i + 32].hex() for i in range(0, len(data), 32))


def doc_hex(name: str) -> bytes:
    """The bytes printed under ``<!-- vector: name -->`` in docs/keys.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- vector: {name} -->\s*```hex\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"docs/keys.md has no vector {name!r}"
    return bytes.fromhex("".join(match.group(1).split()))


def doc_value(name: str) -> str:
    """A one-line value printed as ``<!-- value: name -->`value` `` in docs/keys.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- value: {name} -->\s*`([^`]*)`", text)
    assert match is not None, f"docs/keys.md has no value {name!r}"
    return match.group(1)


def test_signatory_list_example_is_rederived() -> None:
    """A9.3: the signed signatory list printed in docs/keys.md, byte for byte."""
    assert example_signatory_list().sign(ROOT) == doc_hex("signatory-list")


def test_signatory_list_example_decodes() -> None:
    decoded = decode_signatory_list(doc_hex("signatory-list"), root_key=ROOT.verify_key)
    assert decoded == example_signatory_list()


def test_directory_example_is_rederived() -> None:
    """A2.1: the signed Party directory printed in docs/keys.md, byte for byte."""
    assert example_directory().sign(ROOT) == doc_hex("directory")


def test_directory_example_decodes() -> None:
    decoded = decode_directory(
        doc_hex("directory"), pinned_root=ROOT.verify_key, now=t("2021-06-01T00:00:00")
    )
    assert decoded == example_directory()


@pytest.mark.parametrize(
    ("name", "compute"),
    [
        ("root-public", lambda: bytes(ROOT.verify_key).hex()),
        ("root-key-id", lambda: key_id(ROOT.verify_key).hex()),
        ("root-fingerprint", lambda: root_fingerprint(ROOT.verify_key)),
        ("mvd-encryption-key-id", lambda: key_id(MVD.public_key).hex()),
        ("signatory-key-id", lambda: key_id(SIGNATORY.verify_key).hex()),
    ],
)
def test_key_values_in_docs(name: str, compute: object) -> None:
    assert callable(compute)
    assert doc_value(name) == compute()
