"""Cells in the report: a flagged field's overview and close-ups in the PDF, the cells CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image
from pypdf import PdfReader

from ganad_clinic.imaging.overlay import FLAGGED_COLOUR, NORMAL_COLOUR
from ganad_clinic.report import build_report
from ganad_clinic.report.content import gather_content
from ganad_clinic.report.csv_export import CELL_COLUMNS
from ganad_clinic.report.thumbnails import CROP_PIXELS, OVERVIEW_PIXELS
from ganad_clinic.store import ModelVersion, Store

from .builders import THRESHOLD, SlideFiles, record_field, record_scored
from .conftest import FEW_FLAGGED, MANY_FLAGGED, NONE_FLAGGED, CellsWorld


def flattened(text: str) -> str:
    return " ".join(text.split())


def read_cells_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CELL_COLUMNS
        return list(reader)


def has_colour(picture: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return bool((np.abs(picture.astype(int) - colour).sum(axis=-1) < tolerance).sum() > 20)


def test_a_field_row_holds_its_cells_numbered_from_one_flagged_highest_first(cells_world: CellsWorld) -> None:
    rows = {row.file_name: row for row in gather_content(cells_world.store).rows}
    few = rows["few.jpg"]
    assert [cell.number for cell in few.cells] == list(range(1, 13))
    assert [cell.score for cell in few.cells] == list(FEW_FLAGGED)
    assert (few.cells[0].x, few.cells[0].y, few.cells[0].width, few.cells[0].found_by) == (0, 0, 160, "white cell")
    assert [cell.number for cell in few.flagged_cells] == [3, 6, 10]
    assert [cell.number for cell in rows["many.jpg"].flagged_cells] == [6, 11, 1, 10, 3, 4, 12, 7, 8]
    assert few.shows_cells and rows["calm.jpg"].shows_cells
    assert not rows["crop.png"].shows_cells and len(rows["crop.png"].cells) == 1
    assert not rows["old.png"].shows_cells and rows["old.png"].cells == ()


def test_a_flagged_field_shows_its_boxed_overview_and_flagged_cells_close_up(cells_world: CellsWorld,
                                                                            tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    build_report(cells_world.store, out)
    pages = PdfReader(out).pages
    text = flattened(" ".join(page.extract_text() for page in pages))

    images = [np.asarray(image.image.convert("RGB")) for page in pages for image in page.images]
    overviews = [picture for picture in images if max(picture.shape[:2]) > CROP_PIXELS]
    # few: overview + 3 cells; many: overview + 6 cells; the crop and the old score: slide + heat map each
    assert len(images) == (1 + 3) + (1 + 6) + 2 + 2
    assert len(overviews) == 2 and all(max(picture.shape[:2]) <= OVERVIEW_PIXELS for picture in overviews)
    assert all(has_colour(picture, FLAGGED_COLOUR) and has_colour(picture, NORMAL_COLOUR) for picture in overviews)
    assert "3 of 12 cells flagged" in text and "9 of 12 cells flagged" in text and "calm.jpg" in text
    assert "… and 3 more flagged cells, boxed in vermillion in the overview." in text
    assert text.count("cells flagged") == 2  # neither the crop nor the old score is shown cell by cell
    shown = [int(number) for number in re.findall(r"cell (\d+) score", text)]
    assert shown == [3, 6, 10] + [6, 11, 1, 10, 3, 4]  # highest score first, six at most
    assert f"cell 6 score 0.990 threshold {THRESHOLD:.3f}" in text  # fixed precision


def test_the_close_ups_are_cut_from_the_heat_map(store: Store, model: object, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    field = files.field("hot.jpg", hot=[0])
    record_field(store, model, field, (0.9,) + (0.1,) * 11)  # type: ignore[arg-type]
    out = tmp_path / "report.pdf"
    build_report(store, out)
    crop = next(np.asarray(image.image.convert("RGB")) for page in PdfReader(out).pages for image in page.images
                if max(image.image.size) <= CROP_PIXELS)
    heatmap = np.asarray(Image.open(field.heatmap).convert("RGB"))
    tile = heatmap[: heatmap.shape[0] // 3, : heatmap.shape[1] // 4]  # cell 1, the hot one
    assert crop.shape[0] == crop.shape[1] and crop.shape[0] == tile.shape[0]  # the whole tile, shrunk by nothing
    assert np.abs(crop.astype(int).mean(axis=(0, 1)) - tile.astype(int).mean(axis=(0, 1))).max() < 6


def test_a_field_whose_heat_map_is_gone_prints_placeholders(cells_world: CellsWorld, tmp_path: Path) -> None:
    cells_world.fields["few.jpg"].heatmap.unlink()
    out = tmp_path / "report.pdf"
    build_report(cells_world.store, out)
    text = flattened(" ".join(page.extract_text() for page in PdfReader(out).pages))
    assert "heat map not found" in text and text.count("no picture") == 3
    assert "3 of 12 cells flagged" in text and re.search(r"cell 3 score 0\.95", text)


def test_the_cells_csv_lists_every_cell_of_each_current_score(cells_world: CellsWorld, tmp_path: Path) -> None:
    summary = build_report(cells_world.store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    assert summary.cells_csv_path == tmp_path / "r_cells.csv"
    lines = read_cells_csv(summary.cells_csv_path)
    rows = {row.file_name: row for row in gather_content(cells_world.store).rows}

    assert [line["file"] for line in lines] == ["few.jpg"] * 12 + ["many.jpg"] * 12 + ["calm.jpg"] * 12 + ["crop.png"]
    for line in lines:
        row = rows[line["file"]]
        cell = row.cells[int(line["cell"]) - 1]
        assert (int(line["slide_id"]), int(line["score_id"])) == (row.slide_id, row.score_id)
        assert [int(line[key]) for key in ("x", "y", "width", "height")] == [cell.x, cell.y, cell.width, cell.height]
        assert line["found_by"] == cell.found_by and line["flagged"] == str(int(cell.flagged))
        assert [float(line[key]) for key in ("score", "l_d", "l_r", "l_l", "threshold")] == [
            cell.score, cell.l_d, cell.l_r, cell.l_l, row.threshold]
    calm = [line for line in lines if line["file"] == "calm.jpg"]
    assert [float(line["score"]) for line in calm] == list(NONE_FLAGGED) and {line["flagged"] for line in calm} == {"0"}
    assert sum(line["flagged"] == "1" for line in lines) == 3 + 9 + 1
    assert not [line for line in lines if line["file"] == "old.png"]  # scored before cells were kept


def test_the_cells_csv_follows_the_current_score(cells_world: CellsWorld, model: ModelVersion,
                                                 tmp_path: Path) -> None:
    field = cells_world.fields["many.jpg"]
    cells_world.store.add_score(cells_world.ids["many.jpg"], model.id, score=0.2, l_d=0, l_r=0, l_l=0,
                                threshold=THRESHOLD, flagged=False, duration_seconds=0.1,
                                cells=field.cells((0.2,) * 12))
    build_report(cells_world.store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    many = [line for line in read_cells_csv(tmp_path / "r_cells.csv") if line["file"] == "many.jpg"]
    assert len(many) == 12 and {line["score"] for line in many} == {"0.2"}
    assert len({line["score_id"] for line in many}) == 1


def test_cell_file_names_a_spreadsheet_would_run_are_written_as_text(store: Store, model: object,
                                                                      tmp_path: Path) -> None:
    name = '=HYPERLINK("evil.example").jpg'
    field = SlideFiles(tmp_path / "data").field(name, hot=[])
    record_field(store, model, field, MANY_FLAGGED)  # type: ignore[arg-type]
    build_report(store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    lines = read_cells_csv(tmp_path / "r_cells.csv")
    assert len(lines) == 12 and {line["file"] for line in lines} == {"'" + name}


def test_scores_without_cells_report_as_before_with_an_empty_cells_file(store: Store, model: object,
                                                                        tmp_path: Path) -> None:
    path, heatmap = SlideFiles(tmp_path / "data").slide("old.png", blast=True)
    record_scored(store, model, path, heatmap, 0.9)  # type: ignore[arg-type]
    build_report(store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    assert read_cells_csv(tmp_path / "r_cells.csv") == []
    assert len([image for page in PdfReader(tmp_path / "r.pdf").pages for image in page.images]) == 2
    text = flattened(" ".join(page.extract_text() for page in PdfReader(tmp_path / "r.pdf").pages))
    assert "old.png" in text and "cells flagged" not in text


def test_a_field_with_one_white_cell_found_is_shown_with_its_box(store: Store, model: ModelVersion,
                                                                  tmp_path: Path) -> None:
    field = SlideFiles(tmp_path / "data").field("single.jpg", hot=[0], columns=1, rows=1)
    record_field(store, model, field, (0.9,))
    out = tmp_path / "report.pdf"

    build_report(store, out)

    [row] = gather_content(store).rows
    assert row.shows_cells and row.tiling_rule == "white cells"
    text = flattened(" ".join(page.extract_text() for page in PdfReader(out).pages))
    assert "1 of 1 cells flagged" in text and "cell 1 score 0.9" in text
