"""What every classifier takes and returns; the one interface classify's strategies share."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Decider(StrEnum):
    """Which path decided a ticket's department (the `classifier` metric label)."""

    LLM = "llm"
    LOCAL = "local"
    CACHE = "cache"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class TicketText:
    """The only ticket data a classifier sees: no email, no metadata."""

    title: str
    description: str
    priority: str = "medium"

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.description}"


@dataclass(frozen=True)
class LLMUsage:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None  # None: the model has no price in the table (unknown, not zero)
    price_version: str | None = None
    latency_s: float = 0.0
    outcome: str = "ok"
    attempts: int = 1


@dataclass(frozen=True)
class Classification:
    department: str
    team: str
    confidence: float
    decided_by: Decider
    reason: str | None = None
    model: str | None = None
    llm_calls: tuple[LLMUsage, ...] = field(default_factory=tuple)

    def as_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "department": self.department,
            "team": self.team,
            "confidence": round(self.confidence, 4),
            "classifier": self.decided_by.value,
        }
        if self.reason:
            doc["reason"] = self.reason[:300]
        if self.model:
            doc["model"] = self.model
        return doc


class Classifier(Protocol):
    def classify(self, ticket: TicketText) -> Classification: ...
