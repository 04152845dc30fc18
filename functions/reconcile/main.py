"""reconcile: called on a schedule (Cloud Scheduler, OIDC) → triage.stages.reconcile."""

import functions_framework
from flask import Request

from triage.logs import configure
from triage.runtime import runtime
from triage.stages import reconcile as stage

configure("reconcile", runtime().settings.project, runtime().settings.log_level)


@functions_framework.http
def reconcile(request: Request) -> tuple:
    # Invocation is guarded by IAM (only the scheduler's service account may invoke); the body is ignored.
    if request.method != "POST":
        return {"error": "method_not_allowed", "detail": "POST only"}, 405
    sweep = stage.release_due(runtime())
    return {"due": sweep.due, "stale": sweep.stale, "waiting": sweep.waiting}, 200
