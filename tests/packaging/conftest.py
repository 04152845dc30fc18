"""Fixtures for tests of tools/package.py."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("intake", "classify", "route", "reconcile")


@pytest.fixture(scope="session")
def package_tool() -> ModuleType:
    """tools/package.py, imported from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("triage_package_tool", ROOT / "tools" / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


# Files of the fake tree that must end up in every function zip (besides main.py and requirements.txt).
FAKE_PACKAGED = {
    "triage/__init__.py": "",
    "triage/settings.py": "NAME = 'settings'\n",
    "triage/stages/__init__.py": "",
    "triage/stages/intake.py": "def handle():\n    return 'ok'\n",
    "triage/models/model.json": '{"weights": [1, 2, 3]}\n',
    "config/triage.yaml": "departments: [it, hr]\n",
    "config/routing.yaml": "routes: []\n",
    "config/extra/more.yml": "more: true\n",
}
# Files of the fake tree that must NOT end up anywhere.
FAKE_EXCLUDED = {
    "triage/__pycache__/settings.cpython-311.pyc": b"\x00bytecode",
    "triage/stale.pyc": b"\x00bytecode",
    "triage/tests/test_settings.py": "def test_x():\n    pass\n",
    "triage/test_inline.py": "def test_y():\n    pass\n",
    "triage/conftest.py": "",
    "triage/.hidden.py": "",
    "config/README.md": "# not YAML\n",
    "config/notes.txt": "not YAML\n",
    "config/.secret.yaml": "hidden: true\n",
    "exporter/tests/test_app.py": "",
    "exporter/__pycache__/app.cpython-311.pyc": b"\x00",
    "functions/intake/test_main.py": "",
}
FAKE_EXPORTER = {
    "exporter/__init__.py": "",
    "exporter/app.py": "def build():\n    return None\n",
}


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    """A minimal repository tree with the real requirements.txt and decoys for every exclusion rule."""
    root = tmp_path / "repo"
    for name, text in {**FAKE_PACKAGED, **FAKE_EXCLUDED, **FAKE_EXPORTER}.items():
        _write(root / name, text)
    for name in FUNCTIONS:
        _write(
            root / "functions" / name / "main.py", f"# {name}\ndef {name}(request):\n    return '{name}'\n"
        )
    shutil.copy(ROOT / "requirements.txt", root / "requirements.txt")
    return root
