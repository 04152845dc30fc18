"""Jira Cloud REST stub: create issue (v2), enhanced JQL search, the removed classic search.

* ``POST /rest/api/2/issue`` (and ``/rest/api/3/issue``): basic auth email:API-token (401 otherwise),
  ``Content-Type: application/json`` (415 otherwise), field validation with Jira's error shape
  ``{"errorMessages": [...], "errors": {"field": "message"}}``: project, summary (required, single line,
  < 255 chars, a string), issuetype (known name or id), description (a string in v2), labels (no spaces),
  priority (known name or id), unknown fields ("not on the appropriate screen"). 201
  ``{"id": "10001", "key": "OPS-1", "self": ".../rest/api/2/issue/10001"}``.
* ``GET/POST /rest/api/{2,3}/search/jql``: the enhanced search (``jql``, ``fields``, ``maxResults``,
  ``nextPageToken``); returns only issue ids unless fields are requested, ``isLast``/``nextPageToken``.
  JQL subset: clauses joined by AND of ``project|labels|key|issuetype = value`` and ``summary ~ text``,
  optional ``ORDER BY``. ``search_lag`` hides fresh issues for a while (the endpoint is eventually
  consistent).
* ``GET/POST /rest/api/{2,3}/search``: 410 Gone, as on Jira Cloud since the 2025 removal (CHANGE-2046).
* ``GET /rest/api/{2,3}/issue/{key|id}``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from devstack.stubs.base import RecordedRequest, Reply, StubServer

REMOVED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
ISSUE_TYPES = {"10001": "Task", "10002": "Bug", "10003": "Story", "10004": "Epic", "10005": "Subtask"}
SETTABLE = {
    "project",
    "summary",
    "description",
    "issuetype",
    "labels",
    "priority",
    "assignee",
    "reporter",
    "components",
    "duedate",
    "parent",
    "environment",
}
_CLAUSE = re.compile(r'^\s*(\w+)\s*(=|~)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s"\']+)\s*$')


def _error(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"errorMessages": messages or [], "errors": errors or {}})


class JiraStub(StubServer):
    name = "jira"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        email: str = "triage-bot@example.com",
        api_token: str = "jira-test-token",  # noqa: S107 - the stub's fake credential
        projects: set[str] | None = None,
        search_lag: float = 0.0,
    ) -> None:
        super().__init__(host, port, latency)
        self.email, self.api_token = email, api_token
        self.projects = projects  # None: any project key is accepted
        self.search_lag = search_lag
        self.issues: dict[str, dict[str, Any]] = {}  # key -> issue (id, key, self, fields, created_at)
        self._next_id = 10001
        self._counters: dict[str, int] = {}

    def reset_state(self) -> None:
        self.issues.clear()
        self._counters.clear()
        self._next_id = 10001

    def error_reply(self, status: int, message: str) -> Reply:
        return _error(status, [message])

    # -- routing ----------------------------------------------------------------------------------

    def handle(self, req: RecordedRequest) -> Reply:
        if req.basic_auth() != (self.email, self.api_token):
            return Reply(
                401,
                "Client must be authenticated to access this resource.",
                headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
            )
        path = req.path.rstrip("/")
        if re.fullmatch(r"/rest/api/[23]/search", path):
            return _error(410, [REMOVED_SEARCH])
        if re.fullmatch(r"/rest/api/[23]/search/jql", path) and req.method in ("GET", "POST"):
            return self._search(req)
        if re.fullmatch(r"/rest/api/[23]/issue", path) and req.method == "POST":
            return self._create(req)
        match = re.fullmatch(r"/rest/api/[23]/issue/([A-Za-z0-9-]+)", path)
        if match and req.method == "GET":
            issue = self._lookup(match.group(1))
            if issue is None:
                return _error(404, ["Issue does not exist or you do not have permission to see it."])
            return Reply(200, self._render(issue, ["*all"]))
        return _error(404, [f"No resource for {req.method} {req.path}"])

    # -- create -----------------------------------------------------------------------------------

    def _create(self, req: RecordedRequest) -> Reply:
        if not req.is_json():
            return Reply(415, None)
        body = req.json
        if not isinstance(body, dict):
            return _error(400, ["Unexpected character in request body: expected a JSON object"])
        fields = body.get("fields")
        if not isinstance(fields, dict):
            return _error(400, ["Issue fields are required: the body must contain a 'fields' object."])
        errors = self._validate(fields)
        if errors:
            return _error(400, [], errors)
        with self._lock:
            project = self._project_key(fields["project"])
            self._counters[project] = self._counters.get(project, 0) + 1
            issue_id = str(self._next_id)
            self._next_id += 1
            key = f"{project}-{self._counters[project]}"
            api = "3" if req.path.startswith("/rest/api/3") else "2"
            issue = {
                "id": issue_id,
                "key": key,
                "self": f"{self.url}/rest/api/{api}/issue/{issue_id}",
                "fields": {**fields, "created": datetime.now(UTC).isoformat(timespec="milliseconds")},
                "created_at": time.monotonic(),
            }
            self.issues[key] = issue
        return Reply(201, {"id": issue_id, "key": key, "self": issue["self"]}, created=True)

    def _project_key(self, project: dict[str, Any]) -> str:
        return str(project.get("key") or f"P{project.get('id')}").upper()

    def _validate(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name in fields:
            if name not in SETTABLE and not name.startswith("customfield_"):
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        project = fields.get("project")
        if not isinstance(project, dict) or not (project.get("key") or project.get("id")):
            errors["project"] = "Specify a valid project ID or key"
        elif self.projects is not None and self._project_key(project) not in self.projects:
            errors["project"] = "valid project is required"
        summary = fields.get("summary")
        if summary is None or summary == "":
            errors["summary"] = "You must specify a summary of the issue."
        elif not isinstance(summary, str):
            errors["summary"] = "Operation value must be a string"
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(summary) > 254:
            errors["summary"] = "Summary must be less than 255 characters."
        issuetype = fields.get("issuetype")
        if not isinstance(issuetype, dict) or not (issuetype.get("name") or issuetype.get("id")):
            errors["issuetype"] = "Specify an issue type"
        elif (
            issuetype.get("name") not in ISSUE_TYPES.values() and str(issuetype.get("id")) not in ISSUE_TYPES
        ):
            errors["issuetype"] = "valid issue type is required"
        if "description" in fields and not isinstance(fields["description"], str | None):
            errors["description"] = "Operation value must be a string"  # v2 takes text; ADF is v3 only
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            errors["labels"] = "Operation value must be an array of strings"
        elif any(" " in x or not x or len(x) > 255 for x in labels):
            errors["labels"] = "The label must not contain spaces and must be 1-255 characters."
        priority = fields.get("priority")
        if priority is not None and (
            not isinstance(priority, dict)
            or (priority.get("name") not in PRIORITIES.values() and str(priority.get("id")) not in PRIORITIES)
        ):
            errors["priority"] = "Specify a valid 'id' or 'name' for Priority"
        return errors

    # -- search -----------------------------------------------------------------------------------

    def _search(self, req: RecordedRequest) -> Reply:
        if req.method == "POST":
            body = req.json if isinstance(req.json, dict) else {}
            jql, fields, max_results = body.get("jql"), body.get("fields") or [], body.get("maxResults", 50)
            token = body.get("nextPageToken")
        else:
            jql = req.query.get("jql")
            fields = [f for f in (req.query.get("fields") or "").split(",") if f]
            max_results, token = req.query.get("maxResults", 50), req.query.get("nextPageToken")
        if not jql or not str(jql).strip():
            return _error(
                400,
                [
                    "Unbounded JQL queries are not allowed here. "
                    "Please add a search restriction to your query."
                ],
            )
        try:
            clauses = self._parse_jql(str(jql))
            limit = max(1, min(int(max_results), 5000))
            offset = int(token) if token else 0
        except ValueError as exc:
            return _error(400, [f"Error in the JQL Query: {exc}"])
        now = time.monotonic()
        with self._lock:
            hits = [
                i
                for i in self.issues.values()
                if now - i["created_at"] >= self.search_lag and all(c(i) for c in clauses)
            ]
        hits.sort(key=lambda i: int(i["id"]))
        page = hits[offset : offset + limit]
        result: dict[str, Any] = {"issues": [self._render(i, fields) for i in page]}
        if offset + limit < len(hits):
            result["nextPageToken"] = str(offset + limit)
            result["isLast"] = False
        else:
            result["isLast"] = True
        return Reply(200, result)

    def _parse_jql(self, jql: str) -> list[Any]:
        where = re.split(r"(?i)\border\s+by\b", jql, maxsplit=1)[0]
        clauses = []
        for text in re.split(r"(?i)\s+and\s+", where.strip()):
            match = _CLAUSE.match(text)
            if not match:
                raise ValueError(f"unsupported clause {text.strip()!r} (stub supports field = value AND ...)")
            name, op, raw = match.group(1).lower(), match.group(2), match.group(3)
            value = raw[1:-1].replace('\\"', '"').replace("\\'", "'") if raw[0] in "\"'" else raw
            clauses.append(self._clause(name, op, value))
        return clauses

    @staticmethod
    def _clause(name: str, op: str, value: str) -> Any:
        if op == "~":
            if name != "summary":
                raise ValueError(f"the operator '~' is not supported for field '{name}'")
            return lambda i: value.lower() in str(i["fields"].get("summary", "")).lower()
        if name == "project":
            return lambda i: i["key"].split("-")[0].upper() == value.upper()
        if name == "labels":
            return lambda i: value in (i["fields"].get("labels") or [])
        if name in ("key", "issuekey", "id"):
            return lambda i: value.upper() in (i["key"].upper(), i["id"])
        if name in ("issuetype", "type"):
            return lambda i: (
                str((i["fields"].get("issuetype") or {}).get("name", "")).lower() == value.lower()
            )
        raise ValueError(f"field '{name}' is not supported by the stub")

    def _lookup(self, key_or_id: str) -> dict[str, Any] | None:
        with self._lock:
            if key_or_id.upper() in self.issues:
                return self.issues[key_or_id.upper()]
            return next((i for i in self.issues.values() if i["id"] == key_or_id), None)

    @staticmethod
    def _render(issue: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        if not fields:
            return {"id": issue["id"]}  # the enhanced search returns ids only unless fields are requested
        wanted = (
            issue["fields"]
            if {"*all", "*navigable"} & set(fields)
            else {f: issue["fields"].get(f) for f in fields if f in issue["fields"]}
        )
        return {"expand": "", "id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": wanted}
