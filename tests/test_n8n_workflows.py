"""The n8n workflows in integrations/n8n/ are importable and post what intake expects, without n8n.

`make test-n8n` runs them in a real n8n; these structural checks are what `make test` can afford.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devstack.stubs.slack import blocks_valid
from triage.stages.intake import CREATE_PATHS

ROOT = Path(__file__).resolve().parent.parent
N8N_DIR = ROOT / "integrations" / "n8n"
SHIPPED = {
    "submit-ticket.json": "Submit ticket",
    "email-to-ticket.json": "Email to ticket",
    "failure-alert.json": "Failure alert",
}
TRIGGERS = {"n8n-nodes-base.manualTrigger", "n8n-nodes-base.webhook", "n8n-nodes-base.emailReadImap"}
HTTP = "n8n-nodes-base.httpRequest"
INTAKE_ENV = "$env.TRIAGE_INTAKE_URL"
# Anything that looks like a credential value: Bearer tokens, Slack tokens and hook URLs, passwords, keys.
SECRET_PATTERNS = [
    re.compile(r"bearer\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE),
    re.compile(r"xox[abprs]-[A-Za-z0-9-]+"),
    re.compile(r"hooks\.slack\.com/services/\w"),
    re.compile(r"\"(password|passwd|secret|token|api_?key)\"\s*:\s*\"[^\"]+\"", re.IGNORECASE),
    re.compile(r"TRIAGE_WEBHOOK_SECRET"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def load(name: str) -> dict[str, Any]:
    return json.loads((N8N_DIR / name).read_text())


def walk_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in walk_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in walk_strings(v)]
    return []


def http_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in workflow["nodes"] if n["type"] == HTTP]


def intake_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in http_nodes(workflow) if INTAKE_ENV in n["parameters"].get("url", "")]


def test_exactly_the_documented_workflows_ship_each_with_a_readme_line():
    assert {p.name for p in N8N_DIR.glob("*.json")} == set(SHIPPED)
    readme = (N8N_DIR / "README.md").read_text()
    for file, name in SHIPPED.items():
        assert f"`{file}`" in readme and name in readme
        assert load(file)["name"] == name


@pytest.mark.parametrize("file", sorted(SHIPPED))
def test_workflow_has_stable_ids_and_a_connected_graph(file):
    workflow = load(file)
    assert re.fullmatch(r"[A-Za-z0-9]{1,21}", workflow["id"]), "n8n CLI accepts ids of at most 21 chars"
    nodes = {n["name"]: n for n in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]), "node names must be unique"
    ids = [n["id"] for n in workflow["nodes"]]
    assert len(set(ids)) == len(ids)
    for node in workflow["nodes"]:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", node["id"])
        assert node["type"].startswith("n8n-nodes-base.") and isinstance(node["typeVersion"], int | float)
        assert isinstance(node["parameters"], dict) and len(node["position"]) == 2
        if node["type"] == "n8n-nodes-base.webhook":
            assert re.fullmatch(r"[0-9a-f-]{36}", node["webhookId"]), "stable webhookId keeps the URL stable"

    edges: dict[str, list[str]] = {}
    for source, outputs in workflow["connections"].items():
        assert source in nodes, f"connection from unknown node {source!r}"
        for output in outputs["main"]:
            for target in output:
                assert target["node"] in nodes, f"connection to unknown node {target['node']!r}"
                assert target["type"] == "main"
                edges.setdefault(source, []).append(target["node"])

    triggers = [name for name, n in nodes.items() if n["type"] in TRIGGERS]
    assert triggers
    reached, todo = set(triggers), deque(triggers)
    while todo:
        for target in edges.get(todo.popleft(), []):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    assert reached == set(nodes), f"unreachable from a trigger: {set(nodes) - reached}"


@pytest.mark.parametrize("file", sorted(SHIPPED))
def test_http_request_nodes_post_json_to_an_env_url_and_retry(file):
    nodes = http_nodes(load(file))
    assert nodes
    for node in nodes:
        params = node["parameters"]
        assert node["typeVersion"] == 4.2
        assert params["method"] == "POST"
        assert "httpMethod" not in params and "requestMethod" not in params, "v1/v2 names post nothing in v4"
        url = params["url"]
        assert url.startswith("={{") and "$env." in url, "URL must come from the environment"
        assert not re.search(r"https?://", url), "no hard-coded host"
        assert params["sendBody"] is True and params["specifyBody"] == "json"
        assert params["jsonBody"].startswith("={{")
        assert node["retryOnFail"] is True
        assert 2 <= node["maxTries"] <= 5 and 1000 <= node["waitBetweenTries"] <= 5000  # n8n's UI limits


@pytest.mark.parametrize("file", ["submit-ticket.json", "email-to-ticket.json"])
def test_ticket_workflows_post_to_intake_with_header_auth_and_idempotency_key(file):
    workflow = load(file)
    (node,) = intake_nodes(workflow)
    params = node["parameters"]
    path = params["url"].rsplit("}}", 1)[1]
    assert path in CREATE_PATHS and path != "/"
    for field in ("title", "description", "email", "priority"):
        assert re.search(rf"\b{field}:", params["jsonBody"]), f"{field} missing from the body"
    assert params["sendHeaders"] is True
    headers = {h["name"].lower(): h["value"] for h in params["headerParameters"]["parameters"]}
    assert headers["idempotency-key"].startswith("={{")
    assert "authorization" not in headers, "auth comes from the credential"
    assert params["authentication"] == "genericCredentialType"
    assert params["genericAuthType"] == "httpHeaderAuth"
    assert set(node["credentials"]) == {"httpHeaderAuth"}


def test_submit_webhook_requires_its_own_header_auth():
    """It forwards to intake with the intake secret, so an open webhook would bypass intake's auth."""
    workflow = load("submit-ticket.json")
    (webhook,) = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.webhook"]
    (intake,) = intake_nodes(workflow)
    assert webhook["parameters"]["authentication"] == "headerAuth"
    assert webhook["credentials"]["httpHeaderAuth"]["id"] != intake["credentials"]["httpHeaderAuth"]["id"]


def test_email_workflow_maps_subject_body_sender_and_message_id():
    workflow = load("email-to-ticket.json")
    (imap,) = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.emailReadImap"]
    assert imap["parameters"]["format"] == "resolved"  # mailparser fields: subject, text, from, messageId
    (mapper,) = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.set"]
    values = {a["name"]: a["value"] for a in mapper["parameters"]["assignments"]["assignments"]}
    assert "$json.subject" in values["title"]
    assert "$json.text" in values["description"]
    assert "$json.from" in values["email"]
    assert "$json.messageId" in values["idempotency_key"]


@pytest.mark.parametrize("file", sorted(SHIPPED))
def test_credentials_are_referenced_never_inlined(file):
    text = (N8N_DIR / file).read_text()
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(text), f"{file}: looks like a secret: {pattern.pattern}"
    for node in load(file)["nodes"]:
        for kind, ref in node.get("credentials", {}).items():
            assert set(ref) == {"id", "name"} and ref["id"] and ref["name"], f"{node['name']}: {kind}"
        for value in walk_strings(node["parameters"]):
            assert "$env.TRIAGE_" not in value or "SECRET" not in value


def test_failure_alert_webhook_is_where_alertmanager_posts():
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    urls = {c["url"] for r in config["receivers"] for c in r.get("webhook_configs", [])}
    assert urls
    (webhook,) = [n for n in load("failure-alert.json")["nodes"] if n["type"] == "n8n-nodes-base.webhook"]
    assert webhook["parameters"]["httpMethod"] == "POST"
    for url in urls:
        assert urlsplit(url).path == f"/webhook/{webhook['parameters']['path']}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_alert_summary_code_builds_slack_blocks_within_limits():
    """Runs the Code node's JavaScript under plain Node with a stand-in for n8n's `$input`."""
    (code,) = [n for n in load("failure-alert.json")["nodes"] if n["type"] == "n8n-nodes-base.code"]
    alerts = [
        {
            "status": "firing" if i else "resolved",
            "labels": {"alertname": f"TriageAlert{i}", "severity": "page", "stage": "classify"},
            "annotations": {"summary": "s" * 2000, "description": "d" * 2000, "runbook_url": "https://r/x"},
        }
        for i in range(60)
    ]
    payload = {"status": "firing", "receiver": "triage-page", "alerts": alerts, "truncatedAlerts": 3}
    script = (
        f"const $input = {{ all: () => [{{ json: {{ body: {json.dumps(payload)} }} }}] }};\n"
        f"const run = () => {{\n{code['parameters']['jsCode']}\n}};\n"
        "process.stdout.write(JSON.stringify(run()));"
    )
    out = subprocess.run(["node", "-"], input=script, capture_output=True, text=True, timeout=20, check=True)
    (item,) = json.loads(out.stdout)
    message = item["json"]
    assert blocks_valid(message["blocks"])
    assert message["text"].startswith("FIRING: TriageAlert0")
    assert "23 more not shown" in json.dumps(message)
    assert "59 firing, 1 resolved" in json.dumps(message)
