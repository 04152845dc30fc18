"""`terraform fmt` is the formatting authority for terraform/ (fmt needs no provider, unlike validate)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.terraform.hcl import ROOT


def test_terraform_fmt_check():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform binary not installed: fmt check not run here (cloudbuild's terraform-fmt step runs it)"
        )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "terraform/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive terraform/`:\n{result.stdout}{result.stderr}"
    )
