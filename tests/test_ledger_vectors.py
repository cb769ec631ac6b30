"""RFC 9162 §2.1.3.2 / §2.1.4.2 proof verification against every transparency-dev/merkle
vector (tests/vectors/merkle/README.md): each file's ``desc`` is its test id, and the
suite's shape is asserted so a new kind of case fails loudly instead of passing unseen."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import BadProof, LedgerError, RootMismatch
from ledger.verify import verify_consistency, verify_inclusion

VECTORS = Path(__file__).parent / "vectors" / "merkle" / "testdata"


def _load(kind: str) -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted((VECTORS / kind).rglob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        name = f"{kind}/{path.parent.relative_to(VECTORS / kind)}/{case['desc']}"
        cases.append((name, case))
    return cases


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def _bytes(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_bytes(h) for h in case["proof"] or []]


def test_suite_shape() -> None:
    cases = INCLUSION + CONSISTENCY
    assert len(cases) == 196
    assert sum(not case["wantErr"] for _, case in cases) == 12
    assert len({name for name, _ in cases}) == 196  # every desc is distinct in its folder


@pytest.mark.parametrize("case", [c for _, c in INCLUSION], ids=[n for n, _ in INCLUSION])
def test_inclusion_vector(case: dict[str, Any]) -> None:
    args = (case["leafIdx"], case["treeSize"], _bytes(case["leafHash"]), _proof(case),
            _bytes(case["root"]))
    if case["wantErr"]:
        with pytest.raises((BadProof, RootMismatch)):
            verify_inclusion(*args)
    else:
        assert verify_inclusion(*args) is None


@pytest.mark.parametrize("case", [c for _, c in CONSISTENCY], ids=[n for n, _ in CONSISTENCY])
def test_consistency_vector(case: dict[str, Any]) -> None:
    args = (case["size1"], case["size2"], _proof(case), _bytes(case["root1"]),
            _bytes(case["root2"]))
    if case["wantErr"]:
        with pytest.raises((BadProof, RootMismatch)):
            verify_consistency(*args)
    else:
        assert verify_consistency(*args) is None


def test_root_mismatch_carries_evidence() -> None:
    case = dict(INCLUSION)["inclusion/1/happy path"]
    wrong = bytes(32)
    with pytest.raises(RootMismatch) as caught:
        verify_inclusion(case["leafIdx"], case["treeSize"], _bytes(case["leafHash"]),
                         _proof(case), wrong)
    assert caught.value.code == "ledger.root_mismatch"
    assert caught.value.size == case["treeSize"]
    assert caught.value.expected == wrong
    assert caught.value.computed == _bytes(case["root"])


def test_short_leaf_hash_is_refused_before_hashing() -> None:
    """The guard the RFC leaves implicit: an empty leaf hash never equals an empty root."""
    with pytest.raises(BadProof, match="leaf hash is 0 bytes"):
        verify_inclusion(0, 1, b"", [], b"")


def test_consistency_from_empty_tree_is_refused() -> None:
    with pytest.raises(BadProof):
        verify_consistency(0, 0, [], b"x", b"x")


def test_every_failure_is_a_ledger_error() -> None:
    assert issubclass(BadProof, LedgerError) and issubclass(RootMismatch, LedgerError)
