"""Requester text that is markup somewhere reaches every destination as inert text.

A ticket's title, description and reason are written by whoever sends the ticket. Each destination renders
some markup: Jira v2 wiki markup (mentions, links, images, colours), Freshservice HTML, Slack mrkdwn
(special mentions, links). Each test sends the same hostile ticket through a real adapter to its stub and
checks, on the recorded request, that nothing in it can render as a mention, link, image or HTML element,
and that the text itself arrives whole.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

from devstack.stubs import FreshserviceStub, JiraStub, SlackStub, WebhookStub
from devstack.stubs.slack import mrkdwn_controls
from triage.route.destinations import OutboundTicket
from triage.route.destinations.freshservice import FreshserviceDestination
from triage.route.destinations.http import HttpSettings
from triage.route.destinations.jira import JiraDestination
from triage.route.destinations.slack import SlackDestination
from triage.route.destinations.webhook import WebhookDestination

FAST = HttpSettings(connect_timeout=1.0, read_timeout=2.0)
HOSTILE = [
    "[~accountid:5b10a2844c20165700ede21g]",  # Jira wiki: mention
    "[click|https://evil.example]",  # Jira wiki: disguised link
    "!https://evil.example/x.png!",  # Jira wiki: remote image
    "{color:red}x{color}",  # Jira wiki: formatting
    "<!channel>",  # Slack: channel-wide ping
    "<https://evil.example|x>",  # Slack: disguised link
    "@here",  # Slack: mention when link_names / parse=full is set
    "<script>alert(1)</script>",  # HTML
    '<img src="https://evil.example/x.png">',  # HTML image
    "&amp; &lt;b&gt;",  # entities that must stay literal
]
TICKET = OutboundTicket(
    ticket_id="T-1",
    title=" ".join(HOSTILE),
    description="\n".join(HOSTILE),
    email="ann@example.com",
    priority="high",
    department="IT",
    team="<!here>",
    confidence=0.5,
    reason=" ".join(HOSTILE),
)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.get("content") or []:
            yield from _walk(child)


def test_jira_adf_holds_requester_text_only_as_plain_text_nodes() -> None:
    with JiraStub(projects={"OPS"}) as stub:
        JiraDestination(stub.url, "triage-bot@example.com", "jira-test-token", "OPS", http=FAST).create(
            TICKET
        )
        [rec] = stub.requests
    assert rec.path == "/rest/api/3/issue" and rec.status == 201  # ADF (v3), accepted by the validating stub
    fields = rec.json["fields"]
    nodes = list(_walk(fields["description"]))
    # Only structure we build ourselves: no mention / inlineCard / media / emoji nodes, no marks, no attrs.
    assert {n["type"] for n in nodes} <= {
        "doc",
        "paragraph",
        "text",
        "hardBreak",
        "bulletList",
        "listItem",
        "rule",
    }
    assert all("marks" not in n and "attrs" not in n for n in nodes)
    texts = [n["text"] for n in nodes if n["type"] == "text"]
    for hostile in HOSTILE:
        assert hostile in texts  # a description line, verbatim
        assert any(hostile in t for t in texts if t.startswith("Reason: "))
    assert fields["summary"] == " ".join(HOSTILE)  # summary is a plain-text field: never rendered as markup


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data


def test_freshservice_description_is_html_escaped() -> None:
    with FreshserviceStub() as stub:
        FreshserviceDestination(stub.url, "fs-test-key", http=FAST).create(TICKET)
        [rec] = stub.requests
    assert rec.status == 201
    parsed = _Html()
    parsed.feed(rec.json["description"])
    # The only elements are our own layout, without attributes: no script, a, img, or anything with src/href.
    assert {tag for tag, _ in parsed.tags} <= {"div", "br", "hr"}
    assert all(attrs == [] for _, attrs in parsed.tags)
    for hostile in HOSTILE:
        assert hostile in parsed.text  # what the agent reads is the requester's text, unchanged


def test_slack_message_has_no_mentions_or_links() -> None:
    with SlackStub() as stub:
        SlackDestination(stub.webhook_url, http=FAST).create(TICKET)
        [(_, payload)] = stub.messages
    # Nothing Slack would render as a link, a special mention (<!channel>, <!here>) or a linked @name:
    # the control characters are escaped and link_names / parse=full are never set, so "@here" stays text.
    assert mrkdwn_controls(payload) == []
    assert "link_names" not in payload and "parse" not in payload
    header, section, context = payload["blocks"]
    assert header["text"]["type"] == "plain_text"  # not parsed by Slack at all
    reason = html.unescape(context["elements"][0]["text"])
    for hostile in HOSTILE:
        assert hostile in reason  # the reader still sees exactly what was written
    assert "&lt;!here&gt;" in section["fields"][0]["text"]  # the team name is escaped as well
    assert "<" not in payload["text"] and ">" not in payload["text"]  # the notification fallback too


def test_webhook_sends_the_text_as_json_data() -> None:
    with WebhookStub(secret="hook-secret") as stub:
        WebhookDestination(stub.url, "hook-secret", http=FAST).create(TICKET)
        [rec] = stub.requests
    # JSON is data, not markup: the receiver gets the exact strings and decides how to render them.
    assert rec.is_json() and rec.status == 201
    assert (rec.json["title"], rec.json["description"], rec.json["reason"]) == (
        TICKET.title,
        TICKET.description,
        TICKET.reason,
    )
