"""The fault-injection soak of `make bench` (bench/soak.py), short: every function SIGKILLed once while
tickets flow, Gemini and Jira failing 20 %, Jira dropping answers of creates and searching 3 s behind."""

from __future__ import annotations

import pytest

from bench.soak import Scenario, soak
from tests.e2e.conftest import stack_on

pytestmark = [pytest.mark.emulators, pytest.mark.e2e]


def test_nothing_stranded_duplicated_or_orphaned_when_every_function_is_killed(emulators, project, tmp_path):
    scenario = Scenario(tickets=150, kills_per_function=1, drain_s=90, partitions=4)
    figures = soak(scenario, lambda **options: stack_on(emulators, project, tmp_path, {}, **options))
    assert figures["kills"] == ["classify", "route", "intake"]
    assert figures["accepted"] == scenario.tickets
    assert figures["not_final"] == 0, figures
    assert figures["routed"] + figures["failed"] == scenario.tickets
    assert figures["jira_duplicates"] == 0 and figures["jira_orphans"] == 0, figures
    assert figures["server_errors_5xx"] == 0, figures
