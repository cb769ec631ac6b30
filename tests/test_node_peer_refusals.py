"""A refusal on the peer API is final (N14): the same envelope sent again (the sender
crashed before it recorded our answer) gets the same answer and no second `rejected`
entry, even when the case would take it by then."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from gateway import sdk
from gateway.demo import REQUEST_BODY
from gateway.node import store
from gateway.node.trust import load_trust
from ledger.store import Ledger
from tests.nodes import client, homes, peer_client, serving
from tests.test_agreement_flows import body


def rejected_entries(home_root: Path, origin: str, envelope_hash: bytes) -> int:
    ledger = Ledger.open(home_root / "node.db", origin=origin, log_key=None)
    try:
        return sum(1 for e in ledger.entries(0, ledger.size)
                   if e.event.type == "rejected" and e.event.envelope_hash == envelope_hash)
    finally:
        ledger.close()


async def test_a_refused_envelope_sent_again_gets_the_same_refusal_once(tmp_path: Path
                                                                        ) -> None:
    kz, by = homes(tmp_path)
    async with serving(kz, by):
        pass  # the signatory lists are exchanged
    trust = load_trust(store.Reader(kz.db_path).db, "KZ")
    recipient = trust.peer_directory.authority("BY-MVD", dt.datetime.now(dt.UTC))
    async with client(kz, "KZ-MVD") as kz_mvd:
        signatory = kz_mvd.signatory_key()
    request = sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD",
                       body=REQUEST_BODY, signatory_key=signatory,
                       recipient_key=recipient.encryption_key)
    withdrawal = sdk.seal(kind="withdrawal", sender="KZ-MVD", recipient="BY-MVD",
                          body=body("withdrawal"), signatory_key=signatory,
                          recipient_key=recipient.encryption_key, in_reply_to=request)
    async with serving(by, exchanged=False) as (by_node,):
        peer = peer_client(kz, by, by_node.addresses["peer_listen"])
        try:
            # The withdrawal overtakes its request: BY has no such case yet.
            [first] = await peer.send_envelopes([withdrawal])
            assert first.receipt is None and first.code == "case.not_found"
            [relayed] = await peer.send_envelopes([request])
            assert relayed.receipt is not None
            # Now the case would take the withdrawal, but it was refused for good.
            [again] = await peer.send_envelopes([withdrawal])
        finally:
            await peer.close()
    assert again == first
    assert rejected_entries(by.root, by.origin(),
                            hashlib.sha256(withdrawal).digest()) == 1
