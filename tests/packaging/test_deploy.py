"""Each real function zip, installed from its own requirements.txt into a fresh venv, imports and serves.

Opt-in (`packaging_deploy`): three venvs and pip installs take minutes. The emulator variables point at
ports nothing listens on, so the functions start exactly as in the cloud minus their backends:
intake's /healthz must then report 503 (JSON), and classify/route must reject an empty push with a 4xx.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import FUNCTIONS, ROOT

pytestmark = pytest.mark.packaging_deploy

START_TIMEOUT_S = 90
PIP_TIMEOUT_S = 1200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@pytest.fixture(scope="module")
def real_dist(package_tool, tmp_path_factory) -> Path:
    missing = [n for n in FUNCTIONS if not (ROOT / "functions" / n / "main.py").is_file()]
    if missing:
        pytest.fail(f"packaging_deploy enabled but functions/{{{','.join(missing)}}}/main.py do not exist")
    dist = tmp_path_factory.mktemp("dist")
    package_tool.build(ROOT, dist)
    return dist


@pytest.fixture(scope="module")
def pip_cache() -> Path:
    cache = Path(os.environ.get("PIP_CACHE_DIR") or ROOT / ".pytest_cache" / "packaging-pip")
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _run(cmd: list[str], cwd: Path, timeout: int) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )


@contextlib.contextmanager
def serve(zip_path: Path, target: str, workdir: Path, pip_cache: Path) -> Iterator[str]:
    folder, venv = workdir / "source", workdir / "venv"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    _run([sys.executable, "-m", "venv", str(venv)], workdir, 300)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--cache-dir",
        str(pip_cache),
    ]
    _run([*pip, "install", "--quiet", "-r", "requirements.txt"], folder, PIP_TIMEOUT_S)

    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(workdir)),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GOOGLE_CLOUD_PROJECT": "demo-triage",
        # Unused ports: the clients fail fast instead of reaching real Google APIs.
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
    }
    log_path = workdir / "functions-framework.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "functions-framework"), "--target", target, "--source", "main.py",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(port):
            if process.poll() is not None:
                pytest.fail(f"{target} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{target} did not listen within {START_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_intake_zip_serves_and_reports_unhealthy_without_backends(real_dist, pip_cache, tmp_path):
    with serve(real_dist / "functions" / "intake.zip", "intake", tmp_path, pip_cache) as base:
        status, content_type, body = request(f"{base}/healthz")
    assert status == 503, body
    assert content_type.startswith("application/json")
    assert isinstance(json.loads(body), dict)


@pytest.mark.parametrize("name", ["classify", "route"])
def test_push_function_zip_serves_and_rejects_an_empty_push(real_dist, pip_cache, tmp_path, name):
    with serve(real_dist / "functions" / f"{name}.zip", name, tmp_path, pip_cache) as base:
        status, _, body = request(
            f"{base}/projects/demo-triage/topics/triage-{name}", method="POST", body=b""
        )
    assert 400 <= status < 500, (status, body)
