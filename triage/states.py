"""The ticket state machine: the one place that says which state may follow which."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    RECEIVED = "received"
    CLASSIFIED = "classified"
    NEEDS_REVIEW = "needs_review"
    ROUTED = "routed"
    FAILED = "failed"


class Stage(StrEnum):
    INTAKE = "intake"
    CLASSIFY = "classify"
    ROUTE = "route"
    REVIEW = "review"


class FailureReason(StrEnum):
    """Bounded reasons, used as a metric label; the free-text detail goes on the ticket only."""

    CONFIGURATION_ERROR = "configuration_error"
    DEAD_LETTER = "dead_letter"
    DESTINATION_REJECTED = "destination_rejected"
    INVALID_TICKET = "invalid_ticket"
    PUBLISH_FAILED = "publish_failed"
    REVIEW_REJECTED = "review_rejected"


# What can end a ticket at each stage: the bounded label set of triage_tickets_failed_total.
FAILURES: dict[Stage, tuple[FailureReason, ...]] = {
    Stage.INTAKE: (FailureReason.PUBLISH_FAILED,),
    Stage.CLASSIFY: (FailureReason.DEAD_LETTER, FailureReason.INVALID_TICKET),
    Stage.ROUTE: (
        FailureReason.CONFIGURATION_ERROR,
        FailureReason.DEAD_LETTER,
        FailureReason.DESTINATION_REJECTED,
        FailureReason.INVALID_TICKET,
    ),
    Stage.REVIEW: (FailureReason.REVIEW_REJECTED,),
}

FINAL: frozenset[Status] = frozenset({Status.ROUTED, Status.FAILED})

_NEXT: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.CLASSIFIED, Status.FAILED}),
    Status.CLASSIFIED: frozenset({Status.ROUTED, Status.NEEDS_REVIEW, Status.FAILED}),
    Status.NEEDS_REVIEW: frozenset({Status.ROUTED, Status.FAILED}),
    Status.ROUTED: frozenset(),
    Status.FAILED: frozenset(),
}


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in _NEXT[Status(current)]


def is_final(status: Status | str) -> bool:
    return Status(status) in FINAL
