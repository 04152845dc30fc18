"""Loads and validates the YAML configuration in `config/`.

Bad configuration fails at load time with the file and key named, so a deploy with a typo never starts
routing tickets to nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from triage.model import Priority

SYSTEMS = ("jira", "freshservice", "slack", "webhook", "log")


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    description: str
    teams: dict[str, str] = Field(min_length=1)

    @property
    def default_team(self) -> str:
        return next(iter(self.teams))


class Thresholds(_Strict):
    review_confidence: float = Field(0.45, ge=0, le=1)
    stuck_after_seconds: dict[str, int] = Field(default_factory=dict)
    # The reconciler hands a ticket on again once it sat this long in received/classified, or this long
    # after it last did so: longer than a delivery's retries, shorter than stuck_after_seconds.
    hand_on_after_seconds: int = Field(120, ge=1)


class Thinking(_Strict):
    """How much a model may think before it answers: a token `budget` (Gemini 2.5) or a `level` (3.x).

    The API rejects a request carrying both (https://ai.google.dev/gemini-api/docs/thinking).
    """

    budget: int | None = Field(None, ge=-1)  # -1: the model decides; 0: off, where the model allows it
    level: Literal["minimal", "low", "medium", "high"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Thinking:
        if (self.budget is None) == (self.level is None):
            raise ValueError("set exactly one of budget or level")
        return self


class ModelFamily(_Strict):
    """Generation settings for the models whose id starts with `prefix` (the longest matching one wins)."""

    prefix: str = Field(min_length=1)
    thinking: Thinking | None = None  # None: send no thinking configuration
    temperature: float | None = Field(None, ge=0, le=2)  # None: send none, the model's default applies


class LLMConfig(_Strict):
    # No default on purpose: config/triage.yaml is the one place that names the default model.
    model: str = Field(min_length=1)
    # For a model no family matches; None: the API default.
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int = Field(256, gt=0)
    timeout_s: float = Field(20, gt=0)
    max_attempts: int = Field(4, ge=1)
    retry_budget_s: float = Field(45, gt=0)
    daily_budget_usd: float = Field(20.0, ge=0)
    families: tuple[ModelFamily, ...] = ()

    @model_validator(mode="after")
    def _prefixes_unique(self) -> LLMConfig:
        prefixes = [family.prefix for family in self.families]
        duplicates = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if duplicates:
            raise ValueError(f"families: prefix listed twice: {', '.join(duplicates)}")
        return self

    def family(self) -> ModelFamily | None:
        """The family of `model`: the longest matching prefix, so `gemini-2.5-flash-lite` beats
        `gemini-2.5-flash` whatever the order in the file."""
        matches = [f for f in self.families if self.model.startswith(f.prefix)]
        return max(matches, key=lambda f: len(f.prefix), default=None)

    def thinking(self) -> Thinking | None:
        family = self.family()
        return family.thinking if family else None

    def effective_temperature(self) -> float | None:
        family = self.family()
        return family.temperature if family else self.temperature


class ClassifierConfig(_Strict):
    mode: Literal["local", "llm", "hybrid"] = "hybrid"
    # None: the threshold the local model was calibrated for (its metadata), else 0.9.
    hybrid_threshold: float | None = Field(None, ge=0, le=1)
    cache_ttl_hours: float = Field(168, ge=0)
    llm: LLMConfig


class IntakeLimits(_Strict):
    """Per-sender admission control (triage/ratelimit.py); a sender is its source address: the last
    X-Forwarded-For entry (the one Google's front end appends, which a client cannot forge) or the peer."""

    per_sender_per_second: float = Field(10.0, ge=0)  # 0: no limit
    burst: int = Field(50, ge=1)

    def with_env(self, env: Mapping[str, str]) -> IntakeLimits:
        """TRIAGE_INTAKE_RATE_PER_S overrides the rate per deployment (0 turns the limit off, e.g. for a
        load benchmark, whose one load generator is one sender)."""
        rate = env.get("TRIAGE_INTAKE_RATE_PER_S")
        return self if not rate else self.model_copy(update={"per_sender_per_second": float(rate)})


class TriageConfig(_Strict):
    departments: dict[str, Department] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    intake: IntakeLimits = IntakeLimits()
    classifier: ClassifierConfig

    def team_or_default(self, department: str, team: str | None) -> str:
        teams = self.departments[department].teams
        return team if team in teams else self.departments[department].default_team


class DestinationConfig(BaseModel):
    """A named destination: `system` plus the adapter's settings (env var names for secrets)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    system: Literal["jira", "freshservice", "slack", "webhook", "log"]

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Route(_Strict):
    department: str
    team: str | None = None
    priority: list[Priority] | None = None
    destination: str

    def matches(self, department: str, team: str | None, priority: str) -> bool:
        return (
            self.department == department
            and (self.team is None or self.team == team)
            and (self.priority is None or priority in self.priority)
        )


class ReviewConfig(_Strict):
    destination: str = "log"


class RoutingConfig(_Strict):
    destinations: dict[str, DestinationConfig] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)
    review: ReviewConfig = ReviewConfig()

    @model_validator(mode="after")
    def _destinations_exist(self) -> RoutingConfig:
        for i, route in enumerate(self.routes):
            if route.destination not in self.destinations:
                raise ValueError(f"routes.{i}.destination: unknown destination {route.destination!r}")
        if self.review.destination not in self.destinations:
            raise ValueError(f"review.destination: unknown destination {self.review.destination!r}")
        return self

    def destination_for(
        self, department: str, team: str | None, priority: str
    ) -> tuple[str, DestinationConfig]:
        """First matching rule wins, so specific rules (team, priority) go before the department default."""
        for route in self.routes:
            if route.matches(department, team, priority):
                return route.destination, self.destinations[route.destination]
        raise ConfigError(f"no route for department {department!r}")


class Config(BaseModel):
    model_config = ConfigDict(frozen=True)
    triage: TriageConfig
    routing: RoutingConfig

    @model_validator(mode="after")
    def _routing_matches_taxonomy(self) -> Config:
        known = set(self.triage.departments)
        for i, route in enumerate(self.routing.routes):
            if route.department not in known:
                raise ValueError(
                    f"routing.yaml: routes.{i}.department: unknown department {route.department!r}"
                )
            if route.team is not None and route.team not in self.triage.departments[route.department].teams:
                raise ValueError(f"routing.yaml: routes.{i}.team: unknown team {route.team!r}")
        catch_all = {r.department for r in self.routing.routes if r.team is None and r.priority is None}
        missing = sorted(known - catch_all)
        if missing:
            raise ValueError(
                f"routing.yaml: routes: no catch-all route for department(s) {', '.join(missing)}"
            )
        return self


def effective_classifier_config(config: ClassifierConfig, env: Mapping[str, str]) -> ClassifierConfig:
    """Environment overrides for what operators change per deployment without a config release."""
    data = config.model_dump()
    if env.get("GEMINI_MODEL"):
        data["llm"]["model"] = env["GEMINI_MODEL"]
    if env.get("TRIAGE_LLM_DAILY_BUDGET_USD"):
        data["llm"]["daily_budget_usd"] = float(env["TRIAGE_LLM_DAILY_BUDGET_USD"])
    if env.get("TRIAGE_CLASSIFIER_MODE"):
        data["mode"] = env["TRIAGE_CLASSIFIER_MODE"]
    try:
        return ClassifierConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"classifier settings from the environment: {_describe(exc)}") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors(include_url=False, include_input=False)
    )


def _parse(model: type[BaseModel], path: Path, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc


def load_config(config_dir: Path | str) -> Config:
    config_dir = Path(config_dir)
    triage_path, routing_path = config_dir / "triage.yaml", config_dir / "routing.yaml"
    triage_cfg = _parse(TriageConfig, triage_path, _read_yaml(triage_path))
    routing_cfg = _parse(RoutingConfig, routing_path, _read_yaml(routing_path))
    try:
        return Config(triage=triage_cfg, routing=routing_cfg)
    except ValidationError as exc:
        raise ConfigError(f"{config_dir}: {_describe(exc)}") from exc


@lru_cache(maxsize=4)
def cached_config(config_dir: str) -> Config:
    return load_config(config_dir)
