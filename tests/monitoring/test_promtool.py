"""Checks of monitoring/: Prometheus config and rules, rule unit tests, Alertmanager config, dashboards.

The promtool/amtool/prometheus checks skip when the binaries are missing, except under CI (`CI` set), where
they fail: `.ci/install-monitoring-tools.sh` installs them (Debian packages prometheus and
prometheus-alertmanager).
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.monitoring import panel_queries as pq
from triage import metrics

REPO = pq.REPO
PROMETHEUS_DIR = REPO / "monitoring" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO / "monitoring" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = REPO / "monitoring" / "grafana"
RUNBOOK = REPO / "docs" / "RUNBOOK.md"

DATASOURCE_UID = "triage-prometheus"
DASHBOARD_UIDS = {"triage-ops.json": "triage-ops", "triage-llm-cost.json": "triage-llm-cost"}
SEVERITIES = {"page", "ticket"}
UNITS = {"reqps", "ops", "s", "short", "none", "currencyUSD", "percentunit", "suffix: tok/s"}

REQUIRED_ALERTS = {
    "TriageExporterDown",
    "TriagePipelineStalled",
    "TriageTicketsStuck",
    "TriageDeadLetters",
    "TriageStageErrorRate",
    "TriageEndToEndLatencyHigh",
    "TriageLLMErrorRate",
    "TriageLLMBudgetNearlySpent",
    "TriageLLMBudgetExhausted",
    "TriageReviewQueueGrowing",
}

FAMILIES: dict[str, metrics.Family] = {
    f.name: f for f in vars(metrics).values() if isinstance(f, metrics.Family)
}

# Bounded label values (docs/ARCHITECTURE.md, triage/states.py) that rule and dashboard matchers may name.
STATUSES = {"received", "classified", "needs_review", "routed", "failed"}
LABEL_VALUES: dict[tuple[str, str], set[str]] = {
    ("triage_tickets", "status"): STATUSES,
    ("triage_tickets_stuck", "status"): STATUSES,
    ("triage_tickets_classified_total", "classifier"): {"llm", "local", "cache", "fallback"},
    ("triage_llm_requests_total", "outcome"): {
        "ok",
        "invalid",
        "truncated",
        "error",
        "timeout",
        "rate_limited",
    },
    ("triage_llm_tokens_total", "type"): {"input", "output", "thinking", "cached"},
    ("triage_tickets_failed_total", "stage"): {"intake", "classify", "route", "review"},
    ("triage_tickets_failed_total", "reason"): {
        "configuration_error",
        "dead_letter",
        "destination_rejected",
        "invalid_ticket",
        "review_rejected",
    },
    ("triage_stage_duration_seconds", "stage"): {"classify", "route"},
    ("triage_dead_letter_messages_total", "stage"): {"classify", "route"},
}
TARGET_LABELS = {"job", "instance"}


# --- helpers ---------------------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path:
        return path
    msg = (
        f"{binary} is not installed: run .ci/install-monitoring-tools.sh "
        "(Debian packages prometheus and prometheus-alertmanager)"
    )
    if _in_ci():
        pytest.fail(f"{msg}; CI is set, so the monitoring checks must run")
    pytest.skip(msg)


def _run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _all_queries() -> list[tuple[str, str]]:
    """Dashboard targets (variables substituted) and rule expressions."""
    return pq.iter_queries()


# --- promtool / amtool -----------------------------------------------------------------------------------


def test_promtool_check_config() -> None:
    promtool = _require("promtool")
    out = _run(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert f"{len(pq.rule_files())} rule files found" in out.stdout


def test_promtool_check_rules() -> None:
    promtool = _require("promtool")
    _run(promtool, "check", "rules", *pq.rule_files())


def test_promtool_test_rules() -> None:
    promtool = _require("promtool")
    assert RULE_TEST_FILES, "no promtool rule unit tests"
    out = _run(promtool, "test", "rules", *RULE_TEST_FILES)
    assert "FAILED" not in out.stdout + out.stderr


def test_amtool_check_config() -> None:
    amtool = _require("amtool")
    _run(amtool, "check-config", ALERTMANAGER_CONFIG)


def test_amtool_routes_by_severity() -> None:
    amtool = _require("amtool")
    for labels, receiver in (("severity=page", "triage-page"), ("severity=ticket", "triage-ticket")):
        out = _run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            "alertname=TriageX",
            labels,
        )
        assert out.stdout.split() == [receiver], out.stdout


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every dashboard target, variables substituted, is valid PromQL (checked as a recording rule)."""
    promtool = _require("promtool")
    rules = [
        {"record": f"dashboard_query_{i}", "expr": expr} for i, (_, expr) in enumerate(pq.dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    _run(promtool, "check", "rules", path)


# --- rules -----------------------------------------------------------------------------------------------


def test_required_alerts_exist() -> None:
    names = [a.name for a in pq.alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(names)


@pytest.mark.parametrize("alert", pq.alerts(), ids=lambda a: a.name)
def test_alert_labels_and_annotations(alert: pq.Rule) -> None:
    assert alert.raw.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.raw.get("annotations", {})
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert annotations["runbook_url"].endswith(f"docs/RUNBOOK.md#{alert.name.lower()}")


def _runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    headings = {m.group(1).strip().lower() for m in re.finditer(r"^##\s+(.+?)\s*$", text, re.MULTILINE)}
    ids = set(re.findall(r'<a id="([^"]+)"', text))
    return headings | ids


def test_every_alert_has_a_runbook_section() -> None:
    anchors = _runbook_anchors()
    missing = [a.name for a in pq.alerts() if a.name.lower() not in anchors]
    assert not missing, f"docs/RUNBOOK.md has no section for {missing}"


def test_every_alert_has_firing_and_silent_unit_tests() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TEST_FILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                expected = case.get("exp_alerts") or []
                (firing if expected else silent).add(case["alertname"])
                for alert in expected:
                    assert "severity" in alert.get("exp_labels", {}), (path.name, case)
                    assert {"summary", "description", "runbook_url"} <= set(
                        alert.get("exp_annotations", {})
                    ), (
                        path.name,
                        case,
                    )
    names = {a.name for a in pq.alerts()}
    assert not names - firing, f"alerts without a firing test: {sorted(names - firing)}"
    assert not names - silent, f"alerts without a silent test: {sorted(names - silent)}"


# --- metric names ----------------------------------------------------------------------------------------

_SELECTOR = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_METRIC = re.compile(r"\b(triage_[a-z0-9_]+)\b")


def _family(name: str) -> tuple[metrics.Family | None, bool]:
    """The family a series name belongs to, and whether it is a histogram `_bucket` series."""
    if name in FAMILIES:
        return FAMILIES[name], False
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in FAMILIES and FAMILIES[base].kind == metrics.Kind.HISTOGRAM:
            return FAMILIES[base], suffix == "_bucket"
    return None, False


@pytest.mark.parametrize(("source", "expr"), _all_queries(), ids=[s for s, _ in _all_queries()])
def test_queries_use_known_metrics_and_labels(source: str, expr: str) -> None:
    for name in _METRIC.findall(expr):
        assert _family(name)[0] is not None, f"{source}: {name} is not in triage/metrics.py"
    all_labels = {label for f in FAMILIES.values() for label in f.labels} | TARGET_LABELS | {"le"}
    for grouping in _GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in grouping.split(","))):
            assert label in all_labels, f"{source}: unknown label {label!r} in grouping"
    for name, body in _SELECTOR.findall(expr):
        family, is_bucket = _family(name)
        if name == "up":
            allowed = TARGET_LABELS
        elif family is None:
            continue
        else:
            allowed = set(family.labels) | TARGET_LABELS | ({"le"} if is_bucket else set())
        for label, op, value in _MATCHER.findall(body):
            assert label in allowed, f"{source}: {name} has no label {label!r}"
            known = LABEL_VALUES.get((family.name if family else name, label))
            if known and op in ("=", "!=") and value:
                assert value in known, f"{source}: {name}{{{label}{op}{value!r}}} is not a known value"
            elif known and op in ("=~", "!~") and re.fullmatch(r"[\w|]+", value):
                assert set(value.split("|")) <= known, f"{source}: {name}{{{label}{op}{value!r}}}"


# --- Grafana ---------------------------------------------------------------------------------------------


def _dashboards() -> list[tuple[Path, dict]]:
    return [(p, pq.load_dashboard(p)) for p in pq.dashboard_files()]


def test_dashboard_files_and_uids() -> None:
    found = {p.name: d["uid"] for p, d in _dashboards()}
    assert found == DASHBOARD_UIDS


@pytest.mark.parametrize("path", pq.dashboard_files(), ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dash = pq.load_dashboard(path)
    assert dash.get("id") is None, "a provisioned dashboard must not pin a database id"
    panels = list(pq.iter_panels(dash))
    ids = [p.get("id") for p in panels]
    assert all(isinstance(i, int) for i in ids), "every panel needs a numeric id"
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"

    defined = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    assert defined <= set(pq.SUBSTITUTIONS), f"unexpected template variables {defined}"
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            assert var["datasource"]["uid"] == DATASOURCE_UID
    allowed = {"__rate_interval", "__range"} | defined

    occupied: dict[tuple[int, int], int] = {}
    for panel in panels:
        pid, title = panel["id"], panel.get("title")
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, (
            f"panel {pid} {title}: datasource uid"
        )
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, f"panel {pid}: gridPos"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in occupied, f"panel {pid} overlaps panel {occupied[(x, y)]}"
                occupied[(x, y)] = pid
        if panel["type"] == "row":
            continue
        assert panel.get("title"), f"panel {pid} has no title"
        assert panel.get("targets"), f"panel {pid} {title} has no targets"
        assert panel["fieldConfig"]["defaults"].get("unit") in UNITS, f"panel {pid} {title}: unit"
        ref_ids = [t.get("refId") for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"panel {pid}: duplicate refIds"
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, (
                f"panel {pid}: target datasource"
            )
            expr = target.get("expr", "")
            assert expr.strip(), f"panel {pid} {title}: target {target.get('refId')} has no expr"
            used = pq.variables(expr)
            assert used <= allowed, f"panel {pid} {title}: variables {used - allowed} not allowed"
            if "[$__rate_interval]" not in expr and "rate(" in expr:
                pytest.fail(f"panel {pid} {title}: rate() must use $__rate_interval or a fixed window")


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [datasource] = ds["datasources"]
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == "prometheus"
    dashboards = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "triage.yml").read_text())
    [provider] = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# --- live Prometheus -------------------------------------------------------------------------------------


# Two healthy pipelines, each with only the series it surely has, so dashboard queries must cope with the rest
# being absent: "llm" classifies with the LLM and routes everything; "local-review" runs without an LLM
# (no GEMINI_API_KEY: no LLM or spend series) and sends every ticket to review (no routed, no end-to-end).
# Neither has failures, dead letters, stuck tickets, unpriced calls or review corrections.
SCENARIOS = ("llm", "local-review")


def _exposition(n: int, scenario: str) -> str:
    """What the exporter serves for a healthy pipeline of `scenario` at its `n`-th scrape."""
    lines: list[str] = []

    def sample(family: metrics.Family, value: float, suffix: str = "", **labels: str) -> None:
        body = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{family.name}{suffix}{{{body}}} {value}")

    def histogram(family: metrics.Family, observations: list[float], **labels: str) -> None:
        for le in (*family.buckets, float("inf")):
            count = sum(1 for o in observations if o <= le) * n
            sample(family, count, "_bucket", **labels, le="+Inf" if le == float("inf") else f"{le:g}")
        sample(family, sum(observations) * n, "_sum", **labels)
        sample(family, len(observations) * n, "_count", **labels)

    sample(metrics.TICKETS_RECEIVED, 10 * n)
    histogram(metrics.STAGE_DURATION, [0.4, 1.2], stage="classify")
    histogram(metrics.STAGE_DURATION, [0.2], stage="route")
    if scenario == "llm":
        model = "gemini-2.5-flash-lite"
        sample(metrics.TICKETS_CLASSIFIED, 10 * n, department="IT", classifier="llm")
        sample(metrics.TICKETS_ROUTED, 10 * n, department="IT", system="log")
        sample(metrics.TICKETS_BY_STATUS, 10 * n, status="routed")
        histogram(metrics.END_TO_END_DURATION, [1.5, 3.0])
        histogram(metrics.CONFIDENCE, [0.85, 0.93], classifier="llm")
        sample(metrics.LLM_REQUESTS, 10 * n, model=model, outcome="ok")
        sample(metrics.LLM_TOKENS, 500 * n, model=model, type="input")
        sample(metrics.LLM_TOKENS, 50 * n, model=model, type="output")
        sample(metrics.LLM_COST, 0.001 * n, model=model)
        histogram(metrics.LLM_LATENCY, [0.8], model=model)
        sample(metrics.LLM_SPEND_TODAY, 0.5 + 0.001 * n)
        sample(metrics.LLM_BUDGET, 20)
        sample(metrics.LLM_BUDGET_EXHAUSTED, 0)
    else:
        sample(metrics.TICKETS_CLASSIFIED, 10 * n, department="General", classifier="local")
        sample(metrics.TICKETS_REVIEW, 10 * n, reason="low_confidence")
        sample(metrics.TICKETS_BY_STATUS, 3, status="needs_review")
        histogram(metrics.CONFIDENCE, [0.3, 0.4], classifier="local")
    sample(metrics.TICKETS_DEFERRED, 0)  # always exported, 0 when nothing is parked
    for stage, reason in (("classify", "stale"), ("route", "stale"), ("route", "due")):
        sample(metrics.RECONCILED, 0, stage=stage, reason=reason)  # zero-filled by the exporter
    sample(metrics.EXPORTER_UP, 1)
    sample(metrics.EXPORTER_SCRAPE_DURATION, 0.05)
    sample(metrics.EXPORTER_SCRAPE_ERRORS, 0)
    sample(metrics.EXPORTER_LAST_SUCCESS, time.time())
    return "\n".join(lines) + "\n"


def _fake_exporter(scenario: str) -> http.server.ThreadingHTTPServer:
    scrapes = 0
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            nonlocal scrapes
            with lock:
                scrapes += 1
                body = _exposition(scrapes, scenario).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module", params=SCENARIOS)
def live_prometheus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Prometheus scraping a fake healthy exporter every second, with the triage rules loaded."""
    prometheus = _require("prometheus")
    tmp = tmp_path_factory.mktemp(f"prometheus-{request.param}")
    exporter = _fake_exporter(request.param)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in pq.rule_files()],
        "scrape_configs": [
            {
                "job_name": "triage-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter.server_address[1]}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()
            try:
                if _query(url, "count_over_time(triage_tickets_received_total[1m]) >= 6"):
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "Prometheus did not collect 6 scrapes in 60s"
            time.sleep(0.5)
        time.sleep(2)  # let every rule group evaluate at least once on the collected data
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        exporter.shutdown()
        exporter.server_close()


def _query(url: str, expr: str) -> list[dict]:
    resp = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def test_live_rules_load_and_evaluate(live_prometheus: str) -> None:
    groups = requests.get(f"{live_prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {r.name for r in pq.rules()}
    errors = {name: r.get("lastError") for name, r in loaded.items() if r.get("health") == "err"}
    assert not errors, errors


def test_live_dashboard_queries_return_data(live_prometheus: str) -> None:
    empty = [source for source, expr in pq.dashboard_queries() if not _query(live_prometheus, expr)]
    assert not empty, "queries without data on a healthy pipeline:\n" + "\n".join(empty)


def test_live_no_alert_fires_on_a_healthy_pipeline(live_prometheus: str) -> None:
    firing = {a.name: _query(live_prometheus, a.expr) for a in pq.alerts()}
    firing = {name: result for name, result in firing.items() if result}
    assert not firing, firing
