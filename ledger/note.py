"""C2SP signed notes (c2sp.org/signed-note), checkpoint bodies (c2sp.org/tlog-checkpoint)
and Ed25519 cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``).

Only our own choices are written here; the specifications say the rest:

- a log signs with signature type 0x01 (Ed25519) under a key named by its origin;
  a witness cosigns with type 0x04 under a key of its own;
- checkpoints carry no extension lines (the specification does not recommend them);
- parsing is strict: a note is UTF-8 without control characters other than newline,
  at most ``MAX_NOTE_SIZE`` bytes and ``MAX_SIGNATURES`` signature lines; decimal
  numbers have no leading zeroes; base64 must re-encode to the same text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from ledger.errors import (
    BadCheckpoint,
    BadCosignature,
    BadNote,
    BadSignature,
    BadVerifierKey,
    WrongOrigin,
)
from ledger.hashing import HASH_SIZE

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
KEY_ID_SIZE = 4
ED25519_SIGNATURE_SIZE = 64
MAX_NOTE_SIZE = 16 * 1024
MAX_SIGNATURES = 32  # c2sp.org/signed-note: verifiers MUST accept at least 16
MAX_TREE_SIZE = 2**63 - 1
MAX_TIMESTAMP = 2**63 - 1

_DASH = "\u2014 "  # em dash, space: the start of every signature line
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def strict_b64decode(text: str, what: str, error: type[Exception]) -> bytes:
    """Standard base64 with padding (RFC 4648 §4), and only its canonical form."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not base64") from None
    if _b64(raw) != text:
        raise error(f"{what} is not canonical base64")
    return raw


def parse_decimal(text: str, what: str, error: type[Exception], maximum: int) -> int:
    if not _DECIMAL_RE.fullmatch(text) or int(text) > maximum:
        raise error(f"{what} is not a decimal number without leading zeroes, at most "
                    f"{maximum}")
    return int(text)


def _check_name(name: str, error: type[Exception]) -> None:
    # No Unicode spaces (str.split() splits on exactly those) and no plus.
    if (not name or "+" in name or len(name.split()) != 1 or name != name.strip()
            or _CONTROL_RE.search(name) or "\n" in name):
        raise error("a key name must be non-empty, without spaces or '+'")


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` (c2sp.org/signed-note)."""
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


# --- keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteVerifier:
    """A note verifier key: who signs (``name``), how (``type``) and with what key."""

    name: str
    type: int
    key: VerifyKey

    def __post_init__(self) -> None:
        _check_name(self.name, BadVerifierKey)
        if self.type not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise BadVerifierKey(f"signature type 0x{self.type:02x} is not supported")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.type, bytes(self.key))

    @property
    def vkey(self) -> str:
        """``<name>+<8 hex key id>+<base64(type || public key)>``."""
        encoded = _b64(bytes([self.type]) + bytes(self.key))
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        parts = vkey.strip().split("+", 2)  # base64 may hold '+', the name never does
        if len(parts) != 3:
            raise BadVerifierKey("a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, encoded = parts
        raw = strict_b64decode(encoded, "verifier key", BadVerifierKey)
        if len(raw) != 33:
            raise BadVerifierKey("verifier key must be a type byte and a 32-byte key")
        verifier = cls(name, raw[0], VerifyKey(raw[1:]))
        if hex_id != verifier.key_id.hex():
            raise BadVerifierKey("verifier key id does not match its name and key")
        return verifier


def log_verifier(name: str, key: VerifyKey) -> NoteVerifier:
    return NoteVerifier(name, SIG_ED25519, key)


def witness_verifier(name: str, key: VerifyKey) -> NoteVerifier:
    return NoteVerifier(name, SIG_COSIGNATURE_V1, key)


# --- notes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # for type 0x04: the 8-byte timestamp, then the Ed25519 signature

    @property
    def line(self) -> str:
        return f"{_DASH}{self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    text: str  # ends in a newline; the separating blank line is not part of it
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line for s in self.signatures)

    def with_signatures(self, *extra: NoteSignature) -> Note:
        """The same note with more signature lines (duplicates dropped)."""
        have = list(self.signatures)
        have.extend(s for s in extra if s not in have)
        return Note(self.text, tuple(have))


def parse_note(data: str | bytes) -> Note:
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_SIZE:
            raise BadNote(f"note is over {MAX_NOTE_SIZE} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadNote("note is not UTF-8") from None
    if len(data.encode("utf-8")) > MAX_NOTE_SIZE:
        raise BadNote(f"note is over {MAX_NOTE_SIZE} bytes")
    if _CONTROL_RE.search(data):
        raise BadNote("note holds control characters")
    cut = data.rfind("\n\n")
    if cut < 0 or not data.endswith("\n"):
        raise BadNote("note has no blank line before its signatures")
    text, lines = data[: cut + 1], data[cut + 2 :].split("\n")[:-1]
    if not lines:
        raise BadNote("note has no signature")
    if len(lines) > MAX_SIGNATURES:
        raise BadNote(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise BadNote("a signature line must start with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        _check_name(name, BadNote)
        raw = strict_b64decode(encoded, "signature", BadNote)
        if len(raw) <= KEY_ID_SIZE:
            raise BadNote("a signature must hold a key id and signature bytes")
        signatures.append(NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return Note(text, tuple(signatures))


def _from(note: Note, verifier: NoteVerifier) -> list[NoteSignature]:
    """The note's signatures by ``verifier``; others are ignored, as C2SP requires."""
    wanted = verifier.key_id
    return [s for s in note.signatures if s.name == verifier.name and s.key_id == wanted]


def sign_note(text: str, name: str, key: SigningKey) -> Note:
    """A note signed with Ed25519 (type 0x01)."""
    if not text.endswith("\n"):
        raise BadNote("note text must end with a newline")
    signature = key.sign(text.encode("utf-8")).signature
    verifier = log_verifier(name, key.verify_key)
    return Note(text, (NoteSignature(name, verifier.key_id, signature),))


def verify_note(note: Note, verifier: NoteVerifier) -> None:
    """Every signature by ``verifier`` holds, and there is at least one."""
    if verifier.type != SIG_ED25519:
        raise BadVerifierKey("a note is verified with an Ed25519 (type 0x01) key")
    found = _from(note, verifier)
    if not found:
        raise BadSignature(f"note carries no signature by {verifier.name}")
    for signature in found:
        try:
            verifier.key.verify(note.text.encode("utf-8"), signature.signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            raise BadSignature(f"signature by {verifier.name} does not verify") from None


# --- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"


def parse_checkpoint_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise BadCheckpoint("a checkpoint body is exactly three lines (no extension lines)")
    origin, size_text, root_text = lines[:3]
    _check_name(origin, BadCheckpoint)
    size = parse_decimal(size_text, "tree size", BadCheckpoint, MAX_TREE_SIZE)
    root = strict_b64decode(root_text, "root hash", BadCheckpoint)
    if len(root) != HASH_SIZE:
        raise BadCheckpoint(f"root hash is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin, size, root)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its note: the log's signature and any cosignatures."""

    checkpoint: Checkpoint
    signed: Note

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    @property
    def note(self) -> str:
        """The whole note text, signature lines included, as sent and printed."""
        return str(self.signed)


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey) -> SignedCheckpoint:
    return SignedCheckpoint(checkpoint, sign_note(checkpoint.body, checkpoint.origin, key))


def open_checkpoint(data: str | bytes, log: NoteVerifier) -> SignedCheckpoint:
    """Parse a checkpoint note and verify the log's signature on it."""
    note = parse_note(data)
    verify_note(note, log)
    checkpoint = parse_checkpoint_body(note.text)
    if checkpoint.origin != log.name:
        raise WrongOrigin(f"checkpoint origin {checkpoint.origin!r} is not the log "
                          f"{log.name!r}")
    return SignedCheckpoint(checkpoint, note)


# --- cosignatures ------------------------------------------------------------------------


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The message a ``cosignature/v1`` signs (c2sp.org/tlog-cosignature)."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign_body(body: str, timestamp: int, name: str, key: SigningKey) -> NoteSignature:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise BadCosignature("cosignature timestamp out of range")
    verifier = witness_verifier(name, key.verify_key)
    signature = key.sign(cosignature_message(body, timestamp)).signature
    return NoteSignature(name, verifier.key_id, timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(body: str, signature: NoteSignature, witness: NoteVerifier) -> int:
    """Check one cosignature line by ``witness``; return its timestamp."""
    if witness.type != SIG_COSIGNATURE_V1:
        raise BadVerifierKey("a cosignature is verified with a type 0x04 key")
    if signature.name != witness.name or signature.key_id != witness.key_id:
        raise BadCosignature(f"cosignature is not by {witness.name}")
    if len(signature.signature) != 8 + ED25519_SIGNATURE_SIZE:
        raise BadCosignature("cosignature is not a timestamp and an Ed25519 signature")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise BadCosignature("cosignature timestamp out of range")
    try:
        witness.key.verify(cosignature_message(body, timestamp), signature.signature[8:])
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise BadCosignature(f"cosignature by {witness.name} does not verify") from None
    return timestamp


def cosignatures_by(note: Note, witness: NoteVerifier) -> list[int]:
    """Verify every cosignature ``witness`` put on ``note``; their timestamps."""
    return [verify_cosignature(note.text, s, witness) for s in _from(note, witness)]


def parse_signature_line(line: str) -> NoteSignature:
    """One signature line, as a peer sends a cosignature (trailing newline optional)."""
    if not line.endswith("\n"):
        line += "\n"
    if line.count("\n") != 1:
        raise BadNote("a signature line is one line")
    # Reuse the note parser on a minimal note so the rules cannot drift apart.
    return parse_note("x\n\n" + line).signatures[0]
