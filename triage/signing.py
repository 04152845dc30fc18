"""HMAC request signing shared by intake authentication and the outbound webhook destination.

Scheme: ``X-Triage-Timestamp: <unix seconds>`` and
``X-Triage-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.
The timestamp is inside the MAC so a captured request cannot be replayed outside the tolerance window,
and the MAC covers the raw bytes (not re-serialised JSON) so both sides agree byte for byte.
Standard library only: this module is imported by every function and by the stubs.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Triage-Timestamp"
SIGNATURE_HEADER = "X-Triage-Signature"
SCHEME = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers that authenticate ``body`` at ``timestamp`` (unix seconds)."""
    if not secret:
        raise ValueError("signing secret must not be empty")
    timestamp = int(timestamp)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: SCHEME + _mac(secret, body, timestamp),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True iff the signature matches and the timestamp is within ``tolerance`` seconds of ``now``.

    Never raises on malformed input: any parsing problem is simply an invalid signature.
    """
    if not secret or not timestamp_header or not signature_header:
        return False
    ts_text = timestamp_header.strip()
    # Only plain decimal seconds: int() would also accept "+12", " 12" or "1_2".
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        return False
    timestamp = int(ts_text)
    if abs(now - timestamp) > tolerance:
        return False
    signature = signature_header.strip()
    if not signature.startswith(SCHEME):
        return False
    expected = SCHEME + _mac(secret, body, timestamp)
    # compare_digest on ASCII bytes: constant time, and no TypeError for non-ASCII str input.
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
