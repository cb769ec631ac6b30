"""The agency client keeps no worthless evidence unknowingly: the submission receipt in
the node's answer is checked against the node key of the own Party's pinned directory,
for exactly the bytes sent and the ledger entry the answer names (docs/node.md,
"Receipts")."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from gateway import sdk
from gateway.client import AgencyClient, ClientError, check_submission_receipt
from gateway.demo import REQUEST_BODY
from gateway.receipt import ReceiptType, make_receipt
from tests.nodes import client, homes, serving

NODE_KEY = SigningKey(bytes(range(32)))
TIME = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
INDEX = 7


def _seal() -> bytes:
    return sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD", body=REQUEST_BODY,
                    signatory_key=SigningKey.generate(),
                    recipient_key=PrivateKey.generate().public_key)


SEALED, OTHER = _seal(), _seal()


def _answer(sealed: bytes = SEALED, *, subject_id: bytes | None = None,
            index: int = INDEX, kind: ReceiptType = "submission", key: SigningKey = NODE_KEY,
            **overrides: Any) -> dict[str, Any]:
    """The node's answer to POST /v1/envelopes for SEALED, with a receipt made for
    ``sealed`` (``subject_id``, ``index``, ``kind``, ``key`` change the receipt,
    ``overrides`` the answer's fields)."""
    envelope_hash = hashlib.sha256(sealed).digest()
    subject_id = sdk.inspect(sealed).envelope_id if subject_id is None else subject_id
    receipt = make_receipt(kind, "KZ", subject_id, envelope_hash, index, TIME, key)
    answer = {"envelope_id": sdk.inspect(SEALED).envelope_id.hex(),
              "envelope_hash": hashlib.sha256(SEALED).hexdigest(), "ledger_index": INDEX,
              "receipt": base64.b64encode(receipt).decode("ascii")}
    answer.update(overrides)
    return answer


def _flipped(answer: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(answer["receipt"]))
    raw[-1] ^= 1  # in the signature
    return dict(answer, receipt=base64.b64encode(raw).decode("ascii"))


BAD: dict[str, Callable[[], dict[str, Any]]] = {
    "garbage receipt": lambda: _answer(receipt=base64.b64encode(b"\x30\x03abc").decode()),
    "not base64": lambda: _answer(receipt="not base64!"),
    "no receipt": lambda: {k: v for k, v in _answer().items() if k != "receipt"},
    "signature flipped": lambda: _flipped(_answer()),
    "another envelope's hash": lambda: _answer(OTHER),
    "another envelope's id": lambda: _answer(subject_id=sdk.inspect(OTHER).envelope_id),
    "receipt at another index": lambda: _answer(index=INDEX + 1),
    "answer names another index": lambda: _answer(ledger_index=INDEX - 1),
    "answer index not a number": lambda: _answer(ledger_index=str(INDEX)),
    "answer names another envelope": lambda: _answer(
        envelope_id=sdk.inspect(OTHER).envelope_id.hex()),
    "answer names another hash": lambda: _answer(
        envelope_hash=hashlib.sha256(OTHER).hexdigest()),
    "relay receipt": lambda: _answer(kind="relay"),
    "signed by another key": lambda: _answer(key=SigningKey.generate()),
}


def test_a_true_submission_receipt_checks() -> None:
    receipt = check_submission_receipt(_answer(), SEALED, NODE_KEY.verify_key)
    assert (receipt.type, receipt.ledger_index) == ("submission", INDEX)
    assert receipt.subject_hash == hashlib.sha256(SEALED).digest()


@pytest.mark.parametrize("desc", list(BAD))
def test_a_bad_submission_receipt_is_refused(desc: str) -> None:
    with pytest.raises(ClientError) as info:
        check_submission_receipt(BAD[desc](), SEALED, NODE_KEY.verify_key)
    assert info.value.code == "client.bad_receipt"
    # The id is in the refusal: the node may hold the envelope; ask, do not resend.
    assert sdk.inspect(SEALED).envelope_id.hex() in info.value.message


async def test_send_refuses_an_answer_whose_receipt_does_not_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On real nodes: a true answer passes; the same answer naming another ledger entry
    than its receipt is refused, so the caller never keeps it as evidence."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        assert sent["ledger_index"] >= 0

        true_submit = AgencyClient.submit

        async def lying_submit(self: AgencyClient, sealed: bytes) -> dict[str, Any]:
            answer = await true_submit(self, sealed)
            return dict(answer, ledger_index=answer["ledger_index"] + 1)

        monkeypatch.setattr(AgencyClient, "submit", lying_submit)
        with pytest.raises(ClientError) as info:
            await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        assert info.value.code == "client.bad_receipt"
