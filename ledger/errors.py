"""Every failure the ledger package raises.

Each class carries a stable dotted ``code`` (public API: listed in docs/ledger.md,
never renamed) and a message free of personal data. Verification failures carry their
evidence (the index, the sizes, both roots) as attributes.

A message never repeats a value it refused: a detail that is not a token may be exactly
the free text (a name, a date of birth) the ledger exists to keep out.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger-package failure."""

    code = "ledger.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- proofs (verify.py, proof.py) ------------------------------------------------------


class BadProof(LedgerError):
    """The proof or its arguments are malformed: an index beyond the size, a size out of
    order, a hash of the wrong length, the wrong number of hashes."""

    code = "ledger.bad_proof"


class RootMismatch(LedgerError):
    """A proof folded to another root than the one it was checked against."""

    code = "ledger.root_mismatch"

    def __init__(self, message: str, *, size: int, expected: bytes, computed: bytes) -> None:
        super().__init__(f"{message} (tree size {size}: expected root {expected.hex()}, "
                         f"computed {computed.hex()})")
        self.size = size
        self.expected = expected
        self.computed = computed


# --- entries (entry.py) ----------------------------------------------------------------


class BadEvent(LedgerError):
    """An event field is out of its range: a naive time, an id of the wrong length, a
    malformed authority id."""

    code = "ledger.bad_event"


class UnknownEventType(BadEvent):
    code = "ledger.unknown_event_type"


class FreeTextRefused(BadEvent):
    """A detail is not a token: free text (names, dates, spaces, Cyrillic) never enters
    the ledger, so that destruction (A11.5) never conflicts with an append-only log."""

    code = "ledger.free_text_refused"


class BadEntry(LedgerError):
    """Stored bytes are not a DER ledger entry."""

    code = "ledger.bad_entry"


# --- notes, checkpoints, cosignatures (note.py, witness.py) ----------------------------


class BadNote(LedgerError):
    code = "ledger.bad_note"


class BadCheckpoint(LedgerError):
    code = "ledger.bad_checkpoint"


class BadVerifierKey(LedgerError):
    code = "ledger.bad_vkey"


class BadSignature(LedgerError):
    """No valid signature from the expected log key, or a known key's signature fails."""

    code = "ledger.bad_signature"


class BadCosignature(LedgerError):
    code = "ledger.bad_cosignature"


class WrongOrigin(LedgerError):
    code = "ledger.wrong_origin"


class WitnessRefused(LedgerError):
    """The witness refuses to cosign; the subclass says why."""

    code = "ledger.witness_refused"


class WitnessRollback(WitnessRefused):
    """The log shows a smaller tree than one the witness already cosigned."""

    code = "ledger.witness_rollback"


class WitnessFork(WitnessRefused):
    """The log shows another root for a size the witness already cosigned."""

    code = "ledger.witness_fork"


class WitnessInconsistent(WitnessRefused):
    """The consistency proof from the last cosigned checkpoint does not hold."""

    code = "ledger.witness_inconsistent"


# --- storage (store.py, bundle.py) -----------------------------------------------------


class NotALedger(LedgerError):
    code = "ledger.not_found"


class ReadOnly(LedgerError):
    code = "ledger.read_only"


class Closed(LedgerError):
    code = "ledger.closed"


class WriteFailed(LedgerError):
    code = "ledger.write_failed"


class UnitTransaction(LedgerError):
    """A unit of work tried to begin, end or nest the batch's transaction."""

    code = "ledger.unit_transaction"


class ConcurrentWriter(LedgerError):
    code = "ledger.concurrent_writer"


class WrongKey(LedgerError):
    code = "ledger.wrong_key"


class OutOfRange(LedgerError):
    code = "ledger.out_of_range"


class NoCheckpoint(LedgerError):
    code = "ledger.no_checkpoint"


class BadBundle(LedgerError):
    code = "ledger.bad_bundle"


# --- audit (audit.py) ------------------------------------------------------------------


class AuditFailure(LedgerError):
    """The log does not verify. ``index`` is the first entry where it goes wrong; for a
    checkpoint failure it is the last entry the checkpoint covers (``size - 1``)."""

    code = "ledger.audit_failed"

    def __init__(self, message: str, *, index: int, size: int | None = None) -> None:
        where = f"index {index}" if size is None else f"checkpoint at size {size}"
        super().__init__(f"{where}: {message}")
        self.index = index
        self.size = size


class MissingEntry(AuditFailure):
    code = "ledger.missing_entry"


class LeafHashMismatch(AuditFailure):
    code = "ledger.leaf_hash_mismatch"


class IndexMismatch(AuditFailure):
    code = "ledger.index_mismatch"


class ChainBroken(AuditFailure):
    code = "ledger.chain_broken"


class MalformedEntry(AuditFailure):
    code = "ledger.malformed_entry"


class NodeMismatch(AuditFailure):
    code = "ledger.node_mismatch"


class CheckpointInvalid(AuditFailure):
    """A stored checkpoint does not parse or its log signature does not verify."""

    code = "ledger.checkpoint_invalid"


class CosignatureInvalid(AuditFailure):
    code = "ledger.cosignature_invalid"


class CheckpointMismatch(AuditFailure):
    """The entries hash to another root than the one signed at this size."""

    code = "ledger.checkpoint_mismatch"


class Truncated(AuditFailure):
    """The log holds fewer entries than a checkpoint stored with it covers."""

    code = "ledger.truncated"


class Rollback(AuditFailure):
    """The log holds fewer entries than a checkpoint the auditor (or peer) holds covers:
    an older copy of the database was restored."""

    code = "ledger.rollback"
