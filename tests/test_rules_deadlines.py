"""The agreement's deadlines as pure functions (gateway/rules/deadlines.py).

Every instant here is fixed; no test reads the clock. Expected instants are written in
UTC, worked out by hand from the legal time of the Party concerned:

- ``Europe/Minsk`` (BY) is UTC+3 all year;
- ``Asia/Almaty`` (KZ) was UTC+6 until 1 March 2024 and is UTC+5 since (tzdata 2024a).
  KZ cases below use 2023 dates, true under every tzdata; one test checks the change
  and is skipped on a system whose tzdata predates it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.config import AGREEMENT_IN_FORCE, LEGAL_TIME_ZONES
from gateway.rules.deadlines import (
    ANSWER_DAYS,
    DUE_SOON_DAYS,
    SETUP_DAYS,
    TERMINATION_MONTHS,
    add_months,
    answer_due,
    days_left,
    legal_zone,
    local_day,
    setup_due,
    termination_end,
)

US = dt.timedelta(microseconds=1)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_the_periods_of_the_agreement() -> None:
    """A10.3 30 calendar days, A9.3 45 days, A17 6 months, each Party in its legal time."""
    assert (ANSWER_DAYS, SETUP_DAYS, TERMINATION_MONTHS) == (30, 45, 6)
    assert LEGAL_TIME_ZONES == {"KZ": "Asia/Almaty", "BY": "Europe/Minsk"}
    assert AGREEMENT_IN_FORCE.isoformat() == "2020-12-03"


# A10.3: 30 calendar days from the day of receipt -------------------------------------------

# (requested Party, received at (UTC), local day 0, due = 00:00 local of day 31, in UTC)
ANSWER_CASES = [
    # BY, UTC+3. A receipt one second before local midnight belongs to that day ...
    ("BY", "2025-01-31T20:59:59", "2025-01-31", "2025-03-02T21:00:00"),
    # ... and at local midnight to the next one: one second later, one day later.
    ("BY", "2025-01-31T21:00:00", "2025-02-01", "2025-03-03T21:00:00"),
    # The UTC date does not count: 23:30 UTC is already tomorrow in Minsk.
    ("BY", "2025-01-31T23:30:00", "2025-02-01", "2025-03-03T21:00:00"),
    ("BY", "2025-02-01T20:59:59.999999", "2025-02-01", "2025-03-03T21:00:00"),
    # Across a leap February: 2024-02-10 + 31 days = 2024-03-12.
    ("BY", "2024-02-10T12:00:00", "2024-02-10", "2024-03-11T21:00:00"),
    # Across the year end.
    ("BY", "2024-12-15T08:00:00", "2024-12-15", "2025-01-14T21:00:00"),
    # KZ in 2023, UTC+6: the same second-before / at local midnight pair.
    ("KZ", "2023-05-10T17:59:59", "2023-05-10", "2023-06-09T18:00:00"),
    ("KZ", "2023-05-10T18:00:00", "2023-05-11", "2023-06-10T18:00:00"),
]


@pytest.mark.parametrize(("party", "received", "day0", "due"), ANSWER_CASES,
                         ids=[f"{p}-{r}" for p, r, _d, _u in ANSWER_CASES])
def test_answer_due_A10_3(party: str, received: str, day0: str, due: str) -> None:
    """A10.3: day 0 is the day of receipt in the requested Party's legal time; the
    period ends at the end of day 30, stored as 00:00 of day 31 (exclusive)."""
    received_at = utc(received)
    assert local_day(received_at, party) == dt.date.fromisoformat(day0)
    expected = utc(due)
    assert answer_due(received_at, party) == expected
    local = expected.astimezone(legal_zone(party))
    assert (local.time(), local.date() - dt.date.fromisoformat(day0)) == \
        (dt.time(0), dt.timedelta(days=31))


def test_receipt_one_second_apart_across_local_midnight_A10_3() -> None:
    """A10.3: the whole day of receipt is day 0, so one second decides a whole day."""
    before = answer_due(utc("2025-01-31T20:59:59"), "BY")
    after = answer_due(utc("2025-01-31T21:00:00"), "BY")
    assert after - before == dt.timedelta(days=1)


def test_the_requested_partys_time_zone_counts_A10_3() -> None:
    """A10.3: the same instant is 22:30 on 10 May in Minsk and 01:30 on 11 May in Almaty;
    the day of receipt is the requested Party's."""
    received = utc("2023-05-10T19:30:00")
    assert local_day(received, "BY") == dt.date(2023, 5, 10)
    assert local_day(received, "KZ") == dt.date(2023, 5, 11)
    assert answer_due(received, "BY") == utc("2023-06-09T21:00:00")
    assert answer_due(received, "KZ") == utc("2023-06-10T18:00:00")


def test_no_shift_for_weekends_or_holidays_A10_3() -> None:
    """A10.3: calendar days. Day 30 here is 7 January 2025, a public holiday in Belarus
    (and a Tuesday); received on Sunday 8 December 2024, still due at its end."""
    received = utc("2024-12-08T09:00:00")
    assert received.date().weekday() == 6
    assert answer_due(received, "BY") == utc("2025-01-07T21:00:00")


def test_kazakhstan_moved_to_utc_plus_5_on_1_march_2024_A10_3() -> None:
    """A10.3: the zone's rules, not a fixed offset: a receipt at 18:30 UTC is 00:30 the
    next day in Almaty before the change and 23:30 the same day after it."""
    if legal_zone("KZ").utcoffset(dt.datetime(2025, 1, 1)) != dt.timedelta(hours=5):
        pytest.skip("this system's tzdata predates 2024a (Almaty still UTC+6)")
    assert local_day(utc("2024-02-28T18:30:00"), "KZ") == dt.date(2024, 2, 29)
    assert local_day(utc("2025-02-28T18:30:00"), "KZ") == dt.date(2025, 2, 28)
    assert answer_due(utc("2025-02-28T18:30:00"), "KZ") == utc("2025-03-30T19:00:00")


# A10.3: days left, due soon, overdue -------------------------------------------------------

RECEIVED_BY = utc("2025-01-31T21:00:00")   # 00:00 on 1 February in Minsk: day 0
DUE_BY = utc("2025-03-03T21:00:00")        # 00:00 on 4 March in Minsk: day 30 is 3 March


def minsk(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=legal_zone("BY"))


# (now in Minsk time, days left, overdue, due soon)
STANDING = [
    ("2025-02-01T00:00:00", 30, False, False),   # the instant of receipt, day 0
    ("2025-02-01T23:59:59", 30, False, False),   # still day 0
    ("2025-02-02T00:00:00", 29, False, False),   # day 1
    ("2025-02-26T23:59:59", 5, False, False),    # day 25: 5 days left, not yet "soon"
    ("2025-02-27T00:00:00", 4, False, True),     # day 26: due soon (fewer than 5 left)
    ("2025-03-03T00:00:00", 0, False, True),     # day 30 itself counts as 0 days left
    ("2025-03-03T23:59:59.999999", 0, False, True),  # the last instant before the due one
    ("2025-03-04T00:00:00", -1, True, False),    # the due instant: overdue, never "soon"
    ("2025-03-10T12:00:00", -7, True, False),
]


@pytest.mark.parametrize(("now", "left", "overdue", "soon"), STANDING,
                         ids=[s[0] for s in STANDING])
def test_days_left_at_the_boundaries_A10_3(now: str, left: int, overdue: bool,
                                           soon: bool) -> None:
    """A10.3: whole local days until day 30 ends; overdue from 00:00 of day 31."""
    assert answer_due(RECEIVED_BY, "BY") == DUE_BY
    standing = days_left(DUE_BY, minsk(now), "BY")
    assert (standing.days_left, standing.overdue, standing.due_soon) == (left, overdue, soon)
    assert standing.due == DUE_BY


def test_due_soon_means_fewer_than_five_days_left_A10_3() -> None:
    """A10.3: `gateway deadlines` flags the last DUE_SOON_DAYS days: 4, 3, 2, 1, 0 left."""
    assert DUE_SOON_DAYS == 5
    soon = [days_left(DUE_BY, minsk("2025-03-03T12:00:00") - dt.timedelta(days=n), "BY")
            for n in range(8)]
    assert [(s.days_left, s.due_soon) for s in soon] == [
        (0, True), (1, True), (2, True), (3, True), (4, True),
        (5, False), (6, False), (7, False)]


def test_overdue_exactly_at_the_due_instant_A10_3() -> None:
    """A10.3: the due instant is exclusive: one microsecond before is in time."""
    assert not days_left(DUE_BY, DUE_BY - US, "BY").overdue
    assert days_left(DUE_BY, DUE_BY, "BY").overdue


def test_labels_A10_3() -> None:
    """A10.3: what `gateway deadlines` prints."""
    assert days_left(DUE_BY, RECEIVED_BY, "BY").label() == "30 day(s) left"
    assert days_left(DUE_BY, DUE_BY - US, "BY").label() == "0 day(s) left"
    assert days_left(DUE_BY, DUE_BY, "BY").label() == "overdue by 1 day(s)"
    assert days_left(DUE_BY, DUE_BY + dt.timedelta(days=2), "BY").label() == \
        "overdue by 3 day(s)"


def test_days_are_counted_in_the_partys_time_not_utc_A10_3() -> None:
    """A10.3: at 22:00 UTC on 2 March it is already 3 March (day 30) in Minsk."""
    assert days_left(DUE_BY, utc("2025-03-02T20:59:59"), "BY").days_left == 1
    assert days_left(DUE_BY, utc("2025-03-02T21:00:00"), "BY").days_left == 0


def test_kz_days_left_in_almaty_time_A10_3() -> None:
    """A10.3: the same rule in Kazakhstan (2023, UTC+6)."""
    due = answer_due(utc("2023-05-10T18:00:00"), "KZ")   # day 0 = 11 May, day 30 = 10 June
    assert days_left(due, utc("2023-05-10T18:00:00"), "KZ").days_left == 30
    assert days_left(due, utc("2023-06-09T17:59:59"), "KZ").days_left == 1
    assert days_left(due, utc("2023-06-09T18:00:00"), "KZ").days_left == 0
    assert days_left(due, utc("2023-06-10T17:59:59"), "KZ").overdue is False
    assert days_left(due, utc("2023-06-10T18:00:00"), "KZ").overdue is True


# A9.3: lists of signatories within 45 days of entry into force ---------------------------


def test_setup_due_for_the_real_entry_into_force_A9_3() -> None:
    """A9.3: in force 3 December 2020 (day 0); day 45 is 17 January 2021; the lists are
    due by its end, 00:00 on 18 January in the sending Party's legal time."""
    assert setup_due(AGREEMENT_IN_FORCE, "KZ") == utc("2021-01-17T18:00:00")  # UTC+6
    assert setup_due(AGREEMENT_IN_FORCE, "BY") == utc("2021-01-17T21:00:00")  # UTC+3


def test_setup_due_for_another_deployment_A9_3() -> None:
    """A9.3: a configured entry-into-force date counts the same way (leap year here)."""
    assert setup_due(dt.date(2024, 1, 20), "BY") == utc("2024-03-05T21:00:00")


def test_setup_days_left_at_the_boundary_A9_3() -> None:
    """A9.3: the last day is day 45 (0 days left); overdue from 00:00 of day 46."""
    due = setup_due(AGREEMENT_IN_FORCE, "BY")
    assert days_left(due, utc("2020-12-02T21:00:00"), "BY").days_left == 45
    assert days_left(due, due - US, "BY").days_left == 0
    assert days_left(due, due - US, "BY").overdue is False
    assert days_left(due, due, "BY").overdue is True


# A17: the end 6 calendar months after the notice is received -------------------------------

# (day, months, expected): calendar months, clamped to the month's last day.
MONTHS = [
    ("2025-03-15", 6, "2025-09-15"),
    ("2025-07-15", 6, "2026-01-15"),    # across the year end
    ("2025-03-31", 6, "2025-09-30"),    # 30-day month
    ("2024-08-31", 6, "2025-02-28"),    # February, common year
    ("2023-08-31", 6, "2024-02-29"),    # February, leap year
    ("2025-08-29", 6, "2026-02-28"),
    ("2025-12-31", 6, "2026-06-30"),
    ("2024-01-31", 1, "2024-02-29"),
    ("2023-01-31", 1, "2023-02-28"),
    ("2025-01-31", 12, "2026-01-31"),
    ("2025-06-30", 0, "2025-06-30"),
]


@pytest.mark.parametrize(("day", "months", "expected"), MONTHS,
                         ids=[f"{d}+{m}" for d, m, _e in MONTHS])
def test_add_months_clamps_to_the_month_end_A17(day: str, months: int, expected: str) -> None:
    """A17: "6 months after": the same day number, or the last day of a shorter month."""
    assert add_months(dt.date.fromisoformat(day), months) == dt.date.fromisoformat(expected)


# (receiving Party, received at (UTC), end = 00:00 local of the day 6 months on, in UTC)
TERMINATIONS = [
    ("BY", "2025-03-15T07:00:00", "2025-09-14T21:00:00"),
    # One second before local midnight on 31 August: the end is 28 February ...
    ("BY", "2025-08-31T20:59:59", "2026-02-27T21:00:00"),
    # ... at local midnight it is 1 September, so 1 March.
    ("BY", "2025-08-31T21:00:00", "2026-02-28T21:00:00"),
    # KZ, both ends before 1 March 2024 (UTC+6): 31 August 2022 -> 28 February 2023.
    ("KZ", "2022-08-31T17:59:59", "2023-02-27T18:00:00"),
    ("KZ", "2022-08-31T18:00:00", "2023-02-28T18:00:00"),
]


@pytest.mark.parametrize(("party", "received", "end"), TERMINATIONS,
                         ids=[f"{p}-{r}" for p, r, _e in TERMINATIONS])
def test_termination_end_A17(party: str, received: str, end: str) -> None:
    """A17: the agreement ends at 00:00, in the receiving Party's legal time, of the day
    6 calendar months after the day that Party received the notice."""
    ends = termination_end(utc(received), party)
    assert ends == utc(end)
    assert ends.astimezone(legal_zone(party)).time() == dt.time(0)
