"""Inclusion and consistency proof verification, exactly as RFC 9162 §2.1.3.2 and
§2.1.4.2 write the algorithms.

Everything comes in as arguments; each function returns None or raises. The shape of
the input is checked before any hashing (``ledger.bad_proof``); a proof that folds to
another root raises ``ledger.root_mismatch`` with both roots.

Two guards the RFC leaves implicit, both required by the public test vectors:

- a leaf hash must be exactly 32 bytes (otherwise an empty "leaf hash" equals an empty
  "root" for a tree of size 1 and an empty proof);
- a consistency proof from size 0 is refused, even to size 0: the RFC defines the
  proof only for ``0 < first``, and there is nothing to prove from the empty tree.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import BadProof, RootMismatch
from ledger.hashing import HASH_SIZE, hash_children

# A proof for a tree of 2**63 leaves has at most 63 hashes; anything longer is garbage.
MAX_PROOF_HASHES = 64


def _check_hashes(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise BadProof(f"proof has {len(proof)} hashes; at most {MAX_PROOF_HASHES} make sense")
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise BadProof(f"proof hash {position} is {len(node)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: ``leaf_hash`` is leaf ``index`` of the tree ``root`` of ``size``."""
    if not 0 <= index < size:
        raise BadProof(f"index {index} is not in a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise BadProof(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise BadProof(f"proof has more hashes than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise BadProof(f"proof has fewer hashes than a tree of size {size} needs")
    if r != root:
        raise RootMismatch(f"inclusion proof for index {index} does not lead to the root",
                           size=size, expected=root, computed=r)


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: the tree ``new_root`` of ``new_size`` extends ``old_root``."""
    if old_size <= 0:
        raise BadProof("a consistency proof needs an old tree size of at least 1")
    if new_size < old_size:
        raise BadProof(f"new size {new_size} is smaller than old size {old_size}")
    if old_size == new_size:
        # Same tree: nothing to prove, the roots must simply be the same bytes.
        if proof:
            raise BadProof("sizes are equal, but the proof is not empty")
        if old_root != new_root:
            raise RootMismatch("two roots for the same tree size", size=new_size,
                               expected=old_root, computed=new_root)
        return
    # Step 1: an empty path proves nothing between different sizes.
    if not proof:
        raise BadProof(f"empty consistency proof from size {old_size} to {new_size}")
    _check_hashes(proof)
    path = list(proof)
    # Step 2: when the old tree is a perfect subtree, its root starts the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise BadProof("consistency proof has more hashes than the sizes need")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise BadProof("consistency proof has fewer hashes than the sizes need")
    if fr != old_root:
        raise RootMismatch("consistency proof does not lead to the old root", size=old_size,
                           expected=old_root, computed=fr)
    if sr != new_root:
        raise RootMismatch("consistency proof does not lead to the new root", size=new_size,
                           expected=new_root, computed=sr)
