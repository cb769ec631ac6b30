"""Field rules shared by the Party directory and signatory lists.

Each check raises a coded ``KeysError`` naming the field, never its value: names of
officials are personal data, and a message that quotes input can leak anything.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import datetime
from typing import Literal

from keys.errors import BadAuthorityId, BadName, InvalidDocument, LimitExceeded

Party = Literal["KZ", "BY"]
PARTIES: tuple[Party, ...] = ("KZ", "BY")

MAX_NAME_CHARS = 256
MAX_VERSION = 2**63 - 1

_AUTHORITY_ID = re.compile(r"[A-Z]{2}-[A-Z0-9]{2,16}")
# Characters a name may hold besides letters of its script: spaces between words,
# hyphens, quotes (the ministries' names use «»), digits and common punctuation.
_NAME_EXTRAS = frozenset(" -'’\"«»“”„.,()№/:&0123456789")


def check_party(value: object) -> Party:
    if value not in PARTIES:
        raise InvalidDocument("party must be 'KZ' or 'BY'")
    return value


def check_authority_id(value: object, party: str) -> str:
    """Authority ids look like ``KZ-MVD``: the Party's code, a hyphen, 2-16 [A-Z0-9]."""
    if not isinstance(value, str) or _AUTHORITY_ID.fullmatch(value) is None:
        raise BadAuthorityId("authority id must match ^[A-Z]{2}-[A-Z0-9]{2,16}$")
    if value[:2] != party:
        raise BadAuthorityId(f"authority id {value} does not belong to party {party}")
    return value


def check_version(value: object, field: str = "version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise InvalidDocument(f"{field} must be an integer from 1 to 2^63-1")
    return value


def check_time(value: object, field: str) -> datetime:
    """Times are timezone-aware and whole seconds, so they encode to one DER form."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidDocument(f"{field} must be a timezone-aware datetime")
    if value.utcoffset() is None or value.microsecond != 0:
        raise InvalidDocument(f"{field} must be a whole second")
    return value


def check_validity(valid_from: datetime, valid_until: datetime | None, what: str) -> None:
    check_time(valid_from, f"{what}.valid_from")
    if valid_until is not None:
        check_time(valid_until, f"{what}.valid_until")
        if valid_until <= valid_from:
            raise InvalidDocument(f"{what}: valid_until must be after valid_from")


def check_key_bytes(value: object, field: str, size: int = 32) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidDocument(f"{field} must be {size} bytes")
    return value


def check_ascii(value: object, field: str, max_chars: int) -> str:
    """Printable ASCII without spaces: URLs, origins, media types."""
    if not isinstance(value, str):
        raise InvalidDocument(f"{field} must be text")
    if not 1 <= len(value) <= max_chars:
        raise LimitExceeded(f"{field} must be 1 to {max_chars} characters")
    if not all("!" <= ch <= "~" for ch in value):
        raise InvalidDocument(f"{field} must be printable ASCII without spaces")
    return value


@functools.lru_cache(maxsize=4096)
def _script_of(ch: str) -> str | None:
    """"CYRILLIC" or "LATIN" for a letter of that script, else None.

    Cached per character (a character alone is not personal data): the Unicode name
    lookup is what made name checks the slowest part of sealing a request.
    """
    if not ch.isalpha():
        return None
    script = unicodedata.name(ch, "").split(" ", 1)[0]
    return script if script in ("CYRILLIC", "LATIN") else None


def _check_name(value: object, field: str, script: str) -> str:
    if not isinstance(value, str):
        raise InvalidDocument(f"{field} must be text")
    if not 1 <= len(value) <= MAX_NAME_CHARS:
        raise LimitExceeded(f"{field} must be 1 to {MAX_NAME_CHARS} characters")
    if unicodedata.normalize("NFC", value) != value:
        raise BadName(f"{field} must be in Unicode NFC form")
    if value != value.strip(" ") or "  " in value:
        raise BadName(f"{field} must not have leading, trailing or double spaces")
    letters = 0
    for ch in value:
        if ch in _NAME_EXTRAS:
            continue
        if _script_of(ch) != script:
            raise BadName(f"{field} must be written in {script.title()} script (A14)")
        letters += 1
    if letters == 0:
        raise BadName(f"{field} must contain {script.title()} letters (A14)")
    return value


def check_cyrillic(value: object, field: str) -> str:
    """A name in Russian (A14): Cyrillic letters (Kazakh and Belarusian ones too)."""
    return _check_name(value, field, "CYRILLIC")


def check_latin(value: object, field: str) -> str:
    """The same name in Latin script, letters with diacritics allowed."""
    return _check_name(value, field, "LATIN")
