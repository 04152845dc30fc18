"""Destination adapters against the stubs over real HTTP: wire formats, errors, retries, idempotency."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from devstack.stubs import FreshserviceStub, JiraStub, SlackStub, WebhookStub
from triage import signing
from triage.route.destinations import (
    Delivery,
    DestinationConfigError,
    OutboundTicket,
    PermanentDeliveryError,
    RetryPolicy,
    TransientDeliveryError,
    build_destination,
    deliver,
)
from triage.route.destinations.deliver import Recovery
from triage.route.destinations.freshservice import FreshserviceDestination
from triage.route.destinations.http import HttpSettings, parse_retry_after, redact
from triage.route.destinations.jira import ADF_MAX_CHARS, JiraDestination
from triage.route.destinations.log import LogDestination
from triage.route.destinations.slack import SlackDestination
from triage.route.destinations.webhook import WebhookDestination

JIRA_EMAIL, JIRA_TOKEN = "triage-bot@example.com", "jira-test-token"
FS_KEY = "fs-test-key"
FAST = HttpSettings(connect_timeout=1.0, read_timeout=2.0)

TICKET = OutboundTicket(
    ticket_id="T-1",
    title="VPN <b>down</b>\nsince today",
    description="Cannot connect & <script>alert(1)</script>\nsecond line",
    email="ann@example.com",
    priority="critical",
    department="IT",
    team="Network",
    confidence=0.875,
    reason="mentions <!channel> VPN",
)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeSleep:
    """Records requested waits instead of sleeping. Its ``clock`` (given to the stubs, which measure their
    search lag and rate limits with it) moves on by every wait, so a wait "passes" without real time."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._skipped = 0.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._skipped += seconds

    def advance(self, seconds: float) -> None:
        """Let simulated time pass outside any deliver() call."""
        self._skipped += seconds

    def clock(self) -> float:
        return time.monotonic() + self._skipped


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def jira_stub(sleep: FakeSleep) -> Iterator[JiraStub]:
    with JiraStub(projects={"OPS"}, clock=sleep.clock) as stub:  # the default (non-zero) search lag
        yield stub


@pytest.fixture
def jira(jira_stub: JiraStub) -> JiraDestination:
    return JiraDestination(jira_stub.url, JIRA_EMAIL, JIRA_TOKEN, "OPS", http=FAST)


@pytest.fixture
def fs_stub(sleep: FakeSleep) -> Iterator[FreshserviceStub]:
    with FreshserviceStub(groups={42}, clock=sleep.clock) as stub:  # the default (non-zero) search lag
        yield stub


@pytest.fixture
def fresh(fs_stub: FreshserviceStub) -> FreshserviceDestination:
    return FreshserviceDestination(fs_stub.url, FS_KEY, group_id=42, http=FAST)


def _posts(stub: JiraStub | FreshserviceStub) -> int:
    return sum(r.method == "POST" for r in stub.requests)


# -- Jira --------------------------------------------------------------------------------------------------


def test_jira_request_shape(jira: JiraDestination, jira_stub: JiraStub) -> None:
    delivery = jira.create(TICKET)
    assert delivery == Delivery("jira", "OPS-1", f"{jira_stub.url}/browse/OPS-1")
    rec = jira_stub.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/rest/api/3/issue")
    assert rec.headers["authorization"] == _basic(JIRA_EMAIL, JIRA_TOKEN)
    assert rec.headers["content-type"] == "application/json" and rec.headers["accept"] == "application/json"

    def item(text: str) -> dict:
        return {"type": "listItem", "content": [{"type": "paragraph", "content": [_text(text)]}]}

    assert rec.json == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "VPN <b>down</b> since today",
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            _text("Cannot connect & <script>alert(1)</script>"),
                            {"type": "hardBreak"},
                            _text("second line"),
                        ],
                    },
                    {"type": "rule"},
                    {
                        "type": "bulletList",
                        "content": [
                            item("Triage ID: T-1"),
                            item("Department: IT / Network"),
                            item("Confidence: 0.88"),
                            item("Reason: mentions <!channel> VPN"),
                            item("Requester: ann@example.com"),
                        ],
                    },
                ],
            },
            "issuetype": {"name": "Task"},
            "labels": ["triage", "triage-T-1"],
            "priority": {"name": "Highest"},
        }
    }


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def test_jira_description_paragraphs_and_size_limit(jira: JiraDestination, jira_stub: JiraStub) -> None:
    ticket = OutboundTicket(
        **{**TICKET.__dict__, "description": "one\r\ntwo\n\n\n  \nthree\x00", "reason": None}
    )
    content = jira.build_fields(ticket)["description"]["content"]
    assert content[:2] == [
        {"type": "paragraph", "content": [_text("one"), {"type": "hardBreak"}, _text("two")]},
        {"type": "paragraph", "content": [_text("three")]},  # blank lines split paragraphs; NUL dropped
    ]
    # 20,000 one-character lines: far more JSON than text; the document is cut to fit Jira's field limit.
    huge = OutboundTicket(**{**TICKET.__dict__, "description": "x\n" * 20_000})
    doc = jira.build_fields(huge)["description"]
    assert len(json.dumps(doc, ensure_ascii=False)) <= ADF_MAX_CHARS
    assert doc["content"][-1]["type"] == "bulletList"  # the metadata survives the cut
    assert jira.create(huge).ref == "OPS-1"  # and the stub (which checks the limit) accepts it


@pytest.mark.parametrize(("priority", "name"), [("low", "Low"), ("medium", "Medium"), ("high", "High")])
def test_jira_priority_mapping(jira: JiraDestination, jira_stub: JiraStub, priority: str, name: str) -> None:
    jira.create(OutboundTicket(**{**TICKET.__dict__, "priority": priority}))
    assert jira_stub.requests[-1].json["fields"]["priority"] == {"name": name}


def test_jira_permanent_error_carries_jira_message(jira_stub: JiraStub) -> None:
    dest = JiraDestination(jira_stub.url, JIRA_EMAIL, JIRA_TOKEN, "OPS", issue_type="Nope", http=FAST)
    with pytest.raises(PermanentDeliveryError) as info:
        dest.create(TICKET)
    assert info.value.status == 400
    assert info.value.detail == "issuetype: valid issue type is required"
    assert "valid issue type is required" in str(info.value)


def test_jira_error_text_is_redacted(jira: JiraDestination, jira_stub: JiraStub) -> None:
    b64 = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
    jira_stub.fail_next(
        1,
        status=400,
        body={
            "errorMessages": [f"bad credentials {JIRA_TOKEN}", f"Authorization: Basic {b64}"],
            "errors": {"summary": f"echo {b64}"},
        },
    )
    with pytest.raises(PermanentDeliveryError) as info:
        jira.create(TICKET)
    for text in (str(info.value), info.value.detail):
        assert JIRA_TOKEN not in text and b64 not in text
    assert "bad credentials ***" in info.value.detail


def test_jira_401_is_permanent(jira_stub: JiraStub) -> None:
    dest = JiraDestination(jira_stub.url, JIRA_EMAIL, "wrong-token", "OPS", http=FAST)
    with pytest.raises(PermanentDeliveryError) as info:
        dest.create(TICKET)
    assert info.value.status == 401 and "wrong-token" not in str(info.value)


def test_jira_500_then_success_retries_once(
    jira: JiraDestination, jira_stub: JiraStub, sleep: FakeSleep
) -> None:
    jira_stub.fail_next(1, status=500, method="POST")
    delivery = deliver(jira, TICKET, sleep=sleep)
    assert delivery.ref == "OPS-1"
    assert _posts(jira_stub) == 2 and len(jira_stub.issues) == 1
    assert sleep.waits[0] <= RetryPolicy().backoff_max
    # a 5xx may come after the create: the retry let the search catch up, looked, then created again
    assert sleep.waits[1:] == [pytest.approx(jira.search_lag_s, abs=0.5)]
    assert [r.method for r in jira_stub.requests] == ["POST", "GET", "POST"]


def test_jira_429_waits_at_least_retry_after(
    jira: JiraDestination, jira_stub: JiraStub, sleep: FakeSleep
) -> None:
    jira_stub.rate_limit_next(1, retry_after=1)
    started = time.monotonic()
    assert deliver(jira, TICKET, sleep=sleep).ref == "OPS-1"
    assert sleep.waits and sleep.waits[0] >= 1.0
    assert time.monotonic() - started < 1.0  # injected sleep: no real waiting


def test_retry_after_longer_than_budget_raises_instead_of_sleeping(
    jira: JiraDestination, jira_stub: JiraStub, sleep: FakeSleep
) -> None:
    jira_stub.rate_limit_next(1, retry_after=120)
    with pytest.raises(TransientDeliveryError) as info:
        deliver(jira, TICKET, sleep=sleep, policy=RetryPolicy(total_budget=20))
    assert info.value.status == 429 and info.value.retry_after == 120
    assert sleep.waits == [] and _posts(jira_stub) == 1


def test_timeouts_are_transient_and_bounded(jira_stub: JiraStub, sleep: FakeSleep) -> None:
    dest = JiraDestination(
        jira_stub.url, JIRA_EMAIL, JIRA_TOKEN, "OPS", http=HttpSettings(connect_timeout=0.5, read_timeout=0.2)
    )
    jira_stub.timeout_next(10, seconds=3)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        deliver(dest, TICKET, sleep=sleep, policy=RetryPolicy(max_attempts=3))
    assert "timeout" in str(info.value)
    assert time.monotonic() - started < 1.5
    assert len(jira_stub.requests) == 3  # three attempts (a create, then searches for it)


def test_total_budget_clamps_request_timeouts(jira_stub: JiraStub, sleep: FakeSleep) -> None:
    dest = JiraDestination(
        jira_stub.url, JIRA_EMAIL, JIRA_TOKEN, "OPS", http=HttpSettings(connect_timeout=1, read_timeout=10)
    )
    jira_stub.timeout_next(10, seconds=3)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError):
        deliver(dest, TICKET, sleep=sleep, policy=RetryPolicy(max_attempts=5, total_budget=0.4))
    assert time.monotonic() - started < 1.0  # the 10 s read timeout was cut to the 0.4 s budget


def test_jira_find_existing_avoids_a_second_create(
    jira: JiraDestination, jira_stub: JiraStub, sleep: FakeSleep
) -> None:
    first = jira.create(TICKET)
    assert jira.find_existing(TICKET) is None  # the search has not caught up with the create yet
    sleep.advance(jira_stub.search_lag)
    assert jira.find_existing(TICKET) == first
    rec = jira_stub.requests[-1]
    assert (rec.method, rec.path) == ("GET", "/rest/api/3/search/jql")
    assert rec.query["jql"] == 'project = "OPS" AND labels = "triage-T-1" ORDER BY created ASC'
    assert deliver(jira, TICKET, recovery=Recovery(search_first=True), sleep=sleep) == first
    assert _posts(jira_stub) == 1
    other = OutboundTicket(**{**TICKET.__dict__, "ticket_id": "T-2"})
    assert jira.find_existing(other) is None


def test_jira_crash_after_create_then_retry_finds_the_first(
    jira: JiraDestination, jira_stub: JiraStub, sleep: FakeSleep
) -> None:
    jira_stub.crash_after_create_next(1)
    delivery = deliver(jira, TICKET, sleep=sleep)
    assert delivery.ref == "OPS-1"
    assert list(jira_stub.issues) == ["OPS-1"] and _posts(jira_stub) == 1  # exactly one external issue


CLOUD_ID = "0f4e2a9c-7b1d-4c3e-9a8f-5d6b7c8e9f01"


def test_scoped_token_calls_the_gateway_and_links_the_site(sleep: FakeSleep) -> None:
    with JiraStub(cloud_id=CLOUD_ID, scoped_token=True, clock=sleep.clock) as stub:
        env = {"JIRA_API_TOKEN": JIRA_TOKEN, "JIRA_EMAIL": JIRA_EMAIL}
        settings = {"base_url": "https://acme.atlassian.net", "project_key": "OPS"}
        dest = build_destination("jira", {**settings, "api_base_url": stub.gateway_url}, env)
        delivery = dest.create(TICKET)
        assert delivery == Delivery("jira", "OPS-1", "https://acme.atlassian.net/browse/OPS-1")
        assert stub.requests[-1].path == f"/ex/jira/{CLOUD_ID}/rest/api/3/issue"
        sleep.advance(stub.search_lag)
        assert dest.find_existing(TICKET) == delivery
        assert stub.requests[-1].path == f"/ex/jira/{CLOUD_ID}/rest/api/3/search/jql"
        # the same scoped token against the site URL is refused, as Jira Cloud refuses it
        site = JiraDestination(stub.url, JIRA_EMAIL, JIRA_TOKEN, "OPS", http=FAST)
        with pytest.raises(PermanentDeliveryError) as info:
            site.create(TICKET)
        assert info.value.status == 401 and len(stub.issues) == 1


def test_cloud_id_setting_builds_the_gateway_url() -> None:
    env = {"JIRA_API_TOKEN": "t", "JIRA_EMAIL": "a@b.c"}
    settings = {"base_url": "https://acme.atlassian.net", "project_key": "OPS"}
    dest = build_destination("jira", {**settings, "cloud_id": CLOUD_ID.upper()}, env)
    assert dest.api_base_url == f"https://api.atlassian.com/ex/jira/{CLOUD_ID}"
    assert dest.base_url == "https://acme.atlassian.net"
    explicit = build_destination(
        "jira", {**settings, "api_base_url": f"https://api.atlassian.com/ex/jira/{CLOUD_ID}/"}, env
    )
    assert explicit.api_base_url == f"https://api.atlassian.com/ex/jira/{CLOUD_ID}"
    from_env = build_destination("jira", settings, {**env, "JIRA_CLOUD_ID": CLOUD_ID})
    assert from_env.api_base_url == f"https://api.atlassian.com/ex/jira/{CLOUD_ID}"
    assert build_destination("jira", settings, env).api_base_url == "https://acme.atlassian.net"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"cloud_id": "acme"}, "must be a UUID"),
        ({"cloud_id": CLOUD_ID + "/../x"}, "must be a UUID"),
        ({"api_base_url": "https://evil.example/ex/jira/" + CLOUD_ID}, "api.atlassian.com/ex/jira"),
        ({"api_base_url": "https://api.atlassian.com/ex/jira/" + CLOUD_ID + "/rest"}, "bare base URL"),
        ({"api_base_url": "https://api.atlassian.com/ex/confluence/" + CLOUD_ID}, "bare base URL"),
        ({"api_base_url": "https://api.atlassian.com/ex/jira/not-a-uuid"}, "bare base URL"),
        ({"api_base_url": "http://api.atlassian.com/ex/jira/" + CLOUD_ID}, "https"),
        ({"cloud_id": CLOUD_ID, "api_base_url": "https://api.atlassian.com/ex/jira/" + CLOUD_ID}, "not both"),
    ],
)
def test_jira_gateway_settings_are_validated(extra: dict, message: str) -> None:
    settings = {"base_url": "https://acme.atlassian.net", "project_key": "OPS", "email": "a@b.c", **extra}
    with pytest.raises(DestinationConfigError, match=message):
        build_destination("jira", settings, {"JIRA_API_TOKEN": "t"})


def test_site_base_url_still_takes_no_path() -> None:
    settings = {"base_url": f"https://acme.atlassian.net/ex/jira/{CLOUD_ID}", "project_key": "OPS"}
    with pytest.raises(DestinationConfigError, match="bare base URL"):
        build_destination("jira", {**settings, "email": "a@b.c"}, {"JIRA_API_TOKEN": "t"})


# -- Freshservice ------------------------------------------------------------------------------------------


def test_freshservice_request_shape(fresh: FreshserviceDestination, fs_stub: FreshserviceStub) -> None:
    delivery = fresh.create(TICKET)
    assert delivery == Delivery("freshservice", "1", f"{fs_stub.url}/a/tickets/1")
    rec = fs_stub.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/api/v2/tickets")
    assert rec.headers["authorization"] == _basic(FS_KEY, "X")
    assert rec.json == {
        "subject": "VPN <b>down</b> since today",
        "description": (
            "<div>Cannot connect &amp; &lt;script&gt;alert(1)&lt;/script&gt;<br>second line</div><hr>"
            "<div>Triage ID: T-1<br>Department: IT / Network<br>Confidence: 0.88<br>"
            "Reason: mentions &lt;!channel&gt; VPN</div>"
        ),
        "email": "ann@example.com",
        "priority": 4,
        "status": 2,
        "source": 2,
        "tags": ["triage", "triage-T-1"],
        "group_id": 42,
    }


def test_freshservice_custom_field(fs_stub: FreshserviceStub) -> None:
    dest = FreshserviceDestination(
        fs_stub.url, FS_KEY, triage_id_field="cf_triage_id", custom_fields={"cf_source": "triage"}, http=FAST
    )
    dest.create(TICKET)
    assert fs_stub.requests[-1].json["custom_fields"] == {"cf_source": "triage", "cf_triage_id": "T-1"}


def test_freshservice_validation_error_is_permanent(fs_stub: FreshserviceStub) -> None:
    dest = FreshserviceDestination(fs_stub.url, FS_KEY, group_id=7, http=FAST)
    with pytest.raises(PermanentDeliveryError) as info:
        dest.create(TICKET)
    assert info.value.status == 400
    assert info.value.detail == (
        "Validation failed; group_id: There is no group matching the given group_id (invalid_value)"
    )


def test_freshservice_401_redacts_key(fs_stub: FreshserviceStub) -> None:
    dest = FreshserviceDestination(fs_stub.url, "wrong-key-123", http=FAST)
    fs_stub.fail_next(
        1, status=401, body={"code": "invalid_credentials", "message": "key wrong-key-123 rejected"}
    )
    with pytest.raises(PermanentDeliveryError) as info:
        dest.create(TICKET)
    assert "wrong-key-123" not in str(info.value) and "key *** rejected" in info.value.detail


def test_freshservice_find_existing_uses_tag_filter(
    fresh: FreshserviceDestination, fs_stub: FreshserviceStub, sleep: FakeSleep
) -> None:
    first = fresh.create(TICKET)
    assert fresh.find_existing(TICKET) is None  # the filter index has not caught up with the create yet
    sleep.advance(fs_stub.search_lag)
    assert fresh.find_existing(TICKET) == first
    rec = fs_stub.requests[-1]
    assert (rec.method, rec.path, rec.query) == (
        "GET",
        "/api/v2/tickets/filter",
        {"query": "\"tag:'triage-T-1'\""},
    )
    assert deliver(fresh, TICKET, recovery=Recovery(search_first=True), sleep=sleep) == first
    assert _posts(fs_stub) == 1
    assert fresh.find_existing(OutboundTicket(**{**TICKET.__dict__, "ticket_id": "T-9"})) is None


def test_freshservice_crash_after_create_then_retry(
    fresh: FreshserviceDestination, fs_stub: FreshserviceStub, sleep: FakeSleep
) -> None:
    fs_stub.crash_after_create_next(1)
    assert deliver(fresh, TICKET, sleep=sleep).ref == "1"
    assert list(fs_stub.tickets) == [1] and _posts(fs_stub) == 1


def test_freshservice_503_then_success(
    fresh: FreshserviceDestination, fs_stub: FreshserviceStub, sleep: FakeSleep
) -> None:
    fs_stub.fail_next(1, status=503, method="POST")
    assert deliver(fresh, TICKET, sleep=sleep).ref == "1"
    assert _posts(fs_stub) == 2 and len(fs_stub.tickets) == 1
    assert sleep.waits[1:] == [pytest.approx(fresh.search_lag_s, abs=0.5)]  # the search caught up first


def test_freshservice_workspace_is_used_for_create_and_filter(
    fs_stub: FreshserviceStub, sleep: FakeSleep
) -> None:
    fs_stub.workspaces = {2, 3}
    hr = FreshserviceDestination(fs_stub.url, FS_KEY, workspace_id=3, http=FAST)
    delivery = hr.create(TICKET)
    assert fs_stub.requests[-1].json["workspace_id"] == 3
    assert fs_stub.tickets[int(delivery.ref)]["workspace_id"] == 3
    sleep.advance(fs_stub.search_lag)
    assert hr.find_existing(TICKET) == delivery
    assert fs_stub.requests[-1].query["workspace_id"] == "3"
    # without workspace_id, filter searches only the primary workspace: the ticket is not found there
    primary = FreshserviceDestination(fs_stub.url, FS_KEY, http=FAST)
    assert primary.find_existing(TICKET) is None
    assert "workspace_id" not in fs_stub.requests[-1].query
    elsewhere = FreshserviceDestination(fs_stub.url, FS_KEY, workspace_id=9, http=FAST)
    with pytest.raises(PermanentDeliveryError, match="workspace_id"):
        elsewhere.create(TICKET)


def test_freshservice_default_workspace_is_the_primary(fs_stub: FreshserviceStub, sleep: FakeSleep) -> None:
    dest = FreshserviceDestination(fs_stub.url, FS_KEY, http=FAST)
    delivery = dest.create(TICKET)
    assert "workspace_id" not in fs_stub.requests[-1].json
    assert fs_stub.tickets[int(delivery.ref)]["workspace_id"] == fs_stub.primary_workspace_id
    sleep.advance(fs_stub.search_lag)
    assert dest.find_existing(TICKET) == delivery


# -- Slack -------------------------------------------------------------------------------------------------


def test_slack_message_shape_and_no_email() -> None:
    with SlackStub() as stub:
        dest = SlackDestination(stub.webhook_url, http=FAST)
        assert dest.create(TICKET) == Delivery("slack", "slack:T-1")
        assert dest.find_existing(TICKET) is None
        rec = stub.requests[-1]
        assert rec.path == "/services/T000/B000/XXXX"
        assert "ann@example.com" not in rec.text
        payload = rec.json
        assert payload["text"] == "[critical] VPN &lt;b&gt;down&lt;/b&gt; since today → IT / Network (T-1)"
        header, section, context = payload["blocks"]
        assert header == {
            "type": "header",
            "text": {"type": "plain_text", "text": "VPN <b>down</b> since today", "emoji": True},
        }
        assert [f["text"] for f in section["fields"]] == [
            "*Department / team*\nIT / Network",
            "*Priority*\n:rotating_light: critical",
            "*Confidence*\n0.88",
            "*Triage ID*\n`T-1`",
        ]
        assert context["elements"][0]["text"] == "mentions &lt;!channel&gt; VPN"  # no channel-wide ping
        assert len(stub.messages) == 1


def test_slack_long_title_fits_block_kit_limits() -> None:
    with SlackStub() as stub:
        long = OutboundTicket(**{**TICKET.__dict__, "title": "x" * 500, "reason": "r" * 5000})
        SlackDestination(stub.webhook_url, http=FAST).create(long)  # the stub enforces the limits
        assert len(stub.messages[0][1]["blocks"][0]["text"]["text"]) == 150


def test_slack_errors_are_permanent_and_hide_the_webhook_path() -> None:
    with SlackStub(hooks={"/services/T1/B1/secretpart"}) as stub:
        dest = SlackDestination(f"{stub.url}/services/T1/B1/wrongsecret", http=FAST)
        with pytest.raises(PermanentDeliveryError) as info:
            dest.create(TICKET)
        assert info.value.status == 404 and info.value.detail == "no_service"
        assert "wrongsecret" not in str(info.value)
        ok = SlackDestination(f"{stub.url}/services/T1/B1/secretpart", http=FAST)
        stub.fail_next(1, status=400, body="invalid_payload")
        with pytest.raises(PermanentDeliveryError) as bad:
            ok.create(TICKET)
        assert bad.value.detail == "invalid_payload"


def test_slack_connection_error_redacts_the_url(sleep: FakeSleep) -> None:
    with SlackStub() as stub:
        url = stub.webhook_url
    dest = SlackDestination(url, http=FAST)  # the stub is stopped: connection refused
    with pytest.raises(TransientDeliveryError) as info:
        deliver(dest, TICKET, sleep=sleep, policy=RetryPolicy(max_attempts=2))
    assert "XXXX" not in str(info.value) and "B000" not in str(info.value)
    assert len(sleep.waits) == 1


def test_slack_rate_limit_is_transient(sleep: FakeSleep) -> None:
    with SlackStub() as stub:
        stub.rate_limit_next(1, retry_after=1)
        assert deliver(SlackDestination(stub.webhook_url, http=FAST), TICKET, sleep=sleep).ref == "slack:T-1"
        assert sleep.waits[0] >= 1.0 and len(stub.messages) == 1


def test_slack_burst_is_rate_limited_and_retried_after_retry_after(sleep: FakeSleep) -> None:
    with SlackStub(clock=sleep.clock) as stub:  # the default limit: ~1 message/s per hook, short bursts
        dest = SlackDestination(stub.webhook_url, http=FAST)
        for _ in range(stub.burst):
            dest.create(TICKET)
        with pytest.raises(TransientDeliveryError) as info:
            dest.create(TICKET)
        assert info.value.status == 429 and info.value.retry_after == 1
        assert stub.requests[-1].json is not None and len(stub.messages) == stub.burst
        assert deliver(dest, TICKET, sleep=sleep).ref == "slack:T-1"
        assert sleep.waits and sleep.waits[0] >= 1.0 and len(stub.messages) == stub.burst + 1


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [("archive", 410, "channel_is_archived"), ("prohibit", 403, "action_prohibited")],
)
def test_slack_gone_or_prohibited_hook_is_permanent(
    action: str, status: int, code: str, sleep: FakeSleep
) -> None:
    with SlackStub() as stub:
        getattr(stub, action)()
        with pytest.raises(PermanentDeliveryError) as info:
            deliver(SlackDestination(stub.webhook_url, http=FAST), TICKET, sleep=sleep)
        assert (info.value.status, info.value.detail) == (status, code)
        assert sleep.waits == [] and stub.messages == []  # not retried


# -- generic webhook ---------------------------------------------------------------------------------------


def test_webhook_signed_delivery() -> None:
    with WebhookStub(secret="hook-secret") as stub:
        dest = WebhookDestination(f"{stub.url}/triage", "hook-secret", http=FAST)
        assert dest.create(TICKET) == Delivery("webhook", "wh-1")
        rec = stub.requests[-1]
        assert rec.headers["idempotency-key"] == "T-1"
        assert signing.verify(
            "hook-secret",
            rec.body,
            rec.headers["x-triage-timestamp"],
            rec.headers["x-triage-signature"],
            now=time.time(),
        )
        assert "email" not in rec.json
        assert rec.json == {k: v for k, v in TICKET.__dict__.items() if k != "email"}
        # a retry after a lost answer is deduplicated by the receiver
        assert dest.create(TICKET) == Delivery("webhook", "wh-1") and len(stub.deliveries) == 1


def test_webhook_include_email_and_ref_fallback() -> None:
    with WebhookStub(secret="hook-secret", respond_with_id=False) as stub:
        dest = WebhookDestination(stub.url, "hook-secret", include_email=True, http=FAST)
        assert dest.create(TICKET) == Delivery("webhook", "T-1")
        assert stub.requests[-1].json["email"] == "ann@example.com"


def test_webhook_bad_secret_is_permanent_and_redacted() -> None:
    with WebhookStub(secret="right-secret") as stub:
        stub.fail_next(1, status=401, body={"error": "signature by wrong-secret invalid"})
        with pytest.raises(PermanentDeliveryError) as info:
            WebhookDestination(stub.url, "wrong-secret", http=FAST).create(TICKET)
        assert info.value.status == 401 and "wrong-secret" not in str(info.value)
        with pytest.raises(PermanentDeliveryError):
            WebhookDestination(stub.url, "wrong-secret", http=FAST).create(TICKET)  # real verification


def test_log_destination() -> None:
    dest = LogDestination()
    assert dest.create(TICKET) == Delivery("log", "log:T-1") and dest.find_existing(TICKET) is None


@pytest.mark.parametrize("ticket_id", ['x" OR project = SECRET', "T-1\n", "T-1\r\n", "", "-T1", "T" * 101])
def test_unsafe_ticket_id_is_rejected_before_any_request(
    jira: JiraDestination, jira_stub: JiraStub, ticket_id: str
) -> None:
    bad = OutboundTicket(**{**TICKET.__dict__, "ticket_id": ticket_id})
    with pytest.raises(PermanentDeliveryError):
        jira.find_existing(bad)
    with pytest.raises(PermanentDeliveryError):
        jira.create(bad)
    assert jira_stub.requests == []


def test_search_lag_bounds_per_destination() -> None:
    env = {
        "JIRA_API_TOKEN": "t",
        "FRESHSERVICE_API_KEY": "k",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/s",
    }
    jira_settings = {"base_url": "https://a.atlassian.net", "project_key": "OPS", "email": "a@b.c"}
    fs_settings = {"base_url": "https://a.freshservice.com"}
    assert build_destination("jira", jira_settings, env).search_lag_s == 10.0
    assert build_destination("freshservice", fs_settings, env).search_lag_s == 10.0
    assert build_destination("jira", {**jira_settings, "search_lag_seconds": "30"}, env).search_lag_s == 30.0
    assert (
        build_destination("freshservice", {**fs_settings, "search_lag_seconds": 0}, env).search_lag_s == 0.0
    )
    assert build_destination("slack", {}, env).search_lag_s == 0.0
    for bad in ("soon", -1, 7200):
        with pytest.raises(DestinationConfigError, match="search_lag_seconds"):
            build_destination("jira", {**jira_settings, "search_lag_seconds": bad}, env)


# -- registry ----------------------------------------------------------------------------------------------


def test_build_destination_from_settings_and_env(jira_stub: JiraStub) -> None:
    env = {
        "JIRA_API_TOKEN": JIRA_TOKEN,
        "JIRA_BASE_URL": jira_stub.url,
        "JIRA_EMAIL": JIRA_EMAIL,
        "FRESHSERVICE_API_KEY": FS_KEY,
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
        "TRIAGE_OUTBOUND_WEBHOOK_SECRET": "s",
        "MY_TOKEN": "custom",
    }
    jira = build_destination("jira", {"project_key": "OPS", "priority_map": {"critical": "High"}}, env)
    assert isinstance(jira, JiraDestination) and jira.priority_map["critical"] == "High"
    assert jira.create(TICKET).ref == "OPS-1"
    custom = build_destination(
        "jira",
        {
            "project_key": "OPS",
            "api_token_env": "MY_TOKEN",
            "base_url": "https://acme.atlassian.net/",
            "email": "x@y.z",
        },
        env,
    )
    assert custom.api_token == "custom" and custom.base_url == "https://acme.atlassian.net"
    fs = build_destination(
        "freshservice", {"base_url": "https://acme.freshservice.com", "group_id": "42"}, env
    )
    assert isinstance(fs, FreshserviceDestination) and fs.group_id == 42
    assert isinstance(build_destination("slack", {}, env), SlackDestination)
    hook = build_destination("webhook", {"url": "https://hooks.example.com/t", "read_timeout": 4}, env)
    assert isinstance(hook, WebhookDestination) and hook.http.read_timeout == 4
    assert isinstance(build_destination("log", {}, {}), LogDestination)


@pytest.mark.parametrize(
    ("system", "settings", "env", "message"),
    [
        (
            "jira",
            {"project_key": "OPS", "base_url": "https://a.atlassian.net", "email": "a@b.c"},
            {},
            "JIRA_API_TOKEN",
        ),
        (
            "jira",
            {
                "project_key": "OPS",
                "base_url": "https://a.atlassian.net",
                "email": "a@b.c",
                "api_token_env": "OTHER",
            },
            {},
            "OTHER",
        ),
        ("freshservice", {"base_url": "https://a.freshservice.com"}, {}, "FRESHSERVICE_API_KEY"),
        ("slack", {}, {}, "SLACK_WEBHOOK_URL"),
        ("webhook", {"url": "https://x.example.com"}, {}, "TRIAGE_OUTBOUND_WEBHOOK_SECRET"),
        ("jira", {"project_key": "OPS", "email": "a@b.c"}, {"JIRA_API_TOKEN": "t"}, "JIRA_BASE_URL"),
        (
            "jira",
            {"project_key": "OPS", "base_url": "http://jira.example.com", "email": "a@b.c"},
            {"JIRA_API_TOKEN": "t"},
            "https",
        ),
        (
            "jira",
            {"project_key": "OPS", "base_url": "https://a.atlassian.net/x?y", "email": "a@b.c"},
            {"JIRA_API_TOKEN": "t"},
            "bare base URL",
        ),
        ("slack", {}, {"SLACK_WEBHOOK_URL": "https://u:p@hooks.slack.com/services/T/B/X"}, "credentials"),
        (
            "freshservice",
            {"base_url": "https://a.freshservice.com", "group_id": "abc"},
            {"FRESHSERVICE_API_KEY": "k"},
            "group_id",
        ),
        ("teams", {}, {}, "unknown destination"),
    ],
)
def test_build_destination_config_errors(system: str, settings: dict, env: dict, message: str) -> None:
    with pytest.raises(DestinationConfigError, match=message):
        build_destination(system, settings, env)


# -- http helper -------------------------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("2") == 2.0
    assert 28 <= (parse_retry_after(later, now=now) or 0) <= 31
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_redact_patterns() -> None:
    text = (
        "POST https://hooks.slack.com/services/T1/B2/abc failed; Authorization: Basic Zm9vOmJhcg== tok123456"
    )
    out = redact(text, ["tok123456"])
    assert "abc" not in out and "Zm9vOmJhcg==" not in out and "tok123456" not in out
    assert "https://hooks.slack.com/services/***" in out
