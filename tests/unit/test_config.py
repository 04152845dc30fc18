from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def edit(config_dir: Path, name: str, change) -> None:
    path = config_dir / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_shipped_config_loads_and_routes_every_department():
    config = load_config(ROOT / "config")
    for department in config.triage.departments:
        _name, destination = config.routing.destination_for(department, None, "medium")
        assert destination.system == "log"


def test_route_to_unknown_department_names_file_and_key(config_dir):
    edit(
        config_dir,
        "routing.yaml",
        lambda d: d["routes"].append({"department": "Sales", "destination": "log"}),
    )
    with pytest.raises(
        ConfigError, match=r"routing\.yaml: routes\.7\.department: unknown department 'Sales'"
    ):
        load_config(config_dir)


def test_unknown_destination_names_file_and_key(config_dir):
    edit(config_dir, "routing.yaml", lambda d: d["routes"][0].update(destination="jira-it"))
    with pytest.raises(
        ConfigError, match=r"routing\.yaml.*routes\.0\.destination: unknown destination 'jira-it'"
    ):
        load_config(config_dir)


def test_department_without_catch_all_route_fails(config_dir):
    edit(config_dir, "routing.yaml", lambda d: d["routes"][1].update(priority=["critical"]))
    with pytest.raises(ConfigError, match=r"no catch-all route for department.*HR"):
        load_config(config_dir)


def test_unknown_system_fails(config_dir):
    edit(config_dir, "routing.yaml", lambda d: d["destinations"].update(pager={"system": "pagerduty"}))
    with pytest.raises(ConfigError, match=r"routing\.yaml: destinations\.pager\.system"):
        load_config(config_dir)


def test_typo_in_thresholds_fails(config_dir):
    edit(config_dir, "triage.yaml", lambda d: d["thresholds"].update(review_confidance=0.5))
    with pytest.raises(ConfigError, match=r"triage\.yaml: thresholds\.review_confidance"):
        load_config(config_dir)


def test_specific_route_wins_over_department_default(config_dir):
    def add(d):
        d["destinations"]["urgent"] = {"system": "slack", "webhook_url_env": "SLACK_URGENT"}
        d["routes"].insert(0, {"department": "IT", "priority": ["critical"], "destination": "urgent"})

    edit(config_dir, "routing.yaml", add)
    routing = load_config(config_dir).routing
    assert routing.destination_for("IT", None, "critical")[0] == "urgent"
    assert routing.destination_for("IT", None, "low")[0] == "log"
