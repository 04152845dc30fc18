"""The exporter's HTTP surface: `/metrics` (optionally behind a bearer token) and `/healthz`."""

from __future__ import annotations

import hmac
import os

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from exporter.collector import FirestoreCollector, read_state
from triage.clients import firestore_client
from triage.config import cached_config
from triage.logs import configure
from triage.settings import settings


def create_app(collector: FirestoreCollector, token: str | None) -> Flask:
    registry = CollectorRegistry()
    registry.register(collector)
    app = Flask("triage-exporter")

    @app.get("/metrics")
    def metrics() -> Response:
        if token and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
        ):
            return Response(
                '{"error": "unauthorized"}', 401, {"WWW-Authenticate": "Bearer"}, mimetype="application/json"
            )
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status": "ok"}', 200, mimetype="application/json")

    return app


def default_collector() -> FirestoreCollector:
    taxonomy = cached_config(str(settings().config_dir)).triage
    ttl = float(os.environ.get("EXPORTER_CACHE_SECONDS", "5"))
    shards = settings().counter_shards
    return FirestoreCollector(
        lambda: read_state(firestore_client(), taxonomy, shards, os.environ), cache_ttl_s=ttl
    )


def build() -> Flask:
    """The production app (gunicorn: `exporter.app:build()`)."""
    configure("exporter", settings().project, settings().log_level)
    return create_app(default_collector(), os.environ.get("EXPORTER_TOKEN") or None)
