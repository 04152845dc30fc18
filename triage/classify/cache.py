"""Reuse of earlier LLM answers for identical ticket text, in Firestore with a TTL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from triage.classify.base import Classification, Decider, TicketText
from triage.config import TriageConfig

COLLECTION = "classify_cache"


def cache_key(ticket: TicketText) -> str:
    """Same text, same key: case and spacing don't matter (the whole text counts, however long)."""
    text = " ".join(f"{ticket.title}\n{ticket.description}".casefold().split())
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ClassificationCache:
    db: Any
    ttl: timedelta
    taxonomy: TriageConfig

    def get(self, ticket: TicketText, now: datetime) -> Classification | None:
        snap = self.db.collection(COLLECTION).document(cache_key(ticket)).get()
        entry = snap.to_dict() if snap.exists else None
        if not entry or entry["expire_at"] <= now:  # Firestore's TTL deletion runs up to a day late
            return None
        department, team = entry["department"], entry["team"]
        known = self.taxonomy.departments.get(department)
        if known is None or team not in known.teams:
            return None  # the taxonomy changed since: ask again
        return Classification(
            department, team, entry["confidence"], Decider.CACHE, entry.get("reason"), entry.get("model")
        )

    def put(self, ticket: TicketText, result: Classification, now: datetime) -> None:
        self.db.collection(COLLECTION).document(cache_key(ticket)).set(
            {
                "department": result.department,
                "team": result.team,
                "confidence": result.confidence,
                "reason": result.reason,
                "model": result.model,
                "created_at": now,
                "expire_at": now + self.ttl,
            }
        )
