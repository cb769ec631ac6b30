"""The right edge of a growing Merkle tree: enough state to append a leaf and to know
the root, without ever looking at the rest of the tree.

For a tree of ``size`` leaves the state is the hashes of the perfect subtrees that tile
it (``proof.root_nodes(size)``): one per set bit of ``size``, so at most 64 hashes.
Appending a leaf merges equal-sized subtrees, like carrying in binary addition, and
every merge completes one interior node for good; ``append`` returns those nodes so
that a store can keep them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import BadProof
from ledger.hashing import HASH_SIZE
from ledger.hashing import hash_children as _hash_children
from ledger.proof import NodeId, fold, root_nodes


class TreeEdge:
    __slots__ = ("_subtrees", "size")

    def __init__(self, size: int = 0, subtrees: Sequence[bytes] = ()) -> None:
        """``subtrees``: the hashes of ``proof.root_nodes(size)``, left to right."""
        if len(subtrees) != len(root_nodes(size)):
            raise BadProof(f"a tree of size {size} has {len(root_nodes(size))} edge "
                           f"subtrees, not {len(subtrees)}")
        if any(len(h) != HASH_SIZE for h in subtrees):
            raise BadProof("edge subtree hashes must be 32 bytes")
        self.size = size
        self._subtrees = list(subtrees)

    def copy(self) -> TreeEdge:
        # A valid edge copies to a valid edge: no need to check it again (a batch copies
        # the edge once per unit of work).
        edge = TreeEdge.__new__(TreeEdge)
        edge.size, edge._subtrees = self.size, list(self._subtrees)
        return edge

    def append(self, leaf_hash: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf; return the interior nodes it completed, lowest first."""
        subtrees = self._subtrees
        subtrees.append(leaf_hash)
        completed = []
        index, level = self.size, 0
        while index & 1:  # the new subtree is a right child: merge it with its left sibling
            right = subtrees.pop()
            merged = _hash_children(subtrees.pop(), right)
            subtrees.append(merged)
            index >>= 1
            level += 1
            completed.append((NodeId(level, index), merged))
        self.size += 1
        return completed

    def root(self) -> bytes:
        return fold(self._subtrees)


def creation_index(node: NodeId) -> int:
    """How many interior nodes (level >= 1) a growing tree completes before ``node``.

    Leaf ``i`` completes nodes of levels 1, 2, … in turn, after the ``i - popcount(i)``
    interior nodes of the tree of ``i`` leaves. Storage keys nodes by this number, so
    reading them in key order replays ``TreeEdge.append``.
    """
    last_leaf = ((node.index + 1) << node.level) - 1
    return last_leaf - last_leaf.bit_count() + node.level - 1
