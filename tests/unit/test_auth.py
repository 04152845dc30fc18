from __future__ import annotations

import pytest

from triage.auth import AuthError, authenticate
from triage.signing import sign

SECRET = "s3cret-value"
BODY = b'{"title":"x"}'
NOW = 1_800_000_000


def test_no_secret_means_auth_is_off():
    authenticate(None, {}, BODY)


def test_bearer_token_is_accepted_case_insensitively():
    authenticate(SECRET, {"Authorization": f"Bearer {SECRET}"}, BODY)
    authenticate(SECRET, {"Authorization": f"bearer {SECRET}"}, BODY)


@pytest.mark.parametrize("header", ["Bearer wrong", f"Basic {SECRET}", "Bearer ", ""])
def test_wrong_or_missing_bearer_is_rejected(header):
    with pytest.raises(AuthError):
        authenticate(SECRET, {"Authorization": header} if header else {}, BODY)


def test_valid_signature_within_tolerance_is_accepted():
    headers = sign(SECRET, BODY, NOW - 299)
    authenticate(SECRET, headers, BODY, clock=lambda: NOW)


def test_signature_outside_tolerance_is_rejected():
    headers = sign(SECRET, BODY, NOW - 301)
    with pytest.raises(AuthError, match="expired"):
        authenticate(SECRET, headers, BODY, clock=lambda: NOW)


def test_signature_over_other_body_is_rejected():
    headers = sign(SECRET, b'{"title":"y"}', NOW)
    with pytest.raises(AuthError):
        authenticate(SECRET, headers, BODY, clock=lambda: NOW)


def test_signature_with_other_secret_is_rejected():
    headers = sign("other", BODY, NOW)
    with pytest.raises(AuthError):
        authenticate(SECRET, headers, BODY, clock=lambda: NOW)
