"""Shared machinery of the HTTP stubs: a threaded loopback server, request recording, fault injection.

A stub subclass implements ``handle(request) -> Reply`` (and ``error_reply`` for its service's error body
shape); everything else lives here:

* ``ThreadingHTTPServer`` with daemon threads and a deep accept backlog: >= 64 requests in flight.
* HTTP/1.1 keep-alive, so pooled clients (requests.Session, httpx) behave as against the real service.
* Every request is recorded (method, path, query, lower-cased headers, raw body, parsed JSON, the fault
  applied and the status answered) in ``.requests``.
* Faults, consumed in order by matching requests (optionally only one HTTP method):
  ``fail_next`` (status/body/headers), ``rate_limit_next`` (429 + Retry-After), ``delay`` (latency on
  every call), ``timeout_next`` (sleep before answering), ``fail_ratio`` (seeded random 503s) and
  ``crash_after_create_next`` (perform the create, then drop the connection without answering).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = None  # parsed body when it is JSON, else None
    fault: str | None = None  # fault applied: "fail", "rate_limit", "random_fail", "timeout", "crash"
    status: int | None = None  # status answered (None: connection dropped / not answered yet)
    received_at: float = field(default_factory=time.time)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) from an ``Authorization: Basic`` header, or None."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def is_json(self) -> bool:
        return self.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


@dataclass
class Reply:
    status: int
    body: Any = None  # bytes/str sent as is; anything else JSON-encoded
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    created: bool = False  # this request performed a create: crash_after_create may drop the answer

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.content_type or "text/plain; charset=utf-8"
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode("utf-8"), self.content_type or "application/json; charset=utf-8"


@dataclass
class _Fault:
    kind: str
    remaining: int
    method: str | None = None
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.method is None or self.method == method)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a fault sleep never blocks shutdown
    request_queue_size = 256  # accept backlog: bursts of concurrent clients are not refused
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stub: StubServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and benchmarks would drown in access logs

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._write(Reply(411, "chunked bodies are not supported by the stub"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        req = RecordedRequest(self.command, parts.path, query, headers, body, parsed)
        reply = self.stub._process(req)
        if reply is None:
            # Simulated crash: no status line at all, the client sees the connection close.
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        payload, content_type = reply.encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout) before we answered

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class StubServer:
    """Base of all stubs; subclasses implement ``handle`` and usually ``error_reply``."""

    name = "stub"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._latency = latency
        self._ratio = 0.0
        self._ratio_status = 503
        self._rng = random.Random(0)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"stub": self})
        self._stopping.clear()
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"stub-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in delay/timeout faults
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} stub is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- recording --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests, pending faults, latency and service state."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._latency = 0.0
            self._ratio = 0.0
            self.reset_state()

    def reset_state(self) -> None:
        """Subclasses clear their stored entities here."""

    # -- fault injection --------------------------------------------------------------------------

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` (service-shaped body unless given)."""
        self._add(_Fault("fail", n, method, status, body, dict(headers or {})))

    def rate_limit_next(self, n: int = 1, retry_after: float | str = 1, *, method: str | None = None) -> None:
        """Answer the next ``n`` requests with 429 and ``Retry-After`` (seconds or an HTTP-date string)."""
        value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self._add(_Fault("rate_limit", n, method, 429, None, {"Retry-After": value}))

    def timeout_next(self, n: int = 1, seconds: float = 5.0, *, method: str | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``n`` requests (shorter client timeouts fire)."""
        self._add(_Fault("timeout", n, method, seconds=seconds))

    def crash_after_create_next(self, n: int = 1) -> None:
        """Perform the next ``n`` creates, then drop the connection without any answer."""
        self._add(_Fault("crash", n))

    def delay(self, seconds: float) -> None:
        """Latency added to every request from now on (benchmarks); 0 disables."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def fail_ratio(self, p: float, seed: int | None = 0, status: int = 503) -> None:
        """Answer a share ``p`` of requests with a transient ``status``, reproducibly for a given seed."""
        with self._lock:
            self._ratio, self._ratio_status, self._rng = max(0.0, min(1.0, p)), status, random.Random(seed)

    def _take(self, kind: str, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.kind == kind and fault.matches(method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- request processing -----------------------------------------------------------------------

    def _process(self, req: RecordedRequest) -> Reply | None:
        with self._lock:
            self._requests.append(req)
            pause = self._latency
            timeout = self._take("timeout", req.method)
            fail = self._take("fail", req.method)
            limited = None if fail else self._take("rate_limit", req.method)
            random_fail = not (fail or limited) and self._ratio > 0 and self._rng.random() < self._ratio
        if timeout is not None:
            pause += timeout.seconds
            req.fault = "timeout"
        if pause > 0:
            self._stopping.wait(pause)
        if fail is not None:
            reply = self.error_reply(fail.status, "injected failure")
            if fail.body is not None:
                reply = Reply(fail.status, fail.body)
            reply.headers.update(fail.headers)
            req.fault = "fail"
        elif limited is not None:
            reply = self.error_reply(429, "rate limit exceeded")
            reply.headers.update(limited.headers)
            req.fault = "rate_limit"
        elif random_fail:
            reply = self.error_reply(self._ratio_status, "injected random failure")
            req.fault = "random_fail"
        else:
            try:
                reply = self.handle(req)
            except Exception as exc:  # a stub bug must show up as a 500, not a hung client
                reply = self.error_reply(500, f"stub error: {type(exc).__name__}: {exc}")
            if reply.created:
                with self._lock:
                    crash = self._take("crash", req.method)
                if crash is not None:
                    req.fault = "crash"
                    return None
        req.status = reply.status
        return reply

    # -- to implement -----------------------------------------------------------------------------

    def handle(self, req: RecordedRequest) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int, message: str) -> Reply:
        """An error in the service's own body shape (overridden per service)."""
        return Reply(status, {"error": message})


def run_forever(stub: StubServer, describe: Callable[[StubServer], str] | None = None) -> None:
    """Serve until interrupted (``python -m devstack.stubs ...``)."""
    with stub:
        print(
            f"{stub.name} stub listening on {stub.url}" + (f" ({describe(stub)})" if describe else ""),
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
