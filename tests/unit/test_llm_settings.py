"""Per-family generation settings in config/triage.yaml, and reading Gemini's RetryInfo from an API error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.genai import errors

from triage.classify.gemini import parse_duration, retry_after, retry_info_delay
from triage.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
LLM = load_config(ROOT / "config").triage.classifier.llm


def for_model(model: str):
    return LLM.model_copy(update={"model": model})


@pytest.mark.parametrize(
    ("model", "budget", "level"),
    [
        ("gemini-2.5-flash", 0, None),
        ("gemini-2.5-flash-001", 0, None),
        ("gemini-2.5-pro", 128, None),  # cannot be turned off; 128 is its minimum
        ("gemini-3.1-flash-lite", None, "minimal"),
        ("gemini-3-flash-preview", None, "minimal"),
        ("gemini-3.1-pro-preview", None, "low"),  # longer prefix than gemini-3
    ],
)
def test_each_thinking_family_gets_its_lowest_thinking_setting(model, budget, level):
    thinking = for_model(model).thinking()
    assert (thinking.budget, thinking.level) == (budget, level)


def test_flash_lite_2_5_and_unknown_models_get_no_thinking_configuration():
    assert for_model("gemini-2.5-flash-lite").thinking() is None  # longest prefix beats gemini-2.5-flash
    assert for_model("some-other-model").family() is None
    assert for_model("some-other-model").effective_temperature() == LLM.temperature


def test_gemini_3_is_never_sent_a_temperature_below_one():
    for family in LLM.families:
        if family.prefix.startswith("gemini-3"):
            assert family.temperature is None or family.temperature >= 1.0, family.prefix


def test_longest_prefix_wins_whatever_the_order(config_dir):
    edit(config_dir, lambda llm: llm["families"].reverse())
    llm = load_config(config_dir).triage.classifier.llm.model_copy(update={"model": "gemini-2.5-flash-lite"})
    assert llm.family().prefix == "gemini-2.5-flash-lite"


def edit(config_dir: Path, change) -> None:
    path = config_dir / "triage.yaml"
    data = yaml.safe_load(path.read_text())
    change(data["classifier"]["llm"])
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("thinking", "message"),
    [
        ({"budget": 0, "level": "low"}, r"families\.0\.thinking: set exactly one of budget or level"),
        ({"level": "none"}, r"families\.0\.thinking\.level"),
        ({"budgett": 0}, r"families\.0\.thinking\.budgett"),
    ],
)
def test_bad_thinking_settings_fail_with_the_key_named(config_dir, thinking, message):
    edit(config_dir, lambda llm: llm["families"][0].update(thinking=thinking))
    with pytest.raises(ConfigError, match=r"triage\.yaml: classifier\.llm\." + message):
        load_config(config_dir)


def test_a_prefix_listed_twice_fails(config_dir):
    edit(config_dir, lambda llm: llm["families"].append({"prefix": "gemini-3"}))
    with pytest.raises(ConfigError, match=r"classifier\.llm: families: prefix listed twice: gemini-3"):
        load_config(config_dir)


def test_the_model_has_no_default_in_code(config_dir):
    edit(config_dir, lambda llm: llm.pop("model"))
    with pytest.raises(ConfigError, match=r"classifier\.llm\.model: Field required"):
        load_config(config_dir)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("58s", 58.0), ("0.3s", 0.3), ("1.234s", 1.234), (".5s", 0.5), ({"seconds": 2, "nanos": 5e8}, 2.5)],
)
def test_protobuf_durations_parse(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["58", "s", "1m", None, 3])
def test_anything_else_is_no_duration(value):
    assert parse_duration(value) is None


def quota_error(delay: str, wrap: bool = True) -> errors.ClientError:
    inner = {
        "code": 429,
        "status": "RESOURCE_EXHAUSTED",
        "message": "You exceeded your current quota",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ],
    }
    return errors.ClientError(429, {"error": inner} if wrap else inner)


@pytest.mark.parametrize("wrap", [True, False])
def test_retry_info_is_read_from_either_shape_of_api_error_details(wrap):
    assert retry_info_delay(quota_error("0.3s", wrap)) == pytest.approx(0.3)


def test_a_whole_second_retry_delay_is_waited_out_to_its_truncated_fraction():
    assert retry_after(quota_error("58s")) == 59.0
    assert retry_after(quota_error("0.3s")) == pytest.approx(0.3)
    assert retry_after(errors.ClientError(429, {"error": {"code": 429, "details": []}})) is None
