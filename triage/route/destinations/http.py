"""The one HTTP helper every destination uses: pooled session, timeouts, error mapping, redaction, retries.

* One lazily created ``requests.Session`` per process (re-created after a fork), so warm function instances
  reuse TLS connections instead of paying a handshake per ticket.
* Every call has a (connect, read) timeout, clamped to what is left of the retry budget, so a hung
  destination can never hold a route invocation past the budget.
* Responses map to exactly two errors: Permanent (4xx except 408/429, 3xx) and Transient (network errors,
  timeouts, 408, 429, 5xx; ``Retry-After`` seconds or HTTP-date honoured).
* Every error text passes through ``redact`` first, so no token, API key or webhook path reaches logs.
* ``call_with_retries`` retries only TransientDeliveryError: full-jitter exponential backoff, never shorter
  than Retry-After, bounded by attempts AND a total time budget; it never sleeps past the budget but
  re-raises the last transient error instead (the caller, e.g. Pub/Sub, retries later).
"""

from __future__ import annotations

import base64
import contextvars
import email.utils
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from triage import retrying
from triage.retrying import RetryPolicy
from triage.route.destinations.base import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 3.05  # slightly above a TCP retransmit window (3 s), as requests recommends
DEFAULT_READ_TIMEOUT = 10.0
MAX_DETAIL_CHARS = 500
RETRYABLE_4XX = frozenset({408, 429})
_MIN_CALL_TIMEOUT = 0.05


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT


# ---------------------------------------------------------------------------------------------- session

_session_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None


def get_session() -> requests.Session:
    """The process-wide pooled session (thread-safe; a forked child builds its own)."""
    global _session, _session_pid
    pid = os.getpid()
    if _session is not None and _session_pid == pid:
        return _session
    with _session_lock:
        if _session is None or _session_pid != pid:
            session = requests.Session()
            # max_retries=0: retries are ours (they must respect the budget and find_existing first).
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session, _session_pid = session, pid
    return _session


def reset_session() -> None:
    """Drop the pooled session (tests; after changing network settings)."""
    global _session, _session_pid
    with _session_lock:
        if _session is not None:
            _session.close()
        _session, _session_pid = None, None


# -------------------------------------------------------------------------------------------- redaction

_PATTERNS = (
    # Authorization / API key headers if a library ever echoes them.
    (
        re.compile(
            r"(?i)(authorization|x-goog-api-key|x-api-key)(['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+(\s+[^'\",\s}]+)?"
        ),
        r"\1\2***",
    ),
    # Slack-style webhook URLs: the path IS the credential.
    (re.compile(r"(?i)(/services/)[A-Za-z0-9_/-]+"), r"\1***"),
    # Credentials embedded in URLs.
    (re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),
)


def secret_variants(*secrets: str | None) -> tuple[str, ...]:
    """A secret plus the encodings it may appear in (URL-quoted)."""
    out: list[str] = []
    for secret in secrets:
        if secret and len(secret) >= 4:
            out.append(secret)
            quoted = quote(secret, safe="")
            if quoted != secret:
                out.append(quoted)
    return tuple(out)


def basic_auth_variants(user: str, password: str) -> tuple[str, ...]:
    """The base64 form of basic credentials, which would otherwise survive plain-text redaction."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return secret_variants(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secrets and secret-shaped substrings from ``text``."""
    # Longest first so a secret that contains another is removed whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# ------------------------------------------------------------------------------------------ error mapping


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` time: Jira sends an ISO-8601 timestamp (2024-05-06T10:00Z),
    some services a Unix time. None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    current = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - current)
    # A small number is a delta in seconds, a large one a Unix time.
    return max(0.0, number - current) if number > 1e9 else max(0.0, number)


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """The server's wait: ``Retry-After`` when present, else the rate-limit window's ``X-RateLimit-Reset``
    (Jira documents both on 429s: https://developer.atlassian.com/cloud/jira/platform/rate-limiting/)."""
    wait = parse_retry_after(headers.get("Retry-After"))
    return wait if wait is not None else parse_reset(headers.get("X-RateLimit-Reset"))


def default_detail(response: requests.Response) -> str:
    """A compact rendering of an error body (JSON re-serialised, text as is)."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def check_response(
    response: requests.Response,
    *,
    system: str,
    action: str,
    secrets: Iterable[str] = (),
    detail: Callable[[requests.Response], str] = default_detail,
) -> requests.Response:
    """Return a 2xx response; raise the matching DeliveryError otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    try:
        text = detail(response)
    except Exception:  # a broken error body must not hide the status
        text = response.text
    text = redact(text, secrets)[:MAX_DETAIL_CHARS]
    message = f"{system} {action}: HTTP {status}" + (f": {text}" if text else "")
    if status in RETRYABLE_4XX or status >= 500:
        raise TransientDeliveryError(
            message,
            system=system,
            status=status,
            retry_after=retry_after_of(response.headers),
            # A 429 or 408 was refused before any work; a 5xx may come after the work was done.
            may_have_applied=status >= 500,
        )
    # 3xx included: we never follow redirects (a redirect could carry credentials to another host).
    raise PermanentDeliveryError(message, system=system, status=status, detail=text)


# ------------------------------------------------------------------------------------------------ calls

# Deadline (time.monotonic based) of the current retry loop; request() clamps its timeouts to it.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "triage_delivery_deadline", default=None
)


def request(
    method: str,
    url: str,
    *,
    system: str,
    action: str,
    settings: HttpSettings,
    secrets: Iterable[str] = (),
    detail: Callable[[requests.Response], str] = default_detail,
    **kwargs: Any,
) -> requests.Response:
    """One HTTP call with timeouts and error mapping; returns only 2xx responses."""
    secrets = tuple(secrets)
    connect, read = settings.connect_timeout, settings.read_timeout
    deadline = _deadline.get()
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= _MIN_CALL_TIMEOUT:
            raise TransientDeliveryError(
                f"{system} {action}: retry budget exhausted", system=system, may_have_applied=False
            )
        connect, read = min(connect, remaining), min(read, remaining)
    try:
        response = get_session().request(
            method, url, timeout=(connect, read), allow_redirects=False, **kwargs
        )
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise PermanentDeliveryError(
            f"{system} {action}: invalid URL: {redact(str(exc), secrets)}",
            system=system,
            detail="invalid URL",
        ) from None
    except requests.exceptions.ConnectTimeout:
        raise TransientDeliveryError(
            f"{system} {action}: connect timeout", system=system, may_have_applied=False
        ) from None
    except requests.exceptions.Timeout as exc:
        # The request reached the server, which may still be working on it (and create the ticket).
        raise TransientDeliveryError(
            f"{system} {action}: timeout ({type(exc).__name__})", system=system, grace_s=read
        ) from None
    except requests.exceptions.RequestException as exc:
        raise TransientDeliveryError(
            f"{system} {action}: {type(exc).__name__}: {redact(str(exc), secrets)[:MAX_DETAIL_CHARS]}",
            system=system,
            may_have_applied=not _never_sent(exc),
        ) from None
    return check_response(response, system=system, action=action, secrets=secrets, detail=detail)


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """A connection that was never established (refused, DNS): the server cannot have seen the request."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError | NameResolutionError)


def remaining_budget() -> float | None:
    """Seconds left in the current retry loop's budget (None outside one)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    max_server_wait_s: float | None = None,
) -> T:
    """Retries TransientDeliveryError within the policy; per-request timeouts are clamped to the budget.

    A server that asks for a wait of `max_server_wait_s` or more gets no retry from here: the error is
    raised at once, so the caller can park the work instead of sleeping (and paying) through the window.
    """
    policy = policy or RetryPolicy()

    def retryable(exc: BaseException) -> bool:
        if not isinstance(exc, TransientDeliveryError):
            return False
        return max_server_wait_s is None or (exc.retry_after or 0.0) < max_server_wait_s

    token = _deadline.set(time.monotonic() + policy.total_budget)
    try:
        return retrying.call_with_retries(
            fn, retryable=retryable, policy=policy, sleep=sleep, clock=clock, what="delivery"
        )
    finally:
        _deadline.reset(token)


def json_body(response: requests.Response, *, system: str, action: str) -> Mapping[str, Any]:
    """The JSON object of a 2xx response. A success we cannot read is transient: the side effect may have
    happened, and the retry path looks it up with find_existing before creating again."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise TransientDeliveryError(
            f"{system} {action}: unreadable success response (HTTP {response.status_code})",
            system=system,
            status=response.status_code,
        )
    return payload
