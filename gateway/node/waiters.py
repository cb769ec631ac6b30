"""Parked inbox long-polls (``GET /v1/inbox?wait=S``): bounded, and woken per authority.

aiohttp does not cancel a handler whose client went away, so a parked long-poll can
outlive its connection by up to 60 s; the number parked is therefore bounded, per
authority and in all (``inbox_waiters_per_authority``, ``inbox_waiters_total``).

A long-poll over the bound is not parked but answered at once with what there is: an
empty page, which is a true answer ("nothing after your cursor yet") that every client
already handles by polling again. Not a refusal (429): the request is valid, and the
slots it lacks are mostly held by its own authority's earlier polls, which a refusal
would not let it free any sooner; the client would only gain an error to handle.

A batch from the peer wakes only the waiters of the authorities it brought something
for, so one busy authority does not make every other authority's waiters query the
database on the event loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class InboxWaiters:
    def __init__(self, per_authority: int, total: int) -> None:
        self.per_authority = per_authority
        self.total = total
        self._parked: dict[str, set[asyncio.Event]] = {}
        self._count = 0

    def parked(self) -> int:
        """Long-polls parked now, in all."""
        return self._count

    @contextmanager
    def park(self, authority: str) -> Iterator[asyncio.Event | None]:
        """A slot for one long-poll of ``authority``: an event set whenever that
        authority's inbox got something; None when over the bound (answer at once)."""
        if (len(self._parked.get(authority, ())) >= self.per_authority
                or self._count >= self.total):
            yield None
            return
        event = asyncio.Event()
        waiters = self._parked.setdefault(authority, set())
        waiters.add(event)
        self._count += 1
        try:
            yield event
        finally:
            waiters.discard(event)
            self._count -= 1
            if not waiters:
                del self._parked[authority]

    def wake(self, authorities: Iterable[str]) -> Counter[str]:
        """Wake the waiters of ``authorities``; how many were woken, by authority."""
        woken: Counter[str] = Counter()
        for authority in set(authorities):
            for event in self._parked.get(authority, ()):
                event.set()
                woken[authority] += 1
        return woken
