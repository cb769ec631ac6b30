"""Every failure the ledger package raises.

Each class carries a stable dotted ``code`` (public API: listed in docs/ledger.md,
never renamed) and a message free of personal data. Verification failures carry their
evidence (the index, the sizes, both roots) as attributes.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger-package failure."""

    code = "ledger.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
