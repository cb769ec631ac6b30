"""The peer batch: several sealed envelopes in one peer request.

::

    EnvelopeBatch ::= SEQUENCE SIZE (1..1024) OF OCTET STRING   -- each a sealed envelope

Batching is what lets two nodes share one TLS round trip and one group commit among
many envelopes; order within the batch is the sender's outbox order, and the receiver
processes them in that order.
"""

# mypy: allow-subclassing-any
# (asn1crypto ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

from asn1crypto import core

from gateway.envelope.der import codec, load_strict
from gateway.errors import GatewayError

MAX_BATCH_ITEMS = 1024
BATCH_OVERHEAD = 64 * 1024


class BatchError(GatewayError):
    code = "peer.bad_batch"


class _Batch(core.SequenceOf):
    _child_spec = core.OctetString


_BATCH = codec(_Batch)


def encode_batch(envelopes: list[bytes]) -> bytes:
    if not 1 <= len(envelopes) <= MAX_BATCH_ITEMS:
        raise BatchError(f"a batch holds 1 to {MAX_BATCH_ITEMS} envelopes")
    return _BATCH.dump(envelopes)


def decode_batch(data: bytes, max_bytes: int) -> list[bytes]:
    items: list[bytes] = load_strict(_BATCH, data, max_bytes, BatchError,
                                     too_large_cls=BatchError, what="envelope batch")
    if not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise BatchError(f"a batch holds 1 to {MAX_BATCH_ITEMS} envelopes")
    return items
