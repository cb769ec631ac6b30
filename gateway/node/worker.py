"""A background loop with a graceful stop: the step in progress always finishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

log = logging.getLogger("gateway.node")


def debugging() -> bool:
    """GATEWAY_DEBUG=1: tracebacks in the log (a developer's machine, never production)."""
    return os.environ.get("GATEWAY_DEBUG") == "1"


class Worker:
    """Runs ``step()`` again and again; ``step`` returns how long to sleep before the next.

    ``wakeup`` (if set by a subclass) cuts a sleep short, so new work is picked up at
    once. ``stop()`` lets the current step finish, then ends the loop.
    """

    name = "worker"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.wakeup = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        self.wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def step(self) -> float:
        raise NotImplementedError

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = await self.step()
            except Exception as e:
                # The type only: an exception's text could carry input, and no personal
                # data reaches a log line. GATEWAY_DEBUG=1 adds the traceback.
                log.error("%s: step failed (%s); retrying", self.name, type(e).__name__,
                          exc_info=debugging())
                delay = 1.0
            if self._stopping.is_set():
                break
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), delay)
            self.wakeup.clear()
