"""Files opened in the app are staged into its inbox whole or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ganad_clinic.app.opened_files import stage_for_screening


def test_staged_files_arrive_whole_and_the_same_content_is_not_copied_twice(tmp_path: Path):
    source = tmp_path / "elsewhere" / "cell.png"
    source.parent.mkdir()
    source.write_bytes(b"pixels")
    other = tmp_path / "other" / "cell.png"
    other.parent.mkdir()
    other.write_bytes(b"other pixels")
    inbox = tmp_path / "inbox"

    staged = stage_for_screening([source, source, other], inbox)

    assert staged == [inbox / "cell.png", inbox / "cell.png", inbox / "cell-2.png"]
    assert sorted(path.name for path in inbox.iterdir()) == ["cell-2.png", "cell.png"]
    assert (inbox / "cell-2.png").read_bytes() == b"other pixels"


def test_a_copy_that_fails_half_way_leaves_nothing_in_the_inbox(tmp_path: Path, monkeypatch):
    source = tmp_path / "cell.png"
    source.write_bytes(b"pixels")
    inbox = tmp_path / "inbox"

    def half_copy(src, dst, *args, **kwargs):
        Path(dst).write_bytes(b"pix")
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copy2", half_copy)
    with pytest.raises(OSError, match="disk full"):
        stage_for_screening([source], inbox)

    assert list(inbox.iterdir()) == []  # no half copy under its name, no temporary file left behind
