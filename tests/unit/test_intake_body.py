"""The intake body parser: bad JSON of any shape is a 400, never an unbounded recursion or a 500."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.helpers import SEED
from triage.model import MAX_BODY_DEPTH
from triage.stages.intake import ApiError, nesting_depth, parse_json_object

JSON = SimpleNamespace(mimetype="application/json")


def parse(body: bytes) -> dict:
    return parse_json_object(JSON, body)


def refusal(body: bytes) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as info:
        parse(body)
    return info.value.status, info.value.code, info.value.detail


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[{{{"}', 1),  # brackets inside strings do not count
        ('{"a": "\\"[[["}', 1),  # nor after an escaped quote
        ('"unterminated \\', 0),
        ("[" * 5000, 5000),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text, depth):
    assert nesting_depth(text) == depth


@pytest.mark.parametrize("opener", ["[", '{"a":', '{"metadata":'])
def test_deeply_nested_bodies_are_refused_before_decoding(opener):
    status, code, detail = refusal((opener * 5000).encode())
    assert (status, code) == (400, "invalid_json") and f"{MAX_BODY_DEPTH} levels" in detail


def test_nesting_at_the_bound_is_parsed():
    body = {**SEED, "x": json.loads("[" * (MAX_BODY_DEPTH - 1) + "]" * (MAX_BODY_DEPTH - 1))}
    assert parse(json.dumps(body).encode())["title"] == SEED["title"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(literal):
    status, code, detail = refusal(f'{{"metadata": {{"x": {literal}}}}}'.encode())
    assert (status, code) == (400, "invalid_json") and literal in detail


@pytest.mark.parametrize("body", [b'{"t": "\xed\xa0\x80"}', b'{"t": "\xff"}', b'{"t": "\xc3"}'])
def test_invalid_utf8_including_encoded_surrogates_is_400(body):
    assert refusal(body)[:2] == (400, "invalid_json")


def test_integers_too_long_for_int64_become_an_out_of_range_stand_in():
    # int() refuses more than 4300 digits with a ValueError; the model must see an out-of-range int instead
    parsed = parse(b'{"a": ' + b"9" * 6000 + b', "b": -' + b"9" * 25 + b', "c": 12}')
    assert parsed["a"] > 2**63 - 1 and parsed["b"] < -(2**63) and parsed["c"] == 12


def test_utf16_json_is_still_accepted():
    assert parse(json.dumps(SEED).encode("utf-16"))["email"] == SEED["email"]
