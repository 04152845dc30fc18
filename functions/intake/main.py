"""intake: the HTTP entry point n8n posts tickets to (see triage.stages.intake)."""

import logging

import functions_framework
from flask import Request

from triage.logs import configure
from triage.runtime import runtime
from triage.stages import intake as stage

configure("intake", runtime().settings.project, runtime().settings.log_level)
if not runtime().settings.webhook_secret:
    logging.getLogger("triage.intake").warning(
        "TRIAGE_WEBHOOK_SECRET is not set: intake accepts unauthenticated requests"
    )


@functions_framework.http
def intake(request: Request) -> tuple:
    return stage.handle(request, runtime())
