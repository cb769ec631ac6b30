"""The envelope test vectors (docs/protocol.md, "Test vectors"): re-derived, then run.

Every file under tests/vectors/envelope/ must equal what the committed generator builds,
so a change to the format shows up as a vector diff. Good vectors must re-derive byte for
byte, step by step, and open; each bad vector must fail with exactly its ``expect`` code,
so a parse error cannot hide behind a later signature error.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from gateway import sdk
from gateway.envelope import body as bodies
from gateway.envelope import errors, kinds
from gateway.envelope.check import EnvelopeVerifier
from gateway.envelope.seal import InReplyTo, key_commitment, seal_envelope
from gateway.envelope.wire import Header, decode
from gateway.errors import CODED_ERRORS
from tests.vectors.envelope import generate

HERE = Path(generate.__file__).resolve().parent
GOOD = sorted((HERE / "good").glob("*.json"))
BAD = sorted((HERE / "bad").glob("*.json"))
EXPECTED_SHAPE = {"desc", "operation", "expect", "now", "signatories", "recipient_secret",
                  "envelope"}


def _load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_committed_vectors_equal_the_generator_output() -> None:
    built = generate.build()
    on_disk = {f"{p.parent.name}/{p.name}" for p in GOOD + BAD}
    assert on_disk == set(built), "run .venv/bin/python -m tests.vectors.envelope.generate"
    for relative, vector in built.items():
        assert (HERE / relative).read_text(encoding="utf-8") == generate.render(vector), relative


def test_one_good_vector_per_kind() -> None:
    assert [p.stem for p in GOOD] == sorted(kind.name for kind in kinds.KINDS)


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_vector_rederives_step_by_step(path: Path) -> None:
    v = _load(path)
    recipient = PrivateKey(bytes.fromhex(v["recipient_secret"]))
    signatory = SigningKey(bytes.fromhex(v["signatory_seed"]))
    assert bytes(recipient.public_key).hex() == v["recipient_public"]
    assert bytes(signatory.verify_key).hex() == v["signatory_public"]
    # The body and the commitment.
    assert bodies.encode(v["kind"], v["body"]).hex() == v["body_der"]
    assert key_commitment(bytes.fromhex(v["content_key"])).hex() == v["key_commitment"]
    # The wrap is a genuine libsodium sealed box of the content key.
    wrapped = bytes.fromhex(v["wrapped_key"])
    assert SealedBox(recipient).decrypt(wrapped).hex() == v["content_key"]
    # The whole envelope, from the recorded inputs.
    reply = None
    if v["in_reply_to"] is not None:
        reply = InReplyTo(bytes.fromhex(v["in_reply_to"]), bytes.fromhex(v["in_reply_to_hash"]),
                          bytes.fromhex(v["case_id"]))
    random = [bytes.fromhex(v["envelope_id"])]
    if reply is None:
        random.append(bytes.fromhex(v["case_id"]))
    random += [bytes.fromhex(v["content_key"]), bytes.fromhex(v["stream_header"])]
    sealed = seal_envelope(
        kind=v["kind"], sender=v["sender"], recipient=v["recipient"], body=v["body"],
        signatory_key=signatory, recipient_key=PublicKey(bytes.fromhex(v["recipient_public"])),
        now=_time(v["created"]), in_reply_to=reply,
        _rng=generate.rng_of(*random),
        _wrap=generate.wrap_with(bytes.fromhex(v["ephemeral_secret"])),
    )
    assert sealed.hex() == v["envelope"]
    assert hashlib.sha256(sealed).hexdigest() == v["envelope_hash"]
    parts = decode(sealed)
    assert parts.header_der.hex() == v["header_der"]
    assert parts.ciphertext.hex() == v["ciphertext"]
    assert parts.signed_message().hex() == v["signed_message"]
    VerifyKey(bytes.fromhex(v["signatory_public"])).verify(
        bytes.fromhex(v["signed_message"]), bytes.fromhex(v["signature"]))
    # The header re-encodes from its fields alone.
    assert bytes(parts.header.to_schema().dump()).hex() == v["header_der"]


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_vector_verifies_and_opens(path: Path) -> None:
    v = _load(path)
    sealed = bytes.fromhex(v["envelope"])
    registry = generate.registry_from(v["signatories"])
    checked = EnvelopeVerifier(registry).verify(sealed, _time(v["created"]))
    assert checked.envelope_hash.hex() == v["envelope_hash"]
    opened = sdk.open(sealed, recipient_key=PrivateKey(bytes.fromhex(v["recipient_secret"])),
                      signatory_key=registry)
    assert opened.body == v["body"]
    assert opened.header == checked.header == sdk.inspect(sealed)
    assert opened.header.kind == v["kind"]


def _run(v: dict[str, Any], operation: str) -> None:
    sealed = bytes.fromhex(v["envelope"])
    registry = generate.registry_from(v["signatories"])
    if operation == "inspect":
        sdk.inspect(sealed)
    elif operation == "verify":
        EnvelopeVerifier(registry).verify(sealed, _time(v["now"]))
    else:
        sdk.open(sealed, recipient_key=PrivateKey(bytes.fromhex(v["recipient_secret"])),
                 signatory_key=registry)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_vector_fails_with_its_code(path: Path) -> None:
    v = _load(path)
    assert set(v) == EXPECTED_SHAPE, "a new field in a vector needs a test that reads it"
    assert v["operation"] in ("verify", "open")
    if v["expect"] == "success":
        _run(v, v["operation"])
        return
    with pytest.raises(CODED_ERRORS) as failure:
        _run(v, v["operation"])
    assert failure.value.code == v["expect"]  # type: ignore[attr-defined]
    if v["operation"] == "open":
        # One failure per vector: a node, which cannot decrypt, accepts it.
        _run(v, "verify")
    elif v["expect"] != "envelope.created_in_future":
        # Node and recipient share every check but the clock: open fails the same way.
        with pytest.raises(CODED_ERRORS) as opened:
            _run(v, "open")
        assert opened.value.code == v["expect"]  # type: ignore[attr-defined]


def test_bad_vectors_cover_every_envelope_code() -> None:
    """Each code a node or recipient can meet has at least one vector."""
    expected = {v["expect"] for v in map(_load, BAD)}
    assert expected >= {
        "envelope.not_der", "envelope.header_too_large", "envelope.unsupported_version",
        "envelope.unknown_kind", "envelope.bad_field", "envelope.bad_authority",
        "envelope.bad_reply", "envelope.length_mismatch", "envelope.created_in_future",
        "envelope.unknown_signatory", "envelope.signatory_not_in_force",
        "envelope.no_signatory_list", "envelope.bad_signature", "envelope.cannot_open",
        "body.not_der", "body.bad_script", "body.bad_value",
    }


def test_header_field_names_carry_no_subject_or_person_A11_1() -> None:
    """A11.1: the cleartext header holds ids, hashes, keys and times, nothing else."""
    assert [f.name for f in Header.__dataclass_fields__.values()] == [
        "envelope_id", "kind", "sender", "recipient", "case_id", "created",
        "signatory_key_id", "recipient_key_id", "ciphertext_length", "key_commitment",
        "stream_header", "in_reply_to", "in_reply_to_hash", "version",
    ]
    request = _load(HERE / "good" / "request.json")
    header = bytes.fromhex(request["header_der"])
    for person_text in ("Тестова", "Testova", "1990-01-01", "0000000"):
        assert person_text.encode() not in header
    assert _time(request["created"]).tzinfo == UTC


# docs/protocol.md shows real vectors and every code ----------------------------------------

PROTOCOL = (HERE.parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_protocol_example_is_the_acknowledgement_vector() -> None:
    block = re.search(r"<!-- vector: good/acknowledgement -->\n```hex\n(.*?)```", PROTOCOL,
                      flags=re.DOTALL)
    assert block is not None
    assert block.group(1).replace("\n", "") == _load(HERE / "good" / "acknowledgement.json")[
        "envelope"]


def test_protocol_lists_every_code_and_bad_vector() -> None:
    codes = {
        cls.code for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.EnvelopeError)
        and cls not in (errors.EnvelopeError, errors.BodyError)
    }
    listed = set(re.findall(r"^\| `((?:envelope|body)\.[a-z_]+)` \|", PROTOCOL, flags=re.M))
    assert listed == codes
    for path in BAD:
        assert f"| `{path.stem}` |" in PROTOCOL, path.stem
