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


def _nested(levels: int, inner: object = 1) -> dict:
    value: object = inner
    for _ in range(levels - 1):
        value = {"k": value}
    return {"k": value}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"n": 2**63}, "integers must be between"),
        ({"n": -(2**63) - 1}, "integers must be between"),
        ({"": 1}, "must not be empty"),
        ({"  ": 1}, "must not be empty"),  # keys are stripped like every string
        ({"a": {"": 1}}, "must not be empty"),
        ({"__x__": 1}, "reserved by Firestore"),
        ({"a": {"__name__": 1}}, "reserved by Firestore"),
        ({"a": [[1]]}, "array directly inside an array"),
        (_nested(11), "more than 10 levels deep"),  # metadata itself is level 1
        (_nested(199), "more than 10 levels deep"),
        ({"a": [{"b": [{"c": [{"d": [{"e": [{"f": 1}]}]}]}]}]}, "more than 10 levels deep"),
        ({"a": "\ud800"}, "lone surrogates"),
        ({"\udfff": 1}, "lone surrogates"),
        ({"a": float("nan")}, "must be finite"),
        ({"a": float("inf")}, "must be finite"),
        ({"k" * 1501: 1}, "at most 1500 bytes"),
        ({"a": (1, 2)}, "must be JSON"),
    ],
)
def test_metadata_firestore_cannot_store_is_refused(metadata, message):
    errors = errors_for({**SEED, "metadata": metadata})
    assert set(errors) == {"metadata"} and message in errors["metadata"]


def test_metadata_at_the_limits_is_accepted():
    metadata = {"max": 2**63 - 1, "min": -(2**63), "deep": _nested(9), "list": [{"a": [1]}], " _x_ ": 1.5}
    assert TicketIn.model_validate({**SEED, "metadata": metadata}).metadata["deep"] == _nested(9)


@pytest.mark.parametrize("field", ["title", "description", "email"])
def test_lone_surrogates_in_text_fields_are_refused(field):
    # pydantic's own str validation refuses them ("unable to parse raw data as a unicode string")
    assert set(errors_for({**SEED, field: SEED[field] + "\ud800"})) == {field}


def test_metadata_of_any_depth_from_python_never_recurses_without_bound():
    assert "levels deep" in errors_for({**SEED, "metadata": _nested(50_000)})["metadata"]
