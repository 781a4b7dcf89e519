from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganad_clinic.screening.names import is_hidden_folder, is_slide_name, path_text, stored_path


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


@pytest.mark.parametrize("raw,text", [
    (b"slide 1.png", "slide 1.png"),
    ("émile – 1.png".encode(), "émile – 1.png"),
    (b"bad\xff.png", "bad\\xff.png"),
    (b"latin-1 caf\xe9 \xe9\xe9.png", "latin-1 caf\\xe9 \\xe9\\xe9.png"),
])
def test_paths_are_written_as_readable_text_and_read_back(tmp_path: Path, raw: bytes, text: str) -> None:
    path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), raw)))
    assert path_text(path) == f"{tmp_path}/{text}"
    path_text(path).encode("utf-8")  # the database and a terminal take it
    assert stored_path(path_text(path)) == path


def test_a_name_that_really_contains_a_backslash_escape_reads_as_itself(tmp_path: Path) -> None:
    literal = tmp_path / "odd\\xff.png"
    literal.write_bytes(b"x")
    assert path_text(literal) == str(literal)
    assert stored_path(path_text(literal)) == literal


def test_a_slides_file_is_its_archive_copy_unless_only_the_original_is_left(tmp_path) -> None:
    from ganad_clinic.screening.names import slide_file

    original, archived = tmp_path / "inbox" / "a.png", tmp_path / "archive" / "a.png"
    original.parent.mkdir()
    original.write_bytes(b"x")
    assert slide_file(None, str(original)) == original
    assert slide_file(str(archived), str(original)) == original  # the move failed after it was recorded
    archived.parent.mkdir()
    original.rename(archived)
    assert slide_file(str(archived), str(original)) == archived
