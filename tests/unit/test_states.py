from __future__ import annotations

import pytest

from triage.states import Status, can_transition, is_final

FORWARD = [
    ("received", "classified"),
    ("classified", "routed"),
    ("classified", "needs_review"),
    ("needs_review", "routed"),
    ("received", "failed"),
    ("classified", "failed"),
    ("needs_review", "failed"),
]


@pytest.mark.parametrize(("current", "target"), FORWARD)
def test_forward_transitions_are_allowed(current, target):
    assert can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("classified", "received"),
        ("routed", "classified"),
        ("routed", "failed"),
        ("failed", "received"),
        ("needs_review", "classified"),
        ("received", "routed"),
        ("received", "received"),
    ],
)
def test_backward_skipping_and_repeated_transitions_are_refused(current, target):
    assert not can_transition(current, target)


def test_only_routed_and_failed_are_final():
    assert {s for s in Status if is_final(s)} == {Status.ROUTED, Status.FAILED}
