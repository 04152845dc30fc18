"""Chooses how classify decides: the local model now; Gemini, hybrid, cache and budget build on this."""

from __future__ import annotations

from triage.classify.base import Classifier
from triage.classify.local import LocalClassifier
from triage.runtime import Runtime


def build_classifier(rt: Runtime) -> Classifier:
    return LocalClassifier.load(rt.config.triage)
