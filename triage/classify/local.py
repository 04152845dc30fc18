"""The embedded local classifier: a trained text model mapped onto the configured taxonomy."""

from __future__ import annotations

import os
from pathlib import Path

from triage.classify.base import Classification, Decider, TicketText
from triage.classify.textmodel import TextModel
from triage.config import ConfigError, TriageConfig

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.json"


def model_path() -> Path:
    return Path(os.environ.get("TRIAGE_LOCAL_MODEL") or DEFAULT_MODEL)


def split_label(label: str) -> tuple[str, str | None]:
    department, _, team = label.partition("/")
    return department, team or None


class LocalClassifier:
    """Model labels are `Department` or `Department/team`; both must exist in the taxonomy."""

    def __init__(self, model: TextModel, taxonomy: TriageConfig) -> None:
        unknown = sorted({split_label(label)[0] for label in model.labels} - set(taxonomy.departments))
        if unknown:
            raise ConfigError(f"local model labels name departments not in triage.yaml: {', '.join(unknown)}")
        self.model = model
        self.taxonomy = taxonomy

    @classmethod
    def load(cls, taxonomy: TriageConfig, path: Path | None = None) -> LocalClassifier:
        return cls(TextModel.load(path or model_path()), taxonomy)

    @property
    def recommended_threshold(self) -> float:
        """The confidence at which this model's answers were >= 98.5 % accurate on held-out data."""
        return float(self.model.metadata.get("threshold") or 0.9)

    def classify(self, ticket: TicketText, decided_by: Decider = Decider.LOCAL) -> Classification:
        probabilities = self.model.predict_proba(ticket.text)
        by_department: dict[str, float] = {}
        for label, p in probabilities.items():
            department = split_label(label)[0]
            by_department[department] = by_department.get(department, 0.0) + p
        department = max(by_department, key=by_department.__getitem__)
        best_label = max(
            (lb for lb in probabilities if split_label(lb)[0] == department), key=probabilities.__getitem__
        )
        team = self.taxonomy.team_or_default(department, split_label(best_label)[1])
        return Classification(department, team, by_department[department], decided_by, reason="local model")
