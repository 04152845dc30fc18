"""Structured JSON logs in the shape Cloud Logging parses from stdout.

Every line carries `severity` and `message`, plus the `ticket_id` and trace of the work in progress, taken
from a context variable so that no call site has to remember them. Never log emails or ticket text.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "triage_log_context", default=None
)
_TRACE_FIELD = "logging.googleapis.com/trace"
_configured = False


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str, project: str | None) -> None:
        super().__init__()
        self.component = component
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "component": self.component,
            "logger": record.name,
        }
        context = dict(_context.get() or {})
        trace = context.pop("trace", None)
        if trace and self.project:
            entry[_TRACE_FIELD] = f"projects/{self.project}/traces/{trace}"
        entry.update(context)
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(component: str, project: str | None = None, level: str = "INFO") -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(component, project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries are chatty at INFO and may log request details.
    for noisy in ("google", "google_genai", "urllib3", "grpc", "werkzeug", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (ticket_id, trace, stage) to every log line emitted inside the block."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    logger.log(level, message, extra={"fields": fields})


def trace_from_header(value: str | None) -> str | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` → TRACE_ID; also accepts W3C `traceparent`."""
    if not value:
        return None
    if value.count("-") == 3 and value.startswith("00-"):
        return value.split("-")[1]
    trace = value.split("/", 1)[0].strip()
    return trace if trace.isalnum() and len(trace) <= 64 else None
