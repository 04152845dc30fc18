"""The built-in destination: nothing external; the route stage's delivery record is the whole effect."""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.route.destinations.base import Delivery, OutboundTicket


@dataclass
class LogDestination:
    system: str = field(default="log", init=False)

    def create(self, ticket: OutboundTicket) -> Delivery:
        # Deliberately emits nothing: the route stage records deliveries in Firestore (and logs them).
        return Delivery(self.system, f"log:{ticket.ticket_id}")

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        return None
