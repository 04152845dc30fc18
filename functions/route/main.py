"""route: Pub/Sub push of triage-route (and its dead letters) → triage.stages.route."""

import functions_framework
from cloudevents.http import CloudEvent

from triage.lazy import once
from triage.logs import configure
from triage.route.factory import DestinationCache
from triage.route.rules import RoutingRules
from triage.runtime import runtime
from triage.stages import route as stage
from triage.stages.runner import run
from triage.states import Stage

configure("route", runtime().settings.project, runtime().settings.log_level)
destinations = DestinationCache()


@once
def rules() -> RoutingRules:
    return RoutingRules(runtime().store.db, runtime().config)


@functions_framework.cloud_event
def route(cloud_event: CloudEvent) -> None:
    run(
        cloud_event.data,
        runtime(),
        Stage.ROUTE,
        lambda msg, snap: stage.route_ticket(msg, snap, runtime(), destinations, rules().current()),
    )
