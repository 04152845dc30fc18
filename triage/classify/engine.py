"""How classify decides: local model, cache, Gemini and the daily budget, per the configured mode.

    local   the embedded model answers every ticket
    llm     Gemini answers (cache first); on failure the local model, marked `fallback`
    hybrid  the local model answers when confident (>= hybrid_threshold); the rest as in `llm`
Without GEMINI_API_KEY the mode is always `local`. With the day's budget spent, `local` until midnight UTC.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from triage.budget import DailyBudget
from triage.classify.base import Classification, Decider, TicketText
from triage.classify.cache import ClassificationCache
from triage.classify.gemini import GeminiClassifier, LLMFailure, build_client
from triage.classify.local import LocalClassifier
from triage.config import effective_classifier_config
from triage.pricing import cached_prices
from triage.runtime import Runtime
from triage.store import utcnow

log = logging.getLogger("triage.classify")


@dataclass
class Engine:
    local: LocalClassifier
    mode: str = "local"
    hybrid_threshold: float = 1.0
    llm: GeminiClassifier | None = None
    cache: ClassificationCache | None = None
    budget: DailyBudget | None = None

    def classify(self, ticket: TicketText) -> Classification:
        local = self.local.classify(ticket)
        if self.llm is None or self.mode == "local":
            return local
        if self.mode == "hybrid" and local.confidence >= self.hybrid_threshold:
            return local
        now = utcnow()
        cached = self.cache.get(ticket, now) if self.cache else None
        if cached:
            return cached
        if self.budget and self.budget.exhausted():
            return local
        try:
            result = self.llm.classify(ticket)
        except LLMFailure as failure:
            log.warning(
                "LLM failed, using the local model: %s",
                failure,
                extra={"fields": {"outcome": failure.usage.outcome}},
            )
            return replace(
                local,
                decided_by=Decider.FALLBACK,
                llm_calls=(failure.usage,),
                reason=f"fallback: {failure.usage.outcome}",
            )
        if self.cache:
            self.cache.put(ticket, result, now)
        return result


def build_classifier(rt: Runtime, env: Mapping[str, str] | None = None) -> Engine:
    env = os.environ if env is None else env
    settings = effective_classifier_config(rt.config.triage.classifier, env)
    local = LocalClassifier.load(rt.config.triage)
    api_key = env.get("GEMINI_API_KEY")
    if not api_key or settings.mode == "local":
        if not api_key:
            log.info("no GEMINI_API_KEY: classifying with the local model only")
        return Engine(local)
    client = build_client(
        api_key, env.get("GEMINI_BASE_URL") or env.get("GOOGLE_GEMINI_BASE_URL"), settings.llm.timeout_s
    )
    prices = cached_prices(str(rt.settings.config_dir / "pricing.yaml"))
    db = rt.store.db
    return Engine(
        local,
        mode=settings.mode,
        hybrid_threshold=settings.hybrid_threshold or local.recommended_threshold,
        llm=GeminiClassifier(client, rt.config.triage, settings.llm, prices),
        cache=ClassificationCache(db, timedelta(hours=settings.cache_ttl_hours), rt.config.triage)
        if settings.cache_ttl_hours
        else None,
        budget=DailyBudget(db, settings.llm.daily_budget_usd, rt.settings.counter_shards),
    )
