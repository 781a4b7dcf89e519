from __future__ import annotations

import csv
from pathlib import Path

from ganad_clinic.report import build_report
from ganad_clinic.report.content import gather_content
from ganad_clinic.report.csv_export import COLUMNS

from .builders import SlideFiles, record_scored
from .conftest import GRID_TILING, MARKUP_NAME, MARKUP_NOTE, UNICODE_NAME, World


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def test_csv_rows_match_the_database(world: World, tmp_path: Path) -> None:
    summary = build_report(world.store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    assert summary.csv_path == tmp_path / "r.csv"
    lines = read_csv(tmp_path / "r.csv")
    rows = gather_content(world.store).rows
    assert [int(line["slide_id"]) for line in lines] == [row.slide_id for row in rows]
    for line, row in zip(lines, rows):
        assert line["file"] == row.file_name
        assert line["status"] == row.status.value
        if row.score is None:
            assert line["score"] == line["flagged"] == ""
        else:
            assert float(line["score"]) == row.score
            assert float(line["l_d"]) == row.l_d and float(line["threshold"]) == row.threshold
            assert line["flagged"] == str(int(row.flagged))
        assert line["review_decision"] == ("" if row.decision is None else row.decision.value)
        assert line["review_note"] == row.review_note
    by_name = {line["file"]: line for line in lines}
    assert by_name["Im004_1.tif"]["review_note"] == MARKUP_NOTE
    assert by_name[UNICODE_NAME]["review_decision"] == "second_read"
    assert by_name[MARKUP_NAME]["flagged"] == "0"
    assert {name: line["tiling"] for name, line in by_name.items() if line["tiling"]} == {"Im005_1.tif": GRID_TILING}
    assert by_name["broken & <bad>.jpg"]["rejection_reason"] == "the file is empty (0 bytes)"
    assert by_name["late.png"]["status"] == "pending"


def test_flagged_only_csv_holds_the_flagged_rows(world: World, tmp_path: Path) -> None:
    build_report(world.store, tmp_path / "r.pdf", flagged_only=True, csv_path=tmp_path / "r.csv")
    assert sorted(line["file"] for line in read_csv(tmp_path / "r.csv")) == sorted(
        ["Im004_1.tif", "Im005_1.tif", UNICODE_NAME, "Im007_1.tif"])


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text(store, model, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    names = ['=HYPERLINK("evil.example","open").png', "+1+2.png", "-2.png", "@SUM(A1).png", "\tname.png",
             "plain.png"]
    ids = {}
    for name in names:
        path, heatmap = files.slide(name)
        ids[name] = record_scored(store, model, path, heatmap, -3.1)
    store.add_review(ids["plain.png"], "=cmd|' /C calc'!A0", "normal", "-note")

    build_report(store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")

    lines = {line["slide_id"]: line for line in read_csv(tmp_path / "r.csv")}
    for name in names[:-1]:
        line = lines[str(ids[name])]
        assert line["file"] == "'" + name
        assert line["path"] == str(files.inbox / name)  # an absolute path starts with its folder
    plain = lines[str(ids["plain.png"])]
    assert plain["file"] == "plain.png"
    assert plain["reviewer"] == "'=cmd|' /C calc'!A0" and plain["review_note"] == "'-note"
    assert all(line["score"] == "-3.1" and float(line["l_d"]) == -1.55 for line in lines.values())


def test_a_scores_warning_has_its_column(store, model, tmp_path: Path) -> None:
    files = SlideFiles(tmp_path / "data")
    path, heatmap = files.slide("gray.png")
    record_scored(store, model, path, heatmap, 0.2, warning="grayscale image: this model was trained on colour images")
    path, heatmap = files.slide("colour.png")
    record_scored(store, model, path, heatmap, 0.2)

    build_report(store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")

    warnings = {line["file"]: line["warning"] for line in read_csv(tmp_path / "r.csv")}
    assert warnings == {"gray.png": "grayscale image: this model was trained on colour images", "colour.png": ""}
    assert COLUMNS[-4:] == ("warning", "p_value", "target_fpr", "accession")  # new columns at the end
