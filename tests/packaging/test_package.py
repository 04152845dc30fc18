"""tools/package.py: function zips hold exactly what the cloud needs, byte-for-byte reproducibly."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import FAKE_EXPORTER, FAKE_PACKAGED, FUNCTIONS, ROOT
from tests.terraform.hcl import ENVIRONMENTS, variables

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def zip_read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def repo_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[line.split("==")[0].lower()] = line
    return pins


def requirement_names(text: str) -> set[str]:
    return {line.split("==")[0].lower() for line in text.splitlines() if line and not line.startswith("#")}


# --- exact contents (fake tree) -----------------------------------------------------------------


def test_function_zip_holds_exactly_main_package_config_and_requirements(package_tool, fake_repo, tmp_path):
    dist = tmp_path / "dist"
    package_tool.build(fake_repo, dist)
    for name in FUNCTIONS:
        archive = dist / "functions" / f"{name}.zip"
        expected = {"main.py", "requirements.txt", *FAKE_PACKAGED}
        assert set(zip_names(archive)) == expected, name
        assert zip_read(archive, "main.py") == (fake_repo / "functions" / name / "main.py").read_bytes()
        for member in FAKE_PACKAGED:
            assert zip_read(archive, member) == (fake_repo / member).read_bytes()


def test_zip_entries_are_sorted_with_fixed_metadata(package_tool, fake_repo, tmp_path):
    package_tool.build(fake_repo, tmp_path / "dist")
    with zipfile.ZipFile(tmp_path / "dist" / "functions" / "route.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    for info in infos:
        assert info.date_time == ZIP_DATE
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644
        assert not info.is_dir()


def test_requirements_are_the_repository_pins_split_by_need(package_tool, fake_repo, tmp_path):
    dist = tmp_path / "dist"
    package_tool.build(fake_repo, dist)
    pins = repo_pins()
    texts = {
        name: zip_read(dist / "functions" / f"{name}.zip", "requirements.txt").decode() for name in FUNCTIONS
    }
    texts["exporter"] = (dist / "exporter" / "requirements.txt").read_text()
    for artifact, text in texts.items():
        for line in text.splitlines():
            if line and not line.startswith("#"):
                assert "==" in line, (artifact, line)
                assert pins[line.split("==")[0].lower()] == line, (
                    f"{artifact}: {line} differs from requirements.txt"
                )
    names = {artifact: requirement_names(text) for artifact, text in texts.items()}
    assert "google-genai" in names["classify"]
    assert "google-genai" not in names["intake"] | names["route"] | names["exporter"]
    assert names["intake"] == names["route"] == names["classify"] - {"google-genai"}
    for name in FUNCTIONS:
        assert "functions-framework" in names[name]
        assert not {"gunicorn", "prometheus-client"} & names[name], name
    assert {"gunicorn", "prometheus-client", "flask", "google-cloud-firestore"} <= names["exporter"]
    assert "functions-framework" not in names["exporter"]
    # Nothing invented: every name comes from requirements.txt, and every pin lands somewhere.
    assert set().union(*names.values()) == set(pins)


def test_unpinned_requirement_is_refused(package_tool, fake_repo, tmp_path):
    (fake_repo / "requirements.txt").write_text("functions-framework>=3\n")
    with pytest.raises(package_tool.PackageError, match="not pinned"):
        package_tool.build(fake_repo, tmp_path / "dist")


def test_stale_requirement_table_is_refused(package_tool, fake_repo, tmp_path):
    pins = [
        line for line in (fake_repo / "requirements.txt").read_text().splitlines() if "gunicorn" not in line
    ]
    (fake_repo / "requirements.txt").write_text("\n".join(pins) + "\n")
    with pytest.raises(package_tool.PackageError, match="gunicorn"):
        package_tool.build(fake_repo, tmp_path / "dist")


def test_missing_function_main_is_refused_and_dist_left_alone(package_tool, fake_repo, tmp_path):
    dist = tmp_path / "dist"
    package_tool.build(fake_repo, dist)
    before = (dist / "functions" / "route.zip").read_bytes()
    (fake_repo / "functions" / "route" / "main.py").unlink()
    with pytest.raises(package_tool.PackageError, match="route"):
        package_tool.build(fake_repo, dist)
    assert (dist / "functions" / "route.zip").read_bytes() == before


def test_missing_yaml_config_is_refused(package_tool, fake_repo, tmp_path):
    for path in (fake_repo / "config").rglob("*.y*ml"):
        path.unlink()
    with pytest.raises(package_tool.PackageError, match="YAML"):
        package_tool.build(fake_repo, tmp_path / "dist")


# --- determinism --------------------------------------------------------------------------------


def test_two_builds_give_identical_bytes(package_tool, fake_repo, tmp_path):
    package_tool.build(fake_repo, tmp_path / "a")
    # Different mtimes, a copy of the tree elsewhere, and leftovers in dist must not matter.
    for path in fake_repo.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    moved = tmp_path / "elsewhere" / "repo"
    shutil.copytree(fake_repo, moved)
    (tmp_path / "b" / "functions").mkdir(parents=True)
    (tmp_path / "b" / "functions" / "stale.zip").write_bytes(b"old")
    package_tool.build(moved, tmp_path / "b")
    for name in FUNCTIONS:
        first = (tmp_path / "a" / "functions" / f"{name}.zip").read_bytes()
        second = (tmp_path / "b" / "functions" / f"{name}.zip").read_bytes()
        assert first == second, name
    assert not (tmp_path / "b" / "functions" / "stale.zip").exists()
    assert (tmp_path / "a" / "deploy.tfvars.json").read_text() == (
        tmp_path / "b" / "deploy.tfvars.json"
    ).read_text()


def test_object_names_follow_content(package_tool, fake_repo, tmp_path):
    first = package_tool.build(fake_repo, tmp_path / "a")["functions"]
    (fake_repo / "functions" / "classify" / "main.py").write_text("# changed\n")
    second = package_tool.build(fake_repo, tmp_path / "b")["functions"]
    assert first["classify"]["object"] != second["classify"]["object"]
    assert first["intake"]["object"] == second["intake"]["object"]
    assert first["route"]["object"] == second["route"]["object"]
    for entry in second.values():
        data = (tmp_path / "b" / "functions" / entry["zip"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["object"] == f"functions/{entry['zip'][:-4]}-{entry['sha256'][:16]}.zip"


def test_zip_is_importable_layout(package_tool, fake_repo, tmp_path):
    """What Cloud Functions unpacks: main.py at the root next to triage/ and config/."""
    package_tool.build(fake_repo, tmp_path / "dist")
    data = (tmp_path / "dist" / "functions" / "intake.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path / "unpacked")
    assert (tmp_path / "unpacked" / "main.py").is_file()
    assert (tmp_path / "unpacked" / "triage" / "__init__.py").is_file()
    assert (tmp_path / "unpacked" / "config" / "triage.yaml").is_file()


# --- Terraform hand-off -------------------------------------------------------------------------


def test_deploy_tfvars_match_the_environment_variables(package_tool, fake_repo, tmp_path):
    result = package_tool.build(fake_repo, tmp_path / "dist")
    generated = json.loads((tmp_path / "dist" / "deploy.tfvars.json").read_text())
    assert set(generated) == {"function_source_objects", "exporter_image_tag"}
    for env in ("dev", "staging", "prod"):
        assert set(generated) <= set(variables(ENVIRONMENTS / env))
    assert generated["function_source_objects"] == {n: result["functions"][n]["object"] for n in FUNCTIONS}
    assert generated["exporter_image_tag"] == (tmp_path / "dist" / "exporter-image-tag").read_text().strip()


def test_objects_command_lists_local_zip_and_object(package_tool, fake_repo, tmp_path, capsys):
    dist = tmp_path / "dist"
    package_tool.build(fake_repo, dist)
    assert package_tool.main(["objects", "--dist", str(dist)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FUNCTIONS)
    for line, name in zip(lines, FUNCTIONS, strict=True):
        local, obj = line.split(" ")
        assert Path(local) == dist / "functions" / f"{name}.zip"
        assert obj.startswith(f"functions/{name}-") and obj.endswith(".zip")
    assert package_tool.main(["image-tag", "--dist", str(dist)]) == 0
    assert len(capsys.readouterr().out.strip()) == 16


def test_commands_need_a_build_first(package_tool, tmp_path, capsys):
    assert package_tool.main(["objects", "--dist", str(tmp_path / "none")]) == 1
    assert "make package" in capsys.readouterr().err


# --- exporter container context -----------------------------------------------------------------


def test_exporter_context(package_tool, fake_repo, tmp_path):
    dist = tmp_path / "dist"
    result = package_tool.build(fake_repo, dist)
    context = dist / "exporter"
    files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    expected_packaged = {n for n in FAKE_PACKAGED if n.startswith(("triage/", "config/"))}
    assert files == {"Dockerfile", "requirements.txt", *FAKE_EXPORTER, *expected_packaged}
    dockerfile = (context / "Dockerfile").read_text()
    assert dockerfile.splitlines()[1] == "FROM python:3.12-slim"
    assert "gunicorn" in dockerfile and "exporter.app:" in dockerfile
    assert "USER 10001" in dockerfile
    assert len(result["exporter_image_tag"]) == 16
    # The tag follows the context content.
    again = package_tool.build(fake_repo, tmp_path / "again")
    assert again["exporter_image_tag"] == result["exporter_image_tag"]
    (fake_repo / "exporter" / "app.py").write_text("def build():\n    return 1\n")
    assert (
        package_tool.build(fake_repo, tmp_path / "changed")["exporter_image_tag"]
        != result["exporter_image_tag"]
    )


# --- the real tree ------------------------------------------------------------------------------


def _real_tree_ready() -> bool:
    return all((ROOT / "functions" / n / "main.py").is_file() for n in FUNCTIONS) and any(
        (ROOT / "config").glob("*.yaml")
    )


@pytest.mark.skipif(not _real_tree_ready(), reason="functions/*/main.py or config/*.yaml not written yet")
def test_real_tree_packages_cleanly(package_tool, tmp_path):
    dist = tmp_path / "dist"
    package_tool.build(ROOT, dist)
    repo_package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "triage").rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and "tests" not in p.parts
        and not p.name.startswith(("test_", "."))
        and p.suffix not in {".pyc", ".pyo"}
    }
    repo_config = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "config").rglob("*") if p.suffix in {".yaml", ".yml"}
    }
    for name in FUNCTIONS:
        archive = dist / "functions" / f"{name}.zip"
        names = set(zip_names(archive))
        assert names == {"main.py", "requirements.txt", *repo_package, *repo_config}, name
        assert zip_read(archive, "main.py") == (ROOT / "functions" / name / "main.py").read_bytes()
    again = tmp_path / "again"
    package_tool.build(ROOT, again)
    for name in FUNCTIONS:
        assert (dist / "functions" / f"{name}.zip").read_bytes() == (
            again / "functions" / f"{name}.zip"
        ).read_bytes()
