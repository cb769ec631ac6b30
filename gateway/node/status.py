"""One table from error code to HTTP status, for the error middleware.

Codes are matched exactly first, then by their first dotted segment. Anything not in
the table is a 400: the request was refused for a stated reason.
"""

from __future__ import annotations

_EXACT = {
    "envelope.too_large": 413,
    "request.too_large": 413,
    "envelope.conflict": 409,
    "envelope.not_found": 404,
    "case.not_found": 404,
    "envelope.destroyed": 410,
    "agency.wrong_sender": 403,
    "agreement.termination_not_head": 403,
    "agency.not_yours": 403,
    "agency.certificate_revoked": 403,
    "peer.wrong_certificate": 403,
    "peer.bad_answer_signature": 502,
    "peer.unavailable": 503,
    "home.busy": 503,
    "admin.wrong_passphrase": 403,
    "admin.unknown_action": 404,
    "internal.error": 500,
}
_BY_PREFIX = {
    "ledger": 503,  # on the node's HTTP paths a ledger error is a storage failure
    "case": 409,
    "setup": 409,
    "agreement": 409,
    "witness": 409,
}


def status_code_for(code: str) -> int:
    if code in _EXACT:
        return _EXACT[code]
    return _BY_PREFIX.get(code.split(".", 1)[0], 400)
