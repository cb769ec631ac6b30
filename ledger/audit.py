"""Offline verification of a whole ledger, with nothing but its entries, its checkpoints
and public keys: what an auditor runs on an export bundle, and ``verify --home`` on a
node's database. Pure: the caller streams the rows in (bundle.py reads them).

The procedure (docs/ledger.md, "Verifying a ledger"); the first failure raises an
``AuditFailure`` naming the first bad index and what is wrong:

1. Every stored checkpoint parses and carries a valid signature of the log key, for the
   size it is stored under (``ledger.checkpoint_invalid``). Every cosignature by a
   known witness verifies (``ledger.cosignature_invalid``); other signatures are ignored.
2. Every checkpoint the auditor brings (one the peer or the auditor cosigned or saw
   before) is valid too; it is checked in steps 4 and 6.
3. Entries come in index order, each exactly once (``ledger.missing_entry``). For entry
   ``i``: its stored leaf hash is ``SHA-256(0x00 || entry)`` (``ledger.leaf_hash_mismatch``);
   it is one DER value whose first two fields are the previous entry's leaf hash
   (``ledger.chain_broken``) and ``i`` (``ledger.index_mismatch``); with ``deep``, the
   whole entry decodes strictly (``ledger.malformed_entry``).
4. The tree of the first ``s`` entries hashes to the root signed at every checkpoint
   size ``s`` (``ledger.checkpoint_mismatch``).
5. Given the stored interior nodes (a node's database, not a bundle), each equals the
   node recomputed from the entries (``ledger.node_mismatch``): proofs served from them
   are then right. Nodes are derived data, so this is reported last.
6. No checkpoint covers more entries than there are: a stored one means entries were cut
   off (``ledger.truncated``), a brought one means an older copy of the log was restored
   (``ledger.rollback``).

Speed: step 3 checks the chain and the index by comparing the entry's first bytes with
their expected encoding instead of decoding the entry: a full asn1crypto decode costs
about 250 µs an entry, the rest of the loop a few µs. The leaf hash binds every other
byte of the entry into the signed tree; ``deep`` adds the full decode for an auditor who
also wants each entry's fields checked (for example, that no detail is free text).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from asn1crypto import parser

from ledger.entry import (
    MAX_ENTRY_SIZE,
    PREV_FIELD_SIZE,
    PREV_HEADER,
    ZERO_HASH,
    decode_entry,
    index_field,
)
from ledger.errors import (
    BadEntry,
    ChainBroken,
    CheckpointInvalid,
    CheckpointMismatch,
    CosignatureInvalid,
    IndexMismatch,
    LeafHashMismatch,
    LedgerError,
    MalformedEntry,
    MissingEntry,
    NodeMismatch,
    Rollback,
    Truncated,
)
from ledger.hashing import EMPTY_ROOT, LEAF_PREFIX
from ledger.note import Checkpoint, NoteVerifier, cosignatures_by, open_checkpoint
from ledger.tree import TreeEdge, creation_index

PROGRESS_EVERY = 10_000


@dataclass
class AuditReport:
    """What was verified."""

    size: int = 0
    checkpoints: int = 0
    latest: Checkpoint | None = None
    # witness name -> the largest checkpoint size it validly cosigned
    cosigned: dict[str, int] = field(default_factory=dict)


def _check_checkpoints(notes: Iterable[tuple[int, str | bytes]], log: NoteVerifier,
                       witnesses: Sequence[NoteVerifier], report: AuditReport
                       ) -> dict[int, bytes]:
    """Step 1: every stored checkpoint, by size; returns the signed roots."""
    roots: dict[int, bytes] = {}
    for size, note in notes:
        where = {"index": max(size - 1, 0), "size": size}
        try:
            signed = open_checkpoint(note, log)
        except LedgerError as e:
            raise CheckpointInvalid(f"{e.code}: {e.message}", **where) from None
        if signed.size != size:
            raise CheckpointInvalid(f"the note is for size {signed.size}", **where)
        for witness in witnesses:
            try:
                if cosignatures_by(signed.signed, witness):
                    report.cosigned[witness.name] = max(size, report.cosigned.get(witness.name, 0))
            except LedgerError as e:
                raise CosignatureInvalid(f"{e.code}: {e.message}", **where) from None
        roots[size] = signed.root
        report.checkpoints += 1
        report.latest = signed.checkpoint
    return roots


def audit(
    entries: Iterable[tuple[int, bytes, bytes | None]],
    checkpoints: Iterable[tuple[int, str | bytes]],
    *,
    log: NoteVerifier,
    witnesses: Sequence[NoteVerifier] = (),
    trusted: Sequence[str] = (),
    stored_nodes: Iterable[tuple[int, bytes]] | None = None,
    deep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Verify a ledger; return what was verified or raise at the first bad index.

    ``entries``: ``(stored index, entry DER, stored leaf hash or None)`` in stored order.
    ``checkpoints``: ``(stored size, note with its cosignatures)`` in size order.
    ``trusted``: checkpoint notes the auditor holds from elsewhere.
    ``stored_nodes``: ``(key, hash)`` of stored interior nodes in key order.
    ``progress``: called with the number of entries verified since the last call.
    """
    report = AuditReport()
    signed_roots = _check_checkpoints(checkpoints, log, witnesses, report)  # step 1
    brought = {}
    for note in trusted:  # step 2: the auditor's own input must be right, or it is an error
        checkpoint = open_checkpoint(note, log).checkpoint
        brought[checkpoint.size] = checkpoint.root
    size, node_failure = _check_entries(entries, signed_roots, brought, stored_nodes, deep,
                                        progress)
    report.size = size
    for stored in sorted(signed_roots):  # step 6
        if stored > size:
            raise Truncated(f"the log holds {size} entries, its checkpoint covers {stored}",
                            index=size, size=stored)
    for held in sorted(brought):
        if held > size:
            raise Rollback(f"the log holds {size} entries, a checkpoint held elsewhere "
                           f"covers {held}: an older copy of the log?", index=size, size=held)
    if node_failure is not None:
        raise node_failure
    return report


def _check_root(size: int, root: bytes, signed_roots: dict[int, bytes],
                brought: dict[int, bytes]) -> None:
    """Step 4 (and 2): the tree of ``size`` entries against what was signed for it."""
    for roots, whose in ((signed_roots, "the log's checkpoint"),
                         (brought, "a checkpoint held elsewhere")):
        expected = roots.get(size)
        if expected is not None and expected != root:
            raise CheckpointMismatch(
                f"the entries hash to {root.hex()}, {whose} signed {expected.hex()}",
                index=max(size - 1, 0), size=size)


def _check_entries(
    entries: Iterable[tuple[int, bytes, bytes | None]],
    signed_roots: dict[int, bytes],
    brought: dict[int, bytes],
    stored_nodes: Iterable[tuple[int, bytes]] | None,
    deep: bool,
    progress: Callable[[int], None] | None,
) -> tuple[int, NodeMismatch | None]:
    """Steps 3-5; returns the number of entries and the first wrong stored node."""
    sizes_to_check = set(signed_roots) | set(brought)
    if 0 in sizes_to_check:
        _check_root(0, EMPTY_ROOT, signed_roots, brought)
    nodes: Iterator[tuple[int, bytes]] | None = iter(stored_nodes) \
        if stored_nodes is not None else None
    # Nodes are derived data: a wrong node is reported only if every entry is right, so
    # that a changed entry is named by its own index, not by the node above it.
    node_failure: NodeMismatch | None = None
    edge = TreeEdge()
    prev = ZERO_HASH
    sha256, parse, index_of = hashlib.sha256, parser.parse, index_field
    index = 0
    for stored_index, der, stored_leaf in entries:
        # Step 3: present once, in place, bytes as hashed, chain and index as written.
        if stored_index != index:
            if stored_index > index:
                raise MissingEntry("no entry stored at this index", index=index)
            raise IndexMismatch(f"an entry is stored twice or out of order "
                                f"(at {stored_index})", index=index)
        leaf = sha256(LEAF_PREFIX + der).digest()
        if stored_leaf is not None and stored_leaf != leaf:
            raise LeafHashMismatch("the entry does not hash to its stored leaf hash "
                                   "(its bytes changed)", index=index)
        if len(der) > MAX_ENTRY_SIZE:
            raise MalformedEntry(f"entry is {len(der)} bytes, over {MAX_ENTRY_SIZE}",
                                 index=index)
        try:
            contents = parse(der, strict=True)[4]
        except Exception:  # asn1crypto has no exception contract for hostile input
            raise MalformedEntry("the entry is not one DER value", index=index) from None
        if contents[:PREV_FIELD_SIZE] != PREV_HEADER + prev:
            raise ChainBroken("its previous leaf hash is not the leaf hash of the entry "
                              "before it", index=index)
        written = index_of(index)
        if contents[PREV_FIELD_SIZE : PREV_FIELD_SIZE + len(written)] != written:
            raise IndexMismatch("the index written in the entry is not its place in the log",
                                index=index)
        if deep:
            try:
                decode_entry(der)
            except BadEntry as e:
                raise MalformedEntry(e.message, index=index) from None
        # Steps 4-5: grow the tree; compare the nodes it completes and the signed roots.
        completed = edge.append(leaf)
        if nodes is not None and node_failure is None:
            for node, value in completed:
                stored = next(nodes, None)
                if stored is None or stored[0] != creation_index(node) or stored[1] != value:
                    node_failure = NodeMismatch(
                        f"the stored tree node at level {node.level} over entries "
                        f"{node.begin}..{node.end - 1} is wrong", index=node.begin)
                    break
        prev = leaf
        index += 1
        if index in sizes_to_check:
            _check_root(index, edge.root(), signed_roots, brought)
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if nodes is not None and node_failure is None and next(nodes, None) is not None:
        node_failure = NodeMismatch("tree nodes are stored beyond the entries", index=index)
    if progress is not None and index % PROGRESS_EVERY:
        progress(index % PROGRESS_EVERY)
    return index, node_failure
