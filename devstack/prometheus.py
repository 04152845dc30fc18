"""A real Prometheus (Debian package `prometheus`) scraping the local exporter with the repo's rules."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import yaml

from devstack.processes import Child

MONITORING = Path(__file__).resolve().parent.parent / "monitoring" / "prometheus"


def available() -> bool:
    return shutil.which("prometheus") is not None


def local_config(exporter_port: int, scrape_interval: str = "15s") -> dict:
    """monitoring/prometheus/prometheus.yml, pointed at the local exporter, rule paths made absolute."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    config["global"]["scrape_timeout"] = min(
        config["global"]["scrape_timeout"], scrape_interval, key=_seconds
    )
    config["rule_files"] = [str(MONITORING / path) for path in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    return config


def _seconds(duration: str) -> float:
    return float(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]


def prometheus(
    port: int, exporter_port: int, workdir: Path, env: dict[str, str], scrape_interval: str
) -> Child:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config(exporter_port, scrape_interval)))
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ]
    return Child("prometheus", argv, env, workdir / "prometheus.log")


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
