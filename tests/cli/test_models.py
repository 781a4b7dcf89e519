from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.model.bundle import WEIGHTS, file_sha256
from ganad_clinic.screening.registry import load_registered
from ganad_clinic.store import open_store


def models(home: Path, *args: str) -> int:
    return main(["models", *args, "--home", str(home)])


def test_import_copies_verifies_and_activates_the_first_model(tmp_path: Path, tiny_bundle: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    source = tmp_path / "my bundle"
    shutil.copytree(tiny_bundle, source)
    assert models(home, "import", str(source)) == 0
    assert "registered model 1.0.0" in capsys.readouterr().out
    shutil.rmtree(source)  # the user deletes their copy: the registry keeps its own

    with open_store(home=home) as store:
        (model,) = store.list_model_versions()
        assert model.active and model.version == "1.0.0"
        assert Path(model.bundle_path) == home / "models" / "1.0.0"
        assert model.sha256 == file_sha256(tiny_bundle / WEIGHTS)
        assert load_registered(model).sha256 == model.sha256
        assert [event.action for event in store.list_audit_events()] == ["model.registered", "model.imported"]

    assert models(home, "import", str(tiny_bundle)) == 0
    assert "already registered as model 1.0.0" in capsys.readouterr().out


def test_same_version_other_weights_gets_a_sha_suffix_then_activate_and_rollback(
        tmp_path: Path, tiny_bundle: Path, other_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert models(home, "import", str(tiny_bundle)) == 0
    assert models(home, "import", str(other_bundle)) == 0
    other_version = f"1.0.0+{file_sha256(other_bundle / WEIGHTS)[:8]}"
    assert f"registered model {other_version}" in capsys.readouterr().out

    assert models(home, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(entry["version"], entry["active"]) for entry in listed] == [("1.0.0", True), (other_version, False)]
    assert listed[1]["bundle_path"] == str(home / "models" / other_version)

    assert models(home, "activate", other_version) == 0
    assert models(home, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"* {other_version}") for line in lines)

    assert models(home, "rollback") == 0
    assert "model 1.0.0 is active" in capsys.readouterr().out
    with open_store(home=home) as store:
        assert store.active_model_version().version == "1.0.0"
        actions = [event.action for event in store.list_audit_events()]
    assert actions[-2:] == ["model.activated", "model.rolled_back"]


def test_a_tampered_bundle_is_refused(tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, tampered)
    with open(tampered / WEIGHTS, "ab") as handle:
        handle.write(b"\0")
    assert models(home, "import", str(tampered)) == 1
    assert "does not match the sha256" in capsys.readouterr().err
    assert models(home, "list") == 0
    assert "no models registered" in capsys.readouterr().out
    assert not (home / "models").exists() or not any((home / "models").iterdir())


def test_errors_are_reported_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert models(home, "activate", "9.9.9") == 1
    assert "not registered" in capsys.readouterr().err
    assert models(home, "rollback") == 1
    assert "no model version is active" in capsys.readouterr().err
