"""Deadlines of the agreement, as pure functions of dates and a time zone.

**A10.3**: a request is executed "no more than 30 calendar days from the day the
request was received". Counted as both Parties' civil codes count periods: the day of
receipt is day 0, day 1 is the next calendar day, and the period ends at the end of
day 30, in the **requested Party's legal time** (``Asia/Almaty`` for KZ,
``Europe/Minsk`` for BY). "End of day" means the instant before 00:00 of day 31 local
time; the due instant stored and shown is that 00:00 (exclusive bound). There is no
shift for weekends or holidays: the agreement says calendar days. The deadline never
moves: A10.1 delay notices and A10.2 postponements are shown beside it.

**A9.3**: the lists of signatories and form samples are exchanged "within 45 days
after entry into force": due at the end of day 45 after the entry-into-force date,
counted the same way, in the sending Party's legal time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.config import LEGAL_TIME_ZONES

ANSWER_DAYS = 30          # A10.3
SETUP_DAYS = 45           # A9.3
DUE_SOON_DAYS = 5         # `gateway deadlines` flags cases due within this many days
TERMINATION_MONTHS = 6    # A17


def legal_zone(party: str) -> ZoneInfo:
    return ZoneInfo(LEGAL_TIME_ZONES[party])


def local_day(instant: dt.datetime, party: str) -> dt.date:
    """The calendar day an instant falls on in ``party``'s legal time."""
    return instant.astimezone(legal_zone(party)).date()


def end_of_day_n(day0: dt.date, n: int, party: str) -> dt.datetime:
    """The exclusive end of day ``n`` after ``day0``: 00:00 local of day n+1, in UTC."""
    start_of_next = dt.datetime.combine(day0 + dt.timedelta(days=n + 1), dt.time(),
                                        tzinfo=legal_zone(party))
    return start_of_next.astimezone(dt.UTC)


def answer_due(received_at: dt.datetime, requested_party: str) -> dt.datetime:
    """A10.3: the instant by which a request received at ``received_at`` is overdue."""
    return end_of_day_n(local_day(received_at, requested_party), ANSWER_DAYS, requested_party)


def setup_due(entry_into_force: dt.date, party: str) -> dt.datetime:
    """A9.3: the instant by which ``party`` must have delivered its signatory lists."""
    return end_of_day_n(entry_into_force, SETUP_DAYS, party)


@dataclass(frozen=True)
class DaysLeft:
    due: dt.datetime
    days_left: int       # whole local days until the due day ends; negative when overdue
    overdue: bool
    due_soon: bool

    def label(self) -> str:
        if self.overdue:
            return f"overdue by {-self.days_left} day(s)" if self.days_left < 0 else "overdue"
        return f"{self.days_left} day(s) left"


def days_left(due: dt.datetime, now: dt.datetime, party: str) -> DaysLeft:
    """How a due instant stands at ``now``: day 30 itself counts as 0 days left."""
    last_day = local_day(due - dt.timedelta(microseconds=1), party)
    left = (last_day - local_day(now, party)).days
    overdue = now >= due
    return DaysLeft(due, left, overdue, not overdue and left < DUE_SOON_DAYS)


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months, clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def termination_end(received_at: dt.datetime, receiving_party: str) -> dt.datetime:
    """A17: the agreement ends 6 months after the other Party received the notice.

    The end falls at 00:00 local time, receiving Party, of the day 6 calendar months
    after the day of receipt; from then on new requests are refused.
    """
    day = add_months(local_day(received_at, receiving_party), TERMINATION_MONTHS)
    return dt.datetime.combine(day, dt.time(), tzinfo=legal_zone(receiving_party)
                               ).astimezone(dt.UTC)
