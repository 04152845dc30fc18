"""cloudbuild.yaml calls real make targets, declares every substitution it uses, and drives Terraform
with -backend-config (a gcs backend block cannot interpolate)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.terraform.hcl import ENVIRONMENTS, ROOT

CLOUDBUILD = ROOT / "cloudbuild.yaml"
# ${_X} or $_X, but not the $$ escape Cloud Build uses for shell variables.
SUBSTITUTION = re.compile(r"(?<!\$)\$(?:\{(_[A-Z0-9_]+)\}|(_[A-Z0-9_]+))")
# `make X` where a shell command starts (line start, after && || ; |), not "make" as an apt package name.
MAKE_CALL = re.compile(
    r"(?:^|&&|\|\||;|\|)[ \t]*make[ \t]+((?:-[A-Za-z-]+[ \t]+)*)([A-Za-z0-9_][A-Za-z0-9_.-]*)", re.M
)
RULE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_./ -]*?)\s*::?(?!=)")


@pytest.fixture(scope="module")
def build() -> dict:
    return yaml.safe_load(CLOUDBUILD.read_text(encoding="utf-8"))


def step_texts(build: dict) -> list[str]:
    texts = []
    for step in build["steps"]:
        parts = [step.get("entrypoint", ""), *map(str, step.get("args", []))]
        texts.append("\n".join(parts))
    return texts


def make_targets(makefile: Path) -> set[str]:
    """Targets of the Makefile, includes resolved by make itself when it is installed."""
    make = shutil.which("make")
    if make:
        result = subprocess.run(
            [make, "-pRrq", "-f", makefile.name, ":"],
            cwd=makefile.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        targets, previous = set(), ""
        for line in result.stdout.splitlines():
            match = RULE.match(line)
            if match and previous != "# Not a target:":
                targets.update(match.group(1).split())
            previous = line
        return targets
    texts = [makefile.read_text(encoding="utf-8")]
    for line in texts[0].splitlines():
        include = re.match(r"^-?include\s+(.+)$", line)
        if include:
            for pattern in include.group(1).split():
                texts.extend(p.read_text(encoding="utf-8") for p in sorted(makefile.parent.glob(pattern)))
    return {
        name
        for text in texts
        for line in text.splitlines()
        if (m := RULE.match(line))
        for name in m.group(1).split()
    }


def test_make_target_parser_reads_includes(tmp_path: Path):
    (tmp_path / "mk").mkdir()
    (tmp_path / "Makefile").write_text("VAR := 1\n.PHONY: test\ntest:\n\t@true\ninclude mk/*.mk\n")
    (tmp_path / "mk" / "extra.mk").write_text("package: dep\n\t@true\ndep:\n\t@true\n")
    assert {"test", "package", "dep"} <= make_targets(tmp_path / "Makefile")
    assert "VAR" not in make_targets(tmp_path / "Makefile")


def test_make_call_pattern():
    text = "apt-get install -y make curl\nmake lint\ncd x && make -s package; make test\n"
    assert [m.group(2) for m in MAKE_CALL.finditer(text)] == ["lint", "package", "test"]


def test_every_make_call_is_a_real_target(build: dict):
    called = {m.group(2) for text in step_texts(build) for m in MAKE_CALL.finditer(text)}
    assert {"test", "package"} <= called, called
    targets = make_targets(ROOT / "Makefile")
    missing = sorted(called - targets)
    assert not missing, (
        f"cloudbuild.yaml calls `make {' '.join(missing)}` but the Makefile has no such target "
        "(mk/*.mk must be included: `include mk/*.mk`)"
    )


def test_every_substitution_is_declared_and_used(build: dict):
    text = CLOUDBUILD.read_text(encoding="utf-8")
    body = "\n".join(step_texts(build))
    used = {a or b for a, b in SUBSTITUTION.findall(body)}
    declared = set(build.get("substitutions", {}))
    assert used <= declared, f"undeclared substitutions: {sorted(used - declared)}"
    in_values = {
        a or b for value in build["substitutions"].values() for a, b in SUBSTITUTION.findall(str(value))
    }
    assert declared <= used | in_values, f"declared but unused: {sorted(declared - used - in_values)}"
    assert all(str(v) != "" for v in build["substitutions"].values()), "every substitution has a default"
    assert SUBSTITUTION.findall(text)  # the regex does find them


def test_default_environment_exists(build: dict):
    assert (ENVIRONMENTS / build["substitutions"]["_ENV"]).is_dir()


def terraform_steps(build: dict) -> list[dict]:
    return [s for s in build["steps"] if str(s["name"]).startswith("hashicorp/terraform")]


def test_terraform_init_uses_backend_config(build: dict):
    inits = [s for s in terraform_steps(build) if "init" in s["args"]]
    assert len(inits) == 1
    args = inits[0]["args"]
    assert "-chdir=terraform/environments/${_ENV}" in args
    assert "-backend-config=bucket=${_TF_STATE_BUCKET}" in args
    assert "-backend-config=prefix=triage/${_ENV}" in args


def test_plan_is_saved_and_applied(build: dict):
    steps = terraform_steps(build)
    plan = next(s for s in steps if "plan" in s["args"])
    apply = next(s for s in steps if "apply" in s["args"])
    out = next(a for a in plan["args"] if a.startswith("-out="))
    assert out.removeprefix("-out=") in apply["args"], "apply must apply the saved plan"
    assert "-var-file=/workspace/dist/deploy.tfvars.json" in plan["args"]
    for step in (plan, apply):
        assert "-chdir=terraform/environments/${_ENV}" in step["args"]
        assert "-input=false" in step["args"]


def test_pipeline_order(build: dict):
    ids = [s["id"] for s in build["steps"]]
    order = [
        "test",
        "package",
        "upload",
        "exporter-image",
        "terraform-init",
        "terraform-plan",
        "terraform-apply",
    ]
    assert [i for i in ids if i in order] == order
    assert "terraform-fmt" in ids


def test_upload_is_content_addressed_and_no_clobber(build: dict):
    upload = next(s for s in build["steps"] if s["id"] == "upload")
    script = "\n".join(upload["args"])
    assert "--no-clobber" in script
    assert "gs://${_SOURCE_BUCKET}/" in script
    package = "\n".join(next(s for s in build["steps"] if s["id"] == "package")["args"])
    assert "tools/package.py objects" in package


def test_prod_approval_is_documented():
    text = CLOUDBUILD.read_text(encoding="utf-8")
    assert "approval" in text.lower() and "--require-approval" in text
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    assert "approval" in deploy.lower()
