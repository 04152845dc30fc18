"""Freshservice API v2 stub: create ticket, filter tickets, get ticket (https://api.freshservice.com/).

Each rule and the documentation it models:

* Auth: basic ``<api_key>:<anything>`` (Freshservice's convention is ``X``) -> else 401
  ``{"code": "invalid_credentials", "message": ...}``. JSON content type required -> else 415.
* ``POST /api/v2/tickets``: validation errors answer 400 ``{"description": "Validation failed", "errors":
  [{"field", "message", "code"}]}``: a requester (email / requester_id / phone), subject, description,
  status (2 open, 3 pending, 4 resolved, 5 closed), priority (1 low, 2 medium, 3 high, 4 urgent), source,
  group_id (known groups if configured), tags (strings <= 255 chars, no commas), custom_fields (known names
  if configured), unknown fields (``invalid_field``). 201 ``{"ticket": {"id": 1, ...}}``.
* ``GET /api/v2/tickets/filter?query="..."``: the query must be enclosed in double quotes (<= 512 chars);
  conditions ``field:value`` / ``field:>value`` / ``field:<value`` with AND / OR / parentheses; strings in
  single quotes. Fields: tag, status, priority, group_id, requester_id, email, agent_id, urgency, impact,
  workspace_id, plus ``filterable_custom_fields`` (the real API filters only number/checkbox/dropdown/date
  custom fields). ``{"tickets": [...], "total": n}``, 30 per page (``page``, ``per_page`` <= 100).
  Filter is served from a search index and lags a create, so by default a new ticket stays invisible to it
  for ``search_lag`` seconds (1 s; Freshservice publishes no figure).
* Workspaces: every ticket has a ``workspace_id``; a create without one lands in the primary workspace
  (``primary_workspace_id``: the real id is an account detail; the stub picks 2), and filter searches
  only the primary workspace unless the ``workspace_id`` parameter names another (``0``: all workspaces)
  (https://support.freshservice.com/en/support/solutions/articles/50000006112-what-is-a-primary-workspace-:
  "In the absence of the workspace ID, the data will be created/pulled from the primary workspace";
  the ``0`` rule as quoted from the API docs by FreshservicePS' Get-FreshServiceTicket). With
  ``workspaces`` set, a create naming another workspace fails validation like an unknown group.
* ``GET /api/v2/tickets/{id}``.
* ``rate_limit_next``: 429 with ``Retry-After`` (seconds; it can be many minutes), ``X-RateLimit-Total``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Used-CurrentRequest``
  (https://support.freshservice.com/en/support/solutions/articles/50000000308-how-can-i-check-the-available-api-limit-;
  limits are per minute and per plan, 100/min total on the smallest:
  https://support.freshservice.com/en/support/solutions/articles/50000000293-what-is-the-rate-limit-for-apis-across-all-plans-)
  and the JSON body ``{"message": "You have exceeded the limit of requests per minute"}``, worded after
  Freshdesk's API throttler (the same Freshworks platform), which answers hourly limits with
  ``{"message": "You have exceeded the limit of requests per hour"}``
  (https://github.com/Ramesh-Veeriaperumal/freshconsult/blob/master/lib/middleware/fd_api_throttler.rb).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.stubs.base import RecordedRequest, Reply, StubServer, _Fault

TICKET_FIELDS = {
    "name",
    "requester_id",
    "email",
    "phone",
    "subject",
    "type",
    "status",
    "priority",
    "description",
    "responder_id",
    "cc_emails",
    "custom_fields",
    "due_by",
    "email_config_id",
    "fr_due_by",
    "group_id",
    "source",
    "tags",
    "assets",
    "urgency",
    "impact",
    "category",
    "sub_category",
    "item_category",
    "department_id",
    "workspace_id",
}
FILTER_FIELDS = {
    "tag",
    "status",
    "priority",
    "group_id",
    "requester_id",
    "email",
    "agent_id",
    "urgency",
    "impact",
    "workspace_id",
}
DEFAULT_SEARCH_LAG = 1.0
PRIMARY_WORKSPACE_ID = 2
ALL_WORKSPACES = 0
PLAN_LIMIT_PER_MINUTE = 100  # the smallest plan's account-wide total
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOKEN = re.compile(
    r"\s*(\(|\)|AND\b|OR\b|[A-Za-z_][A-Za-z0-9_]*\s*:\s*[<>]?\s*(?:'(?:[^'\\]|\\.)*'|[^\s()]+))"
)


def _err(field: str, message: str, code: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": code}


def _validation(errors: list[dict[str, str]]) -> Reply:
    return Reply(400, {"description": "Validation failed", "errors": errors})


class FreshserviceStub(StubServer):
    name = "freshservice"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        api_key: str = "fs-test-key",
        groups: set[int] | None = None,
        custom_fields: set[str] | None = None,
        filterable_custom_fields: set[str] | None = None,
        search_lag: float = DEFAULT_SEARCH_LAG,
        primary_workspace_id: int = PRIMARY_WORKSPACE_ID,
        workspaces: set[int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, port, latency)
        self.api_key = api_key
        self.groups = groups  # None: any positive group id is accepted
        self.custom_fields = custom_fields  # None: any custom field name is accepted
        self.filterable_custom_fields = set(filterable_custom_fields or ())
        self.search_lag = search_lag  # seconds a new ticket stays invisible to filter
        self.primary_workspace_id = primary_workspace_id
        self.workspaces = workspaces  # None: any positive workspace id is accepted
        self.clock = clock  # measures search_lag; tests may pass a fake clock their sleeps advance
        self.tickets: dict[int, dict[str, Any]] = {}
        self._created_at: dict[int, float] = {}
        self._next_id = 1

    def reset_state(self) -> None:
        self.tickets.clear()
        self._created_at.clear()
        self._next_id = 1

    def error_reply(self, status: int, message: str) -> Reply:
        if status == 429:
            return Reply(429, {"message": "You have exceeded the limit of requests per minute"})
        return Reply(status, {"code": "error", "message": message})

    def rate_limit_next(
        self,
        n: int = 1,
        retry_after: float | str = 1,
        *,
        method: str | None = None,
        total: int = PLAN_LIMIT_PER_MINUTE,
    ) -> None:
        """429 with Freshservice's rate-limit headers; ``total`` is the plan's per-minute limit."""
        headers = {
            "Retry-After": retry_after if isinstance(retry_after, str) else f"{retry_after:g}",
            "X-RateLimit-Total": str(total),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Used-CurrentRequest": "1",
        }
        self._add(_Fault("rate_limit", n, method, 429, None, headers))

    def handle(self, req: RecordedRequest) -> Reply:
        auth = req.basic_auth()
        if auth is None or auth[0] != self.api_key:
            return Reply(
                401,
                {
                    "code": "invalid_credentials",
                    "message": "You have to be logged in to perform this action.",
                },
            )
        path = req.path.rstrip("/")
        if path == "/api/v2/tickets" and req.method == "POST":
            return self._create(req)
        if path == "/api/v2/tickets/filter" and req.method == "GET":
            return self._filter(req)
        match = re.fullmatch(r"/api/v2/tickets/(\d+)", path)
        if match and req.method == "GET":
            with self._lock:
                ticket = self.tickets.get(int(match.group(1)))
            return Reply(200, {"ticket": ticket}) if ticket else Reply(404, None)
        return Reply(404, {"code": "not_found", "message": f"No route for {req.method} {req.path}"})

    # -- create -----------------------------------------------------------------------------------

    def _create(self, req: RecordedRequest) -> Reply:
        if not req.is_json():
            ctype = req.headers.get("content-type", "")
            return Reply(
                415,
                {
                    "code": "invalid_content_type",
                    "message": f"Content-Type header is set to {ctype}. It should be set to application/json",
                },
            )
        body = req.json
        if not isinstance(body, dict):
            return Reply(400, {"code": "invalid_json", "message": "Request body has invalid json format"})
        errors = self._validate(body)
        if errors:
            return _validation(errors)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            ticket_id = self._next_id
            self._next_id += 1
            description = body["description"]
            ticket = {
                "id": ticket_id,
                "subject": body["subject"],
                "description": description,
                "description_text": html.unescape(re.sub(r"<[^>]+>", " ", description)).strip(),
                "status": body["status"],
                "priority": body["priority"],
                "source": body.get("source", 2),
                "requester_id": body.get("requester_id") or 1000 + abs(hash(body.get("email", ""))) % 10**6,
                "email": body.get("email"),
                "group_id": body.get("group_id"),
                "workspace_id": body.get("workspace_id", self.primary_workspace_id),
                "tags": list(body.get("tags") or []),
                "custom_fields": dict(body.get("custom_fields") or {}),
                "type": body.get("type", "Incident"),
                "urgency": body.get("urgency", 1),
                "impact": body.get("impact", 1),
                "created_at": now,
                "updated_at": now,
            }
            self.tickets[ticket_id] = ticket
            self._created_at[ticket_id] = self.clock()
        return Reply(201, {"ticket": ticket}, created=True)

    def _validate(self, body: dict[str, Any]) -> list[dict[str, str]]:
        errors = [
            _err(k, "Unexpected/invalid field in request", "invalid_field")
            for k in body
            if k not in TICKET_FIELDS
        ]
        if not any(body.get(k) for k in ("email", "requester_id", "phone")):
            errors.append(
                _err(
                    "requester_id",
                    "Please fill at least 1 of email, phone, requester_id fields",
                    "missing_field",
                )
            )
        if body.get("email") is not None and not (
            isinstance(body["email"], str) and _EMAIL.match(body["email"])
        ):
            errors.append(_err("email", "It should be in the 'valid email address' format", "invalid_value"))
        for name in ("subject", "description"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                errors.append(_err(name, "It should be a/an String", "missing_field"))
        if isinstance(body.get("subject"), str) and len(body["subject"]) > 255:
            errors.append(_err("subject", "Has more than 255 characters", "invalid_value"))
        for name, allowed in (("status", (2, 3, 4, 5)), ("priority", (1, 2, 3, 4))):
            value = body.get(name)
            if value is None:
                errors.append(
                    _err(
                        name,
                        f"It should be one of these values: '{','.join(map(str, allowed))}'",
                        "missing_field",
                    )
                )
            elif type(value) is not int or value not in allowed:
                errors.append(
                    _err(
                        name,
                        f"It should be one of these values: '{','.join(map(str, allowed))}'",
                        "invalid_value",
                    )
                )
        if "source" in body and (type(body["source"]) is not int or not 1 <= body["source"] <= 14):
            errors.append(_err("source", "It should be one of these values: '1..14'", "invalid_value"))
        if "group_id" in body:
            group = body["group_id"]
            if type(group) is not int or group <= 0:
                errors.append(_err("group_id", "It should be a/an Positive Integer", "datatype_mismatch"))
            elif self.groups is not None and group not in self.groups:
                errors.append(
                    _err("group_id", "There is no group matching the given group_id", "invalid_value")
                )
        errors += self._workspace_errors(body)
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            errors.append(_err("tags", "It should be a/an Array", "datatype_mismatch"))
        elif any(len(t) > 255 for t in tags):
            errors.append(
                _err(
                    "tags",
                    "It should only contain elements that have maximum of 255 characters",
                    "invalid_value",
                )
            )
        elif any("," in t for t in tags):
            errors.append(_err("tags", "It should not contain ','", "invalid_value"))
        custom = body.get("custom_fields", {})
        if not isinstance(custom, dict):
            errors.append(_err("custom_fields", "It should be a/an key/value pair", "datatype_mismatch"))
        elif self.custom_fields is not None:
            errors += [
                _err(k, "Unexpected/invalid field in request", "invalid_field")
                for k in custom
                if k not in self.custom_fields
            ]
        return errors

    def _workspace_errors(self, body: dict[str, Any]) -> list[dict[str, str]]:
        if "workspace_id" not in body:
            return []
        workspace = body["workspace_id"]
        if type(workspace) is not int or workspace <= 0:
            return [_err("workspace_id", "It should be a/an Positive Integer", "datatype_mismatch")]
        if self.workspaces is not None and workspace not in self.workspaces:
            return [
                _err("workspace_id", "There is no workspace matching the given workspace_id", "invalid_value")
            ]
        return []

    # -- filter -----------------------------------------------------------------------------------

    def _filter(self, req: RecordedRequest) -> Reply:
        query = req.query.get("query", "")
        if len(query) < 2 or not (query.startswith('"') and query.endswith('"')) or len(query) > 512:
            return _validation(
                [
                    _err(
                        "query",
                        "It should be a String enclosed in double quotes, up to 512 characters",
                        "invalid_value",
                    )
                ]
            )
        try:
            predicate = _Parser(query[1:-1], FILTER_FIELDS | self.filterable_custom_fields).parse()
            page = int(req.query.get("page", 1))
            per_page = int(req.query.get("per_page", 30))
            if not (1 <= page <= 10 and 1 <= per_page <= 100):
                raise ValueError("page must be 1..10 and per_page 1..100")
        except ValueError as exc:
            return _validation([_err("query", str(exc), "invalid_value")])
        workspace = self._workspace_scope(req.query.get("workspace_id"))
        if workspace is None:
            return _validation(
                [_err("workspace_id", "It should be a/an Positive Integer", "datatype_mismatch")]
            )
        hits = self._visible(predicate, workspace)
        start = (page - 1) * per_page
        return Reply(200, {"tickets": hits[start : start + per_page], "total": len(hits)})

    def _workspace_scope(self, raw: str | None) -> int | None:
        """The workspace a filter searches: the primary one unless named; 0 = all; None = not a number."""
        if raw is None or raw == "":
            return self.primary_workspace_id
        try:
            workspace = int(raw)
        except ValueError:
            return None
        return workspace if workspace >= 0 else None

    def _visible(self, predicate: Any, workspace: int) -> list[dict[str, Any]]:
        """Matching tickets the index already shows, in the searched workspace(s), oldest first."""
        now = self.clock()
        with self._lock:
            return [
                t
                for tid, t in sorted(self.tickets.items())
                if now - self._created_at[tid] >= self.search_lag
                and workspace in (ALL_WORKSPACES, t["workspace_id"])
                and predicate(t)
            ]


class _Parser:
    """Recursive descent over the filter language.

    expr := term (OR term)* ; term := factor (AND factor)* ; factor := '(' expr ')' | field ':' [<>] value
    """

    def __init__(self, text: str, fields: set[str]) -> None:
        self.fields = fields
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match:
                raise ValueError(f"invalid query near {text[pos : pos + 20]!r}")
            self.tokens.append(match.group(1).strip())
            pos = match.end()
        if not self.tokens:
            raise ValueError("empty query")
        self.pos = 0

    def parse(self) -> Any:
        predicate = self._expr()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r}")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _expr(self) -> Any:
        parts = [self._term()]
        while self._peek() == "OR":
            self.pos += 1
            parts.append(self._term())
        return lambda t: any(p(t) for p in parts)

    def _term(self) -> Any:
        parts = [self._factor()]
        while self._peek() == "AND":
            self.pos += 1
            parts.append(self._factor())
        return lambda t: all(p(t) for p in parts)

    def _factor(self) -> Any:
        tok = self._peek()
        if tok is None:
            raise ValueError("unexpected end of query")
        self.pos += 1
        if tok == "(":
            inner = self._expr()
            if self._peek() != ")":
                raise ValueError("missing ')'")
            self.pos += 1
            return inner
        if tok in (")", "AND", "OR"):
            raise ValueError(f"unexpected {tok!r}")
        return self._condition(tok)

    def _condition(self, token: str) -> Any:
        name, _, rest = token.partition(":")
        name, rest = name.strip(), rest.strip()
        if name not in self.fields:
            raise ValueError(f"'{name}' is not a supported filter field")
        op = rest[0] if rest[:1] in ("<", ">") else ""
        raw = rest[1:].strip() if op else rest
        value: Any
        if raw.startswith("'"):
            value = raw[1:-1].replace("\\'", "'")
        elif raw == "null":
            value = None
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"'{raw}' must be a number or a string in single quotes") from None

        def get(ticket: dict[str, Any]) -> Any:
            if name == "tag":
                return ticket.get("tags") or []
            if name == "agent_id":
                return ticket.get("responder_id")
            return ticket.get(name, ticket.get("custom_fields", {}).get(name))

        def test(ticket: dict[str, Any]) -> bool:
            actual = get(ticket)
            if name == "tag":
                return (not actual) if value is None else value in actual
            if op == ">":
                return actual is not None and actual >= value
            if op == "<":
                return actual is not None and actual <= value
            return actual == value

        return test
