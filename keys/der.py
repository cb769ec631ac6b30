"""Strict DER decoding on top of asn1crypto.

asn1crypto reads BER: indefinite lengths, non-minimal lengths and integers, times with
offsets. A signature over DER must have exactly one encoding, so ``load_strict`` accepts
a value only if re-encoding the parsed value gives back the very bytes received:

1. bound the size before parsing anything;
2. parse with ``strict=True`` (trailing bytes are an error);
3. walk the whole value (asn1crypto parses lazily, and a bad inner field must fail
   here, not later in the caller);
4. re-encode with ``dump(force=True)`` and require byte equality.

Every failure becomes the caller's coded error, whose message never quotes the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def load_strict(
    spec_class: type[T],
    data: bytes | bytearray | memoryview,
    max_size: int,
    error_cls: Callable[[str], Exception],
    *,
    too_large_cls: Callable[[str], Exception] | None = None,
    what: str | None = None,
) -> T:
    """Parse ``data`` as DER of ``spec_class`` (an asn1crypto type), or raise.

    ``error_cls(message)`` is raised for anything that is not exactly one DER value of
    the schema; ``too_large_cls`` (default ``error_cls``) when ``data`` is over
    ``max_size`` bytes.
    """
    name = what or spec_class.__name__
    if not isinstance(data, bytes | bytearray | memoryview):
        raise error_cls(f"{name}: expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise (too_large_cls or error_cls)(
            f"{name}: {len(data)} bytes is over the limit of {max_size}"
        )
    raw = bytes(data)
    try:
        value = spec_class.load(raw, strict=True)  # type: ignore[attr-defined]
        value.native  # noqa: B018 - forces the lazy parse of every nested field
        again = value.dump(force=True)
    # asn1crypto documents no exception contract (ValueError, TypeError, OverflowError,
    # UnicodeDecodeError … all occur on hostile input), so any failure while parsing
    # untrusted bytes means "not a DER value of this schema".
    except Exception as e:
        raise error_cls(f"{name}: not a DER value of the schema ({type(e).__name__})") from None
    if again != raw:
        raise error_cls(f"{name}: not DER (a non-canonical encoding of the schema)")
    return value  # type: ignore[no-any-return]
