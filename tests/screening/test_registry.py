"""The registry's file side: folder names from bundle contents never leave <home>/models."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganad_clinic.screening.registry import RegistryError, _new_model_folder, registry_version


@pytest.mark.parametrize("version", ["..", ".", "a/b", "../../etc"])
def test_a_version_that_would_not_name_a_new_child_folder_is_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(RegistryError, match="cannot name a folder"):
        _new_model_folder(tmp_path, version, "ab" * 32, set())


def test_a_folder_on_disk_or_in_the_registry_is_never_chosen(tmp_path: Path) -> None:
    sha = "0123456789ab" + "c" * 52
    (tmp_path / "1.0.0").mkdir()
    assert _new_model_folder(tmp_path, "1.0.0", sha, set()) == tmp_path / "1.0.0-0123456789ab"
    third = _new_model_folder(tmp_path, "1.0.0", sha, {tmp_path / "1.0.0-0123456789ab"})
    assert third.parent == tmp_path and third.name.startswith("1.0.0-0123456789ab-") and not third.exists()


def test_registry_versions_stay_within_the_registry_column() -> None:
    taken = {"1.0.0"} | {f"1.0.0+{'f' * n}" for n in (8, 12, 16, 24)}
    assert registry_version("1.0.0", "f" * 64, taken) == "1.0.0+" + "f" * 32
    assert len(registry_version("x" * 31, "f" * 64, {"x" * 31})) <= 64
