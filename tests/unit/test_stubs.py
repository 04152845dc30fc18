"""The HTTP stubs over real loopback HTTP: wire formats, checks, recording and fault injection."""

from __future__ import annotations

import enum
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from devstack.stubs import FreshserviceStub, GeminiStub, JiraStub, SlackStub, WebhookStub
from devstack.stubs.jira import NOT_ADF, adf_valid
from devstack.stubs.slack import mrkdwn_controls
from triage import signing

JIRA_AUTH = ("triage-bot@example.com", "jira-test-token")
FS_AUTH = ("fs-test-key", "X")


# Most tests here check search semantics right after a create, so their stubs have no search lag; the
# default (lagging) behaviour has tests of its own.
@pytest.fixture
def jira() -> Iterator[JiraStub]:
    with JiraStub(search_lag=0) as stub:
        yield stub


@pytest.fixture
def fresh() -> Iterator[FreshserviceStub]:
    with FreshserviceStub(search_lag=0) as stub:
        yield stub


@pytest.fixture
def gemini() -> Iterator[GeminiStub]:
    with GeminiStub() as stub:
        yield stub


def _issue(summary: str = "VPN down", labels: list[str] | None = None, project: str = "OPS") -> dict:
    return {
        "fields": {
            "project": {"key": project},
            "summary": summary,
            "issuetype": {"name": "Task"},
            "labels": labels if labels is not None else ["triage", "triage-T1"],
        }
    }


# -- shared machinery --------------------------------------------------------------------------------------


def test_records_requests_with_lowercased_headers(jira: JiraStub) -> None:
    r = requests.post(
        f"{jira.url}/rest/api/2/issue?x=1", json=_issue(), auth=JIRA_AUTH, headers={"X-Custom": "v"}
    )
    assert r.status_code == 201
    rec = jira.requests[-1]
    assert (rec.method, rec.path, rec.query) == ("POST", "/rest/api/2/issue", {"x": "1"})
    assert rec.headers["x-custom"] == "v" and rec.headers["content-type"] == "application/json"
    assert rec.json == _issue() and json.loads(rec.body) == _issue()
    assert rec.status == 201 and rec.fault is None


def test_stop_releases_the_port() -> None:
    stub = JiraStub().start()
    port = stub.port
    stub.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # would raise if the listener were still open


def test_handles_64_concurrent_requests(jira: JiraStub) -> None:
    jira.delay(0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        statuses = list(
            pool.map(
                lambda i: (
                    requests.post(
                        f"{jira.url}/rest/api/2/issue", json=_issue(f"s{i}"), auth=JIRA_AUTH, timeout=5
                    ).status_code
                ),
                range(64),
            )
        )
    assert statuses == [201] * 64
    assert len(jira.issues) == 64
    assert time.monotonic() - started < 2.0  # served in parallel, not 64 x 0.3 s


def test_fail_next_then_normal(jira: JiraStub) -> None:
    jira.fail_next(2, status=503, headers={"X-Why": "injected"})
    first = requests.get(f"{jira.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH)
    assert first.status_code == 503 and first.headers["X-Why"] == "injected"
    assert first.json()["errorMessages"]  # the service's own error shape
    assert (
        requests.get(
            f"{jira.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH
        ).status_code
        == 503
    )
    assert (
        requests.get(
            f"{jira.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH
        ).status_code
        == 200
    )
    assert [r.fault for r in jira.requests] == ["fail", "fail", None]


def test_fail_next_custom_body_and_method_filter(jira: JiraStub) -> None:
    jira.fail_next(1, status=400, body={"errorMessages": ["nope"], "errors": {}}, method="POST")
    ok = requests.get(f"{jira.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH)
    assert ok.status_code == 200  # GET is not matched by a POST-only fault
    r = requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH)
    assert (r.status_code, r.json()) == (400, {"errorMessages": ["nope"], "errors": {}})
    assert not jira.issues


def test_rate_limit_next(fresh: FreshserviceStub) -> None:
    fresh.rate_limit_next(1, retry_after=7)
    r = requests.get(f"{fresh.url}/api/v2/tickets/filter", params={"query": '"status:2"'}, auth=FS_AUTH)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert requests.get(f"{fresh.url}/api/v2/tickets/filter", params={"query": '"status:2"'}, auth=FS_AUTH).ok


def test_timeout_next_makes_clients_time_out(jira: JiraStub) -> None:
    jira.timeout_next(1, seconds=3)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            f"{jira.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH, timeout=0.2
        )
    assert time.monotonic() - started < 1.0
    assert jira.requests[-1].fault == "timeout"


def test_fail_ratio_is_reproducible() -> None:
    def run() -> list[int]:
        with JiraStub() as stub:
            stub.fail_ratio(0.5, seed=42)
            url = f"{stub.url}/rest/api/2/search/jql"
            return [
                requests.get(url, params={"jql": "project = X"}, auth=JIRA_AUTH).status_code
                for _ in range(20)
            ]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 503}


def test_crash_after_create_performs_the_create_but_never_answers(jira: JiraStub) -> None:
    jira.crash_after_create_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH, timeout=5)
    assert list(jira.issues) == ["OPS-1"]  # the side effect happened
    assert jira.requests[-1].fault == "crash" and jira.requests[-1].status is None
    again = requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH, timeout=5)
    assert again.status_code == 201 and again.json()["key"] == "OPS-2"


def test_reset_clears_everything(jira: JiraStub) -> None:
    requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH)
    jira.fail_next(5)
    jira.reset()
    assert not jira.requests and not jira.issues
    assert (
        requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH).json()["key"] == "OPS-1"
    )


# -- Jira --------------------------------------------------------------------------------------------------


def test_jira_requires_basic_auth(jira: JiraStub) -> None:
    assert requests.post(f"{jira.url}/rest/api/2/issue", json=_issue()).status_code == 401
    wrong = requests.post(
        f"{jira.url}/rest/api/2/issue", json=_issue(), auth=("triage-bot@example.com", "bad")
    )
    assert wrong.status_code == 401


def test_jira_requires_json(jira: JiraStub) -> None:
    r = requests.post(
        f"{jira.url}/rest/api/2/issue",
        data=json.dumps(_issue()),
        auth=JIRA_AUTH,
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415


def test_jira_create_answer(jira: JiraStub) -> None:
    r = requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH)
    assert r.status_code == 201
    assert r.json() == {"id": "10001", "key": "OPS-1", "self": f"{jira.url}/rest/api/2/issue/10001"}
    got = requests.get(f"{jira.url}/rest/api/2/issue/OPS-1", auth=JIRA_AUTH).json()
    assert got["fields"]["summary"] == "VPN down"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"summary": None}, "summary", "You must specify a summary of the issue."),
        ({"summary": "a\nb"}, "summary", "The summary is invalid because it contains newline characters."),
        ({"summary": "x" * 255}, "summary", "Summary must be less than 255 characters."),
        ({"issuetype": {"name": "Nope"}}, "issuetype", "valid issue type is required"),
        ({"project": {}}, "project", "Specify a valid project ID or key"),
        ({"priority": {"name": "Urgent!"}}, "priority", "Specify a valid 'id' or 'name' for Priority"),
        ({"description": {"type": "doc"}}, "description", "Operation value must be a string"),
        (
            {"labels": ["has space"]},
            "labels",
            "The label must not contain spaces and must be 1-255 characters.",
        ),
        ({"foo": 1}, "foo", "Field 'foo' cannot be set. It is not on the appropriate screen, or unknown."),
    ],
)
def test_jira_validation_errors(jira: JiraStub, fields: dict, field: str, message: str) -> None:
    body = _issue()
    body["fields"].update(fields)
    body["fields"] = {k: v for k, v in body["fields"].items() if v is not None}
    r = requests.post(f"{jira.url}/rest/api/2/issue", json=body, auth=JIRA_AUTH)
    assert r.status_code == 400
    assert r.json() == {"errorMessages": [], "errors": {field: message}}


def test_jira_unknown_project_when_projects_configured() -> None:
    with JiraStub(projects={"OPS"}) as stub:
        r = requests.post(f"{stub.url}/rest/api/2/issue", json=_issue(project="XYZ"), auth=JIRA_AUTH)
        assert r.json()["errors"] == {"project": "valid project is required"}


def test_jira_enhanced_search_get_and_post(jira: JiraStub) -> None:
    for labels, project in (
        (["triage", "triage-A"], "OPS"),
        (["triage", "triage-B"], "OPS"),
        (["triage", "triage-A"], "DEV"),
    ):
        requests.post(
            f"{jira.url}/rest/api/2/issue", json=_issue(labels=labels, project=project), auth=JIRA_AUTH
        )
    r = requests.get(
        f"{jira.url}/rest/api/3/search/jql",
        auth=JIRA_AUTH,
        params={"jql": 'project = OPS AND labels = "triage-A"', "fields": "summary"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["isLast"] is True
    assert [(i["key"], i["fields"]) for i in body["issues"]] == [("OPS-1", {"summary": "VPN down"})]
    ids_only = requests.post(
        f"{jira.url}/rest/api/3/search/jql",
        auth=JIRA_AUTH,
        json={"jql": 'labels = "triage-A" ORDER BY created ASC'},
    ).json()
    assert ids_only["issues"] == [{"id": "10001"}, {"id": "10003"}]  # no fields requested: ids only
    v2 = requests.get(
        f"{jira.url}/rest/api/2/search/jql", auth=JIRA_AUTH, params={"jql": "labels = triage-B"}
    )
    assert v2.json()["issues"] == [{"id": "10002"}]


def test_jira_search_pagination(jira: JiraStub) -> None:
    for i in range(3):
        requests.post(f"{jira.url}/rest/api/2/issue", json=_issue(f"s{i}"), auth=JIRA_AUTH)
    page1 = requests.get(
        f"{jira.url}/rest/api/3/search/jql", auth=JIRA_AUTH, params={"jql": "project = OPS", "maxResults": 2}
    ).json()
    assert len(page1["issues"]) == 2 and page1["isLast"] is False
    page2 = requests.get(
        f"{jira.url}/rest/api/3/search/jql",
        auth=JIRA_AUTH,
        params={"jql": "project = OPS", "maxResults": 2, "nextPageToken": page1["nextPageToken"]},
    ).json()
    assert page2["issues"] == [{"id": "10003"}] and page2["isLast"] is True


def test_jira_search_errors(jira: JiraStub) -> None:
    assert requests.get(f"{jira.url}/rest/api/3/search/jql", auth=JIRA_AUTH).status_code == 400  # unbounded
    bad = requests.get(f"{jira.url}/rest/api/3/search/jql", auth=JIRA_AUTH, params={"jql": "assignee in (a)"})
    assert bad.status_code == 400 and bad.json()["errorMessages"][0].startswith("Error in the JQL Query")


def test_jira_classic_search_is_gone(jira: JiraStub) -> None:
    for version in ("2", "3"):
        r = requests.get(
            f"{jira.url}/rest/api/{version}/search", params={"jql": "project = OPS"}, auth=JIRA_AUTH
        )
        assert r.status_code == 410
        assert "/rest/api/3/search/jql" in r.json()["errorMessages"][0]


def test_jira_search_lag_models_eventual_consistency() -> None:
    with JiraStub(search_lag=60) as stub:
        requests.post(f"{stub.url}/rest/api/2/issue", json=_issue(), auth=JIRA_AUTH)
        r = requests.get(f"{stub.url}/rest/api/3/search/jql", auth=JIRA_AUTH, params={"jql": "project = OPS"})
        assert r.json()["issues"] == []


CLOUD_ID = "0f4e2a9c-7b1d-4c3e-9a8f-5d6b7c8e9f01"


def _doc(*content: dict) -> dict:
    return {"type": "doc", "version": 1, "content": list(content)}


def _para(*inline: dict) -> dict:
    return {"type": "paragraph", "content": list(inline)}


TEXT = {"type": "text", "text": "hello"}


def test_jira_v3_takes_adf_and_v2_takes_strings(jira: JiraStub) -> None:
    good = _doc(_para(TEXT, {"type": "hardBreak"}, TEXT), {"type": "rule"})
    v3 = requests.post(f"{jira.url}/rest/api/3/issue", json=_issue_with(description=good), auth=JIRA_AUTH)
    assert v3.status_code == 201 and v3.json()["self"].endswith("/rest/api/3/issue/10001")
    string_in_v3 = requests.post(
        f"{jira.url}/rest/api/3/issue", json=_issue_with(description="plain"), auth=JIRA_AUTH
    )
    assert (string_in_v3.status_code, string_in_v3.json()) == (
        400,
        {"errorMessages": [], "errors": {"description": NOT_ADF}},
    )
    v2 = requests.post(f"{jira.url}/rest/api/2/issue", json=_issue_with(description="[x|y]"), auth=JIRA_AUTH)
    assert v2.status_code == 201
    assert jira.issues["OPS-2"]["fields"]["description"] == "[x|y]"


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "doc", "content": [_para(TEXT)]},  # no version
        {"type": "doc", "version": 2, "content": [_para(TEXT)]},
        {"type": "document", "version": 1, "content": [_para(TEXT)]},
        {"type": "doc", "version": 1, "content": "text"},
        _doc(_para({"type": "text", "text": ""})),  # empty text node
        _doc(_para({"type": "text", "text": 5})),
        _doc(_para({"type": "text"})),
        _doc(TEXT),  # inline node at block level
        _doc(_para(_para(TEXT))),  # block inside a paragraph
        _doc(_para({"type": "blink", "text": "x"})),  # unknown node
        _doc(_para({"type": "text", "text": "x", "marks": [{"type": "sparkle"}]})),  # unknown mark
        _doc({"type": "bulletList", "content": [_para(TEXT)]}),  # lists hold listItems
        _doc({"type": "bulletList", "content": []}),
    ],
)
def test_jira_v3_rejects_invalid_adf(jira: JiraStub, doc: dict) -> None:
    assert not adf_valid(doc)
    r = requests.post(f"{jira.url}/rest/api/3/issue", json=_issue_with(description=doc), auth=JIRA_AUTH)
    assert (r.status_code, r.json()) == (400, {"errorMessages": ["INVALID_INPUT"], "errors": {}})
    assert not jira.issues


def test_jira_text_fields_are_bounded(jira: JiraStub) -> None:
    long = "x" * 32_768
    v2 = requests.post(f"{jira.url}/rest/api/2/issue", json=_issue_with(description=long), auth=JIRA_AUTH)
    assert v2.status_code == 400 and "32,767" in v2.json()["errors"]["description"]
    doc = _doc(_para({"type": "text", "text": long}))
    v3 = requests.post(f"{jira.url}/rest/api/3/issue", json=_issue_with(description=doc), auth=JIRA_AUTH)
    assert v3.status_code == 400 and "32,767" in v3.json()["errors"]["description"]


def _issue_with(**fields: object) -> dict:
    body = _issue()
    body["fields"].update(fields)
    return body


def test_jira_gateway_prefix_for_scoped_tokens() -> None:
    with JiraStub(cloud_id=CLOUD_ID, search_lag=0) as stub:
        created = requests.post(f"{stub.gateway_url}/rest/api/3/issue", json=_issue(), auth=JIRA_AUTH)
        assert created.status_code == 201
        assert created.json()["self"] == f"{stub.gateway_url}/rest/api/3/issue/10001"
        found = requests.get(
            f"{stub.gateway_url}/rest/api/3/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH
        )
        assert found.json()["issues"] == [{"id": "10001"}]
        site = requests.get(
            f"{stub.url}/rest/api/3/issue/OPS-1", auth=JIRA_AUTH
        )  # a classic token: both work
        assert site.status_code == 200
        other = requests.get(
            f"{stub.url}/ex/jira/{'1' * 8}-1111-1111-1111-{'1' * 12}/rest/api/3/issue/OPS-1", auth=JIRA_AUTH
        )
        assert other.status_code == 404
    with JiraStub(cloud_id=CLOUD_ID, scoped_token=True) as scoped:
        assert (
            requests.post(f"{scoped.url}/rest/api/3/issue", json=_issue(), auth=JIRA_AUTH).status_code == 401
        )
        ok = requests.post(f"{scoped.gateway_url}/rest/api/3/issue", json=_issue(), auth=JIRA_AUTH)
        assert ok.status_code == 201
    with JiraStub() as plain:
        gateway = requests.post(
            f"{plain.url}/ex/jira/{CLOUD_ID}/rest/api/3/issue", json=_issue(), auth=JIRA_AUTH
        )
        assert gateway.status_code == 404  # no cloud id configured: no gateway paths


def test_jira_default_search_lag_and_reconcile() -> None:
    now = [1000.0]
    with JiraStub(clock=lambda: now[0]) as stub:
        assert stub.search_lag > 0  # eventually consistent by default
        requests.post(f"{stub.url}/rest/api/3/issue", json=_issue(), auth=JIRA_AUTH)
        url, jql = f"{stub.url}/rest/api/3/search/jql", {"jql": "project = OPS"}
        assert requests.get(url, params=jql, auth=JIRA_AUTH).json()["issues"] == []
        reconciled = requests.get(url, params={**jql, "reconcileIssues": "10001"}, auth=JIRA_AUTH).json()
        assert reconciled["issues"] == [{"id": "10001"}]
        posted = requests.post(url, json={**jql, "reconcileIssues": [10001]}, auth=JIRA_AUTH).json()
        assert posted["issues"] == [{"id": "10001"}]
        now[0] += stub.search_lag
        assert requests.get(url, params=jql, auth=JIRA_AUTH).json()["issues"] == [{"id": "10001"}]


def test_jira_rate_limit_reply_shape(jira: JiraStub) -> None:
    jira.rate_limit_next(1, retry_after=90)
    before = datetime.now(UTC)
    r = requests.get(f"{jira.url}/rest/api/3/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH)
    assert r.status_code == 429 and r.headers["Retry-After"] == "90"
    reset = datetime.strptime(r.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=30) <= reset <= before + timedelta(seconds=91)  # minute precision
    assert r.headers["RateLimit-Reason"] == "jira-burst-based"
    assert r.headers["X-RateLimit-Remaining"] == "0" and int(r.headers["X-RateLimit-Limit"]) > 0
    assert r.json()["errorMessages"] and jira.requests[-1].fault == "rate_limit"
    jira.rate_limit_next(1, retry_after=5, reason="jira-quota-tenant-based")
    quota = requests.get(f"{jira.url}/rest/api/3/search/jql", params={"jql": "project = OPS"}, auth=JIRA_AUTH)
    assert quota.headers["RateLimit-Reason"] == "jira-quota-tenant-based"


# -- Freshservice ------------------------------------------------------------------------------------------


def _fs_ticket(**over: object) -> dict:
    body = {
        "email": "ann@example.com",
        "subject": "VPN down",
        "description": "<p>help</p>",
        "status": 2,
        "priority": 3,
        "tags": ["triage", "triage-T1"],
    }
    body.update(over)
    return body


def test_freshservice_auth_and_content_type(fresh: FreshserviceStub) -> None:
    r = requests.post(f"{fresh.url}/api/v2/tickets", json=_fs_ticket(), auth=("wrong", "X"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = requests.post(
        f"{fresh.url}/api/v2/tickets",
        data="x=1",
        auth=FS_AUTH,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415 and r.json()["code"] == "invalid_content_type"


def test_freshservice_create(fresh: FreshserviceStub) -> None:
    r = requests.post(f"{fresh.url}/api/v2/tickets", json=_fs_ticket(group_id=5), auth=FS_AUTH)
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    assert ticket["id"] == 1 and ticket["tags"] == ["triage", "triage-T1"] and ticket["group_id"] == 5
    assert ticket["description_text"] == "help"
    assert (
        requests.get(f"{fresh.url}/api/v2/tickets/1", auth=FS_AUTH).json()["ticket"]["subject"] == "VPN down"
    )


def test_freshservice_validation_body(fresh: FreshserviceStub) -> None:
    body = _fs_ticket(status=9, tags=["a,b"], bogus=1)
    del body["email"], body["subject"]
    r = requests.post(f"{fresh.url}/api/v2/tickets", json=body, auth=FS_AUTH)
    assert r.status_code == 400
    payload = r.json()
    assert payload["description"] == "Validation failed"
    got = {(e["field"], e["code"]) for e in payload["errors"]}
    assert got == {
        ("bogus", "invalid_field"),
        ("requester_id", "missing_field"),
        ("subject", "missing_field"),
        ("status", "invalid_value"),
        ("tags", "invalid_value"),
    }
    assert all(set(e) == {"field", "message", "code"} for e in payload["errors"])


def test_freshservice_unknown_group() -> None:
    with FreshserviceStub(groups={5}) as stub:
        r = requests.post(f"{stub.url}/api/v2/tickets", json=_fs_ticket(group_id=6), auth=FS_AUTH)
        assert r.json()["errors"] == [
            {
                "field": "group_id",
                "message": "There is no group matching the given group_id",
                "code": "invalid_value",
            }
        ]


def test_freshservice_filter_syntax(fresh: FreshserviceStub) -> None:
    requests.post(f"{fresh.url}/api/v2/tickets", json=_fs_ticket(), auth=FS_AUTH)
    requests.post(
        f"{fresh.url}/api/v2/tickets", json=_fs_ticket(priority=1, tags=["triage", "triage-T2"]), auth=FS_AUTH
    )

    def ids(query: str) -> list[int]:
        r = requests.get(f"{fresh.url}/api/v2/tickets/filter", params={"query": query}, auth=FS_AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["tickets"])
        return [t["id"] for t in r.json()["tickets"]]

    assert ids("\"tag:'triage-T1'\"") == [1]
    assert ids("\"tag:'triage'\"") == [1, 2]
    assert ids("\"priority:3 AND tag:'triage'\"") == [1]
    assert ids('"(priority:1 OR priority:3) AND status:2"') == [1, 2]
    assert ids('"priority:>2"') == [1]
    assert ids("\"tag:'nope'\"") == []


@pytest.mark.parametrize(
    "query", ["tag:'x'", "'tag:x'", "\"subject:'x'\"", '"tag:x y"', '""', '"' + "a" * 600 + '"']
)
def test_freshservice_filter_rejects_bad_queries(fresh: FreshserviceStub, query: str) -> None:
    r = requests.get(f"{fresh.url}/api/v2/tickets/filter", params={"query": query}, auth=FS_AUTH)
    assert r.status_code == 400
    assert r.json()["description"] == "Validation failed" and r.json()["errors"][0]["field"] == "query"


def test_freshservice_workspaces() -> None:
    with FreshserviceStub(search_lag=0, workspaces={2, 3}) as stub:
        url = f"{stub.url}/api/v2/tickets"
        assert requests.post(url, json=_fs_ticket(), auth=FS_AUTH).json()["ticket"]["workspace_id"] == 2
        assert (
            requests.post(url, json=_fs_ticket(workspace_id=3), auth=FS_AUTH).json()["ticket"]["workspace_id"]
            == 3
        )
        bad = requests.post(url, json=_fs_ticket(workspace_id=7), auth=FS_AUTH)
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "workspace_id"

        def ids(**params: object) -> list[int]:
            r = requests.get(f"{url}/filter", params={"query": "\"tag:'triage'\"", **params}, auth=FS_AUTH)
            assert r.status_code == 200, r.text
            return [t["id"] for t in r.json()["tickets"]]

        assert ids() == [1]  # the primary workspace only
        assert ids(workspace_id=3) == [2]
        assert ids(workspace_id=0) == [1, 2]  # all workspaces
        bad_scope = requests.get(
            f"{url}/filter", params={"query": '"status:2"', "workspace_id": "x"}, auth=FS_AUTH
        )
        assert bad_scope.status_code == 400


def test_freshservice_default_search_lag() -> None:
    now = [50.0]
    with FreshserviceStub(clock=lambda: now[0]) as stub:
        assert stub.search_lag > 0  # the filter index lags by default
        requests.post(f"{stub.url}/api/v2/tickets", json=_fs_ticket(), auth=FS_AUTH)
        query = {"query": "\"tag:'triage-T1'\""}
        assert (
            requests.get(f"{stub.url}/api/v2/tickets/filter", params=query, auth=FS_AUTH).json()["total"] == 0
        )
        now[0] += stub.search_lag
        assert (
            requests.get(f"{stub.url}/api/v2/tickets/filter", params=query, auth=FS_AUTH).json()["total"] == 1
        )


def test_freshservice_rate_limit_reply_shape(fresh: FreshserviceStub) -> None:
    fresh.rate_limit_next(1, retry_after=600)  # Freshservice can ask for many minutes
    r = requests.post(f"{fresh.url}/api/v2/tickets", json=_fs_ticket(), auth=FS_AUTH)
    assert r.status_code == 429 and r.headers["Retry-After"] == "600"
    assert (r.headers["X-RateLimit-Total"], r.headers["X-RateLimit-Remaining"]) == ("100", "0")
    assert r.headers["X-RateLimit-Used-CurrentRequest"] == "1"
    assert r.json() == {"message": "You have exceeded the limit of requests per minute"}
    assert not fresh.tickets


# -- Slack -------------------------------------------------------------------------------------------------


def test_slack_webhook_answers() -> None:
    with SlackStub() as slack:
        url = slack.webhook_url
        ok = requests.post(url, json={"text": "hi"})
        assert (ok.status_code, ok.text, ok.headers["Content-Type"].split(";")[0]) == (
            200,
            "ok",
            "text/plain",
        )
        form = requests.post(url, data={"payload": json.dumps({"text": "form"})})
        assert form.text == "ok"
        assert [m[1]["text"] for m in slack.messages] == ["hi", "form"]
        bad = requests.post(url, data="{not json", headers={"Content-Type": "application/json"})
        assert (bad.status_code, bad.text) == (400, "invalid_payload")
        assert (requests.post(url, json={"username": "x"}).status_code, slack.requests[-1].status) == (
            400,
            400,
        )
        assert requests.post(url, json={"username": "x"}).text == "no_text"
        header = {"type": "header", "text": {"type": "mrkdwn", "text": "x"}}  # headers must be plain_text
        assert requests.post(url, json={"blocks": [header]}).text == "invalid_blocks"
        fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
        assert requests.post(url, json={"blocks": [fields]}).text == "invalid_blocks"
        gone = requests.post(f"{slack.url}/services/T1/B1", json={"text": "x"})
        assert (gone.status_code, gone.text) == (404, "no_service")
        assert len(slack.messages) == 2


def test_slack_registered_hooks_only() -> None:
    with SlackStub(hooks={"/services/T9/B9/abc"}) as slack:
        assert requests.post(slack.webhook_url, json={"text": "x"}).text == "ok"
        other = requests.post(f"{slack.url}/services/T9/B9/other", json={"text": "x"})
        assert (other.status_code, other.text) == (404, "no_service")


def test_slack_rate_limit_by_default() -> None:
    now = [0.0]
    with SlackStub(clock=lambda: now[0]) as slack:
        url = slack.webhook_url
        burst = [requests.post(url, json={"text": f"m{i}"}).status_code for i in range(slack.burst)]
        assert burst == [200] * slack.burst  # a short burst is allowed
        over = requests.post(url, json={"text": "one too many"})
        assert over.status_code == 429 and over.headers["Retry-After"] == "1"
        assert over.json() == {"retry_after": 1, "ok": False, "error": "rate_limited"}
        other_hook = requests.post(f"{slack.url}/services/T1/B1/other", json={"text": "x"})
        assert other_hook.status_code == 200  # the limit is per webhook
        now[0] += 1.0  # one message per second refills
        assert requests.post(url, json={"text": "later"}).status_code == 200
        assert requests.post(url, json={"text": "too soon"}).status_code == 429
        assert len(slack.messages) == slack.burst + 2
    with SlackStub(rate_limit=False) as unlimited:
        assert {requests.post(unlimited.webhook_url, json={"text": "x"}).status_code for _ in range(30)} == {
            200
        }


def test_slack_permanent_errors_and_injected_rate_limit() -> None:
    with SlackStub() as slack:
        slack.rate_limit_next(1, retry_after=3)
        limited = requests.post(slack.webhook_url, json={"text": "x"})
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
        assert limited.json()["error"] == "rate_limited"
        slack.prohibit()
        prohibited = requests.post(slack.webhook_url, json={"text": "x"})
        assert (prohibited.status_code, prohibited.text) == (403, "action_prohibited")
        slack.archive()
        archived = requests.post(slack.webhook_url, json={"text": "x"})
        assert (archived.status_code, archived.text) == (410, "channel_is_archived")
        assert slack.messages == []
        slack.reset()
        assert requests.post(slack.webhook_url, json={"text": "x"}).text == "ok"


def test_slack_mrkdwn_controls_model_what_slack_links() -> None:
    text = "hi <!channel> <https://x.example|x> @here &lt;!here&gt;"
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    header = {"type": "header", "text": {"type": "plain_text", "text": "<!channel>"}}  # not parsed
    assert mrkdwn_controls({"blocks": [header, block]}) == ["<!channel>", "<https://x.example|x>"]
    assert mrkdwn_controls({"text": "@here and #general", "link_names": 1}) == ["@here", "#general"]
    assert mrkdwn_controls({"text": "<!channel> @here", "parse": "full"}) == ["@here"]
    assert mrkdwn_controls({"text": "@here", "mrkdwn": False, "link_names": 1}) == []


# -- generic webhook ---------------------------------------------------------------------------------------


def test_webhook_stub_verifies_signature_and_dedupes() -> None:
    with WebhookStub(secret="sek") as hook:
        body = b'{"ticket_id":"T1"}'
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": "T1",
            **signing.sign("sek", body, int(time.time())),
        }
        first = requests.post(f"{hook.url}/in", data=body, headers=headers)
        assert (first.status_code, first.json()) == (201, {"id": "wh-1"})
        again = requests.post(f"{hook.url}/in", data=body, headers=headers)
        assert (again.status_code, again.json()["id"]) == (200, "wh-1")
        assert len(hook.deliveries) == 1 and hook.deliveries[0]["payload"] == {"ticket_id": "T1"}
        forged = {**headers, **signing.sign("other", body, int(time.time()))}
        assert requests.post(f"{hook.url}/in", data=body, headers=forged).status_code == 401
        stale = {**headers, **signing.sign("sek", body, int(time.time()) - 3600)}
        assert requests.post(f"{hook.url}/in", data=body, headers=stale).status_code == 401


# -- Gemini ------------------------------------------------------------------------------------------------


class Department(enum.Enum):
    IT = "IT"
    HR = "HR"
    FINANCE = "Finance"


class Team(enum.Enum):
    SERVICE_DESK = "Service Desk"
    PAYABLES = "Finance Payables"


class Classification(BaseModel):
    department: Department
    team: Team | None = None
    confidence: float
    reason: str


def _client(stub: GeminiStub, key: str = "k") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=stub.url))


def _config() -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=Classification,
        system_instruction="Classify the ticket.",
    )


def test_gemini_structured_output_via_sdk(gemini: GeminiStub) -> None:
    prompt = "Please refund my duplicate invoice payment"
    client = _client(gemini)  # keep a reference: a collected Client closes its HTTP client
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=prompt, config=_config())
    assert isinstance(resp.parsed, Classification)
    assert resp.parsed.department is Department.FINANCE and resp.parsed.confidence > 0.5
    assert resp.parsed.team is Team.PAYABLES
    usage = resp.usage_metadata
    assert usage.prompt_token_count == len("Classify the ticket.\n" + prompt) // 4
    # gemini-2.5-flash thinks by default; with no output cap its thoughts do not cut the answer.
    assert usage.thoughts_token_count == gemini.default_thoughts
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    assert resp.model_version == "gemini-stub-001" and resp.response_id
    rec = gemini.requests[-1]
    assert rec.path == "/v1/models/gemini-2.5-flash:generateContent" and rec.headers["x-goog-api-key"] == "k"
    assert rec.json["generationConfig"]["responseSchema"]["properties"]["department"]["enum"] == [
        "IT",
        "HR",
        "Finance",
    ]


def test_gemini_thoughts_and_cached_tokens() -> None:
    with GeminiStub(thoughts_tokens=7, cached_tokens=3) as stub:
        client = _client(stub)
        resp = client.models.generate_content(model="m", contents="my laptop login fails", config=_config())
        assert resp.parsed.department is Department.IT
        usage = resp.usage_metadata
        assert (usage.thoughts_token_count, usage.cached_content_token_count) == (7, 3)
        assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + 7


@pytest.mark.parametrize(
    ("status", "error_type", "state"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_gemini_errors_surface_as_sdk_errors(
    gemini: GeminiStub, status: int, error_type: type, state: str
) -> None:
    gemini.fail_next(1, status=status)
    client = _client(gemini)
    with pytest.raises(error_type) as info:
        client.models.generate_content(model="m", contents="x", config=_config())
    assert info.value.code == status and info.value.status == state
    assert len(gemini.requests) == 1  # the SDK does not retry by default


def test_gemini_api_key_checks() -> None:
    with GeminiStub(api_key="right") as stub:
        url = f"{stub.url}/v1beta/models/m:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
        missing = requests.post(url, json=body)
        assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
        wrong = requests.post(url, json=body, headers={"x-goog-api-key": "nope"})
        assert wrong.status_code == 400 and "API key not valid" in wrong.json()["error"]["message"]
        ok = requests.post(url, json=body, headers={"x-goog-api-key": "right"})
        assert ok.status_code == 200 and ok.json()["candidates"][0]["finishReason"] == "STOP"
        assert (
            requests.post(url, json={"contents": []}, headers={"x-goog-api-key": "right"}).status_code == 400
        )


def test_gemini_answer_faults(gemini: GeminiStub) -> None:
    client = _client(gemini)
    gemini.out_of_taxonomy_next(1)
    odd = client.models.generate_content(model="m", contents="vpn", config=_config())
    assert odd.parsed is None and json.loads(odd.text)["department"] == "Astrology"
    gemini.malformed_next(1)
    broken = client.models.generate_content(model="m", contents="vpn", config=_config())
    assert broken.parsed is None and broken.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    with pytest.raises(ValueError):
        json.loads(broken.text)
    assert client.models.generate_content(model="m", contents="vpn", config=_config()).parsed is not None


def test_gemini_enum_mime_type_and_custom_responder(gemini: GeminiStub) -> None:
    config = types.GenerateContentConfig(response_mime_type="text/x.enum", response_schema=Department)
    client = _client(gemini)
    resp = client.models.generate_content(model="m", contents="salary question", config=config)
    assert resp.text == "HR" and resp.parsed is Department.HR
    gemini.responder = lambda body: '{"department": "IT", "team": null, "confidence": 0.5, "reason": "fixed"}'
    fixed = client.models.generate_content(model="m", contents="anything", config=_config())
    assert fixed.parsed.reason == "fixed"


def test_gemini_latency(gemini: GeminiStub) -> None:
    gemini.delay(0.3)
    client = _client(gemini)
    started = time.monotonic()
    client.models.generate_content(model="m", contents="x")
    assert time.monotonic() - started >= 0.3
