"""Jira Cloud destination: REST v3 create issue with an ADF description, enhanced JQL search for idempotency.

* Create: ``POST /rest/api/3/issue`` with basic auth (account email + API token). The description is an
  Atlassian Document Format document built node by node: requester text only ever becomes plain ``text``
  nodes (no marks, no mention / inlineCard / media nodes), so it cannot mention a user, disguise a link or
  embed a remote image. REST v2 would render the same text as wiki markup (``[~accountid:...]``,
  ``[text|url]``, ``!url!``), which is why the adapter moved to v3.
  https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
* Lookup: ``GET /rest/api/3/search/jql``. The classic ``/rest/api/{2,3}/search`` was removed from Jira Cloud
  in 2025 (CHANGE-2046; it now answers 410 Gone). The enhanced search is eventually consistent: an issue
  created a moment ago may not be found yet. ``search_lag_s`` bounds that lag for the caller
  (https://developer.atlassian.com/cloud/jira/platform/search-and-reconcile/: "The majority of
  modifications are shown within seconds"; bulk operations take longer).
* Every issue carries the labels ``triage`` and ``triage-<ticket id>``; find_existing searches the latter.
* Scoped API tokens (service accounts) only work through the gateway
  ``https://api.atlassian.com/ex/jira/<cloudId>``, not the site URL
  (https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/), so
  REST calls go to ``api_base_url`` while browse links stay on the site ``base_url``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from triage.route.destinations.base import (
    Delivery,
    OutboundTicket,
    TransientDeliveryError,
    require_safe_id,
    ticket_facts,
    triage_label,
)
from triage.route.destinations.http import (
    HttpSettings,
    basic_auth_variants,
    json_body,
    request,
    secret_variants,
)

DEFAULT_PRIORITY_MAP: Mapping[str, str] = {
    "critical": "Highest",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
}
SUMMARY_MAX = 254  # Jira rejects summaries of 255+ characters
DESCRIPTION_MAX = 30_000  # characters of requester text we start from before fitting the document
# Jira's text fields hold 32,767 characters (JRACLOUD-68949); we keep the serialised ADF under that, since a
# document of many short lines is much larger than its text.
ADF_MAX_CHARS = 32_000
# The search usually catches up within seconds (search-and-reconcile guide above); 10 s leaves headroom.
DEFAULT_SEARCH_LAG_S = 10.0
# C0 controls other than tab and newline have no place in a document and risk INVALID_INPUT.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")


def jira_detail(response: requests.Response) -> str:
    """Jira error bodies: ``{"errorMessages": [...], "errors": {"field": "message"}}``."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()
    if not isinstance(payload, dict):
        return str(payload)
    parts = [str(m) for m in payload.get("errorMessages") or []]
    errors = payload.get("errors") or {}
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    return "; ".join(parts) or response.text.strip()


# -- Atlassian Document Format --------------------------------------------------------------------------


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def adf_inline(text: str) -> list[dict[str, Any]]:
    """Plain text as inline nodes: a text node per line, hard breaks between lines, never any marks."""
    nodes: list[dict[str, Any]] = []
    for index, line in enumerate(_clean(text).split("\n")):
        if index:
            nodes.append({"type": "hardBreak"})
        if line:  # ADF forbids empty text nodes
            nodes.append({"type": "text", "text": line})
    return nodes


def adf_paragraphs(text: str) -> list[dict[str, Any]]:
    """Blank-line separated blocks of plain text as paragraphs."""
    chunks = _BLANK_LINES.split(_clean(text).strip())
    return [{"type": "paragraph", "content": adf_inline(chunk)} for chunk in chunks if chunk.strip()]


def adf_bullets(items: list[str]) -> dict[str, Any]:
    return {
        "type": "bulletList",
        "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": adf_inline(item)}]}
            for item in items
        ],
    }


def _metadata(ticket: OutboundTicket) -> list[str]:
    return [*ticket_facts(ticket), f"Requester: {ticket.email}"]


def adf_description(ticket: OutboundTicket, limit: int = DESCRIPTION_MAX) -> dict[str, Any]:
    """The issue description: the requester's text as paragraphs, a rule, then the triage metadata."""
    body = adf_paragraphs(_clip(ticket.description, limit))
    divider = [{"type": "rule"}] if body else []
    return {"type": "doc", "version": 1, "content": [*body, *divider, adf_bullets(_metadata(ticket))]}


def fitted_description(ticket: OutboundTicket) -> dict[str, Any]:
    """``adf_description`` with the requester text cut until the serialised document fits Jira's limit."""
    limit = DESCRIPTION_MAX
    doc = adf_description(ticket, limit)
    while len(json.dumps(doc, ensure_ascii=False)) > ADF_MAX_CHARS and limit > 0:
        limit //= 2
        doc = adf_description(ticket, limit)
    return doc


# -- destination ----------------------------------------------------------------------------------------


@dataclass
class JiraDestination:
    base_url: str  # the site (https://acme.atlassian.net): browse links
    email: str
    api_token: str
    project_key: str
    issue_type: str = "Task"
    priority_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    set_priority: bool = True  # some projects keep priority off the create screen (400 if sent)
    http: HttpSettings = field(default_factory=HttpSettings)
    api_base_url: str | None = (
        None  # REST calls; None: base_url. Scoped tokens: the api.atlassian.com gateway
    )
    search_lag_s: float = DEFAULT_SEARCH_LAG_S  # how long a fresh issue may stay invisible to search
    system: str = field(default="jira", init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.api_base_url = (self.api_base_url or self.base_url).rstrip("/")
        self._secrets = secret_variants(self.api_token) + basic_auth_variants(self.email, self.api_token)

    # -- payload ----------------------------------------------------------------------------------

    def build_fields(self, ticket: OutboundTicket) -> dict[str, Any]:
        ticket_id = require_safe_id(ticket, self.system)
        # Jira refuses newlines in summaries ("contains newline characters"); a summary is plain text.
        summary = " ".join(_clean(ticket.title).split())[:SUMMARY_MAX] or f"Ticket {ticket_id}"
        fields: dict[str, Any] = {
            "project": {"key": self.project_key},
            "summary": summary,
            "description": fitted_description(ticket),
            "issuetype": {"name": self.issue_type},
            "labels": ["triage", triage_label(ticket_id)],
        }
        if self.set_priority:
            fields["priority"] = {"name": self.priority_map.get(ticket.priority, "Medium")}
        return fields

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> requests.Response:
        return request(
            method,
            f"{self.api_base_url}{path}",
            system=self.system,
            action=action,
            settings=self.http,
            secrets=self._secrets,
            detail=jira_detail,
            auth=(self.email, self.api_token),
            headers={"Accept": "application/json"},
            **kwargs,
        )

    def _delivery(self, key: str) -> Delivery:
        return Delivery(self.system, key, f"{self.base_url}/browse/{key}")

    # -- Destination ------------------------------------------------------------------------------

    def create(self, ticket: OutboundTicket) -> Delivery:
        response = self._call(
            "POST", "/rest/api/3/issue", "create issue", json={"fields": self.build_fields(ticket)}
        )
        payload = json_body(response, system=self.system, action="create issue")
        key = payload.get("key") or payload.get("id")
        if not key:
            # Created (2xx) but unreadable: transient, so the retry finds it by label instead of duplicating.
            raise TransientDeliveryError(
                "jira create issue: success response without a key",
                system=self.system,
                status=response.status_code,
            )
        return self._delivery(str(key))

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        label = triage_label(require_safe_id(ticket, self.system))
        # Both values are quoted: project keys and labels are restricted alphabets, so no escaping needed.
        jql = f'project = "{self.project_key}" AND labels = "{label}" ORDER BY created ASC'
        response = self._call(
            "GET",
            "/rest/api/3/search/jql",
            "search issues",
            params={"jql": jql, "fields": "summary,labels", "maxResults": 5},
        )
        issues = json_body(response, system=self.system, action="search issues").get("issues") or []
        for issue in issues:
            key = issue.get("key") or issue.get("id")
            if key:
                return self._delivery(str(key))
        return None
