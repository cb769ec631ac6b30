"""Every size and time bound of the envelope format (docs/protocol.md, "Limits").

Decoders check these before they allocate: the input size first, then each declared
length as soon as it is known.
"""

from __future__ import annotations

from datetime import timedelta

KiB = 1024
MiB = 1024 * KiB

#: A whole sealed envelope, in bytes of DER.
MAX_ENVELOPE = 64 * MiB
#: The DER of the cleartext header, tag and length octets included.
MAX_HEADER = 16 * KiB
#: The DER of a body before encryption. The room left below MAX_ENVELOPE covers the
#: per-chunk tags (17 bytes per 64 KiB), the header, the wrapped key and the signature.
MAX_BODY = MAX_ENVELOPE - 64 * KiB

#: Body plaintext per secretstream chunk; only the last chunk may be shorter.
CHUNK_SIZE = 64 * KiB
#: Bytes secretstream adds to every chunk (1 tag byte and a 16-byte Poly1305 MAC).
CHUNK_OVERHEAD = 17

ID_SIZE = 16
HASH_SIZE = 32
KEY_ID_SIZE = 16
CONTENT_KEY_SIZE = 32
COMMITMENT_SIZE = 32
STREAM_HEADER_SIZE = 24
#: A libsodium sealed box of a 32-byte content key: ephemeral key, MAC, key.
WRAPPED_KEY_SIZE = 80
SIGNATURE_SIZE = 64

#: How far in the future a node accepts an envelope's creation time.
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Body fields (docs/protocol.md, "Limits").
MAX_TEXT_CHARS = 65_536
MAX_SHORT_TEXT_CHARS = 1_024
MAX_NAME_CHARS = 256
MAX_PERSONS = 1_000
MAX_ATTACHMENTS = 1_000
MAX_REASONS = 100
MAX_RECORDS = 100
MAX_CITIZENSHIPS = 8
