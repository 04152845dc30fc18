"""The intake function (real functions-framework app) against the real emulators."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from functions_framework import create_app

from tests.helpers import SEED, counter, pull_all, stored_state
from triage import model
from triage import runtime as runtime_module
from triage.signing import sign

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
SECRET = "intake-test-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture(scope="module")
def topics(project, pubsub_admin):
    publisher, subscriber = pubsub_admin
    topic = publisher.topic_path(project, "triage-classify")
    publisher.create_topic(name=topic)
    observer = subscriber.subscription_path(project, "observe-classify")
    subscriber.create_subscription(request={"name": observer, "topic": topic})
    return observer


@pytest.fixture(scope="module")
def client(project, topics):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", project)
        mp.setenv("TRIAGE_WEBHOOK_SECRET", SECRET)
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        app = create_app(
            target="intake", source=str(ROOT / "functions/intake/main.py"), signature_type="http"
        )
        yield app.test_client()
    runtime_module.reset()


@pytest.fixture
def published(pubsub_admin, topics):
    """Messages published to triage-classify during the test."""
    _, subscriber = pubsub_admin
    pull_all(subscriber, topics, wait_s=0.2)  # drain what earlier tests left
    return lambda: pull_all(subscriber, topics)


def post(client, body=None, raw=None, headers=None, path="/tickets", content_type="application/json"):
    data = raw if raw is not None else json.dumps(body if body is not None else SEED)
    return client.post(path, data=data, headers={**AUTH, **(headers or {})}, content_type=content_type)


@pytest.mark.parametrize("path", ["/", "/tickets", "/webhook/ticket"])
def test_seed_payload_is_accepted_stored_and_enqueued(client, db, published, path):
    response = post(client, path=path)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received" and len(body["ticket_id"]) == 32
    stored = db.collection("tickets").document(body["ticket_id"]).get().to_dict()
    assert stored["status"] == "received" and stored["email"] == SEED["email"]
    assert stored["metadata"] == SEED["metadata"]
    messages = published()
    assert [m.attributes["ticket_id"] for m in messages] == [body["ticket_id"]]


def test_ids_are_random_without_a_key(client):
    ids = {post(client).get_json()["ticket_id"] for _ in range(3)}
    assert len(ids) == 3


def test_repeated_idempotency_key_returns_same_ticket_and_publishes_nothing(client, db, published):
    first = post(client, headers={"Idempotency-Key": "n8n-msg-1"})
    published()
    before = stored_state(db)
    second = post(client, headers={"Idempotency-Key": "n8n-msg-1"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.get_json()["ticket_id"] == first.get_json()["ticket_id"]
    assert stored_state(db) == before
    assert published() == []


def _with_metadata(raw_json: str) -> str:
    """SEED with `raw_json` (not necessarily valid JSON) as its metadata."""
    return json.dumps({**SEED, "metadata": None}).replace("null", raw_json)


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


BAD_REQUESTS = [
    ("not json", dict(raw="{not json"), 400, "invalid_json"),
    ("array body", dict(raw="[1, 2]"), 400, "not_an_object"),
    ("too large", dict(raw=json.dumps({**SEED, "description": "x" * 70_000})), 413, "body_too_large"),
    (
        "form content",
        dict(raw="title=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    ),
    ("missing fields", dict(body={"title": "only a title"}), 422, "validation_failed"),
    ("bad email", dict(body={**SEED, "email": "nope"}), 422, "validation_failed"),
    ("bad priority", dict(body={**SEED, "priority": "asap"}), 422, "validation_failed"),
    ("metadata not object", dict(body={**SEED, "metadata": "x"}), 422, "validation_failed"),
    ("metadata too big", dict(body={**SEED, "metadata": {"k": "v" * 8200}}), 422, "validation_failed"),
    ("idempotency key too long", dict(headers={"Idempotency-Key": "k" * 201}), 422, "validation_failed"),
    ("no credentials", dict(headers={"Authorization": ""}), 401, "unauthorized"),
    ("wrong bearer", dict(headers={"Authorization": "Bearer nope"}), 401, "unauthorized"),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_json_error_and_stores_nothing(client, db, published, case, kwargs, status, code):
    before = stored_state(db)
    response = post(client, **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"] == code
    assert stored_state(db) == before
    assert published() == []


# Issue 11, item 4: what Firestore cannot store, and bodies no decoder should recurse into (each was a 5xx).
UNSTORABLE = [
    ("int beyond int64", dict(raw=_with_metadata('{"n": 9223372036854775808}')), 422, "validation_failed"),
    ("int below int64", dict(raw=_with_metadata('{"n": -9223372036854775809}')), 422, "validation_failed"),
    ("6000-digit int", dict(raw=_with_metadata('{"n": ' + "9" * 6000 + "}")), 422, "validation_failed"),
    ("1e400", dict(raw=_with_metadata('{"x": 1e400}')), 422, "validation_failed"),
    ("NaN literal", dict(raw=_with_metadata('{"x": NaN}')), 400, "invalid_json"),
    ("Infinity literal", dict(raw=_with_metadata('{"x": -Infinity}')), 400, "invalid_json"),
    ("empty key", dict(body={**SEED, "metadata": {"": 1}}), 422, "validation_failed"),
    ("blank key", dict(body={**SEED, "metadata": {"  ": 1}}), 422, "validation_failed"),
    ("reserved key", dict(body={**SEED, "metadata": {"a": {"__x__": 1}}}), 422, "validation_failed"),
    ("array in array", dict(body={**SEED, "metadata": {"a": [[1, 2]]}}), 422, "validation_failed"),
    ("maps 25 deep", dict(body={**SEED, "metadata": _deep(25)}), 422, "validation_failed"),
    (
        "arrays 25 deep",
        dict(raw=_with_metadata('{"a": ' + "[{}," * 24 + "1" + "]" * 24 + "}")),
        422,
        "validation_failed",
    ),
    ("maps 200 deep", dict(body={**SEED, "metadata": _deep(200)}), 400, "invalid_json"),
    ("5000 [ in metadata", dict(raw=_with_metadata("[" * 5000)), 400, "invalid_json"),
    ("5000 [ as the body", dict(raw="[" * 5000), 400, "invalid_json"),
    (
        "5000 [ in an ignored field",
        dict(raw=json.dumps(SEED)[:-1] + ', "x": ' + "[" * 5000 + "}"),
        400,
        "invalid_json",
    ),
    ("lone surrogate value", dict(raw=_with_metadata('{"a": "\\ud800"}')), 422, "validation_failed"),
    ("lone surrogate key", dict(raw=_with_metadata('{"\\udfff": 1}')), 422, "validation_failed"),
    ("lone surrogate title", dict(raw=json.dumps({**SEED, "title": "x\ud800"})), 422, "validation_failed"),
    (
        "UTF-8 encoded surrogate",
        dict(raw=json.dumps(SEED).encode()[:-2] + b'"\xed\xa0\x80"}'),
        400,
        "invalid_json",
    ),
    (
        "invalid UTF-8",
        dict(raw=json.dumps(SEED).encode().replace(b"Email", b"\xffmail")),
        400,
        "invalid_json",
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "code"), UNSTORABLE, ids=[c[0] for c in UNSTORABLE])
def test_unstorable_input_is_a_4xx_naming_the_problem_and_stores_nothing(
    client, db, case, kwargs, status, code
):
    # Nothing stored implies nothing published (intake publishes only what it stored), so no Pub/Sub wait.
    before = stored_state(db)
    response = post(client, **kwargs)
    assert (response.status_code, response.get_json()["error"]) == (status, code)
    detail = response.get_json()["detail"]
    if status == 422:
        assert [d["field"] for d in detail] in (["metadata"], ["title"])
    assert stored_state(db) == before


def test_validation_error_lists_each_field(client):
    detail = post(client, body={"title": "", "email": "x"}).get_json()["detail"]
    assert {d["field"] for d in detail} == {"title", "description", "email"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/tickets"), ("PUT", "/tickets"), ("POST", "/healthz"), ("DELETE", "/tickets/abc")],
)
def test_wrong_method_is_405_with_allow_header(client, db, method, path):
    before = stored_state(db)
    response = client.open(
        path, method=method, headers=AUTH, data=json.dumps(SEED), content_type="application/json"
    )
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert response.headers["Allow"] in {"GET", "POST"}
    assert stored_state(db) == before


def test_hmac_signed_request_is_accepted_and_stale_one_refused(client):
    body = json.dumps(SEED).encode()
    fresh = sign(SECRET, body, int(time.time()))
    stale = sign(SECRET, body, int(time.time()) - 600)
    assert post(client, raw=body, headers={"Authorization": "", **fresh}).status_code == 202
    assert post(client, raw=body, headers={"Authorization": "", **stale}).status_code == 401


def test_get_ticket_shows_public_view_and_404_for_unknown(client):
    ticket_id = post(client).get_json()["ticket_id"]
    view = client.get(f"/tickets/{ticket_id}", headers=AUTH).get_json()
    assert view["status"] == "received" and view["history"][0]["status"] == "received"
    assert "email" not in view
    assert client.get("/tickets/doesnotexist", headers=AUTH).status_code == 404
    assert client.get(f"/tickets/{ticket_id}").status_code == 401


def test_healthz_checks_both_emulators_without_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"firestore": "ok", "pubsub": "ok"}


def test_counts_every_accepted_ticket(client, db):
    before = counter(db, "triage_tickets_received")
    for _ in range(3):
        post(client)
    assert counter(db, "triage_tickets_received") == before + 3


def test_concurrent_requests_with_repeated_keys_create_each_ticket_once(client, db, published):
    """Concurrent requests share Firestore commits; a repeated key in a group still yields one ticket."""
    before_tickets = len(stored_state(db)["tickets"])
    before = counter(db, "triage_tickets_received")
    keys = [f"burst-{i}" for i in range(20)] * 2

    def send(key: str) -> tuple[str, int, str]:
        response = post(client.application.test_client(), headers={"Idempotency-Key": key})
        return key, response.status_code, response.get_json()["ticket_id"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, keys))
    by_key: dict[str, set[str]] = {}
    for key, status, ticket_id in results:
        assert status in (200, 202)
        by_key.setdefault(key, set()).add(ticket_id)
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len(stored_state(db)["tickets"]) == before_tickets + 20
    assert counter(db, "triage_tickets_received") == before + 20
    assert {m.attributes["ticket_id"] for m in published()} == {next(iter(ids)) for ids in by_key.values()}


def test_a_poison_ticket_past_the_model_fails_alone_in_a_group_commit(client, db, monkeypatch):
    """Were the model to let through a document Firestore refuses, the shared commit is retried entry by
    entry: only the poison ticket fails, with a 422 (not a 503 telling its sender to retry forever)."""
    monkeypatch.setattr(model, "storage_problem", lambda value: None)
    bodies = [SEED] * 14
    bodies.insert(7, {**SEED, "metadata": {"__x__": 1}})
    before = len(stored_state(db)["tickets"])

    def send(body: dict) -> int:
        return post(client.application.test_client(), body=body).status_code

    for _ in range(3):
        with ThreadPoolExecutor(len(bodies)) as pool:
            assert list(pool.map(send, bodies)) == [202] * 7 + [422] + [202] * 7
    assert len(stored_state(db)["tickets"]) == before + 3 * 14


def test_a_declared_length_over_the_limit_is_refused_before_reading(client, db):
    before = stored_state(db)
    response = client.post(
        "/tickets",
        data=json.dumps(SEED),
        headers=AUTH,
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": "99999999999"},
    )
    assert (response.status_code, response.get_json()["error"]) == (413, "body_too_large")
    assert stored_state(db) == before
