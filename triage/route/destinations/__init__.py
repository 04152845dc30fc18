"""Destination adapters (Jira, Freshservice, Slack, generic webhook, log) behind one small interface."""

from triage.route.destinations.base import (
    Delivery,
    DeliveryError,
    Destination,
    DestinationConfigError,
    OutboundTicket,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from triage.route.destinations.deliver import deliver
from triage.route.destinations.http import HttpSettings, RetryPolicy, call_with_retries
from triage.route.destinations.registry import build_destination

__all__ = [
    "Delivery",
    "DeliveryError",
    "Destination",
    "DestinationConfigError",
    "HttpSettings",
    "OutboundTicket",
    "PermanentDeliveryError",
    "RetryPolicy",
    "TransientDeliveryError",
    "build_destination",
    "call_with_retries",
    "deliver",
]
