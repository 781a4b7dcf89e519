from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.model.bundle import METADATA, WEIGHTS, load_bundle, metadata_digest
from ganad_clinic.screening.registry import load_registered
from ganad_clinic.store import open_store
from tests.screening.helpers import write_png


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
        assert model.sha256 == load_bundle(tiny_bundle).sha256  # the seal: weights and settings
        assert load_registered(model).sha256 == model.sha256
        # the first model of an empty registry is active at once; its acceptance check is recorded
        assert [event.action for event in store.list_audit_events()] == [
            "model.registered", "model.imported", "model.acceptance_checked"]

    assert models(home, "import", str(tiny_bundle)) == 0
    assert "already registered as model 1.0.0" in capsys.readouterr().out


def test_same_version_other_weights_gets_a_sha_suffix_then_activate_and_rollback(
        tmp_path: Path, tiny_bundle: Path, other_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert models(home, "import", str(tiny_bundle)) == 0
    assert models(home, "import", str(other_bundle)) == 0
    other_version = f"1.0.0+{load_bundle(other_bundle).sha256[:8]}"
    assert f"registered model {other_version}" in capsys.readouterr().out

    assert models(home, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(entry["version"], entry["active"]) for entry in listed] == [("1.0.0", True), (other_version, False)]
    assert listed[1]["bundle_path"] == str(home / "models" / other_version)

    assert models(home, "activate", other_version) == 1  # no reviewed slides: too little evidence
    assert "was not activated; nothing changed" in capsys.readouterr().err
    assert models(home, "activate", other_version, "--override", "a test of the registry") == 0
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


def _edit_metadata(bundle: Path, section: str, key: str, value: object, *, reseal: bool = False) -> None:
    metadata = json.loads((bundle / METADATA).read_text())
    metadata["ganad"][section][key] = value
    if reseal:
        metadata["ganad"]["seal_sha256"] = metadata_digest(metadata)
    (bundle / METADATA).write_text(json.dumps(metadata))


def test_a_bundle_with_an_edited_threshold_is_not_registered(tmp_path: Path, tiny_bundle: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    edited = tmp_path / "edited"
    shutil.copytree(tiny_bundle, edited)
    _edit_metadata(edited, "threshold", "value", 1e9)
    assert models(home, "import", str(edited)) == 1
    assert "was changed after the bundle was made" in capsys.readouterr().err
    assert models(home, "list") == 0
    assert "no models registered" in capsys.readouterr().out


def test_a_registered_bundle_edited_in_the_home_stops_the_watcher(tmp_path: Path, tiny_bundle: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    assert models(home, "import", str(tiny_bundle)) == 0
    _edit_metadata(home / "models" / "1.0.0", "score", "lambda", 0.99)
    capsys.readouterr()
    assert main(["watch", "--inbox", str(inbox), "--home", str(home), "--once", "--threads", "1"]) == 1
    assert "was changed after the bundle was made" in capsys.readouterr().err


def test_score_refuses_a_resealed_bundle_with_a_nan_threshold(tmp_path: Path, tiny_bundle: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(tiny_bundle, edited)
    _edit_metadata(edited, "threshold", "value", float("nan"), reseal=True)
    image = tmp_path / "cell.png"
    write_png(image, 1)
    assert main(["score", "--bundle", str(edited), str(image), "--threads", "1"]) == 2
    assert "threshold.value nan is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["..", "."])
def test_a_bundle_named_to_climb_out_of_the_models_folder_deletes_nothing(
        tmp_path: Path, tiny_bundle: Path, version: str, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert models(home, "import", str(tiny_bundle)) == 0
    (home / "heatmaps").mkdir()
    (home / "heatmaps" / "slide-1-model-1.png").write_bytes(b"a heat map")
    before = sorted(path.relative_to(home) for path in home.rglob("*"))
    crafted = tmp_path / "crafted"
    shutil.copytree(tiny_bundle, crafted)
    metadata = json.loads((crafted / METADATA).read_text())
    metadata["version"] = version
    metadata["ganad"]["seal_sha256"] = metadata_digest(metadata)
    (crafted / METADATA).write_text(json.dumps(metadata))
    assert models(home, "import", str(crafted)) == 1
    assert "is not a valid bundle version" in capsys.readouterr().err
    assert sorted(path.relative_to(home) for path in home.rglob("*")) == before
    with open_store(home=home) as store:
        assert [model.version for model in store.list_model_versions()] == ["1.0.0"]


def test_import_never_replaces_a_folder_already_in_the_models_folder(tmp_path: Path, tiny_bundle: Path) -> None:
    home = tmp_path / "home"
    mine = home / "models" / "1.0.0"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    assert models(home, "import", str(tiny_bundle)) == 0
    assert (mine / "notes.txt").read_text() == "mine"
    with open_store(home=home) as store:
        (model,) = store.list_model_versions()
    assert Path(model.bundle_path) == home / "models" / f"1.0.0-{model.sha256[:12]}"
    assert load_registered(model).sha256 == model.sha256


def test_score_says_which_results_need_a_caveat(tmp_path: Path, tiny_bundle: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    pages = [Image.open(write_png(tmp_path / f"page {index}.png", index)).convert("RGB") for index in range(3)]
    pages[0].save(tmp_path / "three pages.tif", save_all=True, append_images=pages[1:])
    Image.open(tmp_path / "page 0.png").convert("L").save(tmp_path / "gray.png")
    files = [str(tmp_path / name) for name in ("three pages.tif", "gray.png", "page 1.png")]
    assert main(["score", "--bundle", str(tiny_bundle), *files, "--json", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    rows = {Path(row["file"]).name: row for row in map(json.loads, captured.out.splitlines())}
    assert rows["three pages.tif"]["warning"] == "page 1 of 3 scored; the other pages were not screened"
    assert rows["gray.png"]["warning"].startswith("grayscale image: this model was trained on colour images")
    assert rows["page 1.png"]["warning"] is None
    assert "MultiPageWarning" not in captured.err


def test_import_copies_the_bundles_two_files_and_nothing_a_link_points_to(tmp_path: Path, tiny_bundle: Path) -> None:
    home, source, private = tmp_path / "home", tmp_path / "bundle", tmp_path / "private"
    shutil.copytree(tiny_bundle, source)
    private.mkdir()
    (private / "secret.txt").write_text("not for the home folder")
    (source / "extra").symlink_to(private)
    assert models(home, "import", str(source)) == 0
    copied = home / "models" / "1.0.0"
    assert sorted(str(path.relative_to(copied)) for path in copied.rglob("*") if path.is_file()) == [
        str(METADATA), str(WEIGHTS)]
