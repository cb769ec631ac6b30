"""The case state machine (A8–A11): which envelope kind may follow which.

A **request** (A8.1) opens a case; a **spontaneous disclosure** (A8.2) opens a case
that is closed from the start but can still carry consent requests (A11.3). Every
other kind continues an open case, sent by one side:

- ``R``: the requesting authority (the sender of the request);
- ``Q``: the requested authority (its recipient).

Nodes see only the cleartext header, so the machine works on kinds alone; a decision
whose value sits in the encrypted body moves the case the way the kind says (a
``confidentiality_decision`` means "proceed"; withdrawing is a ``withdrawal``).

====================================  ====  ===============================================
kind                                  side  from state(s) → to state
====================================  ====  ===============================================
request                               R     (new) → received
additional_info_request (A10.1)       Q     open_for_work → waiting_additional_info
additional_info (A10.1)               R     waiting_additional_info → received
delay_notice (A10.1)                  Q     any open → unchanged
postponement (A10.2)                  Q     open_for_work → postponed
conditional_execution (A10.2)         Q     open_for_work → conditional
confirmation_request (A9.5)           Q     open_for_work → waiting_confirmation
confirmation (A9.5)                   R     waiting_confirmation → received
confidentiality_notice (A11.1)        Q     open_for_work → waiting_confidentiality_decision
confidentiality_decision (A11.1)      R     waiting_confidentiality_decision → received
partial_refusal (A10.4)               Q     open_for_work → partially_refused
answer (A10.3)                        Q     open_for_work, partially_refused → answered
refusal (A10.4)                       Q     open_for_work → refused
withdrawal                            R     any open → withdrawn
consent_request (A11.3)               R*    answered, partially_refused, disclosed → same
consent_decision (A11.3)              Q*    answered, partially_refused, disclosed → same
acknowledgement                       R/Q   any → unchanged
spontaneous_disclosure (A8.2)         either (new) → disclosed
====================================  ====  ===============================================

(*) In a case opened by a spontaneous disclosure the sides of the consent kinds swap:
the recipient of the disclosure (Q) asks, the discloser (R) decides.

``open_for_work`` = received, postponed, conditional. Closed states: answered,
refused, withdrawn, disclosed. The A10.3 deadline stops when the case closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.errors import GatewayError

Side = Literal["R", "Q"]

OPEN_FOR_WORK = frozenset({"received", "postponed", "conditional"})
WAITING = frozenset({"waiting_additional_info", "waiting_confirmation",
                     "waiting_confidentiality_decision"})
OPEN = OPEN_FOR_WORK | WAITING | {"partially_refused"}
CLOSED = frozenset({"answered", "refused", "withdrawn", "disclosed"})
STATES = OPEN | CLOSED
AFTER_DISCLOSURE = frozenset({"answered", "partially_refused", "disclosed"})

_R: frozenset[Side] = frozenset(("R",))
_Q: frozenset[Side] = frozenset(("Q",))
_EITHER: frozenset[Side] = frozenset(("R", "Q"))

# kind -> (side that may send it, states it may follow, next state or None = unchanged)
_TRANSITIONS: dict[str, tuple[frozenset[Side], frozenset[str], str | None]] = {
    "additional_info_request": (_Q, OPEN_FOR_WORK, "waiting_additional_info"),
    "additional_info": (_R, frozenset({"waiting_additional_info"}), "received"),
    "delay_notice": (_Q, OPEN, None),
    "postponement": (_Q, OPEN_FOR_WORK, "postponed"),
    "conditional_execution": (_Q, OPEN_FOR_WORK, "conditional"),
    "confirmation_request": (_Q, OPEN_FOR_WORK, "waiting_confirmation"),
    "confirmation": (_R, frozenset({"waiting_confirmation"}), "received"),
    "confidentiality_notice": (_Q, OPEN_FOR_WORK, "waiting_confidentiality_decision"),
    "confidentiality_decision": (_R, frozenset({"waiting_confidentiality_decision"}),
                                 "received"),
    "partial_refusal": (_Q, OPEN_FOR_WORK, "partially_refused"),
    "answer": (_Q, OPEN_FOR_WORK | {"partially_refused"}, "answered"),
    "refusal": (_Q, OPEN_FOR_WORK, "refused"),
    "withdrawal": (_R, OPEN, "withdrawn"),
    # A11.3: whoever received the information asks its provider. In a request case
    # that is R (it got the answer); in a disclosure case, Q (see ``_consent_side``).
    "consent_request": (_R, AFTER_DISCLOSURE, None),
    "consent_decision": (_Q, AFTER_DISCLOSURE, None),
    "acknowledgement": (_EITHER, STATES, None),
}
_CONSENT_KINDS = frozenset({"consent_request", "consent_decision"})
OPENING_KINDS = {"request": "received", "spontaneous_disclosure": "disclosed"}
# Kinds that travel between nodes as signed control documents, not in cases.
CASELESS_KINDS = frozenset({"signatory_list", "directory_update", "termination_notice"})


class CaseError(GatewayError):
    code = "case.invalid_transition"


@dataclass(frozen=True)
class Case:
    case_id: bytes
    state: str
    requesting: str   # authority id of side R
    requested: str    # authority id of side Q
    opened_by_kind: str


def open_case(case_id: bytes, kind: str, sender: str, recipient: str) -> Case:
    """The case a request or a spontaneous disclosure opens."""
    if kind not in OPENING_KINDS:
        raise CaseError(f"a {kind} cannot open a case; only a request or a "
                        "spontaneous_disclosure can", code="case.unknown")
    return Case(case_id, OPENING_KINDS[kind], sender, recipient, kind)


def side_of(case: Case, sender: str, recipient: str) -> Side:
    if (sender, recipient) == (case.requesting, case.requested):
        return "R"
    if (sender, recipient) == (case.requested, case.requesting):
        return "Q"
    raise CaseError("sender and recipient are not the two authorities of this case",
                    code="case.wrong_party")


def next_state(case: Case, kind: str, sender: str, recipient: str) -> str:
    """The state after ``kind`` from ``sender``; ``CaseError`` if it may not follow."""
    if kind in OPENING_KINDS:
        raise CaseError(f"case already exists; a {kind} must open a new case",
                        code="case.exists")
    rule = _TRANSITIONS.get(kind)
    if rule is None:
        raise CaseError(f"kind {kind} does not belong to a case", code="case.not_case_kind")
    sides, allowed, target = rule
    side = side_of(case, sender, recipient)
    if kind in _CONSENT_KINDS and case.opened_by_kind == "spontaneous_disclosure":
        # In a disclosure case the information flowed from R to Q: Q asks, R decides.
        side = "Q" if side == "R" else "R"
    if side not in sides:
        who = "requesting" if side == "R" else "requested"
        raise CaseError(f"the {who} authority may not send a {kind}")
    if case.state not in allowed:
        raise CaseError(f"a {kind} may not follow state {case.state}")
    return target or case.state
