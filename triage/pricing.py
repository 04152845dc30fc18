"""LLM cost from the price table in config/pricing.yaml (USD per 1M tokens, with effective dates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triage.config import ConfigError

PER_TOKEN = 1 / 1_000_000


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    effective_from: date
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    models: dict[str, list[Price]]

    def price(self, model: str, on: date) -> Price | None:
        """The entry in force on `on`; None if the model is unknown or not yet priced then."""
        current = None
        for entry in sorted(self.models.get(model, []), key=lambda p: p.effective_from):
            if entry.effective_from <= on:
                current = entry
        return current


@dataclass(frozen=True)
class Tokens:
    input: int = 0  # prompt tokens, cached ones included (as Gemini's promptTokenCount)
    output: int = 0
    thinking: int = 0
    cached: int = 0


def cost_usd(price: Price, tokens: Tokens) -> float:
    """Cached prompt tokens at the cached rate, the rest at the input rate; thinking at the output rate."""
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    uncached = max(0, tokens.input - tokens.cached)
    total = (
        uncached * price.input
        + tokens.cached * cached_rate
        + (tokens.output + tokens.thinking) * price.output
    )
    return round(total * PER_TOKEN, 10)


def load_prices(path: Path) -> PriceTable:
    try:
        return PriceTable.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


@lru_cache(maxsize=4)
def cached_prices(path: str) -> PriceTable:
    return load_prices(Path(path))
