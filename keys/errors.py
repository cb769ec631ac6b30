"""Every failure the keys package raises.

Each class carries a stable dotted ``code`` (public API: listed in docs/keys.md, never
renamed) and a message that names no person and no secret.
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of every keys-package failure."""

    code = "keys.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class WrongPassphrase(KeysError):
    code = "keys.wrong_passphrase"


class BadKeyFile(KeysError):
    code = "keys.bad_key_file"


class WrongKeyKind(KeysError):
    code = "keys.wrong_kind"


class NoPassphrase(KeysError):
    code = "keys.no_passphrase"
