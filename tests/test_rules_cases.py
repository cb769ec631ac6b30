"""The case state machine, table by table (gateway/rules/cases.py; A8-A11).

``ALLOWED`` below is written out by hand from the agreement, not derived from the
module's own table: each row is one (kind, side, from state) that may happen and the
state it leads to, with the clause that makes it so. The sweep then tries every other
(kind, state, side) combination and expects ``case.invalid_transition``.

Sides: ``R`` is the requesting authority (the sender of the request, or of a spontaneous
disclosure), ``Q`` the requested one (its recipient).
"""

from __future__ import annotations

import itertools

import pytest

from gateway.envelope import kinds
from gateway.rules import cases
from gateway.rules.cases import Case, CaseError, next_state, open_case, side_of

R_AUTHORITY = "KZ-MVD"
Q_AUTHORITY = "BY-MVD"
CASE_ID = bytes(range(16))

FOR_WORK = ("received", "postponed", "conditional")
WAITING = ("waiting_additional_info", "waiting_confirmation",
           "waiting_confidentiality_decision")
OPEN = (*FOR_WORK, *WAITING, "partially_refused")
CLOSED = ("answered", "refused", "withdrawn", "disclosed")
STATES = (*OPEN, *CLOSED)

OPENING = {"request": "received", "spontaneous_disclosure": "disclosed"}
CASELESS = ("signatory_list", "directory_update", "termination_notice")


def _rows(clause: str, kind: str, side: str, froms: tuple[str, ...], to: str | None
          ) -> list[tuple[str, str, str, str, str]]:
    """One row per from-state; ``to=None`` means the state does not change."""
    return [(clause, kind, side, f, to or f) for f in froms]


# (clause, kind, side, from state, to state): everything the agreement lets happen.
ALLOWED: list[tuple[str, str, str, str, str]] = [
    # A10.1: the requested side may ask for more information; the answer resumes work.
    *_rows("A10.1", "additional_info_request", "Q", FOR_WORK, "waiting_additional_info"),
    *_rows("A10.1", "additional_info", "R", ("waiting_additional_info",), "received"),
    # A10.1: a delay notice informs; it moves neither the state nor the deadline.
    *_rows("A10.1", "delay_notice", "Q", OPEN, None),
    # A10.2: postponed, or made conditional on terms the requested side sets.
    *_rows("A10.2", "postponement", "Q", FOR_WORK, "postponed"),
    *_rows("A10.2", "conditional_execution", "Q", FOR_WORK, "conditional"),
    # A9.5: confirmation of authenticity or content; the case waits for it.
    *_rows("A9.5", "confirmation_request", "Q", FOR_WORK, "waiting_confirmation"),
    *_rows("A9.5", "confirmation", "R", ("waiting_confirmation",), "received"),
    # A11.1: execution cannot stay confidential; the requesting side decides.
    *_rows("A11.1", "confidentiality_notice", "Q", FOR_WORK,
           "waiting_confidentiality_decision"),
    *_rows("A11.1", "confidentiality_decision", "R", ("waiting_confidentiality_decision",),
           "received"),
    # A10.4: refusal in full or in part; the part not refused is still answered.
    *_rows("A10.4", "partial_refusal", "Q", FOR_WORK, "partially_refused"),
    *_rows("A10.4", "refusal", "Q", FOR_WORK, "refused"),
    # A10.3: the results.
    *_rows("A10.3", "answer", "Q", (*FOR_WORK, "partially_refused"), "answered"),
    # The requesting side may withdraw its own request while the case is open (issue 5;
    # no clause of its own; A11.1 is one occasion).
    *_rows("issue5", "withdrawal", "R", OPEN, "withdrawn"),
    # A11.3: consent to onward transfer, about information already provided. For a
    # disclosure (A8.2) see DISCLOSURE_CONSENT below.
    *_rows("A11.3", "consent_request", "R", ("answered", "partially_refused"), None),
    *_rows("A11.3", "consent_decision", "Q", ("answered", "partially_refused"), None),
    # Acknowledgements are evidence only, from either side, in any state (issue 5).
    *_rows("issue5", "acknowledgement", "R", STATES, None),
    *_rows("issue5", "acknowledgement", "Q", STATES, None),
]
# A11.3 consent in a disclosure case (the sides swap): left out of both the table and
# the sweep, and checked by its own test at the end of this file.
DISCLOSURE_CONSENT = {(kind, "disclosed", side)
                      for kind in ("consent_request", "consent_decision") for side in "RQ"}
ALLOWED_KEYS = {(kind, side, state): to for _c, kind, side, state, to in ALLOWED}
CASE_KINDS = sorted({kind for _c, kind, _s, _f, _t in ALLOWED})


def case_in(state: str) -> Case:
    opened_by = "spontaneous_disclosure" if state == "disclosed" else "request"
    return Case(CASE_ID, state, R_AUTHORITY, Q_AUTHORITY, opened_by)


def send(case: Case, kind: str, side: str) -> str:
    sender, recipient = (R_AUTHORITY, Q_AUTHORITY) if side == "R" else (Q_AUTHORITY,
                                                                         R_AUTHORITY)
    return next_state(case, kind, sender, recipient)


def code_of(case: Case, kind: str, side: str) -> str:
    with pytest.raises(CaseError) as failure:
        send(case, kind, side)
    return failure.value.code


# The shape of the machine -------------------------------------------------------------


def test_the_states_are_the_ones_listed_here() -> None:
    """Fails loudly when a state is added without a row in this file."""
    assert set(cases.STATES) == set(STATES)
    assert set(cases.OPEN) == set(OPEN) and set(cases.CLOSED) == set(CLOSED)
    assert set(cases.OPEN_FOR_WORK) == set(FOR_WORK)


def test_every_registered_kind_opens_continues_or_stays_outside_a_case() -> None:
    """Every kind in the envelope registry has a place in this file's tables."""
    registry = {kind.name for kind in kinds.KINDS}
    assert registry == set(CASE_KINDS) | set(OPENING) | set(CASELESS)
    assert set(cases.OPENING_KINDS) == set(OPENING)
    assert set(cases.CASELESS_KINDS) == set(CASELESS)


# Opening a case: A8.1 and A8.2 ----------------------------------------------------------


def test_a_request_opens_a_received_case_A8_1() -> None:
    """A8.1: cooperation starts with a request; its sender is the requesting side."""
    case = open_case(CASE_ID, "request", R_AUTHORITY, Q_AUTHORITY)
    assert case == Case(CASE_ID, "received", R_AUTHORITY, Q_AUTHORITY, "request")
    assert side_of(case, R_AUTHORITY, Q_AUTHORITY) == "R"
    assert side_of(case, Q_AUTHORITY, R_AUTHORITY) == "Q"


def test_a_spontaneous_disclosure_opens_a_closed_case_A8_2() -> None:
    """A8.2: information sent without a request needs no execution: closed from the start."""
    case = open_case(CASE_ID, "spontaneous_disclosure", R_AUTHORITY, Q_AUTHORITY)
    assert case.state == "disclosed" and case.state in cases.CLOSED
    assert case.opened_by_kind == "spontaneous_disclosure"


@pytest.mark.parametrize("kind", [*CASE_KINDS, *CASELESS, "no_such_kind"])
def test_only_a_request_or_a_disclosure_opens_a_case_A8_1_A8_2(kind: str) -> None:
    """A8.1, A8.2: every other kind continues a case or stays outside one."""
    with pytest.raises(CaseError) as failure:
        open_case(CASE_ID, kind, R_AUTHORITY, Q_AUTHORITY)
    assert failure.value.code == "case.unknown"


@pytest.mark.parametrize(("kind", "state"), list(itertools.product(OPENING, STATES)))
def test_an_opening_kind_never_continues_a_case_A8_1_A8_2(kind: str, state: str) -> None:
    """A8.1, A8.2: a second request in the same case is a new case, never a step."""
    for side in ("R", "Q"):
        assert code_of(case_in(state), kind, side) == "case.exists"


@pytest.mark.parametrize("kind", [*CASELESS, "no_such_kind", ""])
def test_control_documents_do_not_belong_to_a_case(kind: str) -> None:
    """Signatory lists (A9.3), directories (A2.2) and termination (A17) travel alone."""
    assert code_of(case_in("received"), kind, "R") == "case.not_case_kind"


@pytest.mark.parametrize(("sender", "recipient"), [
    ("KZ-MLSP", Q_AUTHORITY), (R_AUTHORITY, "BY-GPK"), ("KZ-MLSP", "BY-GPK"),
    (R_AUTHORITY, R_AUTHORITY), (Q_AUTHORITY, Q_AUTHORITY),
])
def test_only_the_two_authorities_of_the_case_take_part_A11_1(sender: str,
                                                             recipient: str) -> None:
    """A11.1: a third authority, even of the same Party, cannot step into a case."""
    with pytest.raises(CaseError) as failure:
        next_state(case_in("received"), "answer", sender, recipient)
    assert failure.value.code == "case.wrong_party"


# Every allowed transition -------------------------------------------------------------


@pytest.mark.parametrize(("clause", "kind", "side", "state", "to"), ALLOWED,
                         ids=[f"{c}-{k}-{s}-{f}" for c, k, s, f, _t in ALLOWED])
def test_allowed_transition(clause: str, kind: str, side: str, state: str, to: str) -> None:
    """A8.1, A9.5, A10.1, A10.2, A10.3, A10.4, A11.1, A11.3: each row of ALLOWED, its
    clause in the test id."""
    assert send(case_in(state), kind, side) == to


# Everything else is refused -------------------------------------------------------------

REFUSED = [(kind, state, side)
           for kind, state, side in itertools.product(CASE_KINDS, STATES, ("R", "Q"))
           if (kind, side, state) not in ALLOWED_KEYS
           and (kind, state, side) not in DISCLOSURE_CONSENT]


def test_the_sweep_covers_every_combination() -> None:
    assert len(REFUSED) + len(ALLOWED_KEYS) + len(DISCLOSURE_CONSENT) == \
        len(CASE_KINDS) * len(STATES) * 2
    assert len(ALLOWED_KEYS) == len(ALLOWED)  # no row written twice


@pytest.mark.parametrize(("kind", "state", "side"), REFUSED,
                         ids=[f"{k}-{s}-{side}" for k, s, side in REFUSED])
def test_every_other_transition_is_refused(kind: str, state: str, side: str) -> None:
    """A8.1, A9.5, A10.1-A10.4, A11.1, A11.3: a kind from the wrong side or in the wrong
    state is ``case.invalid_transition``, and the message names no person data."""
    with pytest.raises(CaseError) as failure:
        send(case_in(state), kind, side)
    assert failure.value.code == "case.invalid_transition"
    assert R_AUTHORITY not in failure.value.message
    assert Q_AUTHORITY not in failure.value.message


# The rules, one clause at a time ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["answer", "refusal", "partial_refusal", "postponement",
                                  "conditional_execution", "delay_notice",
                                  "additional_info_request", "confirmation_request",
                                  "confidentiality_notice", "consent_decision"])
def test_only_the_requested_side_executes_A10_1_A10_3_A10_4(kind: str) -> None:
    """A10.1-A10.4: executing, refusing and deferring are the requested Party's acts."""
    state = "answered" if kind == "consent_decision" else "received"
    assert code_of(case_in(state), kind, "R") == "case.invalid_transition"


@pytest.mark.parametrize("kind", ["additional_info", "confirmation",
                                  "confidentiality_decision", "withdrawal",
                                  "consent_request"])
def test_only_the_requesting_side_supplies_decides_or_withdraws(kind: str) -> None:
    """A10.1, A9.5, A11.1, A11.3: the requesting side answers questions put to it."""
    state = {"additional_info": "waiting_additional_info",
             "confirmation": "waiting_confirmation",
             "confidentiality_decision": "waiting_confidentiality_decision",
             "consent_request": "answered"}.get(kind, "received")
    assert code_of(case_in(state), kind, "Q") == "case.invalid_transition"


@pytest.mark.parametrize("state", WAITING)
def test_a_waiting_case_cannot_be_answered_A9_5_A10_1_A11_1(state: str) -> None:
    """A9.5, A10.1, A11.1: while the case waits for the requesting side, the requested
    side neither answers nor refuses; it may still say it is delayed."""
    for kind in ("answer", "refusal", "partial_refusal", "postponement"):
        assert code_of(case_in(state), kind, "Q") == "case.invalid_transition"
    assert send(case_in(state), "delay_notice", "Q") == state


@pytest.mark.parametrize("state", CLOSED)
def test_a_closed_case_takes_no_more_work_A10_3_A10_4(state: str) -> None:
    """A10.3, A10.4: after the answer, a refusal, a withdrawal or a disclosure nothing
    moves the case again; only acknowledgements and A11.3 consent remain."""
    for kind, side in itertools.product(CASE_KINDS, ("R", "Q")):
        if kind in ("acknowledgement", "consent_request", "consent_decision"):
            continue
        assert code_of(case_in(state), kind, side) == "case.invalid_transition"


@pytest.mark.parametrize("kind", ["consent_request", "consent_decision"])
def test_consent_after_an_answer_A11_3(kind: str) -> None:
    """A11.3: the requesting side got information and asks the provider (Q) for consent
    to pass it on; the provider decides. Neither moves the case."""
    asker, decider = ("R", "Q") if kind == "consent_request" else ("Q", "R")
    for state in ("answered", "partially_refused"):
        assert send(case_in(state), kind, asker) == state
        assert code_of(case_in(state), kind, decider) == "case.invalid_transition"


def test_a_partial_refusal_still_leads_to_an_answer_A10_4() -> None:
    """A10.4: refusing in part leaves the rest to be answered; no second refusal."""
    case = case_in("partially_refused")
    assert send(case, "answer", "Q") == "answered"
    assert code_of(case, "refusal", "Q") == "case.invalid_transition"
    assert code_of(case, "partial_refusal", "Q") == "case.invalid_transition"


@pytest.mark.parametrize("state", ["received", "refused", "withdrawn", *WAITING,
                                   "postponed", "conditional"])
def test_consent_only_about_information_provided_A11_3(state: str) -> None:
    """A11.3: consent to pass information on is asked only once information was given."""
    assert code_of(case_in(state), "consent_request", "R") == "case.invalid_transition"
    assert code_of(case_in(state), "consent_decision", "Q") == "case.invalid_transition"


def walk(*steps: tuple[str, str]) -> list[str]:
    """States visited from a fresh request through ``steps`` of (kind, side)."""
    case = open_case(CASE_ID, "request", R_AUTHORITY, Q_AUTHORITY)
    visited = [case.state]
    for kind, side in steps:
        case = Case(case.case_id, send(case, kind, side), case.requesting, case.requested,
                    case.opened_by_kind)
        visited.append(case.state)
    return visited


def test_a_case_through_every_pause_A9_5_A10_1_A10_2_A11_1() -> None:
    """A9.5, A10.1, A10.2, A11.1: a case may pause and resume several times before the
    A10.3 answer."""
    assert walk(("confirmation_request", "Q"), ("confirmation", "R"),
                ("additional_info_request", "Q"), ("additional_info", "R"),
                ("postponement", "Q"), ("delay_notice", "Q"),
                ("conditional_execution", "Q"),
                ("confidentiality_notice", "Q"), ("confidentiality_decision", "R"),
                ("partial_refusal", "Q"), ("answer", "Q"),
                ("acknowledgement", "R"), ("consent_request", "R"),
                ("consent_decision", "Q")) == [
        "received", "waiting_confirmation", "received", "waiting_additional_info",
        "received", "postponed", "postponed", "conditional",
        "waiting_confidentiality_decision", "received", "partially_refused", "answered",
        "answered", "answered", "answered"]


def test_withdrawing_instead_of_proceeding_A11_1() -> None:
    """A11.1: told that confidentiality cannot be kept, the requesting side withdraws."""
    assert walk(("confidentiality_notice", "Q"), ("withdrawal", "R")) == [
        "received", "waiting_confidentiality_decision", "withdrawn"]


def test_the_recipient_of_a_disclosure_asks_the_provider_for_consent_A8_2_A11_3() -> None:
    """A8.2, A11.3: information received without a request is still passed on only with
    the providing Party's prior consent, so its recipient (Q) asks and the discloser (R)
    decides."""
    case = case_in("disclosed")
    assert send(case, "consent_request", "Q") == "disclosed"
    assert send(case, "consent_decision", "R") == "disclosed"
