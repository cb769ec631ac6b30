"""Which tree nodes a root, an inclusion proof or a consistency proof needs: pure index
arithmetic, no hashes and no storage (storage fetches the nodes named here).

A node ``NodeId(level, index)`` is the root of the perfect subtree over the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf itself. Such nodes
never change once the tree has grown past them, so a store can keep them for good.

A proof hash is not always such a node: at the right edge of a tree whose size is not
a power of two, RFC 9162 hashes an incomplete subtree. Its hash is the fold of the
perfect subtrees that tile it, so each proof step here is a tuple of ``NodeId``s, left
to right, folded right to left by ``fold`` (one node for most steps)::

    MTH(D[a:b]) = fold(perfect(a, b))

The algorithms follow the recursive definitions of RFC 9162 §2.1.3.1 (``PATH``) and
§2.1.4.1 (``PROOF``/``SUBPROOF``), walked top-down in a loop; the results come out
leaf-side first, as the RFC orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from ledger.errors import BadProof
from ledger.hashing import EMPTY_ROOT, hash_children


class NodeId(NamedTuple):
    level: int
    # Shadows tuple.index(), which nothing here uses; a tuple keeps proofs fast.
    index: int  # type: ignore[assignment]

    @property
    def begin(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


ProofStep = tuple[NodeId, ...]


def split_point(width: int) -> int:
    """The largest power of two smaller than ``width`` (``width >= 2``): RFC 9162's k."""
    return 1 << ((width - 1).bit_length() - 1)


def perfect(begin: int, end: int) -> ProofStep:
    """The maximal perfect subtrees tiling the leaves ``[begin, end)``, left to right.

    Every range this module asks for starts on a boundary of its own width, so the
    tiles are simply the set bits of ``end - begin``, largest first.
    """
    width = end - begin
    if width and width & (width - 1) == 0 and begin % width == 0:  # common: one node
        level = width.bit_length() - 1
        return (NodeId(level, begin >> level),)
    nodes = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            # Never cross an alignment boundary: needed only for ranges that do not
            # start on a multiple of their width, kept so the function is total.
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(NodeId(level, begin >> level))
        begin += 1 << level
    return tuple(nodes)


def root_nodes(size: int) -> ProofStep:
    """The perfect subtrees whose fold is the root of the tree of ``size`` leaves."""
    if size < 0:
        raise BadProof(f"tree size {size} is negative")
    return perfect(0, size)


def inclusion(index: int, size: int) -> list[ProofStep]:
    """The steps of ``PATH(index, D[0:size])``, leaf side first."""
    if not 0 <= index < size:
        raise BadProof(f"index {index} is not in a tree of size {size}")
    steps = []
    begin, end = 0, size
    while end - begin > 1:
        middle = begin + split_point(end - begin)
        if index < middle:
            steps.append(perfect(middle, end))
            end = middle
        else:
            steps.append(perfect(begin, middle))
            begin = middle
    steps.reverse()
    return steps


def consistency(old_size: int, new_size: int) -> list[ProofStep]:
    """The steps of ``PROOF(old_size, D[0:new_size])``, leaf side first.

    An empty list when the sizes are equal. A proof from the empty tree is refused:
    there is nothing to prove, and RFC 9162 §2.1.4 requires ``0 < first``.
    """
    if not 0 < old_size <= new_size:
        raise BadProof(f"no consistency proof from size {old_size} to size {new_size}")
    steps = []
    begin, end, old = 0, new_size, old_size
    # ``whole`` is SUBPROOF's flag b: the old tree is still a whole subtree of the new
    # one, so the verifier knows its hash already and it is left out of the proof.
    whole = True
    while old != end - begin:
        middle = begin + split_point(end - begin)
        if old <= middle - begin:
            steps.append(perfect(middle, end))
            end = middle
        else:
            steps.append(perfect(begin, middle))
            old -= middle - begin
            begin = middle
            whole = False
    if not whole:
        steps.append(perfect(begin, end))
    steps.reverse()
    return steps


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a run of perfect subtrees, given left to right (see module doc)."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_children(left, result)
    return result


def rehash(steps: Sequence[ProofStep], lookup: Callable[[NodeId], bytes]) -> list[bytes]:
    """Turn proof steps into proof hashes, fetching each node with ``lookup``."""
    return [fold([lookup(node) for node in step]) for step in steps]
