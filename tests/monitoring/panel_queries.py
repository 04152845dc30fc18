"""Every PromQL expression of the monitoring setup, ready to send to a real Prometheus.

`iter_queries()` returns `(source, expr)` pairs for every Grafana dashboard target (with the Grafana variables
substituted) and every alerting and recording rule. `source` starts with the kind of query:

- `dashboard <uid> panel <id> "<title>" target <refId>`: must return data once the pipeline has processed some
  tickets (the dashboards guard legitimately empty families with `or on () vector(0)`);
- `alert <name>` / `record <name>`: must evaluate; an alert's expression is empty while it does not fire.

Grafana variables are replaced by `SUBSTITUTIONS`; a dashboard may use no other variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
DASHBOARD_DIR = MONITORING / "grafana" / "dashboards"
RULE_DIR = MONITORING / "prometheus" / "rules"

# The only Grafana variables the dashboards may use, and what they stand for in a test.
SUBSTITUTIONS: dict[str, str] = {"__rate_interval": "1m", "__range": "1h", "department": ".*"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def variables(expr: str) -> set[str]:
    """Names of the Grafana variables used in `expr` (`$x`, `${x}`, `${x:fmt}`, `[[x]]`)."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str) -> str:
    """`expr` with the allowed Grafana variables replaced; raises KeyError on any other variable."""

    def repl(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        return SUBSTITUTIONS[name]

    return _VARIABLE.sub(repl, expr)


@dataclass(frozen=True)
class Target:
    dashboard: str  # dashboard uid
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str  # as written, with Grafana variables

    @property
    def source(self) -> str:
        return f'dashboard {self.dashboard} panel {self.panel_id} "{self.panel_title}" target {self.ref_id}'


@dataclass(frozen=True)
class Rule:
    kind: str  # "alert" or "record"
    name: str
    expr: str
    file: str
    group: str
    raw: dict

    @property
    def source(self) -> str:
        return f"{self.kind} {self.name}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboard(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_targets() -> list[Target]:
    out = []
    for path in dashboard_files():
        dash = load_dashboard(path)
        for panel in iter_panels(dash):
            for target in panel.get("targets", []):
                out.append(
                    Target(
                        dash["uid"],
                        panel["id"],
                        panel.get("title", ""),
                        target.get("refId", ""),
                        target.get("expr", ""),
                    )
                )
    return out


def rule_files() -> list[Path]:
    return sorted(RULE_DIR.glob("*.yml"))


def rules() -> list[Rule]:
    out = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            for rule in group["rules"]:
                kind = "alert" if "alert" in rule else "record"
                out.append(Rule(kind, rule[kind], rule["expr"].strip(), path.name, group["name"], rule))
    return out


def alerts() -> list[Rule]:
    return [r for r in rules() if r.kind == "alert"]


def dashboard_queries() -> list[tuple[str, str]]:
    return [(t.source, substitute(t.expr)) for t in dashboard_targets()]


def rule_queries() -> list[tuple[str, str]]:
    return [(r.source, r.expr) for r in rules()]


def iter_queries() -> list[tuple[str, str]]:
    """(source description, expr with Grafana variables substituted) for every dashboard target and rule."""
    return dashboard_queries() + rule_queries()


if __name__ == "__main__":
    for source, expr in iter_queries():
        print(f"# {source}\n{expr}\n")
