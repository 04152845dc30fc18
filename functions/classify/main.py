"""classify: Pub/Sub push of triage-classify (and its dead letters) → triage.stages.classify."""

import functions_framework
from cloudevents.http import CloudEvent

from triage.classify.engine import Engine, build_classifier
from triage.lazy import once
from triage.logs import configure
from triage.runtime import runtime
from triage.stages import classify as stage
from triage.stages.runner import run
from triage.states import Stage

configure("classify", runtime().settings.project, runtime().settings.log_level)


@once
def classifier() -> Engine:
    return build_classifier(runtime())


@functions_framework.cloud_event
def classify(cloud_event: CloudEvent) -> None:
    run(
        cloud_event.data,
        runtime(),
        Stage.CLASSIFY,
        lambda msg, snap: stage.classify_ticket(msg, snap, runtime(), classifier()),
    )
