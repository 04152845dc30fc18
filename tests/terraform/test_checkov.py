"""checkov over terraform/: no failed check; every skip is inline with a written justification.

checkov's dependencies clash with the application's pins, so it lives in its own venv (.venv-tools,
pinned in tools/checkov-requirements.txt, same layout as `make tools`). The fixture creates it when it
is missing; if that or checkov fails the test FAILS: CI has PyPI, nothing here may silently skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform.hcl import ROOT, TERRAFORM

TOOLS_VENV = ROOT / ".venv-tools"
TOOLS_REQUIREMENTS = ROOT / "tools" / "checkov-requirements.txt"
MARKER = TOOLS_VENV / ".installed"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def _run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def checkov() -> Path:
    wanted = TOOLS_REQUIREMENTS.read_text(encoding="utf-8")
    binary = TOOLS_VENV / "bin" / "checkov"
    if MARKER.is_file() and MARKER.read_text(encoding="utf-8") == wanted and binary.exists():
        return binary
    shutil.rmtree(TOOLS_VENV, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(TOOLS_VENV)],
        [
            str(TOOLS_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(TOOLS_REQUIREMENTS),
        ],
    ]
    for step in steps:
        result = _run(step, timeout=900)
        if result.returncode != 0:
            pytest.fail(
                f"could not build {TOOLS_VENV.name} ({' '.join(step)}):\n{result.stdout}\n{result.stderr}"
            )
        if step is steps[0]:
            # keep the tool venv out of git and ruff (both honour nested .gitignore files)
            (TOOLS_VENV / ".gitignore").write_text("# tool venv (mk/tools.mk): ignored by git and ruff\n*\n")
    MARKER.write_text(wanted, encoding="utf-8")
    return binary


@pytest.fixture(scope="session")
def report(checkov: Path) -> dict:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    # exit 1 means failed checks, reported below; anything else unreadable is a broken run.
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov did not produce JSON (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    reports = data if isinstance(data, list) else [data]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform) == 1, f"no terraform report in checkov output: {reports!r:.500}"
    return terraform[0]


def test_checkov_has_no_failed_checks(report: dict):
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 30, summary  # it really read the modules
    assert summary["passed"] > 0


def test_checkov_skips_are_justified(report: dict):
    skipped = report["results"]["skipped_checks"]
    assert len(skipped) == report["summary"]["skipped"]
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment) >= 20 and comment != "No comment provided", (
            f"{check['check_id']} on {check['resource']} is skipped without a justification"
        )


def test_skip_comments_are_inline_with_reasons():
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                reason = (match.group(2) or "").strip()
                assert len(reason) >= 20, f"{path.relative_to(ROOT)}:{number}: checkov skip without a reason"
    assert not any(
        "skip-check" in text or "soft-fail" in text
        for text in (
            p.read_text() for p in [ROOT / "mk" / "tools.mk", ROOT / "cloudbuild.yaml"] if p.exists()
        )
    ), "checks are skipped inline only, never globally"
