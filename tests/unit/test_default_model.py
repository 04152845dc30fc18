"""One default Gemini model: named in config/triage.yaml only; Terraform, the docs and the price table agree.

The checks read the files for what they mean (HCL parsed, model ids found by pattern), not for exact text,
so rewording a sentence does not break them and naming another model as the default does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.terraform.hcl import ENVIRONMENTS, MODULES, TERRAFORM, load_file, variables
from triage.config import load_config
from triage.pricing import load_prices

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_config(ROOT / "config").triage.classifier.llm.model
DOCS = ("README.md", "docs/CLASSIFIER.md", "docs/DEPLOY.md")
PRICE_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"
MODEL_ID = re.compile(r"\bgemini-\d[\w.-]*\w")


def model_ids(text: str) -> set[str]:
    return set(MODEL_ID.findall(text))


def test_the_default_is_priced_today():
    prices = load_prices(ROOT / "config" / "pricing.yaml")
    assert prices.price(DEFAULT, datetime.now(UTC).date()) is not None


def test_the_module_sets_no_model_of_its_own():
    classifier = variables(MODULES / "triage")["classifier"]
    assert "gemini_model = optional(string)" in re.sub(r"\s+", " ", str(classifier["type"]))


@pytest.mark.parametrize("env", sorted(p.name for p in ENVIRONMENTS.iterdir() if p.is_dir()))
def test_no_environment_sets_another_model(env):
    tfvars = load_file(ENVIRONMENTS / env / "terraform.tfvars")
    assert tfvars.get("classifier", {}).get("gemini_model") in (None, DEFAULT)
    assert "gemini_model = optional(string)" in re.sub(
        r"\s+", " ", str(variables(ENVIRONMENTS / env)["classifier"]["type"])
    )


def test_no_terraform_file_names_another_model():
    found = {
        path.relative_to(TERRAFORM).as_posix(): model_ids(path.read_text(encoding="utf-8")) - {DEFAULT}
        for path in sorted(TERRAFORM.rglob("*"))
        if path.suffix in {".tf", ".tfvars", ".md", ".json"} and path.is_file()
    }
    assert {path: ids for path, ids in found.items() if ids} == {}


@pytest.mark.parametrize("doc", DOCS)
def test_docs_name_the_default_and_its_price_source(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert DEFAULT in text and PRICE_SOURCE in text


@pytest.mark.parametrize("doc", DOCS)
def test_docs_call_no_other_model_the_default(doc):
    paragraphs = re.split(r"\n\s*\n", (ROOT / doc).read_text(encoding="utf-8"))
    wrong = [
        (ids, paragraph[:120])
        for paragraph in paragraphs
        if "default" in paragraph.lower() and (ids := model_ids(paragraph) - {DEFAULT})
    ]
    assert wrong == []
