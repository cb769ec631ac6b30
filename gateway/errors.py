"""The gateway's failure base.

Every failure carries a stable dotted ``code`` (public API, listed in docs/, never
renamed) and a message that names no person data. Only two places catch the bases: the
HTTP error middleware and the CLI. ``CODED_ERRORS`` is the tuple they catch, since
``keys`` and ``ledger`` cannot import this package and so have bases of their own.
"""

from __future__ import annotations

from keys.errors import KeysError
from ledger.errors import LedgerError


class GatewayError(Exception):
    """Base of every gateway-package failure."""

    code = "gateway.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


CODED_ERRORS: tuple[type[Exception], ...] = (GatewayError, KeysError, LedgerError)
