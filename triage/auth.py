"""Webhook authentication for intake: a bearer token or an HMAC signature over timestamp and body."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping

from triage.signing import verify

_BEARER = "bearer "


class AuthError(Exception):
    pass


def authenticate(
    secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raises AuthError unless the request carries the secret as a bearer token or a valid signature.

    With no secret configured, authentication is off (intake logs a warning at start).
    """
    if not secret:
        return
    authorization = headers.get("Authorization", "")
    if authorization[: len(_BEARER)].lower() == _BEARER:
        if hmac.compare_digest(authorization[len(_BEARER) :].strip().encode(), secret.encode()):
            return
        raise AuthError("invalid bearer token")
    timestamp, signature = headers.get("X-Triage-Timestamp"), headers.get("X-Triage-Signature")
    if timestamp and signature:
        if verify(secret, body, timestamp, signature, now=clock()):
            return
        raise AuthError("invalid or expired signature")
    raise AuthError(
        "missing credentials: send Authorization: Bearer or X-Triage-Timestamp + X-Triage-Signature"
    )
