"""The agency side's memory of what it received, for A11.2/A11.3 (``rules.onward``).

Kept in the profile directory, ``onward.db`` (SQLite): the fingerprint of every person
received, with who provided it and in which case, and every consent granted. The
fingerprint secret is made on first use (``onward.secret``, mode 0600). Nothing in it
is a name or a number: fingerprints are keyed hashes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.rules.onward import Provenance, check_onward_transfer, person_fingerprint

SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    fingerprint BLOB NOT NULL, provider TEXT NOT NULL, case_id BLOB NOT NULL,
    envelope_id BLOB NOT NULL, PRIMARY KEY (fingerprint, provider, case_id));
CREATE TABLE IF NOT EXISTS consents (
    case_id BLOB NOT NULL, provider TEXT NOT NULL, envelope_id BLOB NOT NULL,
    PRIMARY KEY (case_id, provider));
"""


class OnwardStore:
    def __init__(self, profile_dir: Path) -> None:
        secret_path = Path(profile_dir) / "onward.secret"
        if not secret_path.exists():
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        self._secret = secret_path.read_bytes()
        self._db = sqlite3.connect(Path(profile_dir) / "onward.db", isolation_level=None)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _persons(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        persons = body.get("persons") or []
        return [p for p in persons if isinstance(p, Mapping)]

    def record_received(self, *, kind: str, sender: str, case_id: bytes, envelope_id: bytes,
                        body: Mapping[str, Any]) -> None:
        """Remember the persons an opened envelope carried, and a granted consent."""
        rows = [(person_fingerprint(self._secret, p), sender, case_id, envelope_id)
                for p in self._persons(body)]
        self._db.executemany("INSERT OR IGNORE INTO received VALUES (?,?,?,?)", rows)
        if kind == "consent_decision" and body.get("granted") is True:
            self._db.execute("INSERT OR IGNORE INTO consents VALUES (?,?,?)",
                             (case_id, sender, envelope_id))

    def provenances(self, body: Mapping[str, Any]) -> Iterable[Provenance]:
        for person in self._persons(body):
            fingerprint = person_fingerprint(self._secret, person)
            for provider, case_id in self._db.execute(
                    "SELECT provider, case_id FROM received WHERE fingerprint = ?",
                    (fingerprint,)):
                yield Provenance(provider, case_id)

    def check_send(self, recipient: str, body: Mapping[str, Any]) -> None:
        consents = {(case_id, provider) for case_id, provider in
                    self._db.execute("SELECT case_id, provider FROM consents")}
        check_onward_transfer(recipient, self.provenances(body), consents)
