"""The fast DER codec (gateway/envelope/der.py) is asn1crypto, only faster.

Two facts carry the module's argument that its strict check is exactly
``keys.der.load_strict`` (R3, R15): ``Codec.dump`` writes asn1crypto's bytes, and
``Codec.load`` reads them back to asn1crypto's native value. Both are checked on every
example body, every vector and generated values; then both strict checks are fed the
same mutated inputs and must agree on every one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.envelope import body as bodies
from gateway.envelope import der
from gateway.envelope.errors import BodyNotDer, NotDer
from gateway.envelope.schema import EnvelopeSchema, HeaderSchema
from gateway.envelope.wire import decode, encode
from keys.der import load_strict

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
GOOD = sorted((ROOT / "tests" / "vectors" / "envelope" / "good").glob("*.json"))
BAD = sorted((ROOT / "tests" / "vectors" / "envelope" / "bad").glob("*.json"))
KINDS = list(bodies.BODIES)


def _vector(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


def _example(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text("utf-8"))
    return body


def _old_verdict(spec: type, data: bytes) -> object:
    """What keys.der.load_strict, the check this codec replaces, makes of ``data``."""
    try:
        return load_strict(spec, data, len(data) + 1, NotDer).native
    except NotDer:
        return "rejected"


def _new_verdict(spec: type, data: bytes) -> object:
    try:
        return der.load_strict(der.codec(spec), data, len(data) + 1, NotDer,
                               too_large_cls=NotDer, what="value")
    except NotDer:
        return "rejected"


# dump writes asn1crypto's bytes ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_example_body_dumps_as_plain_asn1crypto(kind: str) -> None:
    table = bodies.BODIES[kind]
    native = table.check(_example(kind), "body")
    plain = bytes(table.spec()(native).dump())
    assert der.codec(table.spec()).dump(native) == plain
    assert bodies.encode(kind, _example(kind)) == plain


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_vector_header_and_envelope_dump_as_plain_asn1crypto(path: Path) -> None:
    v = _vector(path)
    sealed = bytes.fromhex(v["envelope"])
    native = EnvelopeSchema.load(sealed).native
    header_der = bytes(HeaderSchema(native["header"]).dump())
    assert header_der.hex() == v["header_der"]
    assert der.codec(HeaderSchema).dump(native["header"]) == header_der
    assert decode(sealed).header.to_der() == header_der
    parts = (native["wrapped_key"], native["ciphertext"], native["signature"])
    assert encode(header_der, *parts) == bytes(EnvelopeSchema(native).dump()) == sealed
    assert der.codec(EnvelopeSchema).dump(native) == sealed


# load reads them back to asn1crypto's native value -------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_example_body_loads_as_plain_asn1crypto(kind: str) -> None:
    spec = bodies.BODIES[kind].spec()
    data = bodies.encode(kind, _example(kind))
    assert der.codec(spec).load(data) == spec.load(data).native


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_vector_envelope_and_body_load_as_plain_asn1crypto(path: Path) -> None:
    v = _vector(path)
    for spec, data in ((EnvelopeSchema, v["envelope"]), (HeaderSchema, v["header_der"]),
                       (bodies.BODIES[v["kind"]].spec(), v["body_der"])):
        raw = bytes.fromhex(data)
        assert der.codec(spec).load(raw) == spec.load(raw).native


# The strict check agrees with keys.der.load_strict -------------------------------------


def _mutations(data: bytes) -> list[bytes]:
    """Every byte flipped three ways, each truncation, a trailing byte, and the value
    wrapped in an indefinite and a long-form length."""
    out = [data[:n] for n in range(len(data))] + [data + b"\x00", b""]
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            out.append(data[:i] + bytes([data[i] ^ flip]) + data[i + 1:])
    contents = core.Sequence.load(data).contents
    out.append(data[:1] + b"\x80" + contents + b"\x00\x00")
    out.append(data[:1] + b"\x82" + len(contents).to_bytes(2, "big") + contents)
    return out


@pytest.mark.parametrize("kind", ["acknowledgement", "confirmation", "confidentiality_decision",
                                  "request"])
def test_mutated_bodies_get_the_verdict_of_load_strict(kind: str) -> None:
    spec = bodies.BODIES[kind].spec()
    data = bodies.encode(kind, _example(kind))
    for mutated in _mutations(data):
        assert _new_verdict(spec, mutated) == _old_verdict(spec, mutated), mutated.hex()


def test_mutated_envelope_gets_the_verdict_of_load_strict() -> None:
    sealed = bytes.fromhex(_vector(GOOD[0])["envelope"])  # the acknowledgement, 420 bytes
    for mutated in _mutations(sealed):
        assert _new_verdict(EnvelopeSchema, mutated) == _old_verdict(EnvelopeSchema, mutated)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_vector_gets_the_verdict_of_load_strict(path: Path) -> None:
    data = bytes.fromhex(_vector(path)["envelope"])
    if len(data) > 1_000_000:
        pytest.skip("too large to load twice in a test")
    assert _new_verdict(EnvelopeSchema, data) == _old_verdict(EnvelopeSchema, data)


@pytest.mark.parametrize(
    ("desc", "spec", "data"),
    [
        ("integer 1 in two octets", core.Integer, "02020001"),
        ("boolean true as 0x01", core.Boolean, "010101"),
        ("octet string in constructed form", core.OctetString, "24060404deadbeef"),
        ("octet string with a long-form length", core.OctetString, "04810100"),
        ("empty integer", core.Integer, "0200"),
        ("string that is not UTF-8", core.UTF8String, "0c01ff"),
        ("time with an offset", core.GeneralizedTime, "181332303235303330343035303030302b30303030"),
    ],
)
def test_non_der_forms_are_refused_as_load_strict_refuses_them(
    desc: str, spec: type, data: str
) -> None:
    raw = bytes.fromhex(data)
    assert _old_verdict(spec, raw) == "rejected", desc
    assert _new_verdict(spec, raw) == "rejected", desc


def test_body_decode_refuses_non_der_with_body_not_der() -> None:
    """R15: the body codes are kept; a non-minimal length is body.not_der."""
    data = bodies.encode("acknowledgement", _example("acknowledgement"))
    long_form = data[:1] + b"\x81" + data[1:]
    with pytest.raises(BodyNotDer):
        bodies.decode("acknowledgement", long_form)


# Generated values ----------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


class _Sample(core.Sequence):  # type: ignore[misc]
    """Every type and tagging the codec supports, with sizes that cross 127 bytes."""

    _fields = [
        ("n", core.Integer),
        ("flag", core.Boolean, {"implicit": 0, "optional": True}),
        ("text", core.UTF8String, {"implicit": 1}),
        ("data", core.OctetString, {"implicit": 2, "optional": True}),
        ("items", bodies.TEXTS.spec(), {"implicit": 3, "optional": True}),
        ("kind", bodies.CATEGORY.spec(), {"optional": True}),
        ("code", core.PrintableString, {"optional": True}),
    ]


_SAMPLES = st.fixed_dictionaries(
    {"n": st.integers(-(2**70), 2**70), "text": _TEXT},
    optional={
        "flag": st.booleans(),
        "data": st.binary(max_size=300),
        "items": st.lists(_TEXT, max_size=5),
        "kind": st.sampled_from(bodies.CATEGORY.names),
        "code": st.text(alphabet="ABCXYZ019 -", max_size=140),
    },
)


@settings(max_examples=150, deadline=None)
@given(_SAMPLES)
def test_generated_values_dump_and_load_as_plain_asn1crypto(native: dict[str, Any]) -> None:
    plain = bytes(_Sample(native).dump())
    codec = der.codec(_Sample)
    assert codec.dump(native) == plain
    assert codec.load(plain) == _Sample.load(plain).native


@settings(max_examples=150, deadline=None)
@given(_SAMPLES, st.data())
def test_generated_values_mutated_get_the_verdict_of_load_strict(
    native: dict[str, Any], data: st.DataObject
) -> None:
    plain = bytes(_Sample(native).dump())
    i = data.draw(st.integers(0, len(plain) - 1))
    mutated = plain[:i] + bytes([data.draw(st.integers(0, 255))]) + plain[i + 1:]
    assert _new_verdict(_Sample, mutated) == _old_verdict(_Sample, mutated)


@settings(max_examples=500, deadline=None)
@given(time=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                         timezones=st.sampled_from([UTC, timezone(timedelta(hours=5)),
                                                    timezone(timedelta(hours=-3, minutes=-30))])))
def test_generalized_time_is_written_as_asn1crypto_writes_it(time: datetime) -> None:
    """The codec writes a datetime's GeneralizedTime text itself (receipts: speed); it
    must be byte for byte asn1crypto's, fractions and offsets included."""
    compiled = der.codec(core.GeneralizedTime)
    for microsecond in (time.microsecond, 0, 1, 10, 500000, 999999):
        exact = time.replace(microsecond=microsecond)
        assert compiled.dump(exact) == core.GeneralizedTime(exact).dump()
        assert compiled.load(compiled.dump(exact)) == core.GeneralizedTime(exact).native
