"""Jira Cloud destination: REST v2 create issue, enhanced JQL search for idempotency.

* Create: ``POST /rest/api/2/issue`` with basic auth (account email + API token). v2 takes ``description``
  as a plain (wiki-markup) string; v3 would need Atlassian Document Format.
* Lookup: ``GET /rest/api/2/search/jql``. The classic ``/rest/api/{2,3}/search`` was removed from Jira Cloud
  in 2025 (CHANGE-2046; it now answers 410 Gone). The enhanced search is eventually consistent, so an issue
  created a moment ago may not be found yet: a residual duplicate window remains after a crash.
* Every issue carries the labels ``triage`` and ``triage-<ticket id>``; find_existing searches the latter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from triage.route.destinations.base import (
    Delivery,
    OutboundTicket,
    TransientDeliveryError,
    format_confidence,
    require_safe_id,
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
DESCRIPTION_MAX = 30_000  # well under Jira's 32,767 character limit for text fields


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


@dataclass
class JiraDestination:
    base_url: str
    email: str
    api_token: str
    project_key: str
    issue_type: str = "Task"
    priority_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    set_priority: bool = True  # some projects keep priority off the create screen (400 if sent)
    http: HttpSettings = field(default_factory=HttpSettings)
    system: str = field(default="jira", init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._secrets = secret_variants(self.api_token) + basic_auth_variants(self.email, self.api_token)

    # -- payload ----------------------------------------------------------------------------------

    def build_fields(self, ticket: OutboundTicket) -> dict[str, Any]:
        ticket_id = require_safe_id(ticket, self.system)
        # Jira refuses newlines in summaries ("contains newline characters").
        summary = " ".join(ticket.title.split())[:SUMMARY_MAX] or f"Ticket {ticket_id}"
        fields: dict[str, Any] = {
            "project": {"key": self.project_key},
            "summary": summary,
            "description": self._description(ticket)[:DESCRIPTION_MAX],
            "issuetype": {"name": self.issue_type},
            "labels": ["triage", triage_label(ticket_id)],
        }
        if self.set_priority:
            fields["priority"] = {"name": self.priority_map.get(ticket.priority, "Medium")}
        return fields

    @staticmethod
    def _description(ticket: OutboundTicket) -> str:
        team = f" / {ticket.team}" if ticket.team else ""
        lines = [
            ticket.description.strip(),
            "",
            "----",
            f"Triage ID: {ticket.ticket_id}",
            f"Department: {ticket.department}{team}",
            f"Confidence: {format_confidence(ticket.confidence)}",
        ]
        if ticket.reason:
            lines.append(f"Reason: {ticket.reason}")
        lines.append(f"Requester: {ticket.email}")
        return "\n".join(lines)

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> requests.Response:
        return request(
            method,
            f"{self.base_url}{path}",
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
            "POST", "/rest/api/2/issue", "create issue", json={"fields": self.build_fields(ticket)}
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
            "/rest/api/2/search/jql",
            "search issues",
            params={"jql": jql, "fields": "summary,labels", "maxResults": 5},
        )
        issues = json_body(response, system=self.system, action="search issues").get("issues") or []
        for issue in issues:
            key = issue.get("key") or issue.get("id")
            if key:
                return self._delivery(str(key))
        return None
