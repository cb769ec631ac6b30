"""A small declarative schema language for bodies.

One table per kind (body.py) drives four things, so they cannot drift apart:

- ``parse``: the JSON form to native values, closed (an unknown key is an error);
- ``validate``: every rule, on native values, whether they came from JSON or from DER;
- ``spec``: the asn1crypto classes that give the DER form (written and read through
  ``gateway.envelope.der``, which gives asn1crypto's bytes faster);
- ``definition``: the ASN.1 text that docs/protocol.md quotes.

Native values are what asn1crypto reads and writes: ``str``, ``int``, ``bool``,
``bytes``, lists and dicts (absent optional fields are left out). They equal the JSON
form except for binary fields, which JSON carries as base64 or hex.

Every SEQUENCE is written with AUTOMATIC TAGS: component *i* is ``[i] IMPLICIT``, so an
optional field can never be mistaken for the next one. JSON names are snake_case; the
ASN.1 identifiers are the same words in camelCase.

Errors name the JSON path of the field (``persons[0].name.latin.surname``), never its
value: bodies hold personal data.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from asn1crypto import core

from gateway.envelope import der, limits
from gateway.envelope.errors import (
    BadScript,
    BadValue,
    BodyError,
    BodyNotDer,
    BodyTooLarge,
    MissingField,
    UnknownField,
    quotable,
)
from keys.errors import BadName, KeysError
from keys.fields import check_cyrillic, check_latin


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


class FieldType(ABC):
    """A value's forms: JSON, native (for asn1crypto), and ASN.1 text."""

    #: The ASN.1 name used where the type appears in a component list.
    ref: str

    def parse(self, value: object, path: str) -> Any:
        """The native value of ``value`` in its JSON form; a leaf's is the value itself."""
        return value

    @abstractmethod
    def validate(self, native: Any, path: str) -> None:
        """Every rule of the type, or a ``BodyError`` naming ``path``."""

    def to_json(self, native: Any) -> Any:
        return native

    def from_asn1(self, native: Any) -> Any:
        """Our native form of asn1crypto's ``.native`` (which gives absent fields as None)."""
        return native

    @abstractmethod
    def spec(self) -> type:
        """The asn1crypto class."""

    def definition(self) -> str | None:
        """The ASN.1 assignment of ``ref``, if it is a named type."""
        return None

    def nested(self) -> Iterator[FieldType]:
        """Types this one refers to, for writing the module."""
        return iter(())


# Leaves -------------------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


class Text(FieldType):
    """UTF-8 text in NFC; free text may hold line breaks and tabs."""

    def __init__(self, ref: str, max_chars: int, *, single_line: bool = False) -> None:
        self.ref = ref
        self.max_chars = max_chars
        self.single_line = single_line

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, str):
            raise BadValue(f"{path} must be a string")
        if not 1 <= len(native) <= self.max_chars:
            raise BadValue(f"{path} must be 1 to {self.max_chars} characters")
        if unicodedata.normalize("NFC", native) != native:
            raise BadValue(f"{path} must be in Unicode NFC form")
        if _CONTROL.search(native) or (self.single_line and ("\n" in native or "\t" in native)):
            raise BadValue(f"{path} holds control characters")

    def spec(self) -> type:
        return core.UTF8String  # type: ignore[no-any-return]

    def definition(self) -> str:
        return f"{self.ref} ::= UTF8String (SIZE (1..{self.max_chars}))"


class Name(Text):
    """A part of a person's name in one script (A6.1 item 1, A14); the rules are the
    ones keys/ applies to the names of officials."""

    def __init__(self, script: str) -> None:
        super().__init__(f"{script.title()}Name", limits.MAX_NAME_CHARS, single_line=True)
        self.script = script
        self._check_script = check_cyrillic if script == "cyrillic" else check_latin

    def validate(self, native: Any, path: str) -> None:
        super().validate(native, path)
        try:
            self._check_script(native, path)
        except BadName as e:
            raise BadScript(e.message) from None
        except KeysError as e:
            raise BadValue(e.message) from None

    def definition(self) -> str:
        return (
            f"{self.ref} ::= UTF8String (SIZE (1..{self.max_chars}))"
            f"  -- {self.script.title()} script"
        )


class Pattern(FieldType):
    """ASCII text of a fixed shape: dates, country codes, media types."""

    def __init__(
        self, ref: str, asn1: str, regex: str, what: str, max_chars: int, min_chars: int = 1
    ) -> None:
        self.ref = ref
        self.asn1 = asn1
        self.regex = re.compile(regex)
        self.what = what
        self.max_chars = max_chars
        self.min_chars = min_chars

    def validate(self, native: Any, path: str) -> None:
        if (
            not isinstance(native, str)
            or len(native) > self.max_chars
            or self.regex.fullmatch(native) is None
        ):
            raise BadValue(f"{path} must be {self.what}")

    def spec(self) -> type:
        return core.PrintableString if self.asn1 == "PrintableString" else core.IA5String  # type: ignore[no-any-return]

    def definition(self) -> str:
        size = (
            f"{self.max_chars}"
            if self.min_chars == self.max_chars
            else f"{self.min_chars}..{self.max_chars}"
        )
        return f"{self.ref} ::= {self.asn1} (SIZE ({size}))  -- {self.what}"


class Date(Pattern):
    def __init__(self) -> None:
        super().__init__(
            "Date", "PrintableString", r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "a date YYYY-MM-DD", 10, 10
        )

    def validate(self, native: Any, path: str) -> None:
        super().validate(native, path)
        try:
            date.fromisoformat(native)
        except ValueError:
            raise BadValue(f"{path} must be a calendar date YYYY-MM-DD") from None


class Boolean(FieldType):
    """BOOLEAN; ``const`` pins the only value allowed (an obligation, not a choice)."""

    def __init__(self, const: bool | None = None) -> None:
        self.const = const
        self.ref = "BOOLEAN"

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, bool):
            raise BadValue(f"{path} must be true or false")
        if self.const is not None and native is not self.const:
            raise BadValue(f"{path} must be {str(self.const).lower()}")

    def spec(self) -> type:
        return core.Boolean  # type: ignore[no-any-return]


class Count(FieldType):
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.ref = f"INTEGER (0..{maximum})"

    def validate(self, native: Any, path: str) -> None:
        if isinstance(native, bool) or not isinstance(native, int):
            raise BadValue(f"{path} must be an integer")
        if not 0 <= native <= self.maximum:
            raise BadValue(f"{path} must be from 0 to {self.maximum}")

    def spec(self) -> type:
        return core.Integer  # type: ignore[no-any-return]


class Enum(FieldType):
    """ENUMERATED, numbered from 1 in table order; JSON uses the snake_case names.

    ``error`` replaces ``BadValue`` for a value outside the list (``BadCategory`` for A5).
    """

    def __init__(
        self, ref: str, names: tuple[str, ...], error: type[BodyError] = BadValue
    ) -> None:
        self.ref = ref
        self.names = names
        self.error = error
        self._spec = type(ref, (core.Enumerated,), {"_map": dict(enumerate(names, start=1))})

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, str) or native not in self.names:
            raise self.error(f"{path} must be one of: {', '.join(self.names)}")

    def spec(self) -> type:
        return self._spec

    def definition(self) -> str:
        items = ",\n".join(f"    {camel(n)} ({i})" for i, n in enumerate(self.names, start=1))
        return f"{self.ref} ::= ENUMERATED {{\n{items}\n}}"


class Binary(FieldType):
    """OCTET STRING; in JSON base64 (RFC 4648 section 4, with padding, canonical)."""

    def __init__(self, ref: str, max_size: int) -> None:
        self.ref = ref
        self.max_size = max_size

    def parse(self, value: object, path: str) -> Any:
        if not isinstance(value, str) or len(value) > 4 * -(-self.max_size // 3):
            raise BadValue(f"{path} must be base64 of at most {self.max_size} bytes")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadValue(f"{path} must be base64 (RFC 4648 section 4, padded)") from None
        # Only a padded last group can hide stray bits; re-encoding it shows them.
        tail = len(raw) % 3
        if tail and base64.b64encode(raw[-tail:]).decode("ascii") != value[-4:]:
            raise BadValue(f"{path} must be canonical base64")
        return raw

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, bytes) or len(native) > self.max_size:
            raise BadValue(f"{path} must be at most {self.max_size} bytes")

    def to_json(self, native: Any) -> Any:
        return base64.b64encode(native).decode("ascii")

    def spec(self) -> type:
        return core.OctetString  # type: ignore[no-any-return]

    def definition(self) -> str:
        return f"{self.ref} ::= OCTET STRING (SIZE (0..{self.max_size}))"


class Hex(FieldType):
    """OCTET STRING of a fixed size; in JSON lowercase hex (digests, envelope ids)."""

    def __init__(self, ref: str, size: int) -> None:
        self.ref = ref
        self.size = size
        self._regex = re.compile(f"[0-9a-f]{{{2 * size}}}")

    def parse(self, value: object, path: str) -> Any:
        if not isinstance(value, str) or self._regex.fullmatch(value) is None:
            raise BadValue(f"{path} must be {2 * self.size} lowercase hex digits")
        return bytes.fromhex(value)

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, bytes) or len(native) != self.size:
            raise BadValue(f"{path} must be {self.size} bytes")

    def to_json(self, native: Any) -> Any:
        return native.hex()

    def spec(self) -> type:
        return core.OctetString  # type: ignore[no-any-return]

    def definition(self) -> str:
        return f"{self.ref} ::= OCTET STRING (SIZE ({self.size}))"


# Structure ----------------------------------------------------------------------------


class ListOf(FieldType):
    def __init__(self, item: FieldType, min_items: int, max_items: int) -> None:
        self.item = item
        self.min_items = min_items
        self.max_items = max_items
        self.ref = f"SEQUENCE (SIZE ({min_items}..{max_items})) OF {item.ref}"
        self._spec = type(f"ListOf{item.ref}", (core.SequenceOf,), {"_child_spec": item.spec()})

    def parse(self, value: object, path: str) -> Any:
        if not isinstance(value, list):
            raise BadValue(f"{path} must be a list")
        if len(value) > self.max_items:  # before parsing what would be refused anyway
            raise BadValue(f"{path} must have {self.min_items} to {self.max_items} items")
        return [self.item.parse(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, list):
            raise BadValue(f"{path} must be a list")
        if not self.min_items <= len(native) <= self.max_items:
            raise BadValue(f"{path} must have {self.min_items} to {self.max_items} items")
        for i, item in enumerate(native):
            self.item.validate(item, f"{path}[{i}]")

    def to_json(self, native: Any) -> Any:
        return [self.item.to_json(item) for item in native]

    def from_asn1(self, native: Any) -> Any:
        return [self.item.from_asn1(item) for item in native]

    def spec(self) -> type:
        return self._spec

    def nested(self) -> Iterator[FieldType]:
        yield self.item


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    optional: bool = False


#: A rule over a whole object, run after its fields are valid: (native, path) -> None.
Rule = Callable[[dict[str, Any], str], None]


def exactly_one_of(*names: str) -> Rule:
    def rule(native: dict[str, Any], path: str) -> None:
        present = [name for name in names if name in native]
        if len(present) != 1:
            raise (MissingField if not present else BadValue)(
                f"{path} must have exactly one of: {', '.join(names)}"
            )

    return rule


def at_least_one_of(*names: str) -> Rule:
    def rule(native: dict[str, Any], path: str) -> None:
        if not any(name in native for name in names):
            raise MissingField(f"{path} must have at least one of: {', '.join(names)}")

    return rule


class Struct(FieldType):
    """A closed JSON object and its SEQUENCE; ``missing`` overrides ``MissingField`` per
    field (a person without a category is ``body.bad_category``, A5)."""

    def __init__(
        self,
        ref: str,
        fields: tuple[Field, ...],
        *,
        rules: tuple[Rule, ...] = (),
        missing: dict[str, type[BodyError]] | None = None,
        closed_by: str = "",
    ) -> None:
        self.ref = ref
        self.fields = fields
        self.rules = rules
        self.missing = missing or {}
        self.closed_by = closed_by
        self._names = {f.name for f in fields}
        self._spec = type(
            ref,
            (core.Sequence,),
            {
                "_fields": [
                    (f.name, f.type.spec(), {"implicit": i, "optional": f.optional})
                    for i, f in enumerate(fields)
                ]
            },
        )

    def parse(self, value: object, path: str) -> Any:
        if not isinstance(value, dict):
            raise BadValue(f"{path} must be an object")
        for key in value:
            if key not in self._names:
                where = f" ({self.closed_by})" if self.closed_by else ""
                raise UnknownField(f"{path}: field {quotable(key)} is not allowed{where}")
        native: dict[str, Any] = {}
        for f in self.fields:
            if f.name in value:
                native[f.name] = f.type.parse(value[f.name], f"{path}.{f.name}")
            elif not f.optional:
                raise self.missing.get(f.name, MissingField)(f"{path}.{f.name} is missing")
        return native

    def validate(self, native: Any, path: str) -> None:
        if not isinstance(native, dict):
            raise BadValue(f"{path} must be an object")
        for f in self.fields:
            if f.name in native:
                f.type.validate(native[f.name], f"{path}.{f.name}")
        for rule in self.rules:
            rule(native, path)

    def to_json(self, native: Any) -> Any:
        return {f.name: f.type.to_json(native[f.name]) for f in self.fields if f.name in native}

    def from_asn1(self, native: Any) -> Any:
        return {
            f.name: f.type.from_asn1(native[f.name])
            for f in self.fields
            if native[f.name] is not None
        }

    def check(self, value: object, path: str) -> dict[str, Any]:
        """The native value of a JSON object, after every rule."""
        native: dict[str, Any] = self.parse(value, path)
        self.validate(native, path)
        return native

    def encode(self, native: Any) -> bytes:
        """The DER of a valid native value: what ``self.spec()(native).dump()`` writes."""
        return der.codec(self._spec).dump(native)

    def decode(self, data: bytes, what: str) -> Any:
        """The native value of strict DER (``BodyNotDer`` otherwise), not yet validated."""
        native = der.load_strict(
            der.codec(self._spec), data, limits.MAX_BODY, BodyNotDer,
            too_large_cls=BodyTooLarge, what=what,
        )
        return self.from_asn1(native)

    def spec(self) -> type:
        return self._spec

    def nested(self) -> Iterator[FieldType]:
        for f in self.fields:
            yield f.type

    def definition(self) -> str:
        width = max(len(camel(f.name)) for f in self.fields)
        lines = [
            f"    {camel(f.name):<{width}}  {f.type.ref}{' OPTIONAL' if f.optional else ''}"
            for f in self.fields
        ]
        return f"{self.ref} ::= SEQUENCE {{\n" + ",\n".join(lines) + "\n}"


def asn1_module(name: str, roots: tuple[FieldType, ...]) -> str:
    """The ASN.1 module defining ``roots`` and every named type they use, in order of
    first use."""
    seen: dict[str, str] = {}

    def visit(t: FieldType) -> None:
        definition = t.definition()
        if definition is not None and t.ref not in seen:
            seen[t.ref] = definition
        for inner in t.nested():
            visit(inner)

    for root in roots:
        visit(root)
    body = "\n\n".join(seen.values())
    return f"{name} DEFINITIONS AUTOMATIC TAGS ::= BEGIN\n\n{body}\n\nEND\n"
