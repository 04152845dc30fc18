"""Loopback HTTP stubs of Gemini, Jira Cloud, Freshservice, Slack webhooks and a signed-webhook receiver.

Used by tests, benchmarks and the local stack; never deployed. See ``base.py`` for recording and faults.
"""

from devstack.stubs.base import RecordedRequest, Reply, StubServer
from devstack.stubs.freshservice import FreshserviceStub
from devstack.stubs.gemini import GeminiStub
from devstack.stubs.jira import JiraStub
from devstack.stubs.slack import SlackStub
from devstack.stubs.webhook import WebhookStub

STUBS: dict[str, type[StubServer]] = {
    "gemini": GeminiStub,
    "jira": JiraStub,
    "freshservice": FreshserviceStub,
    "slack": SlackStub,
    "webhook": WebhookStub,
}

__all__ = [
    "STUBS",
    "FreshserviceStub",
    "GeminiStub",
    "JiraStub",
    "RecordedRequest",
    "Reply",
    "SlackStub",
    "StubServer",
    "WebhookStub",
]
