"""A11.2 and A11.3: use limited to the purpose, no onward transfer without consent.

Received person data may be sealed again only **back to the authority that provided
it**, or to another recipient once the provider has **granted consent** in that case.
Everything here is pure: the caller (the agency-side ``gateway.onward`` store) says
who provided each person and which consents were given.

A person is recognised by a **fingerprint**: an HMAC-SHA-256, under a secret of the
agency's own, over the person's identity fields (names in both scripts, date of birth,
identity document number) in canonical JSON. The secret keeps the fingerprints from
being matched against guessed identities by anyone who reads the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError

_IDENTITY_FIELDS = ("name", "date_of_birth")


class ConsentRequired(GatewayError):
    code = "consent.required"


@dataclass(frozen=True)
class Provenance:
    """Person data received from ``provider`` in case ``case_id``."""

    provider: str
    case_id: bytes


def person_fingerprint(secret: bytes, person: Mapping[str, Any]) -> bytes:
    identity: dict[str, Any] = {k: person[k] for k in _IDENTITY_FIELDS if k in person}
    document = person.get("identity_document")
    if isinstance(document, Mapping) and "number" in document:
        identity["document"] = [document.get("series"), document["number"]]
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret, canonical.encode("utf-8"), hashlib.sha256).digest()


def check_onward_transfer(recipient: str, provenances: Iterable[Provenance],
                          consents: set[tuple[bytes, str]]) -> None:
    """Raise ``consent.required`` unless every provider of the data allows ``recipient``.

    ``consents`` holds ``(case_id, provider)`` pairs for which the provider granted
    consent to pass the data on (A11.3).
    """
    for provenance in provenances:
        if recipient == provenance.provider:
            continue  # back to the provider: no transfer to a third party
        if (provenance.case_id, provenance.provider) in consents:
            continue
        raise ConsentRequired(
            f"this body carries person data received from {provenance.provider}; passing "
            f"it to {recipient} needs that authority's prior consent (A11.3): send a "
            "consent_request in the case and wait for a granted consent_decision")
