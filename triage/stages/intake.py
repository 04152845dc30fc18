"""The intake HTTP API: validate, authenticate, store, enqueue; plus ticket lookup and health."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import secrets
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ValidationError

from triage.auth import AuthError, authenticate
from triage.logs import log_context, trace_from_header
from triage.model import (
    INT64_MAX,
    INT64_MIN,
    MAX_BODY_BYTES,
    MAX_BODY_DEPTH,
    MAX_IDEMPOTENCY_KEY,
    ReviewIn,
    TicketIn,
    field_errors,
    new_ticket_doc,
    public_view,
)
from triage.ratelimit import retry_after_header
from triage.runtime import Runtime
from triage.states import FailureReason, Stage, Status
from triage.store import ReviewConflict, TicketNotFound

log = logging.getLogger("triage.intake")

CREATE_PATHS = frozenset({"/", "/tickets", "/webhook/ticket"})
_TICKET_PATH = re.compile(r"^/tickets/(?P<id>[A-Za-z0-9_-]{1,128})(?P<review>/review)?$")
Response = tuple[dict[str, Any], int, dict[str, str]]
T = TypeVar("T", bound=BaseModel)
_RETRY = {"Retry-After": "5"}
# One token per match, each character consumed once (linear time, no backtracking): a string literal, which
# ends at its closing quote or at the end of the text (so an unterminated one never makes the engine rescan),
# or a run of anything but quotes and brackets. Removing all of them leaves the brackets outside strings.
_NOT_A_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[^"\[\]{}]+', re.DOTALL)
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}

    def response(self) -> Response:
        return {"error": self.code, "detail": self.detail}, self.status, self.headers


def handle(request: Any, rt: Runtime) -> Response:
    """Dispatches one request; every outcome, including errors, is a JSON response."""
    path = request.path.rstrip("/") or "/"
    trace = trace_from_header(
        request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent")
    )
    with log_context(trace=trace):
        try:
            if path == "/healthz":
                return _only(request, "GET") or health(rt)
            _admit(request, rt)  # before reading or authenticating: a flood costs as little as possible
            body = _read_body(request)
            authenticate(rt.settings.webhook_secret, request.headers, body)
            if path in CREATE_PATHS:
                return _only(request, "POST") or create_ticket(request, body, rt, trace)
            match = _TICKET_PATH.match(path)
            if match and match["review"]:
                return _only(request, "POST") or review_ticket(
                    match["id"], parse_json_object(request, body), rt
                )
            if match:
                return _only(request, "GET") or get_ticket(match["id"], rt)
            raise ApiError(404, "not_found", f"no route for {path}")
        except AuthError as exc:
            return ApiError(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"}).response()
        except ApiError as exc:
            return exc.response()
        except (gexc.GoogleAPIError, TimeoutError) as exc:
            log.warning("storage or queue unavailable: %s", type(exc).__name__)
            return ApiError(
                503, "unavailable", "storage or queue unavailable, retry later", _RETRY
            ).response()
        except Exception:
            log.exception("unexpected error")
            return ApiError(500, "internal", "unexpected error; it has been logged").response()


def sender_of(request: Any) -> str:
    """The client address: the last X-Forwarded-For entry (appended by the platform's front end; earlier
    ones are whatever the client sent) or the connection's peer."""
    forwarded = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    return forwarded[-1] if forwarded else (request.remote_addr or "unknown")


def _admit(request: Any, rt: Runtime) -> None:
    limiter, refusals = rt.admission
    wait_s = limiter.admit(sender_of(request))
    if wait_s is None:
        return
    refusals.add()
    request.stream = io.BytesIO()  # the body is not wanted: answer at once (see _too_large)
    raise ApiError(
        429, "rate_limited", "too many requests from this sender; retry later", retry_after_header(wait_s)
    )


def _only(request: Any, method: str) -> Response | None:
    if request.method == method:
        return None
    return ApiError(405, "method_not_allowed", f"use {method}", {"Allow": method}).response()


def _read_body(request: Any) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large(request)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise _too_large(request)
    return body


def _too_large(request: Any) -> ApiError:
    # functions-framework's after-request hook reads whatever is left of the body (request.get_data()):
    # for a declared 99999999999 bytes that holds the thread until the client gives up, and a short body
    # ends in a 500. The rest is never wanted: an empty stream in its place (werkzeug's `stream` is a
    # settable cached property) lets the 413 go out at once; the server then closes the connection.
    request.stream = io.BytesIO()
    return ApiError(413, "body_too_large", f"body must be at most {MAX_BODY_BYTES} bytes")


def parse_json_object(request: Any, body: bytes) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
    payload = _decode_json(body)
    if not isinstance(payload, dict):
        raise ApiError(400, "not_an_object", "body must be a JSON object")
    return payload


def _decode_json(body: bytes) -> Any:
    """The body as JSON, or 400; never recurses deeper than MAX_BODY_DEPTH."""
    try:
        # Strict decoding: json.loads(bytes) would let UTF-8-encoded surrogates through ("surrogatepass").
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "body is not valid JSON: not valid UTF-8") from None
    if nesting_depth(text) > MAX_BODY_DEPTH:
        detail = f"body must not nest arrays or objects more than {MAX_BODY_DEPTH} levels deep"
        raise ApiError(400, "invalid_json", detail)
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity; recursion only if the bound above is wrong
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON `text`, brackets inside strings not counted; linear time."""
    steps = map(_BRACKET_STEP.__getitem__, _NOT_A_BRACKET.sub("", text))
    return max(itertools.accumulate(steps), default=0)


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN, Infinity and -Infinity; JSON has no such literals.
    raise ValueError(f"{name} is not a JSON value")


def _parse_int(digits: str) -> int:
    """Longer than any int64 (19 digits and a sign): a stand-in just as out of range, which the model
    rejects as 422, instead of converting thousands of digits (or int()'s ValueError past 4300)."""
    if len(digits) > 20:
        return INT64_MIN - 1 if digits.startswith("-") else INT64_MAX + 1
    return int(digits)


def validated(model: type[T], payload: dict[str, Any]) -> T:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", field_errors(exc)) from None


def _idempotency_key(request: Any) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        detail = [{"field": "Idempotency-Key", "message": f"must be 1-{MAX_IDEMPOTENCY_KEY} characters"}]
        raise ApiError(422, "validation_failed", detail)
    return key


def create_ticket(request: Any, body: bytes, rt: Runtime, trace: str | None) -> Response:
    ticket = validated(TicketIn, parse_json_object(request, body))
    key = _idempotency_key(request)
    ticket_id = secrets.token_hex(16)  # 128 random bits: unguessable, no ordering hot-spot in Firestore
    created = _store(rt, (new_ticket_doc(ticket, ticket_id, rt.store.clock(), trace), key))
    with log_context(ticket_id=created.ticket_id):
        if created.publish_pending:
            _publish(rt, created.ticket_id, trace, key, fresh=created.created)
        if created.created:
            log.info("ticket received", extra={"fields": {"priority": ticket.priority.value}})
        else:
            log.info(
                "repeat of an idempotency key", extra={"fields": {"republished": created.publish_pending}}
            )
    body_out = {
        "ticket_id": created.ticket_id,
        "status": created.status,
        "links": {"self": f"/tickets/{created.ticket_id}"},
    }
    return body_out, (202 if created.created else 200), {"Location": f"/tickets/{created.ticket_id}"}


def _store(rt: Runtime, entry: tuple[dict[str, Any], str | None]) -> Any:
    try:
        return rt.creations.submit(entry)
    except gexc.InvalidArgument:
        # Firestore refused this document: the model let through something it cannot store. Retrying would
        # fail forever, so this is the sender's 422 (and our bug to fix in triage.model), not a 503.
        log.error("Firestore refused a validated ticket", exc_info=True)
        detail = [{"field": "body", "message": "contains a value that cannot be stored"}]
        raise ApiError(422, "validation_failed", detail) from None


def _publish(rt: Runtime, ticket_id: str, trace: str | None, key: str | None, fresh: bool) -> None:
    """Enqueues the ticket. On failure the sender gets 503 and must not lose the ticket:

    with an idempotency key, the retry finds it unpublished and publishes it; without one, a retry would
    create a new ticket, so this one is closed as failed rather than left stranded in `received`.
    """
    try:
        rt.queue.publish(rt.settings.classify_topic, ticket_id, trace)
    except Exception as exc:
        log.error("publish failed after the write: %s", type(exc).__name__)
        if fresh and not key:
            _close_unqueued(rt, ticket_id)
        raise ApiError(503, "unavailable", "ticket stored but not enqueued; retry", _RETRY) from exc
    if key:
        rt.store.mark_published(key)


def _close_unqueued(rt: Runtime, ticket_id: str) -> None:
    try:
        rt.store.mark_failed(
            ticket_id, Stage.INTAKE, FailureReason.PUBLISH_FAILED, "could not enqueue; sender told to retry"
        )
    except Exception:
        log.exception("could not close the unqueued ticket; triage_tickets_stuck will show it")


def review_ticket(ticket_id: str, payload: dict[str, Any], rt: Runtime) -> Response:
    """A person sets the department of a ticket in review; the ticket then continues to route."""
    review = validated(ReviewIn, payload)
    if review.reject:
        return reject_ticket(ticket_id, review, rt)
    departments = rt.config.triage.departments
    if review.department not in departments:
        detail = [{"field": "department", "message": f"must be one of {', '.join(departments)}"}]
        raise ApiError(422, "validation_failed", detail)
    if review.team is not None and review.team not in departments[review.department].teams:
        detail = [
            {"field": "team", "message": f"must be one of {', '.join(departments[review.department].teams)}"}
        ]
        raise ApiError(422, "validation_failed", detail)
    decision = {
        **review.model_dump(exclude_none=True),
        "team": rt.config.triage.team_or_default(review.department, review.team),
    }
    with log_context(ticket_id=ticket_id):
        try:
            recorded = rt.store.record_review(ticket_id, decision)
        except TicketNotFound:
            raise ApiError(404, "not_found", f"no ticket {ticket_id}") from None
        except ReviewConflict as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        # Published on every accepted request: a retry after a failed publish must not strand it.
        rt.queue.publish(rt.settings.route_topic, ticket_id)
        log.info(
            "review recorded", extra={"fields": {"department": review.department, "repeat": not recorded}}
        )
    body = {
        "ticket_id": ticket_id,
        "status": "needs_review",
        "review": {k: decision[k] for k in ("department", "team")},
    }
    return body, 202, {"Location": f"/tickets/{ticket_id}"}


def reject_ticket(ticket_id: str, review: ReviewIn, rt: Runtime) -> Response:
    snap = rt.store.snapshot(ticket_id)
    if not snap.exists:
        raise ApiError(404, "not_found", f"no ticket {ticket_id}")
    if snap.to_dict()["status"] != Status.NEEDS_REVIEW:
        raise ApiError(409, "conflict", f"ticket is {snap.to_dict()['status']}, not needs_review")
    detail = f"rejected by {review.reviewer or 'a reviewer'}" + (f": {review.note}" if review.note else "")
    transition = rt.store.mark_failed(
        ticket_id, Stage.REVIEW, FailureReason.REVIEW_REJECTED, detail, snapshot=snap
    )
    if not transition.applied:
        raise ApiError(409, "conflict", f"ticket is {transition.status.value}, not needs_review")
    return {"ticket_id": ticket_id, "status": transition.status.value}, 200, {}


def get_ticket(ticket_id: str, rt: Runtime) -> Response:
    doc = rt.store.get(ticket_id)
    if doc is None:
        raise ApiError(404, "not_found", f"no ticket {ticket_id}")
    return public_view(doc), 200, {}


def health(rt: Runtime) -> Response:
    checks: dict[str, str] = {}
    try:
        rt.store.ping()
        checks["firestore"] = "ok"
    except Exception as exc:
        checks["firestore"] = f"unavailable: {type(exc).__name__}"
    try:
        rt.queue.topic_exists(rt.settings.classify_topic)
        checks["pubsub"] = "ok"
    except Exception as exc:
        checks["pubsub"] = f"unavailable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}, (200 if healthy else 503), {}
