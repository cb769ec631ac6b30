"""The kind registry: every kind of envelope, its wire number and name.

Names are snake_case and wire-stable (the JSON and CLI form); numbers are what the
header carries. Number ranges (docs/protocol.md, "Kind registry"):

- 0: reserved, never assigned;
- 1-127: assigned by docs/protocol.md, appended in order and never reused;
- 128-191: reserved for kinds added by protocols amending the Agreement (A16);
- 192-255: private use between test nodes, never sent between the Parties.

A kind "opens a case" when it starts an exchange (a request, a disclosure, a notice);
every other kind answers an envelope and so carries that envelope's id and hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.envelope.errors import UnknownKind, quotable


@dataclass(frozen=True)
class Kind:
    number: int
    name: str
    opens_case: bool
    clauses: tuple[str, ...]


KINDS: tuple[Kind, ...] = (
    Kind(1, "request", True, ("A8.1", "A9.2")),
    Kind(2, "answer", False, ("A10.3",)),
    Kind(3, "refusal", False, ("A10.4",)),
    Kind(4, "partial_refusal", False, ("A10.4",)),
    Kind(5, "postponement", False, ("A10.2",)),
    Kind(6, "conditional_execution", False, ("A10.2",)),
    Kind(7, "additional_info_request", False, ("A10.1",)),
    Kind(8, "additional_info", False, ("A10.1",)),
    Kind(9, "delay_notice", False, ("A10.1",)),
    Kind(10, "spontaneous_disclosure", True, ("A8.2",)),
    Kind(11, "confirmation_request", False, ("A9.5",)),
    Kind(12, "confirmation", False, ("A9.5",)),
    Kind(13, "confidentiality_notice", False, ("A11.1",)),
    Kind(14, "confidentiality_decision", False, ("A11.1",)),
    Kind(15, "consent_request", False, ("A11.2", "A11.3")),
    Kind(16, "consent_decision", False, ("A11.2", "A11.3")),
    Kind(17, "signatory_list", True, ("A9.3", "A9.4")),
    Kind(18, "directory_update", True, ("A2.2",)),
    Kind(19, "termination_notice", True, ("A17",)),
    Kind(20, "withdrawal", False, ()),
    Kind(21, "acknowledgement", False, ()),
)

_BY_NAME = {kind.name: kind for kind in KINDS}
_BY_NUMBER = {kind.number: kind for kind in KINDS}


def by_name(name: str) -> Kind:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownKind(f"kind {quotable(name)} is not in the registry") from None


def by_number(number: int) -> Kind:
    try:
        return _BY_NUMBER[number]
    except (KeyError, TypeError):
        raise UnknownKind(f"kind number {number} is not in the registry") from None
