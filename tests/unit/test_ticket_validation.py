"""The intake body rules of the contract, one behaviour per test."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.helpers import SEED
from triage.model import TicketIn, field_errors, public_view


def errors_for(payload: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        TicketIn.model_validate(payload)
    return {e["field"]: e["message"] for e in field_errors(info.value)}


def test_seed_payload_is_accepted_as_is():
    ticket = TicketIn.model_validate(SEED)
    assert ticket.priority == "high"
    assert ticket.metadata == {"department": "IT", "location": "Building A"}


def test_priority_defaults_to_medium_and_unknown_fields_are_ignored():
    ticket = TicketIn.model_validate(
        {**{k: SEED[k] for k in ("title", "description", "email")}, "colour": "red"}
    )
    assert ticket.priority == "medium"
    assert "colour" not in ticket.model_dump()


def test_title_and_description_are_trimmed_before_length_checks():
    ticket = TicketIn.model_validate({**SEED, "title": "  x  ", "description": "\n y \t"})
    assert (ticket.title, ticket.description) == ("x", "y")
    assert set(errors_for({**SEED, "title": "   "})) == {"title"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "t" * 201),
        ("title", 42),
        ("description", "d" * 10_001),
        ("description", ""),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "two@@signs.com"),
        ("priority", "urgent"),
        ("metadata", ["not", "an", "object"]),
        ("metadata", {"blob": "x" * 9000}),
    ],
)
def test_each_bad_field_is_named(field, value):
    assert set(errors_for({**SEED, field: value})) == {field}


def test_missing_required_fields_are_all_reported():
    assert set(errors_for({})) == {"title", "description", "email"}


def test_errors_never_echo_the_input():
    detail = errors_for({**SEED, "email": "secret-value-not-an-email"})
    assert "secret-value" not in str(detail)


def test_public_view_hides_email_and_description():
    doc = {"id": "t1", "status": "received", **SEED, "history": []}
    view = public_view(doc)
    assert view["ticket_id"] == "t1"
    assert "email" not in view and "description" not in view
