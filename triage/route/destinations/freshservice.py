"""Freshservice destination: API v2 create ticket, filter-by-tag lookup for idempotency.

* Create: ``POST /api/v2/tickets``, basic auth ``<api_key>:X``. Required: a requester (``email``),
  ``subject``, ``description`` (HTML), ``status`` (2 open), ``priority`` (1 low, 2 medium, 3 high, 4 urgent).
* Lookup: ``GET /api/v2/tickets/filter?query="tag:'triage-<id>'"``. The filter query must be wrapped in
  double quotes, string values in single quotes, and URL-encoded. ``tag`` is a supported filter field; of
  custom fields only number/checkbox/dropdown/date types are filterable (not single-line text), which is why
  the tag, not a ``cf_`` text field, is the lookup key. The optional custom field is informational only.
  Like any search index it may lag a fresh create: ``search_lag_s`` bounds that lag for the caller.
  Freshservice documents no figure for it, so the default is the same as Jira's.
* Workspaces: a ticket created without ``workspace_id`` lands in the primary workspace, and filter searches
  only the primary workspace unless ``workspace_id`` is given, so create and lookup must use the same one
  (https://support.freshservice.com/en/support/solutions/articles/50000006112-what-is-a-primary-workspace-).
"""

from __future__ import annotations

import html
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

PRIORITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}  # 4 = Urgent
STATUS_OPEN = 2
SOURCE_PORTAL = 2
SUBJECT_MAX = 255
DEFAULT_SEARCH_LAG_S = 10.0  # undocumented for Freshservice; the same bound as Jira's search


def freshservice_detail(response: requests.Response) -> str:
    """``{"description": "Validation failed", "errors": [{"field", "message", "code"}]}`` or
    ``{"code": ..., "message": ...}`` (auth / content-type errors)."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()
    if not isinstance(payload, dict):
        return str(payload)
    head = str(payload.get("description") or payload.get("message") or payload.get("code") or "")
    items = []
    for err in payload.get("errors") or []:
        if isinstance(err, dict):
            items.append(f"{err.get('field')}: {err.get('message')} ({err.get('code')})")
    return "; ".join([head, *items] if head else items) or response.text.strip()


@dataclass
class FreshserviceDestination:
    base_url: str
    api_key: str
    group_id: int | None = None
    source: int = SOURCE_PORTAL
    workspace_id: int | None = None  # filter searches only the primary workspace unless given
    triage_id_field: str | None = None  # e.g. "cf_triage_id": also stored in a custom field (not searched)
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    http: HttpSettings = field(default_factory=HttpSettings)
    search_lag_s: float = DEFAULT_SEARCH_LAG_S  # how long a fresh ticket may stay invisible to filter
    system: str = field(default="freshservice", init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._secrets = secret_variants(self.api_key) + basic_auth_variants(self.api_key, "X")

    def build_body(self, ticket: OutboundTicket) -> dict[str, Any]:
        ticket_id = require_safe_id(ticket, self.system)
        body: dict[str, Any] = {
            "subject": " ".join(ticket.title.split())[:SUBJECT_MAX] or f"Ticket {ticket_id}",
            "description": self._description_html(ticket),
            "email": ticket.email,
            "priority": PRIORITY.get(ticket.priority, PRIORITY["medium"]),
            "status": STATUS_OPEN,
            "source": self.source,
            "tags": ["triage", triage_label(ticket_id)],
        }
        if self.group_id is not None:
            body["group_id"] = int(self.group_id)
        if self.workspace_id is not None:
            body["workspace_id"] = int(self.workspace_id)
        custom = dict(self.custom_fields)
        if self.triage_id_field:
            custom[self.triage_id_field] = ticket_id
        if custom:
            body["custom_fields"] = custom
        return body

    @staticmethod
    def _description_html(ticket: OutboundTicket) -> str:
        # The description is rendered as HTML by Freshservice: escape everything that came from the requester.
        def esc(text: str) -> str:
            return html.escape(text).replace("\n", "<br>")

        meta = ticket_facts(ticket)
        return (
            f"<div>{esc(ticket.description.strip())}</div><hr><div>{'<br>'.join(esc(m) for m in meta)}</div>"
        )

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> requests.Response:
        return request(
            method,
            f"{self.base_url}{path}",
            system=self.system,
            action=action,
            settings=self.http,
            secrets=self._secrets,
            detail=freshservice_detail,
            auth=(self.api_key, "X"),
            headers={"Accept": "application/json"},
            **kwargs,
        )

    def _delivery(self, ticket_id: Any) -> Delivery:
        return Delivery(self.system, str(ticket_id), f"{self.base_url}/a/tickets/{ticket_id}")

    def create(self, ticket: OutboundTicket) -> Delivery:
        response = self._call("POST", "/api/v2/tickets", "create ticket", json=self.build_body(ticket))
        created = json_body(response, system=self.system, action="create ticket").get("ticket") or {}
        ticket_id = created.get("id") if isinstance(created, dict) else None
        if ticket_id is None:
            raise TransientDeliveryError(
                "freshservice create ticket: success response without ticket.id",
                system=self.system,
                status=response.status_code,
            )
        return self._delivery(ticket_id)

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        label = triage_label(require_safe_id(ticket, self.system))
        params: dict[str, Any] = {"query": f"\"tag:'{label}'\""}
        if self.workspace_id is not None:
            params["workspace_id"] = int(self.workspace_id)
        response = self._call("GET", "/api/v2/tickets/filter", "filter tickets", params=params)
        tickets = json_body(response, system=self.system, action="filter tickets").get("tickets") or []
        ids = [t["id"] for t in tickets if isinstance(t, dict) and t.get("id") is not None]
        return self._delivery(min(ids)) if ids else None  # the oldest, if a duplicate slipped through
