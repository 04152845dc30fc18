"""Read the Terraform tree with python-hcl2 into plain dicts (classic layout, no quotes, no comments)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = TERRAFORM / "environments"
ENV_NAMES = ("dev", "staging", "prod")
FUNCTIONS = ("intake", "classify", "route", "reconcile")
# Variables every environment gets from the generated dist/deploy.tfvars.json, not from terraform.tfvars.
GENERATED_VARIABLES = {"exporter_image_tag", "function_source_objects"}

OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@cache
def load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=OPTIONS)


def loads(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=OPTIONS)


def load_dir(directory: Path) -> dict[str, list[Any]]:
    """All top-level blocks of the .tf files of one module directory, merged by block type."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, value in load_file(path).items():
            merged.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return merged


def resources(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type in a module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for block in load_dir(directory).get("resource", []):
        for name, body in block.get(kind, {}).items():
            found[name] = body
    return found


def module_calls(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: body for block in load_dir(directory).get("module", []) for name, body in block.items()}


def variables(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: body for block in load_dir(directory).get("variable", []) for name, body in block.items()}


def variable_order(directory: Path) -> list[str]:
    return [
        name
        for path in sorted(directory.glob("variables*.tf"))
        for block in load_file(path).get("variable", [])
        for name in block
    ]


def outputs(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: body for block in load_dir(directory).get("output", []) for name, body in block.items()}


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load_dir(directory).get("locals", []):
        merged.update(block)
    return merged


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def env_dirs() -> list[Path]:
    return [ENVIRONMENTS / name for name in ENV_NAMES]


def single(blocks: Any) -> dict[str, Any]:
    """A nested block (python-hcl2 gives a list of one dict)."""
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


def walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string inside a parsed structure, keys included."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield f"{path}.{key}", str(key)
            yield from walk_strings(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk_strings(child, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def refers_to(expression: Any, reference: str) -> bool:
    """True when an interpolated expression mentions `reference` (e.g. google_pubsub_topic.dead_letter)."""
    return (
        isinstance(expression, str)
        and re.search(rf"(?<![\w.]){re.escape(reference)}\b", expression) is not None
    )
