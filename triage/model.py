"""The ticket as intake accepts it, as Firestore stores it, and as the API shows it."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from triage.states import Status

MAX_BODY_BYTES = 64 * 1024
MAX_METADATA_BYTES = 8 * 1024
MAX_IDEMPOTENCY_KEY = 200
# Nesting of arrays/objects anywhere in a request body, checked before the (recursive) JSON decoder runs:
# deep enough for any real ticket, shallow enough that nothing downstream recurses far.
MAX_BODY_DEPTH = 32
# Firestore stores at most 20 levels of maps in a document and the ticket document itself is one; metadata
# (itself level 1 here) may nest objects and arrays 10 levels deep, well inside that.
MAX_METADATA_DEPTH = 10
MAX_FIELD_NAME_BYTES = 1500  # Firestore's limit on a map key
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # Firestore integers are 64-bit
_RESERVED_KEY = re.compile(r"__.*__", re.DOTALL)  # Firestore reserves such field names
# A lone surrogate (e.g. from a "\ud800" escape) is not Unicode text: it cannot be encoded as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the destination's business.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TicketIn(BaseModel):
    """The intake request body. Unknown top-level fields are ignored, per the contract."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = Field(min_length=1, max_length=10_000)
    email: StrictStr = Field(max_length=254)
    priority: Priority = Priority.MEDIUM
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be a valid email address")
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_object(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        # Also before serializing (json.dumps recurses): a Python caller may hand in any depth.
        problem = storage_problem(value)
        if problem:
            raise ValueError(problem)
        if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes when serialized")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        # After pydantic's own pass: str_strip_whitespace also strips keys, so " " only becomes "" there.
        problem = storage_problem(value)
        if problem:
            raise ValueError(problem)
        return value


_NOT_UNICODE = "must be valid Unicode text (no lone surrogates)"


def storage_problem(metadata: dict[Any, Any]) -> str | None:
    """Why Firestore could not store this metadata object, or None if it can (the first problem found).

    Recursion is bounded by MAX_METADATA_DEPTH whatever the input's depth.
    """
    return _container_problem(metadata, depth=1, in_array=False)


def _container_problem(value: dict[Any, Any] | list[Any], depth: int, in_array: bool) -> str | None:
    if depth > MAX_METADATA_DEPTH:
        return f"must not nest objects or arrays more than {MAX_METADATA_DEPTH} levels deep"
    if isinstance(value, list):
        if in_array:
            return "must not contain an array directly inside an array (Firestore cannot store it)"
        return next(filter(None, (_value_problem(item, depth, True) for item in value)), None)
    for key, item in value.items():
        problem = _key_problem(key) or _value_problem(item, depth, False)
        if problem:
            return problem
    return None


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return "object keys must be strings"
    if not key:
        return "object keys must not be empty"
    if _SURROGATE.search(key):
        return f"object keys {_NOT_UNICODE}"
    if _RESERVED_KEY.fullmatch(key):
        return "object keys must not look like __name__ (reserved by Firestore)"
    if len(key.encode()) > MAX_FIELD_NAME_BYTES:
        return f"object keys must be at most {MAX_FIELD_NAME_BYTES} bytes"
    return None


def _value_problem(value: Any, depth: int, in_array: bool) -> str | None:
    """`depth` is that of the container holding `value`."""
    if isinstance(value, dict | list):
        return _container_problem(value, depth + 1, in_array)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        in_range = INT64_MIN <= value <= INT64_MAX
        return None if in_range else f"integers must be between {INT64_MIN} and {INT64_MAX}"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        return f"strings {_NOT_UNICODE}" if _SURROGATE.search(value) else None
    # Only reachable from Python callers: JSON has no other types.
    return "values must be JSON strings, numbers, booleans, null, arrays or objects"


class ReviewIn(BaseModel):
    """A person's decision on a ticket in the review queue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    department: StrictStr | None = Field(None, min_length=1, max_length=64)
    team: StrictStr | None = Field(None, min_length=1, max_length=64)
    reject: bool = False  # not a ticket for anyone (spam, duplicate): ends as failed/review_rejected
    reviewer: StrictStr | None = Field(None, max_length=100)
    note: StrictStr | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _department_or_reject(self) -> ReviewIn:
        if self.reject == (self.department is not None):
            raise ValueError("give either a department or reject: true")
        return self


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as the contract's `detail`: one entry per field, input values never echoed."""
    errors = []
    for err in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        errors.append({"field": location, "message": message})
    return errors


def history_entry(status: Status, stage: str, at: datetime, note: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status.value, "stage": stage, "at": at}
    if note:
        entry["note"] = note
    return entry


def new_ticket_doc(
    ticket: TicketIn, ticket_id: str, now: datetime, trace: str | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": ticket_id,
        **ticket.model_dump(mode="json"),
        "status": Status.RECEIVED.value,
        "created_at": now,
        "updated_at": now,
        "history": [history_entry(Status.RECEIVED, "intake", now)],
    }
    if trace:
        doc["trace"] = trace
    return doc


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _deferral(deferred: dict[str, Any] | None) -> dict[str, Any] | None:
    """A parked delivery: why and until when (e.g. a destination's rate-limit window)."""
    if not deferred:
        return None
    return {
        "until": _iso(deferred.get("until")),
        "reason": deferred.get("reason"),
        "system": deferred.get("system"),
    }


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """What `GET /tickets/{id}` shows: state and decisions, not the requester's email or the ticket text."""
    classification = doc.get("classification") or {}
    view = {
        "ticket_id": doc["id"],
        "status": doc["status"],
        "priority": doc.get("priority"),
        "title": doc.get("title"),
        "department": classification.get("department"),
        "team": classification.get("team"),
        "confidence": classification.get("confidence"),
        "classifier": classification.get("classifier"),
        "destination": doc.get("destination"),
        "failure": doc.get("failure"),
        "review": doc.get("review"),
        "delivery_deferred": _deferral(doc.get("delivery_deferred")),
        "created_at": _iso(doc.get("created_at")),
        "updated_at": _iso(doc.get("updated_at")),
        "history": [{k: _iso(v) for k, v in entry.items()} for entry in doc.get("history", [])],
    }
    return {k: v for k, v in view.items() if v is not None}
