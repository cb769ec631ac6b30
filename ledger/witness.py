"""Cosigning the peer's checkpoints (c2sp.org/tlog-cosignature, ``cosignature/v1``).

A node witnesses the other Party's log: it cosigns a checkpoint only once it has checked
that the checkpoint extends the last one it cosigned. A cosignature says "as of this
time, this is the largest tree I have seen for this log, and every tree I saw before
is a prefix of it". So the peer cannot later show anyone a rewritten or forked history
without contradicting a signature of ours.

Refusals, each raising a ``WitnessRefused`` subclass (or a note or signature error):

1. the note does not carry a valid signature of the peer's log key, or its origin is not
   the peer's log (``ledger.bad_signature``, ``ledger.wrong_origin`` …);
2. a smaller tree than the one last cosigned (``ledger.witness_rollback``);
3. the same size with another root (``ledger.witness_fork``);
4. a larger tree whose consistency proof from the last cosigned one does not hold
   (``ledger.witness_inconsistent``).

The function is pure: the last cosigned note comes in, the caller stores the new one,
and it must store it before the cosignature leaves the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nacl.signing import SigningKey, VerifyKey

from ledger.errors import (
    BadProof,
    RootMismatch,
    WitnessFork,
    WitnessInconsistent,
    WitnessRollback,
)
from ledger.note import cosign_body, log_verifier, open_checkpoint
from ledger.verify import verify_consistency


def cosign(
    note: str,
    proof: Sequence[bytes],
    *,
    old_note: str | None,
    log_key: VerifyKey,
    origin: str,
    witness_key: SigningKey,
    witness_name: str,
    now: datetime,
) -> tuple[int, str] | None:
    """Check the peer's checkpoint ``note`` against ``old_note`` (the last one we
    cosigned, None the first time) and ``proof`` (the consistency proof between them).

    Returns ``(tree size, cosignature line)``, or None when ``note`` is the checkpoint
    cosigned last time (nothing new to witness). Raises on any inconsistency.
    """
    log = log_verifier(origin, log_key)
    new = open_checkpoint(note, log)  # step 1
    if old_note is not None:
        old = open_checkpoint(old_note, log)
        if new.size < old.size:
            raise WitnessRollback(f"the log shows size {new.size}, but size {old.size} was "
                                  "cosigned before")
        if new.size == old.size:
            if new.root != old.root:
                raise WitnessFork(f"the log shows another root for size {new.size} than the "
                                  f"one cosigned ({new.root.hex()} vs {old.root.hex()})")
            return None
        if old.size > 0:
            try:
                verify_consistency(old.size, new.size, proof, old.root, new.root)
            except (BadProof, RootMismatch) as e:
                raise WitnessInconsistent(f"no consistent history from size {old.size} to "
                                          f"{new.size} ({e.code}: {e.message})") from None
    timestamp = int(now.timestamp())
    line = cosign_body(new.checkpoint.body, timestamp, witness_name, witness_key).line
    return new.size, line
