"""Envelope benchmark: `scripts/bench envelope [--seconds S]`.

Seals and opens a request whose body DER is 4 KiB (one person, text) and one whose body
is 1 MiB (one person and a fingerprint-card scan), through ``gateway.sdk`` with JSON
bodies, so body encoding counts in seal and body decoding in open. Beside them, in the
same run, the raw libsodium work one envelope contains: one Ed25519 signature over the
signed bytes, one verification, secretstream XChaCha20-Poly1305 over the body in 64 KiB
chunks both ways, and the sealed-box wrap and unwrap of the content key. The ratio is
raw work per second over seal+open per second (goal for 4 KiB: at least 40%).

Each figure is the median of three rounds; a round times every operation in turn, for
``--seconds`` per operation in all.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nacl.bindings import (
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
)
from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey

from gateway import sdk
from gateway.envelope import body as bodies
from gateway.envelope import limits
from gateway.envelope.wire import decode

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
KiB, MiB = 1024, 1024 * 1024


def request_body(der_size: int, *, with_person: bool = True) -> dict[str, Any]:
    """The docs example request, sized to ``der_size`` bytes of DER: text fills a small
    body; a fingerprint-card attachment fills a large one."""
    body: dict[str, Any] = json.loads((EXAMPLES / "request.json").read_text(encoding="utf-8"))
    del body["persons"][0]["photo"], body["attachments"]
    if not with_person:
        del body["persons"]
    base = len(bodies.encode("request", body))

    def sized(fill: int) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(body)
        if der_size < 64 * KiB:
            # Cyrillic, two UTF-8 bytes a letter, and one ASCII letter for an odd size.
            out["other_information"] = "и" * (fill // 2) + "i" * (fill % 2)
        else:
            data = b"\x5a" * fill
            out["attachments"] = [{"kind": "fingerprint_card", "media_type": "image/png",
                                   "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                   "data": base64.b64encode(data).decode()}]
            out["persons"][0]["fingerprint_card"] = 0
        return out

    fill = der_size - base
    for _ in range(4):  # length octets grow with the content; settle in a few steps
        fill -= len(bodies.encode("request", sized(fill))) - der_size
    return sized(fill)


def rates(actions: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """Operations per second of each action: the median of three rounds. Each round
    times every action in turn for about ``seconds``, so a shared machine's changing
    load falls on all of them alike and the ratios stay meaningful."""
    batches = {}
    for name, action in actions.items():
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 10:
            action()
            n += 1
        batches[name] = max(1, n * 10)
    runs: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(3):
        for name, action in actions.items():
            start = time.perf_counter()
            for _ in range(batches[name]):
                action()
            runs[name].append(batches[name] / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in runs.items()}


def raw_crypto(body_der: bytes, signed_size: int) -> dict[str, Callable[[], object]]:
    """The libsodium calls one envelope makes, on inputs of the same sizes."""
    signatory, recipient = SigningKey.generate(), PrivateKey.generate()
    message = b"\x01" * signed_size
    signature = signatory.sign(message).signature
    key = b"\x02" * 32
    ad = b"\x03" * 300
    wrapped = SealedBox(recipient.public_key).encrypt(key)

    def encrypt() -> bytes:
        state = crypto_secretstream_xchacha20poly1305_state()
        header = crypto_secretstream_xchacha20poly1305_init_push(state, key)
        out = [header]
        for start in range(0, len(body_der), limits.CHUNK_SIZE):
            last = start + limits.CHUNK_SIZE >= len(body_der)
            tag = (crypto_secretstream_xchacha20poly1305_TAG_FINAL if last
                   else crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            out.append(crypto_secretstream_xchacha20poly1305_push(
                state, body_der[start : start + limits.CHUNK_SIZE], ad, tag))
        return b"".join(out)

    sealed = encrypt()
    step = limits.CHUNK_SIZE + limits.CHUNK_OVERHEAD

    def decrypt() -> None:
        state = crypto_secretstream_xchacha20poly1305_state()
        crypto_secretstream_xchacha20poly1305_init_pull(state, sealed[:24], key)
        for start in range(24, len(sealed), step):
            crypto_secretstream_xchacha20poly1305_pull(state, sealed[start : start + step], ad)

    return {
        "sign": lambda: signatory.sign(message),
        "verify": lambda: signatory.verify_key.verify(message, signature),
        "aead encrypt": encrypt,
        "aead decrypt": decrypt,
        "wrap": lambda: SealedBox(recipient.public_key).encrypt(key),
        "unwrap": lambda: SealedBox(recipient).decrypt(wrapped),
    }


def bench(label: str, body: dict[str, Any], seconds: float) -> float:
    signatory, recipient = SigningKey.generate(), PrivateKey.generate()
    body_der = bodies.encode("request", body)

    def seal() -> bytes:
        return sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD", body=body,
                        signatory_key=signatory, recipient_key=recipient.public_key)

    sealed = seal()

    def open_() -> None:
        sdk.open(sealed, recipient_key=recipient, signatory_key=signatory.verify_key)

    raw_actions = raw_crypto(body_der, len(decode(sealed).signed_message()))
    measured = rates({"seal": seal, "open": open_, **raw_actions}, seconds / 3)
    seal_rate, open_rate = measured["seal"], measured["open"]
    raw = {name: measured[name] for name in raw_actions}
    envelope_us = 1e6 / seal_rate + 1e6 / open_rate
    raw_us = sum(1e6 / r for r in raw.values())
    print(f"\n== {label}: {len(body_der):,} bytes of body DER, {len(sealed):,} sealed")
    print(f"  {'seal':<14}{seal_rate:>10,.0f} /s {1e6 / seal_rate:>10,.1f} us")
    print(f"  {'open':<14}{open_rate:>10,.0f} /s {1e6 / open_rate:>10,.1f} us")
    print(f"  {'seal+open':<14}{1e6 / envelope_us:>10,.0f} /s {envelope_us:>10,.1f} us")
    print("  raw libsodium work in one envelope, same run:")
    for name, r in raw.items():
        print(f"    {name:<12}{r:>10,.0f} /s {1e6 / r:>10,.1f} us")
    print(f"  {'raw total':<14}{1e6 / raw_us:>10,.0f} /s {raw_us:>10,.1f} us")
    ratio = raw_us / envelope_us
    print(f"  ratio: seal+open runs at {ratio:.0%} of the raw-crypto rate")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="seconds spent timing each operation, over three rounds (default 1.0)")
    args = parser.parse_args()
    small = bench("4 KiB request, one person (A6.1 fields), text", request_body(4 * KiB),
                  args.seconds)
    flat = bench("4 KiB request, no persons, text",
                 request_body(4 * KiB, with_person=False), args.seconds)
    bench("1 MiB request, one person, fingerprint card attached", request_body(MiB),
          args.seconds)
    for label, ratio in (("with a person", small), ("without persons", flat)):
        verdict = "met" if ratio >= 0.40 else "NOT met"
        print(f"goal (4 KiB seal+open >= 40% of the raw-crypto rate), {label}: "
              f"{verdict} ({ratio:.0%})")


if __name__ == "__main__":
    main()
