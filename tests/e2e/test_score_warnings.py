"""A multi-page TIFF was scored on its first page without a word, and a gray image given to a
colour model flagged without a word: the score must carry the caveat, in the database, in the
service's event and on `ganad watch`'s line, also for a copy linked to that score."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.store import open_store
from tests.screening.helpers import image_bytes

PAGES = "page 1 of 3 scored; the other pages were not screened"
GRAY = "grayscale image: this model was trained on colour images; the score may be unreliable"


def test_scores_of_multi_page_and_gray_images_carry_a_warning(tmp_path: Path, tiny_bundle: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "pages.tif").write_bytes(image_bytes(1, "TIFF", pages=3))
    (inbox / "gray.png").write_bytes(image_bytes(2, "PNG", gray=True))
    (inbox / "colour.png").write_bytes(image_bytes(3, "PNG"))
    args = ["watch", "--inbox", str(inbox), "--home", str(home), "--once", "--quiet", "0.1", "--threads", "1"]
    assert main([*args, "--bundle", str(tiny_bundle)]) == 0
    lines = {Path(line.split("\t")[0][10:]).name: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("scored")}
    assert lines["pages.tif"].endswith(f"WARNING: {PAGES}")
    assert lines["gray.png"].endswith(f"WARNING: {GRAY}")
    assert "WARNING" not in lines["colour.png"]

    (inbox / "copy of pages.tif").write_bytes((inbox / "pages.tif").read_bytes())
    assert main(args) == 0
    out = capsys.readouterr().out
    assert any("copy of pages.tif" in line and line.endswith(f"WARNING: {PAGES}") for line in out.splitlines())

    with open_store(home=home) as store:
        warnings = {summary.slide.file_name: store.latest_score(summary.slide.id).warning
                    for summary in store.list_slides()}
    assert warnings == {"pages.tif": PAGES, "copy of pages.tif": PAGES, "gray.png": GRAY, "colour.png": None}
