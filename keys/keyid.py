"""Key ids: short, stable names for public keys.

A key id is the first 16 bytes of SHA-256 over an algorithm label, a newline and the
raw 32-byte public key::

    key_id = SHA-256("ed25519" || 0x0A || public_key)[:16]   # signing keys
    key_id = SHA-256("x25519"  || 0x0A || public_key)[:16]   # encryption keys

The label keeps an Ed25519 key and an X25519 key with equal bytes from sharing an id.
Sixteen bytes (128 bits) make an accidental collision out of reach; the id is a name,
never a substitute for checking a signature against the full key.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from nacl.public import PublicKey
from nacl.signing import VerifyKey

KEY_ID_SIZE = 16


def key_id(public_key: VerifyKey | PublicKey) -> bytes:
    """The 16-byte key id of an Ed25519 verify key or an X25519 public key."""
    label = b"ed25519" if isinstance(public_key, VerifyKey) else b"x25519"
    return _key_id(label, bytes(public_key))


# A node names the same few keys for every envelope (its own, the signatories', the
# recipients'): the ids are kept rather than hashed again each time.
@lru_cache(maxsize=4096)
def _key_id(label: bytes, raw: bytes) -> bytes:
    return hashlib.sha256(label + b"\n" + raw).digest()[:KEY_ID_SIZE]


def key_id_hex(public_key: VerifyKey | PublicKey) -> str:
    return key_id(public_key).hex()
