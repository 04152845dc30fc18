from __future__ import annotations

import pytest

from triage import metrics as m
from triage.counters import CounterUpdate, bucket_for, parse_series_key, series_key, sum_shards


def increments_to_values(tree):
    return {k: increments_to_values(v) if isinstance(v, dict) else v.value for k, v in tree.items()}


def test_series_key_round_trips_labels_in_family_order():
    key = series_key(m.TICKETS_CLASSIFIED, {"classifier": "local", "department": "IT"})
    assert key == "department=IT|classifier=local"
    assert parse_series_key(key) == {"department": "IT", "classifier": "local"}


def test_unlabelled_series_has_a_non_empty_key():
    assert parse_series_key(series_key(m.TICKETS_RECEIVED, None)) == {}


@pytest.mark.parametrize("labels", [{"department": "IT"}, {"department": "IT", "classifier": "a b"}])
def test_wrong_or_unsafe_labels_are_refused(labels):
    with pytest.raises(ValueError):
        series_key(m.TICKETS_CLASSIFIED, labels)


def test_histogram_bucket_is_the_first_upper_bound_at_or_above_the_value():
    assert bucket_for(m.STAGE_DURATION, 0.05) == "0.05"
    assert bucket_for(m.STAGE_DURATION, 0.06) == "0.1"
    assert bucket_for(m.STAGE_DURATION, 10_000) == "+Inf"


def test_update_accumulates_and_merges():
    a = CounterUpdate().inc(m.TICKETS_BY_STATUS, {"status": "received"}, -1)
    b = (
        CounterUpdate()
        .inc(m.TICKETS_BY_STATUS, {"status": "received"}, -1)
        .observe(m.STAGE_DURATION, {"stage": "route"}, 0.2)
    )
    values = increments_to_values(a.merge(b).as_increments())
    assert values["triage_tickets"] == {"status=received": -2}
    assert values["triage_stage_duration_seconds"]["stage=route"] == {
        "b": {"0.25": 1},
        "sum": 0.2,
        "count": 1,
    }


def test_counter_families_store_without_the_total_suffix():
    values = increments_to_values(CounterUpdate().inc(m.TICKETS_RECEIVED).as_increments())
    assert values == {"triage_tickets_received": {"_": 1}}


def test_sum_shards_adds_nested_values():
    shards = [
        {"triage_tickets": {"status=routed": 2}, "h": {"s": {"b": {"1": 1}, "sum": 0.5, "count": 1}}},
        {
            "triage_tickets": {"status=routed": 3, "status=failed": 1},
            "h": {"s": {"b": {"1": 2}, "sum": 1.0, "count": 2}},
        },
    ]
    total = sum_shards(shards)
    assert total["triage_tickets"] == {"status=routed": 5, "status=failed": 1}
    assert total["h"]["s"] == {"b": {"1": 3}, "sum": 1.5, "count": 3}


def test_histogram_and_counter_apis_are_not_interchangeable():
    with pytest.raises(TypeError):
        CounterUpdate().inc(m.STAGE_DURATION, {"stage": "route"})
    with pytest.raises(TypeError):
        CounterUpdate().observe(m.TICKETS_RECEIVED, None, 1.0)


def test_a_billed_call_without_a_price_is_counted_unpriced_whatever_its_outcome() -> None:
    from triage.classify.base import LLMUsage
    from triage.stages.classify import llm_call_counters

    def unpriced(usage: LLMUsage) -> bool:
        return "triage_llm_unpriced_requests" in llm_call_counters(usage).as_increments()

    assert unpriced(LLMUsage("m", input_tokens=40, output_tokens=8, outcome="ok"))
    assert unpriced(LLMUsage("m", input_tokens=40, thinking_tokens=250, outcome="truncated"))
    assert not unpriced(LLMUsage("m", outcome="rate_limited"))  # refused: nothing billed
    assert not unpriced(LLMUsage("m", input_tokens=40, output_tokens=8, cost_usd=0.0001))
