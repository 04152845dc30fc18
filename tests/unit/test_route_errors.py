"""One error rule: what a retry cannot fix is a PermanentError with a bounded reason, the rest retryable."""

from __future__ import annotations

import pytest

from triage.config import RoutingConfig
from triage.errors import PermanentError, RetryableError
from triage.route.claims import ClaimBusy
from triage.route.destinations import (
    DestinationConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    build_destination,
)
from triage.route.destinations.deliver import SearchNotSettled
from triage.stages.route import NoRoute, _destination_for
from triage.states import FAILURES, FailureReason, Stage

ROUTING = RoutingConfig.model_validate(
    {"destinations": {"log": {"system": "log"}}, "routes": [{"department": "IT", "destination": "log"}]}
)


def test_a_department_without_a_route_is_a_permanent_configuration_error() -> None:
    assert _destination_for(ROUTING, "IT", None, "high")[0] == "log"
    with pytest.raises(NoRoute) as caught:
        _destination_for(ROUTING, "Legal", None, "high")
    assert isinstance(caught.value, PermanentError)
    assert caught.value.reason is FailureReason.CONFIGURATION_ERROR
    assert "Legal" in str(caught.value)


def test_a_missing_secret_is_a_permanent_configuration_error() -> None:
    with pytest.raises(DestinationConfigError) as caught:
        build_destination("slack", {"webhook_url_env": "NO_SUCH_HOOK"}, {})
    assert isinstance(caught.value, PermanentError) and isinstance(caught.value, ValueError)
    assert caught.value.reason is FailureReason.CONFIGURATION_ERROR


def test_every_error_is_either_permanent_or_retryable() -> None:
    assert issubclass(PermanentDeliveryError, PermanentError)
    assert PermanentDeliveryError("x").reason is FailureReason.DESTINATION_REJECTED
    for retryable in (TransientDeliveryError, SearchNotSettled, ClaimBusy):
        assert issubclass(retryable, RetryableError) and not issubclass(retryable, PermanentError)


def test_permanent_reasons_of_the_route_stage_are_bounded_metric_labels() -> None:
    for reason in (FailureReason.CONFIGURATION_ERROR, FailureReason.DESTINATION_REJECTED):
        assert reason in FAILURES[Stage.ROUTE]
