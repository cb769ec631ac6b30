"""Tree arithmetic, the tree's right edge and stored proofs against a naive transcription of
the recursive RFC 9162 §2.1 definitions (MTH, PATH, PROOF), for every index and size and
every pair of sizes up to a bound.

The example tree of the vectors (tests/vectors/merkle/README.md), sizes 1 to 7::

            hash
           /    \\
          /      \\
         /        \\
        k          l
       / \\        / \\
      /   \\      /   \\
     g     h    i     j
    / \\   / \\  / \\    |
    a b   c d  e f    d6
    | |   | |  | |
   d0 d1 d2 d3 d4 d5
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ledger.entry import Event
from ledger.errors import BadProof, OutOfRange
from ledger.hashing import EMPTY_ROOT, hash_children, hash_leaf
from ledger.proof import NodeId, consistency, fold, inclusion, perfect, rehash, root_nodes
from ledger.store import Ledger
from ledger.tree import TreeEdge, creation_index
from ledger.verify import verify_consistency, verify_inclusion

BOUND = 64

# The leaves behind the vectors' happy paths, and the RFC 6962 roots by size.
VECTOR_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
VECTOR_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]


# --- the naive recursive definitions, over leaf hashes ----------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return hash_children(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def leaf_hashes(n: int) -> list[bytes]:
    return [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]


LEAVES = leaf_hashes(BOUND)


def node_hash(node: NodeId) -> bytes:
    return mth(LEAVES[node.begin : node.end])


# --- pure arithmetic and the tree edge ---------------------------------------------------


def test_vector_tree_roots() -> None:
    leaves = [hash_leaf(d) for d in VECTOR_LEAVES]
    edge = TreeEdge()
    assert edge.root() == VECTOR_ROOTS[0] == EMPTY_ROOT
    for size, leaf in enumerate(leaves, start=1):
        edge.append(leaf)
        assert edge.root() == VECTOR_ROOTS[size] == mth(leaves[:size])


@pytest.mark.parametrize("size", range(BOUND + 1))
def test_root_and_edge_match_mth(size: int) -> None:
    edge = TreeEdge()
    for leaf in LEAVES[:size]:
        edge.append(leaf)
    expected = mth(LEAVES[:size])
    assert edge.root() == expected
    assert fold([node_hash(n) for n in root_nodes(size)]) == expected
    rebuilt = TreeEdge(size, [node_hash(n) for n in root_nodes(size)])
    assert rebuilt.root() == expected


def test_inclusion_sweep() -> None:
    """Every (index, size) up to the bound: PATH, and it verifies."""
    for size in range(1, BOUND + 1):
        root = mth(LEAVES[:size])
        for index in range(size):
            proof = rehash(inclusion(index, size), node_hash)
            assert proof == path(index, LEAVES[:size]), (index, size)
            verify_inclusion(index, size, LEAVES[index], proof, root)


def test_consistency_sweep() -> None:
    """Every (old, new) up to the bound: PROOF, and it verifies."""
    for new in range(1, BOUND + 1):
        new_root = mth(LEAVES[:new])
        for old in range(1, new + 1):
            proof = rehash(consistency(old, new), node_hash)
            assert proof == subproof(old, LEAVES[:new], True), (old, new)
            verify_consistency(old, new, proof, mth(LEAVES[:old]), new_root)


def test_arithmetic_refuses_impossible_requests() -> None:
    for args in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(BadProof):
            inclusion(*args)
    for args in ((0, 4), (5, 4), (-1, 2)):
        with pytest.raises(BadProof):
            consistency(*args)
    with pytest.raises(BadProof):
        root_nodes(-1)


def test_perfect_tiles_any_range() -> None:
    for begin in range(40):
        for end in range(begin, 41):
            tiles = perfect(begin, end)
            covered = [leaf for node in tiles for leaf in range(node.begin, node.end)]
            assert covered == list(range(begin, end))
            assert all(node.begin % (1 << node.level) == 0 for node in tiles)


def test_creation_index_replays_appends() -> None:
    """Storage keys interior nodes by creation order: append order gives 0, 1, 2, …"""
    edge = TreeEdge()
    keys = [creation_index(node) for leaf in leaf_hashes(300) for node, _ in edge.append(leaf)]
    assert keys == list(range(len(keys)))
    assert len(keys) == 300 - (300).bit_count()


# --- stored proofs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    path = Path(tmp_path_factory.mktemp("proofs")) / "ledger.db"
    with Ledger.open(path, origin="kz.test/ledger", log_key=SigningKey.generate()) as ledger:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        ledger.append_many(Event(type="operator_action", time=now, details=(("n", i),))
                           for i in range(70))
        yield ledger


def test_store_proofs_match_naive(stored: Ledger) -> None:
    leaves = [leaf for _, _, leaf in stored.raw_entries()]
    for size in range(1, stored.size + 1):
        assert stored.root(size) == mth(leaves[:size])
        for index in range(size):
            assert stored.inclusion_proof(index, size) == path(index, leaves[:size])
        for old in range(1, size + 1):
            assert stored.consistency_proof(old, size) == subproof(old, leaves[:size], True)
    assert stored.root() == stored.root(stored.size) == mth(leaves)


def test_store_refuses_sizes_beyond_the_log(stored: Ledger) -> None:
    with pytest.raises(OutOfRange):
        stored.inclusion_proof(0, stored.size + 1)
    with pytest.raises(OutOfRange):
        stored.consistency_proof(1, stored.size + 1)
    with pytest.raises(BadProof):
        stored.inclusion_proof(stored.size, stored.size)
