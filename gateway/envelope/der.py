"""DER of the envelope's asn1crypto schemas, written and read at the speed a sealed
envelope needs, byte for byte what asn1crypto itself writes and accepts.

asn1crypto's classes are generic: building a SEQUENCE from a dict checks, tags and
re-encodes every child several times, and parsing one builds an object per field. For
a 4 KiB request that was some 300 µs each way, and the strict check (parse, re-encode,
compare, as ``keys.der.load_strict`` does) doubled the reading side. ``Codec`` compiles
an asn1crypto class once (``SEQUENCE``, ``SEQUENCE OF`` and the primitive types our
schemas use) and then works on native values, the same ones asn1crypto's constructors
take and its ``.native`` gives.

Writing: ``Codec.dump(native) == spec(native).dump()``. A DER value is a header (tag
and length) and contents; a SEQUENCE's contents are its present fields' encodings in
order, a SEQUENCE OF's its items'. Each primitive's contents come from the conversion
asn1crypto's ``set`` applies (``int_to_bytes(value, signed=True)``,
``str.encode(cls._encoding)``, ``b"\\xff"``/``b"\\x00"``, the bytes as they are; times
and any other type through an instance of their class), and every header is written
by asn1crypto's ``parser.emit``. A header depends only on the tag and the length, so
``emit`` writes each once and the codec keeps it (all with a one-byte length, up to
``_MAX_KEPT`` others), as ledger/entry.py keeps the headers of its fixed-size fields.
Nothing here writes a tag or a length octet itself.

Reading: ``Codec.load(data)`` returns ``spec.load(data).native`` if ``data`` is exactly
one DER value of the type, and raises ``ValueError`` otherwise. asn1crypto's parser
reads every tag and length (``parser._parse``, the entry point asn1crypto's own
``Sequence`` parsing uses; the public ``parse`` starts only at offset 0); the schema
says which value comes next; each primitive's native value is the one asn1crypto's
``.native`` computes from the same contents. ``read`` accepts a TLV only if it is
exactly ``dump`` of the value it returns:

- a primitive's header octets must equal the header ``emit`` writes for its contents
  (so: this type's class, form and tag, a definite length in the fewest octets), and
  its contents must equal ``contents(value)``;
- a constructed value's header likewise, and its contents must be, with nothing left
  over, the encodings of its elements in schema order, each accepted by ``read``;
  an absent optional field has no encoding, and ``dump`` writes none for it.

By induction on the schema, ``load(data)`` succeeds if and only if
``dump(load(data)) == data``: the test of ``keys.der.load_strict`` (parse, re-encode,
compare), made element by element as the value is read instead of on a second copy.
That is exactly as strict as ``load_strict`` with asn1crypto's classes:

- If ``load_strict`` accepts ``data``, then ``data == A(n)``, where ``n`` is the parsed
  native value and ``A(n)`` asn1crypto's encoding of it (``dump(force=True)`` sets every
  primitive again from its native value and rewrites every header, so nothing of the
  input's own encoding survives). ``A(n)`` is DER, in which every value has the tag,
  the form and the field order the schema gives, so the walk here reads ``n`` back,
  and ``dump(n) == A(n) == data``: accepted, with the same native value.
- If ``load`` accepts ``data``, then ``data == dump(m) == A(m)`` for the native value
  ``m`` read. asn1crypto loads its own encoding ``A(m)`` back to ``m`` and re-encodes
  it to ``A(m)``, so ``load_strict`` accepts ``data`` too, with the same value.

Both arguments rest on two facts, which tests/test_envelope_der.py checks on every
example body, every vector and generated values: ``dump`` equals asn1crypto's
encoding, and ``load`` reads ``dump``'s output back to asn1crypto's native value. A
differential test also gives both checks mutated inputs (every byte flipped,
truncations, trailing bytes, indefinite and long-form lengths, every bad vector) and
requires the same verdict and value. The wire rules of docs/protocol.md are unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from asn1crypto import core, parser
from asn1crypto.parser import _parse  # asn1crypto's TLV reader at an offset
from asn1crypto.util import int_from_bytes, int_to_bytes

__all__ = ["Codec", "Encoded", "codec", "load_strict"]

#: Every header with a one-byte length (contents under 128 bytes) is kept, and up to
#: ``_MAX_KEPT`` others.
_SHORT = 128
_MAX_KEPT = 512


class Encoded(bytes):
    """A value's DER, written before by the codec of its type: ``dump`` takes it as it
    is, so a signed part is written once and then embedded byte for byte."""


class Codec(ABC):
    """One asn1crypto type, compiled: its tag, how to write its contents from a native
    value, and how to read a native value from its contents."""

    def __init__(self, spec: type, params: Mapping[str, Any]) -> None:
        self.spec: Any = spec
        # asn1crypto works out the class, form and tag of a field from its type and
        # its ``implicit`` parameter; ask it rather than repeat its rules.
        if "explicit" in params or "default" in params:
            raise NotImplementedError(f"{spec.__name__}: explicit tags and defaults")
        tagging = {"implicit": params["implicit"]} if "implicit" in params else {}
        instance: Any = spec(**tagging)
        self.identity: tuple[int, int, int] = (instance.class_, instance.method, instance.tag)
        self._headers: dict[int, bytes] = {}

    def _header(self, contents: bytes) -> bytes:
        """The DER header of a value of this type with these contents, as ``emit``
        writes it; it depends only on the length, so it is kept for the next value."""
        length = len(contents)
        header = self._headers.get(length)
        if header is None:
            header = parser.emit(*self.identity, contents)[: -length or None]
            if length < _SHORT or len(self._headers) < _MAX_KEPT:
                self._headers[length] = header
        return header

    def dump(self, native: Any) -> bytes:
        """The DER of ``native``: ``spec(native).dump()``. An asn1crypto value of this
        type is written as it dumps itself (asn1crypto keeps a loaded value's bytes)."""
        if isinstance(native, Encoded):
            return bytes(native)
        if isinstance(native, core.Asn1Value):
            if (native.class_, native.method, native.tag) != self.identity:
                raise ValueError(f"{self.spec.__name__}: a value with another tag")
            return native.dump()  # type: ignore[no-any-return]
        contents = self.contents(native)
        header = self._headers.get(len(contents)) or self._header(contents)
        return header + contents

    @abstractmethod
    def contents(self, native: Any) -> bytes:
        """The contents octets of ``native``."""

    @abstractmethod
    def native(self, contents: bytes) -> Any:
        """The native value of these contents; a constructed type reads each element
        with ``read``, so each is checked to be DER as it is read."""

    #: Whether ``contents(native(c)) == c`` must be checked (it is a primitive's).
    _primitive = True

    def read(self, parsed: tuple[Any, ...]) -> Any:
        """The native value of one TLV from ``_parse``, if the TLV is exactly
        ``dump(native)``, else ``ValueError``."""
        contents = parsed[4]
        # The header octets say the class, form, tag and length: equal to the ones
        # asn1crypto writes, they are this type's, in DER (no indefinite or long-form
        # length where a shorter one would do).
        if parsed[3] != (self._headers.get(len(contents)) or self._header(contents)):
            raise ValueError(f"{self.spec.__name__}: not DER (tag or length)")
        native = self.native(contents)
        if self._primitive and self.contents(native) != contents:
            raise ValueError(f"{self.spec.__name__}: not DER (contents)")
        return native

    def load(self, data: bytes) -> Any:
        """``spec.load(data).native`` if ``data`` is exactly one DER value of the type
        (nothing after it), else ``ValueError``."""
        parsed, end = _parse(data, len(data))
        if end != len(data):
            raise ValueError(f"{self.spec.__name__}: trailing bytes")
        return self.read(parsed)


# Primitives: asn1crypto's own conversions, from its classes' ``set`` and ``native``.


class _Integer(Codec):
    def contents(self, native: Any) -> bytes:
        if not isinstance(native, int):
            raise TypeError(f"{self.spec.__name__} value must be an integer")
        return int_to_bytes(native, signed=True)  # type: ignore[no-any-return]

    def native(self, contents: bytes) -> Any:
        return int_from_bytes(contents, signed=True)


class _Enumerated(Codec):
    """ENUMERATED: a name of the class's ``_map``, or its number. There are a few
    values, so the contents of each are computed once."""

    def __init__(self, spec: type, params: Mapping[str, Any]) -> None:
        super().__init__(spec, params)
        self._names: dict[int, str] = dict(spec._map)  # type: ignore[attr-defined]
        self._contents: dict[int | str, bytes] = {}
        for value, name in self._names.items():
            self._contents[value] = self._contents[name] = int_to_bytes(value, signed=True)

    def contents(self, native: Any) -> bytes:
        if not isinstance(native, int | str) or native not in self._contents:
            raise ValueError(f"{self.spec.__name__}: not a value of its _map")
        return self._contents[native]

    def native(self, contents: bytes) -> Any:
        return self._names[int_from_bytes(contents, signed=True)]


class _Boolean(Codec):
    def contents(self, native: Any) -> bytes:
        return b"\xff" if native else b"\x00"

    def native(self, contents: bytes) -> Any:
        return contents != b"\x00"


class _OctetString(Codec):
    def contents(self, native: Any) -> bytes:
        if not isinstance(native, bytes):
            raise TypeError(f"{self.spec.__name__} value must be bytes")
        return native

    def native(self, contents: bytes) -> Any:
        return contents


class _String(Codec):
    def __init__(self, spec: type, params: Mapping[str, Any]) -> None:
        super().__init__(spec, params)
        self._encoding: str = spec._encoding  # type: ignore[attr-defined]

    def contents(self, native: Any) -> bytes:
        if not isinstance(native, str):
            raise TypeError(f"{self.spec.__name__} value must be a string")
        return native.encode(self._encoding)

    def native(self, contents: bytes) -> Any:
        return contents.decode(self._encoding)


class _Other(Codec):
    """Any other primitive: an instance of its class does the conversion."""

    def contents(self, native: Any) -> bytes:
        return self.spec(native).contents  # type: ignore[no-any-return]

    def native(self, contents: bytes) -> Any:
        return self.spec(contents=contents).native


class _Time(_Other):
    """A time, converted by its asn1crypto class. Envelopes sealed or checked one after
    another often carry the same second, so the last conversion each way is kept."""

    _last_native: tuple[Any, bytes] = (None, b"")
    _last_contents: tuple[bytes, Any] = (b"", None)

    def contents(self, native: Any) -> bytes:
        last = self._last_native  # one read: another thread may replace it meanwhile
        if last[0] is not None and last[0] == native:
            return last[1]
        contents = super().contents(native)
        self._last_native = (native, contents)
        return contents

    def native(self, contents: bytes) -> Any:
        last = self._last_contents
        if last[1] is not None and last[0] == contents:
            return last[1]
        native = super().native(contents)
        self._last_contents = (contents, native)
        return native


class _GeneralizedTime(_Time):
    """GeneralizedTime of a timezone-aware ``datetime``: the text
    ``core.GeneralizedTime.set`` writes (in UTC, whole seconds, then a fraction without
    trailing zeroes when there is one, then ``Z``), written here because that class takes
    about 8 µs, the largest part of a receipt, whose times rarely repeat. Anything else
    (strings, asn1crypto's extended datetimes) goes through the class. Tests compare the
    two on generated times."""

    def contents(self, native: Any) -> bytes:
        if type(native) is not datetime or native.tzinfo is None:
            return super().contents(native)
        value = native.astimezone(UTC)
        fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        return (value.strftime("%Y%m%d%H%M%S") + fraction + "Z").encode("latin1")


# Structure.


class _Sequence(Codec):
    _primitive = False

    def __init__(self, spec: type, params: Mapping[str, Any]) -> None:
        super().__init__(spec, params)
        for attribute in ("_oid_pair", "_spec_callbacks"):
            if getattr(spec, attribute, None) is not None:
                raise NotImplementedError(f"{spec.__name__}: {attribute}")
        self.fields: list[tuple[str, Codec, bool]] = []
        for name, field_spec, *rest in spec._fields:  # type: ignore[attr-defined]
            field_params = rest[0] if rest else {}
            compiled = compile_(field_spec, field_params)
            self.fields.append((name, compiled, bool(field_params.get("optional"))))

    def contents(self, native: Any) -> bytes:
        if not isinstance(native, Mapping):
            raise TypeError(f"{self.spec.__name__} value must be a mapping")
        parts = []
        for name, field, optional in self.fields:
            value = native.get(name)
            if value is not None:
                parts.append(field.dump(value))
            elif not optional:
                raise ValueError(f"{self.spec.__name__}: field {name} is missing")
        return b"".join(parts)

    def native(self, contents: bytes) -> Any:
        out: dict[str, Any] = {}
        size, pointer = len(contents), 0
        parsed: tuple[Any, ...] | None = None
        for name, field, optional in self.fields:
            if parsed is None and pointer < size:
                parsed, pointer = _parse(contents, size, pointer)
            if parsed is not None and (parsed[0], parsed[1], parsed[2]) == field.identity:
                out[name] = field.read(parsed)
                parsed = None
            elif optional:
                out[name] = None
            else:
                raise ValueError(f"{self.spec.__name__}: field {name} is missing")
        if parsed is not None or pointer != size:
            raise ValueError(f"{self.spec.__name__}: an element outside the schema")
        return out


class _SequenceOf(Codec):
    _primitive = False

    def __init__(self, spec: type, params: Mapping[str, Any]) -> None:
        super().__init__(spec, params)
        self.item = compile_(spec._child_spec, {})  # type: ignore[attr-defined]

    def contents(self, native: Any) -> bytes:
        if not isinstance(native, list):
            raise TypeError(f"{self.spec.__name__} value must be a list")
        return b"".join([self.item.dump(item) for item in native])

    def native(self, contents: bytes) -> Any:
        items = []
        size, pointer = len(contents), 0
        while pointer < size:
            parsed, pointer = _parse(contents, size, pointer)
            items.append(self.item.read(parsed))
        return items


def _kind_of(spec: Any) -> Callable[[type, Mapping[str, Any]], Codec]:
    if issubclass(spec, core.Sequence):
        return _Sequence
    if issubclass(spec, core.SequenceOf):
        return _SequenceOf
    if issubclass(spec, core.Enumerated):
        return _Enumerated
    if issubclass(spec, core.Integer):
        return _Other if spec._map else _Integer
    if issubclass(spec, core.Boolean):
        return _Boolean
    if spec is core.GeneralizedTime:
        return _GeneralizedTime
    if issubclass(spec, core.AbstractTime):
        return _Time
    if issubclass(spec, core.AbstractString) and spec.native is core.AbstractString.native:
        return _String
    if spec is core.OctetString:
        return _OctetString
    if issubclass(spec, core.Primitive):
        return _Other
    raise NotImplementedError(f"{spec.__name__}: no codec for this asn1crypto type")


_COMPILED: dict[tuple[type, tuple[tuple[str, Any], ...]], Codec] = {}


def compile_(spec: type, params: Mapping[str, Any]) -> Codec:
    key = (spec, tuple(sorted(params.items())))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _kind_of(spec)(spec, params)
    return compiled


def codec(spec: type) -> Codec:
    """The codec of an asn1crypto class (compiled once, then shared)."""
    return compile_(spec, {})


def load_strict(
    compiled: Codec,
    data: bytes | bytearray | memoryview,
    max_size: int,
    error_cls: Callable[[str], Exception],
    *,
    too_large_cls: Callable[[str], Exception],
    what: str,
) -> Any:
    """``keys.der.load_strict(spec, ...).native``, through ``compiled``: the size bound
    before anything is parsed, then exactly one DER value, else the caller's error."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise error_cls(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise too_large_cls(f"{what}: {len(data)} bytes is over the limit of {max_size}")
    try:
        return compiled.load(bytes(data))
    # As in keys.der: hostile input can make asn1crypto's parser and the conversions
    # raise many types (ValueError, KeyError, UnicodeDecodeError …); each means "not a
    # DER value of this schema".
    except Exception as e:
        raise error_cls(f"{what}: not a DER value of the schema ({type(e).__name__})") from None
