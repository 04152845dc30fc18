"""triage.signing: the HMAC scheme shared by intake auth and the outbound webhook."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from triage import signing

SECRET = "s3cret-value"
BODY = b'{"ticket_id":"T-1","title":"VPN down"}'
TS = 1_700_000_000


def test_sign_matches_the_documented_scheme() -> None:
    headers = signing.sign(SECRET, BODY, TS)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers == {"X-Triage-Timestamp": "1700000000", "X-Triage-Signature": f"sha256={expected}"}


def test_verify_accepts_own_signature() -> None:
    h = signing.sign(SECRET, BODY, TS)
    assert signing.verify(SECRET, BODY, h["X-Triage-Timestamp"], h["X-Triage-Signature"], now=TS + 10)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("other-secret", BODY, TS),  # wrong secret
        (SECRET, BODY + b" ", TS),  # body changed after signing
        (SECRET, BODY, TS + 301),  # too old
        (SECRET, BODY, TS - 301),  # from the future
    ],
)
def test_verify_rejects(secret: str, body: bytes, now: int) -> None:
    h = signing.sign(SECRET, BODY, TS)
    assert not signing.verify(secret, body, h["X-Triage-Timestamp"], h["X-Triage-Signature"], now=now)


def test_tolerance_boundary_is_inclusive_and_configurable() -> None:
    h = signing.sign(SECRET, BODY, TS)
    ts, sig = h["X-Triage-Timestamp"], h["X-Triage-Signature"]
    assert signing.verify(SECRET, BODY, ts, sig, now=TS + 300)
    assert not signing.verify(SECRET, BODY, ts, sig, now=TS + 31, tolerance=30)


def test_timestamp_is_covered_by_the_mac() -> None:
    h = signing.sign(SECRET, BODY, TS)
    assert not signing.verify(SECRET, BODY, str(TS + 1), h["X-Triage-Signature"], now=TS)


@pytest.mark.parametrize("timestamp", [None, "", "abc", "+1700000000", " 17 ", "1_700_000_000", "1.5", "١٢٣"])
def test_malformed_timestamps_are_invalid_not_errors(timestamp: str | None) -> None:
    sig = signing.sign(SECRET, BODY, TS)["X-Triage-Signature"]
    assert not signing.verify(SECRET, BODY, timestamp, sig, now=TS)


@pytest.mark.parametrize(
    "signature", [None, "", "sha256=", "md5=abc", "deadbeef", "sha256=é", "sha256=" + "0" * 64]
)
def test_malformed_signatures_are_invalid_not_errors(signature: str | None) -> None:
    assert not signing.verify(SECRET, BODY, str(TS), signature, now=TS)


def test_empty_secret() -> None:
    with pytest.raises(ValueError):
        signing.sign("", BODY, TS)
    h = signing.sign(SECRET, BODY, TS)
    assert not signing.verify("", BODY, h["X-Triage-Timestamp"], h["X-Triage-Signature"], now=TS)
