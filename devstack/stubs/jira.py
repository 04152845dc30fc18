"""Jira Cloud REST stub: create issue (v2 and v3), enhanced JQL search, the removed classic search.

Each rule and the documentation it models:

* ``POST /rest/api/{2,3}/issue``: basic auth email:API-token (401 otherwise), ``Content-Type:
  application/json`` (415 otherwise), field validation with Jira's error shape ``{"errorMessages": [...],
  "errors": {"field": "message"}}``: project, summary (required, single line, < 255 chars, a string),
  issuetype (known name or id), labels (no spaces), priority (known name or id), unknown fields ("not on the
  appropriate screen"). 201 ``{"id": "10001", "key": "OPS-1", "self": ".../rest/api/<v>/issue/10001"}``.
  https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-post
* ``description`` / ``environment``: a string (wiki markup) in v2, else "Operation value must be a string";
  an Atlassian Document Format document in v3, else "Operation value must be an Atlassian Document (see the
  Atlassian Document Format)" (the answer Jira gives a string:
  https://github.com/lesstif/php-jira-rest-client/issues/280). A v3 document must be ``{"type": "doc",
  "version": 1, "content": [...]}`` of known nodes in their allowed places, text nodes with a non-empty
  ``text`` string and only known marks
  (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/,
  https://developer.atlassian.com/platform/framework/adf-builder/reference/nodes/text/: "Empty text nodes
  are not permitted"); anything else answers 400 ``{"errorMessages": ["INVALID_INPUT"], "errors": {}}`` as
  Jira does (https://github.com/nguyenvanduocit/jira-mcp/issues/42). Text fields hold 32,767 characters
  (JRACLOUD-68949, https://github.com/mozilla/jira-bugzilla-integration/issues/1030); for v3 the stub
  measures the serialised document, an assumption (Jira does not document how it counts ADF).
* ``GET/POST /rest/api/{2,3}/search/jql``: the enhanced search (``jql``, ``fields``, ``maxResults``,
  ``nextPageToken``, ``reconcileIssues``); returns only issue ids unless fields are requested,
  ``isLast``/``nextPageToken``. JQL subset: clauses joined by AND of ``project|labels|key|issuetype =
  value`` and ``summary ~ text``, optional ``ORDER BY``. The search is eventually consistent, so by default
  an issue stays invisible for ``search_lag`` seconds (1 s; the guide says "the majority of modifications
  are shown within seconds") unless its id is in ``reconcileIssues``
  (https://developer.atlassian.com/cloud/jira/platform/search-and-reconcile/).
* ``GET/POST /rest/api/{2,3}/search``: 410 Gone, as on Jira Cloud since the 2025 removal (CHANGE-2046).
* ``GET /rest/api/{2,3}/issue/{key|id}``.
* With ``cloud_id`` set, every path is also served under ``/ex/jira/<cloud_id>``, the api.atlassian.com
  gateway that scoped API tokens must use; with ``scoped_token`` the site paths answer 401, as the site does
  for a scoped token (https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-
  atlassian-account/, https://github.com/sooperset/mcp-atlassian/issues/968).
* ``rate_limit_next``: 429 with ``Retry-After`` (seconds), ``X-RateLimit-Reset`` (ISO 8601,
  ``yyyy-MM-ddTHH:mmZ``: request time plus Retry-After), ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
  and ``RateLimit-Reason`` (``jira-burst-based`` by default: API-token traffic is governed by the burst
  limits, not the points quota) (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.stubs.base import RecordedRequest, Reply, StubServer, _Fault

REMOVED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
TEXT_FIELD_MAX = 32_767
RICH_TEXT_FIELDS = ("description", "environment")
DEFAULT_SEARCH_LAG = 1.0
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

# -- Atlassian Document Format: the nodes and marks Jira supports, and where each may appear -----------------

ADF_BLOCK = {
    "blockquote",
    "bulletList",
    "codeBlock",
    "expand",
    "heading",
    "mediaGroup",
    "mediaSingle",
    "orderedList",
    "panel",
    "paragraph",
    "rule",
    "table",
    "multiBodiedExtension",
}
ADF_INLINE = {"date", "emoji", "hardBreak", "inlineCard", "mention", "status", "text", "mediaInline"}
ADF_MARKS = {
    "backgroundColor",
    "border",
    "code",
    "em",
    "link",
    "strike",
    "strong",
    "subsup",
    "textColor",
    "underline",
    "alignment",
    "indentation",
    "breakout",
}
_CHILDREN: dict[str, set[str]] = {
    "doc": ADF_BLOCK,
    "paragraph": ADF_INLINE,
    "heading": ADF_INLINE,
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle"},
    "codeBlock": {"text"},
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock", "mediaGroup", "mediaSingle"},
    "panel": {"paragraph", "heading", "bulletList", "orderedList", "blockquote", "codeBlock", "rule"},
    "expand": ADF_BLOCK - {"expand"},
    "table": {"tableRow"},
    "tableRow": {"tableCell", "tableHeader"},
    "tableCell": ADF_BLOCK - {"table"},
    "tableHeader": ADF_BLOCK - {"table"},
    "mediaGroup": {"media"},
    "mediaSingle": {"media"},
}
_NON_EMPTY = {"bulletList", "orderedList", "listItem", "table", "tableRow", "mediaGroup", "mediaSingle"}


def adf_valid(doc: Any) -> bool:
    """A Jira-acceptable ADF document (the subset of the schema that matters for issue text)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return False
    content = doc.get("content")
    return isinstance(content, list) and all(_node_valid(node, "doc") for node in content)


def _node_valid(node: Any, parent: str) -> bool:
    if not isinstance(node, dict) or node.get("type") not in _CHILDREN.get(parent, set()):
        return False
    kind = node["type"]
    if kind == "text" and not (isinstance(node.get("text"), str) and node["text"]):
        return False
    marks = node.get("marks", [])
    if not isinstance(marks, list) or not all(
        isinstance(m, dict) and m.get("type") in ADF_MARKS for m in marks
    ):
        return False
    content = node.get("content", [])
    if not isinstance(content, list) or (kind in _NON_EMPTY and not content):
        return False
    return all(_node_valid(child, kind) for child in content)


def _error(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"errorMessages": messages or [], "errors": errors or {}})


def _reset_time(retry_after: float | str) -> str | None:
    """``X-RateLimit-Reset``: the request time plus Retry-After, to the minute, as Jira formats it."""
    if isinstance(retry_after, str):
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            return None
    else:
        when = datetime.now(UTC) + timedelta(seconds=retry_after)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


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
        search_lag: float = DEFAULT_SEARCH_LAG,
        cloud_id: str | None = None,
        scoped_token: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, port, latency)
        self.email, self.api_token = email, api_token
        self.projects = projects  # None: any project key is accepted
        self.search_lag = search_lag  # seconds a new issue stays invisible to search
        self.cloud_id = cloud_id
        self.scoped_token = scoped_token  # the token works only through the gateway prefix
        self.clock = clock  # measures search_lag; tests may pass a fake clock their sleeps advance
        self.issues: dict[str, dict[str, Any]] = {}  # key -> issue (id, key, self, fields, created_at)
        self._next_id = 10001
        self._counters: dict[str, int] = {}

    @property
    def gateway_url(self) -> str:
        """The stub's stand-in for ``https://api.atlassian.com/ex/jira/<cloud_id>``."""
        if not self.cloud_id:
            raise RuntimeError("the jira stub has no cloud_id")
        return f"{self.url}/ex/jira/{self.cloud_id}"

    def reset_state(self) -> None:
        self.issues.clear()
        self._counters.clear()
        self._next_id = 10001

    def error_reply(self, status: int, message: str) -> Reply:
        return _error(status, [message])

    def rate_limit_next(
        self,
        n: int = 1,
        retry_after: float | str = 1,
        *,
        method: str | None = None,
        reason: str = "jira-burst-based",
        limit: int = 100,
    ) -> None:
        """429 with Jira's rate-limit headers; ``reason`` e.g. ``jira-quota-tenant-based`` for the hourly
        points quota, ``jira-per-issue-on-write`` for the per-issue write limit."""
        headers = {
            "Retry-After": retry_after if isinstance(retry_after, str) else f"{retry_after:g}",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "RateLimit-Reason": reason,
        }
        reset = _reset_time(retry_after)
        if reset:
            headers["X-RateLimit-Reset"] = reset
        self._add(_Fault("rate_limit", n, method, 429, None, headers))

    # -- routing ----------------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[str | None, str]:
        """(the API path, the prefix it came under): the gateway prefix is stripped; another cloud id is
        not a route."""
        path = path.rstrip("/")
        if not path.startswith("/ex/jira/"):
            return path, ""
        prefix = f"/ex/jira/{self.cloud_id}" if self.cloud_id else None
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return path[len(prefix) :], prefix
        return None, ""

    def handle(self, req: RecordedRequest) -> Reply:
        path, prefix = self._route(req.path)
        if req.basic_auth() != (self.email, self.api_token) or (self.scoped_token and not prefix):
            return Reply(
                401,
                "Client must be authenticated to access this resource.",
                headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
            )
        if path is None:
            return _error(404, [f"No resource for {req.method} {req.path}"])
        if re.fullmatch(r"/rest/api/[23]/search", path):
            return _error(410, [REMOVED_SEARCH])
        if re.fullmatch(r"/rest/api/[23]/search/jql", path) and req.method in ("GET", "POST"):
            return self._search(req)
        if re.fullmatch(r"/rest/api/[23]/issue", path) and req.method == "POST":
            return self._create(req, api=path[len("/rest/api/")], prefix=prefix)
        match = re.fullmatch(r"/rest/api/[23]/issue/([A-Za-z0-9-]+)", path)
        if match and req.method == "GET":
            issue = self._lookup(match.group(1))
            if issue is None:
                return _error(404, ["Issue does not exist or you do not have permission to see it."])
            return Reply(200, self._render(issue, ["*all"]))
        return _error(404, [f"No resource for {req.method} {req.path}"])

    # -- create -----------------------------------------------------------------------------------

    def _create(self, req: RecordedRequest, *, api: str, prefix: str) -> Reply:
        if not req.is_json():
            return Reply(415, None)
        body = req.json
        if not isinstance(body, dict):
            return _error(400, ["Unexpected character in request body: expected a JSON object"])
        fields = body.get("fields")
        if not isinstance(fields, dict):
            return _error(400, ["Issue fields are required: the body must contain a 'fields' object."])
        errors = self._validate(fields, api)
        if errors:
            return _error(400, [], errors)
        if api == "3" and not all(fields.get(f) is None or adf_valid(fields[f]) for f in RICH_TEXT_FIELDS):
            return _error(400, ["INVALID_INPUT"])
        with self._lock:
            project = self._project_key(fields["project"])
            self._counters[project] = self._counters.get(project, 0) + 1
            issue_id = str(self._next_id)
            self._next_id += 1
            key = f"{project}-{self._counters[project]}"
            issue = {
                "id": issue_id,
                "key": key,
                "self": f"{self.url}{prefix}/rest/api/{api}/issue/{issue_id}",
                "fields": {**fields, "created": datetime.now(UTC).isoformat(timespec="milliseconds")},
                "created_at": self.clock(),
                "api": api,
            }
            self.issues[key] = issue
        return Reply(201, {"id": issue_id, "key": key, "self": issue["self"]}, created=True)

    def _project_key(self, project: dict[str, Any]) -> str:
        return str(project.get("key") or f"P{project.get('id')}").upper()

    def _validate(self, fields: dict[str, Any], api: str) -> dict[str, str]:
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
        for name in RICH_TEXT_FIELDS:
            problem = self._rich_text_problem(fields.get(name), api)
            if problem:
                errors[name] = problem
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

    @staticmethod
    def _rich_text_problem(value: Any, api: str) -> str | None:
        """v2 takes wiki-markup strings, v3 ADF documents; both are bounded like any text field."""
        if value is None:
            return None
        if api == "2":
            if not isinstance(value, str):
                return "Operation value must be a string"
            return TOO_LONG if len(value) > TEXT_FIELD_MAX else None
        if not isinstance(value, dict):
            return NOT_ADF
        return TOO_LONG if len(json.dumps(value, ensure_ascii=False)) > TEXT_FIELD_MAX else None

    # -- search -----------------------------------------------------------------------------------

    def _search(self, req: RecordedRequest) -> Reply:
        if req.method == "POST":
            body = req.json if isinstance(req.json, dict) else {}
            jql, fields, max_results = body.get("jql"), body.get("fields") or [], body.get("maxResults", 50)
            token, reconcile = body.get("nextPageToken"), body.get("reconcileIssues") or []
        else:
            jql = req.query.get("jql")
            fields = [f for f in (req.query.get("fields") or "").split(",") if f]
            max_results, token = req.query.get("maxResults", 50), req.query.get("nextPageToken")
            reconcile = [r for r in (req.query.get("reconcileIssues") or "").split(",") if r]
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
            consistent = {str(int(r)) for r in reconcile}
        except (TypeError, ValueError) as exc:
            return _error(400, [f"Error in the JQL Query: {exc}"])
        hits = self._visible(clauses, consistent)
        page = hits[offset : offset + limit]
        result: dict[str, Any] = {"issues": [self._render(i, fields) for i in page]}
        if offset + limit < len(hits):
            result["nextPageToken"] = str(offset + limit)
            result["isLast"] = False
        else:
            result["isLast"] = True
        return Reply(200, result)

    def _visible(self, clauses: list[Any], consistent: set[str]) -> list[dict[str, Any]]:
        """Matching issues the index already shows: older than search_lag, or reconciled by id."""
        now = self.clock()
        with self._lock:
            hits = [
                i
                for i in self.issues.values()
                if (now - i["created_at"] >= self.search_lag or i["id"] in consistent)
                and all(c(i) for c in clauses)
            ]
        return sorted(hits, key=lambda i: int(i["id"]))

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
