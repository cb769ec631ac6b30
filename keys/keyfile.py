"""Private key files encrypted at rest, and their public halves.

A private key file is JSON (so an operator can read which key it is without the
passphrase)::

    {"format": "kzby-key/1", "kind": "signing" | "encryption",
     "key_id": "<32 hex>", "public": "<base64>",
     "kdf": {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": "<base64>"},
     "box": "<base64 of SecretBox(nonce || ciphertext) of the 32-byte private seed>"}

The box key is Argon2id(passphrase, salt) from libsodium (``nacl.pwhash.argon2id``).
The file is written with mode 0600. ``PATH.pub`` beside it holds only the public part::

    {"format": "kzby-pub/1", "kind": "...", "key_id": "<32 hex>", "public": "<base64>"}

A wrong passphrase and a corrupted box both raise ``WrongPassphrase``: SecretBox cannot
tell them apart, and saying more would help nobody but a guesser.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
from pathlib import Path
from typing import Any, Literal

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from keys.errors import BadKeyFile, KeyFileExists, NoPassphrase, WrongKeyKind, WrongPassphrase
from keys.keyid import key_id

KeyKind = Literal["signing", "encryption"]
PrivateKeyT = SigningKey | PrivateKey
PublicKeyT = VerifyKey | PublicKey

PRIVATE_FORMAT = "kzby-key/1"
PUBLIC_FORMAT = "kzby-pub/1"
PASSPHRASE_ENV = "GATEWAY_PASSPHRASE"

# Interactive limits: about 0.1 s and 64 MiB per unlock on these machines.
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Bounds on what a file may ask for, so a hostile file cannot make us allocate 1 TiB
# or spin for an hour. Tests write files with the MIN limits.
MIN_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN
MIN_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MIN
MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
MAX_FILE_SIZE = 64 * 1024
# SecretBox output for a 32-byte seed: 24-byte nonce, 16-byte tag, 32 bytes.
_BOX_SIZE = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + 32


def _limits_ok(opslimit: object, memlimit: object) -> bool:
    def in_range(value: object, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return in_range(opslimit, MIN_OPSLIMIT, MAX_OPSLIMIT) and in_range(
        memlimit, MIN_MEMLIMIT, MAX_MEMLIMIT
    )


def generate(kind: KeyKind) -> PrivateKeyT:
    if kind == "signing":
        return SigningKey.generate()
    if kind == "encryption":
        return PrivateKey.generate()
    raise WrongKeyKind(f"unknown key kind {kind!r}; expected 'signing' or 'encryption'")


def kind_of(key: PrivateKeyT | PublicKeyT) -> KeyKind:
    return "signing" if isinstance(key, SigningKey | VerifyKey) else "encryption"


def public_of(key: PrivateKeyT) -> PublicKeyT:
    return key.verify_key if isinstance(key, SigningKey) else key.public_key


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _seed(key: PrivateKeyT) -> bytes:
    return bytes(key)  # SigningKey: the 32-byte seed; PrivateKey: the 32-byte scalar


def _from_seed(kind: KeyKind, seed: bytes) -> PrivateKeyT:
    return SigningKey(seed) if kind == "signing" else PrivateKey(seed)


def _public_from_bytes(kind: KeyKind, raw: bytes) -> PublicKeyT:
    return VerifyKey(raw) if kind == "signing" else PublicKey(raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str, path: Path) -> bytes:
    if not isinstance(text, str):
        raise BadKeyFile(f"{path.name}: field {what!r} is not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadKeyFile(f"{path.name}: field {what!r} is not valid base64") from None
    if _b64(raw) != text:
        raise BadKeyFile(f"{path.name}: field {what!r} is not canonical base64")
    return raw


def public_document(key: PublicKeyT) -> dict[str, str]:
    return {
        "format": PUBLIC_FORMAT,
        "kind": kind_of(key),
        "key_id": key_id(key).hex(),
        "public": _b64(bytes(key)),
    }


def _write_new(path: Path, text: str, mode: int) -> None:
    """Write a file that must not exist yet, with ``mode`` from the first byte."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileExists(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as e:
        raise BadKeyFile(f"{path}: cannot write key file ({e.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def save_private_key(
    path: Path,
    key: PrivateKeyT,
    passphrase: bytes,
    *,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> None:
    """Write ``path`` (mode 0600, encrypted) and ``path.pub``; refuse to overwrite."""
    path = Path(path)
    if not _limits_ok(opslimit, memlimit):
        raise ValueError("opslimit/memlimit outside the range load_private_key accepts")
    for p in (path, public_path(path)):
        if p.exists():
            raise KeyFileExists(f"{p} already exists; refusing to overwrite a key")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )
    box = nacl.secret.SecretBox(box_key).encrypt(_seed(key))
    public = public_of(key)
    document = {
        "format": PRIVATE_FORMAT,
        "kind": kind_of(key),
        "key_id": key_id(public).hex(),
        "public": _b64(bytes(public)),
        "kdf": {"name": "argon2id", "opslimit": opslimit, "memlimit": memlimit, "salt": _b64(salt)},
        "box": _b64(bytes(box)),
    }
    _write_new(path, json.dumps(document, indent=2) + "\n", 0o600)
    _write_new(public_path(path), json.dumps(public_document(public), indent=2) + "\n", 0o644)


def _read_json(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise BadKeyFile(f"{path}: no such key file") from None
    except OSError as e:
        raise BadKeyFile(f"{path}: cannot read key file ({e.strerror})") from None
    if len(raw) > MAX_FILE_SIZE:
        raise BadKeyFile(f"{path.name}: larger than {MAX_FILE_SIZE} bytes; not a key file")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadKeyFile(f"{path.name}: not JSON; not a key file") from None
    if not isinstance(document, dict):
        raise BadKeyFile(f"{path.name}: not a JSON object; not a key file")
    return document


def _kind(document: dict[str, Any], path: Path) -> KeyKind:
    kind = document.get("kind")
    if kind not in ("signing", "encryption"):
        raise BadKeyFile(f"{path.name}: unknown key kind {kind!r}")
    return kind  # type: ignore[no-any-return]


def _public_checked(document: dict[str, Any], kind: KeyKind, path: Path) -> PublicKeyT:
    raw = _unb64(document.get("public"), "public", path)
    if len(raw) != 32:
        raise BadKeyFile(f"{path.name}: public key is {len(raw)} bytes, expected 32")
    public = _public_from_bytes(kind, raw)
    if document.get("key_id") != key_id(public).hex():
        raise BadKeyFile(f"{path.name}: key_id does not match the public key")
    return public


def _expect(kind: KeyKind, want: KeyKind | None, path: Path) -> None:
    if want is not None and kind != want:
        raise WrongKeyKind(f"{path.name} holds an {kind} key; an {want} key is needed")


def load_public_key(path: Path, *, kind: KeyKind | None = None) -> PublicKeyT:
    """Read a ``.pub`` file, or the public part of a private key file."""
    path = Path(path)
    document = _read_json(path)
    if document.get("format") not in (PUBLIC_FORMAT, PRIVATE_FORMAT):
        raise BadKeyFile(f"{path.name}: format is not {PUBLIC_FORMAT!r}")
    found = _kind(document, path)
    _expect(found, kind, path)
    return _public_checked(document, found, path)


def load_private_key(path: Path, passphrase: bytes, *, kind: KeyKind | None = None) -> PrivateKeyT:
    """Decrypt a private key file; ``WrongPassphrase`` if it does not open."""
    path = Path(path)
    document = _read_json(path)
    if document.get("format") != PRIVATE_FORMAT:
        raise BadKeyFile(f"{path.name}: format is not {PRIVATE_FORMAT!r}")
    found = _kind(document, path)
    _expect(found, kind, path)
    public = _public_checked(document, found, path)
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id":
        raise BadKeyFile(f"{path.name}: kdf is not argon2id")
    opslimit, memlimit = kdf.get("opslimit"), kdf.get("memlimit")
    # Checked before Argon2id runs: the file is untrusted until its box opens.
    if not _limits_ok(opslimit, memlimit):
        raise BadKeyFile(f"{path.name}: kdf opslimit or memlimit out of range")
    assert isinstance(opslimit, int) and isinstance(memlimit, int)
    salt = _unb64(kdf.get("salt"), "kdf.salt", path)
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise BadKeyFile(f"{path.name}: kdf salt has the wrong length")
    box = _unb64(document.get("box"), "box", path)
    if len(box) != _BOX_SIZE:
        raise BadKeyFile(f"{path.name}: box is {len(box)} bytes, expected {_BOX_SIZE}")
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )
    try:
        seed = nacl.secret.SecretBox(box_key).decrypt(box)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(f"{path.name}: wrong passphrase (or a damaged key file)") from None
    key = _from_seed(found, seed)
    if bytes(public_of(key)) != bytes(public):
        raise BadKeyFile(f"{path.name}: private key does not match its public key")
    return key


def load_signing_key(path: Path, passphrase: bytes) -> SigningKey:
    key = load_private_key(path, passphrase, kind="signing")
    assert isinstance(key, SigningKey)
    return key


def load_encryption_key(path: Path, passphrase: bytes) -> PrivateKey:
    key = load_private_key(path, passphrase, kind="encryption")
    assert isinstance(key, PrivateKey)
    return key


def passphrase(*, confirm: bool = False, interactive: bool | None = None,
               env: str = PASSPHRASE_ENV, prompt: str = "Key passphrase: ") -> bytes:
    """The passphrase from ``env`` (``GATEWAY_PASSPHRASE``), or a prompt on a terminal."""
    from_env = os.environ.get(env)
    if from_env is not None:
        if not from_env:
            raise NoPassphrase(f"{env} is set but empty")
        return from_env.encode("utf-8")
    if interactive is None:
        interactive = os.isatty(0)
    if not interactive:
        raise NoPassphrase(f"no passphrase: set {env} or run on a terminal")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise NoPassphrase("the two passphrases differ")
    if not first:
        raise NoPassphrase("empty passphrase")
    return first.encode("utf-8")
