from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from reportlab.pdfbase import pdfdoc

from ganad_clinic.files import atomic_output
from ganad_clinic.report import build_report, csv_export, thumbnails

from .conftest import CellsWorld, World


def crash_while_preparing_images(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C

    monkeypatch.setattr(thumbnails, "make_thumbnail", crash)


def crash_while_writing_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def half_write(document: object, filename: str, canvas: object) -> None:
        Path(filename).write_bytes(b"%PDF-1.4 half a report")
        raise KeyboardInterrupt

    monkeypatch.setattr(pdfdoc.PDFDocument, "SaveToFile", half_write)


@pytest.mark.parametrize("crash", [crash_while_preparing_images, crash_while_writing_the_file])
def test_a_crash_mid_build_leaves_the_old_report_and_no_temporary_file(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: Callable[[pytest.MonkeyPatch], None]
) -> None:
    out = tmp_path / "reports" / "report.pdf"
    build_report(world.store, out)
    before = out.read_bytes()
    world.store.add_review(world.ids["Im007_1.tif"], "late reviewer", "normal", "changed")
    crash(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        build_report(world.store, out, csv_path=out.with_suffix(".csv"))
    assert out.read_bytes() == before
    assert sorted(path.name for path in out.parent.iterdir()) == ["report.pdf"]


def test_a_crash_while_writing_the_cells_keeps_the_earlier_pair_of_csv_files(
    cells_world: CellsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports" / "report.pdf"
    build_report(cells_world.store, out, csv_path=out.with_suffix(".csv"))
    before = {name: (out.parent / name).read_bytes() for name in ("report.csv", "report_cells.csv")}
    cells_world.store.add_review(cells_world.ids["few.jpg"], "late reviewer", "normal", "changed")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(csv_export, "cell_csv_row", crash)
    with pytest.raises(KeyboardInterrupt):
        build_report(cells_world.store, out, csv_path=out.with_suffix(".csv"))
    assert {name: (out.parent / name).read_bytes() for name in before} == before
    assert sorted(path.name for path in out.parent.iterdir()) == ["report.csv", "report.pdf", "report_cells.csv"]


def test_a_crash_while_writing_removes_the_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "file.pdf"
    with pytest.raises(RuntimeError), atomic_output(target) as partial:
        partial.write_bytes(b"%PDF-half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "file.pdf"
    target.write_bytes(b"old")
    with atomic_output(target) as partial:
        assert partial.parent == tmp_path and partial != target
        partial.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [target]
