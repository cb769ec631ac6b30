"""RFC 9162 §2.1 Merkle tree hashing (the same as RFC 6962): leaves, interior nodes, and
the root of the empty tree.

The two prefixes keep a leaf from ever hashing like an interior node (a second-preimage
defence), so they are named constants, never inline bytes.
"""

from __future__ import annotations

import hashlib

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
