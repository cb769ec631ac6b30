"""Every failure the keys package raises.

Each class carries a stable dotted ``code`` (public API: listed in docs/keys.md, never
renamed) and a message that names no person and no secret. Signatory names are personal
data of officials, so no message ever quotes a name, and decoders never quote the bytes
they were given.
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


# Key files ---------------------------------------------------------------------------


class WrongPassphrase(KeysError):
    code = "keys.wrong_passphrase"


class BadKeyFile(KeysError):
    code = "keys.bad_key_file"


class KeyFileExists(BadKeyFile):
    code = "keys.key_file_exists"


class WrongKeyKind(KeysError):
    code = "keys.wrong_kind"


class NoPassphrase(KeysError):
    code = "keys.no_passphrase"


# Signed documents (Party directory, signatory lists): decoding ------------------------


class TooLarge(KeysError):
    """The document is bigger than its limit; nothing was parsed."""

    code = "keys.too_large"


class NotDer(KeysError):
    """Not the schema, not DER (BER, indefinite or non-minimal lengths), or trailing bytes."""

    code = "keys.not_der"


class UnsupportedFormat(KeysError):
    code = "keys.unsupported_format"


class BadSignature(KeysError):
    code = "keys.bad_signature"


class RootMismatch(KeysError):
    """The document names (or was signed with) a root key other than the pinned one."""

    code = "keys.root_mismatch"


# Signed documents: content rules -----------------------------------------------------


class InvalidDocument(KeysError):
    """A field breaks a rule of docs/keys.md (party, version, times, duplicates …)."""

    code = "keys.invalid_document"


class LimitExceeded(KeysError):
    """A count or a length is over its documented bound."""

    code = "keys.limit_exceeded"


class BadAuthorityId(KeysError):
    code = "keys.bad_authority_id"


class BadName(KeysError):
    """A name is not in the script its field requires (A14)."""

    code = "keys.bad_name"


# Party directory ---------------------------------------------------------------------


class DirectoryExpired(KeysError):
    code = "keys.directory_expired"


class DirectoryNotYetValid(KeysError):
    code = "keys.directory_not_yet_valid"


class StaleDirectory(KeysError):
    """A directory whose version is not higher than the one it would replace (A2.2)."""

    code = "keys.stale_directory"


class DirectoryConflict(KeysError):
    """The same directory version received twice with different content."""

    code = "keys.directory_conflict"


class NoDirectory(KeysError):
    """No directory version was in force at the time asked about."""

    code = "keys.no_directory"


class UnknownAuthority(KeysError):
    code = "keys.unknown_authority"


class AuthorityNotInForce(KeysError):
    code = "keys.authority_not_in_force"


# Signatory lists (A9.3, A9.4) --------------------------------------------------------


class SignatoryListConflict(KeysError):
    """A list version re-used with different content, or out of order in time."""

    code = "keys.signatory_list_conflict"


class NoSignatoryList(KeysError):
    code = "keys.no_signatory_list"


class UnknownSignatory(KeysError):
    """The key is on no version of the authority's list."""

    code = "keys.unknown_signatory"


class SignatoryNotInForce(KeysError):
    """The key was listed, but not in the version in force then, or outside its validity."""

    code = "keys.signatory_not_in_force"
