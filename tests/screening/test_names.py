from __future__ import annotations

import pytest

from ganad_clinic.screening.names import is_hidden_folder, is_slide_name


@pytest.mark.parametrize("name", ["Im001_1.tif", "slide 7.PNG", "émile – 1.jpg", "notes.txt", "scan.tiff.bak"])
def test_final_names_are_taken(name: str) -> None:
    assert is_slide_name(name)


@pytest.mark.parametrize("name", [
    ".hidden.png", "~$lock.png", "~scan.png", "scan.png.part", "scan.PART", "scan.tmp", "scan.png.crdownload",
    "Thumbs.db", "desktop.ini", ".DS_Store",
])
def test_hidden_temporary_and_system_names_are_skipped(name: str) -> None:
    assert not is_slide_name(name)


def test_paths_are_judged_by_their_file_name() -> None:
    assert is_slide_name("/data/.sync/inbox/a.png")
    assert not is_slide_name("/data/inbox/a.png.tmp")


def test_hidden_folders() -> None:
    assert is_hidden_folder(".sync") and is_hidden_folder("~tmp")
    assert not is_hidden_folder("batch 2")
