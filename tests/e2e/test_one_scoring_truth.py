"""The same file gets the same score whoever scores it: `ganad watch` (stored with its cells),
`ganad score`, `ganad evaluate` and the app's inspection, for a crop and for a field; and a
recompute from the stored record (its tiles and tiling) gives the stored score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from ganad_clinic.app.inspection import inspect_slide
from ganad_clinic.cli import main
from ganad_clinic.imaging.io import read_pixels
from ganad_clinic.imaging.synthetic import crop_rng, draw_field, field_rng, generate_cell
from ganad_clinic.imaging.tiling import TilingRule
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.store import open_store
from tests.screening.helpers import TINY_CROP

FIELD_SCALE = "2.5"  # tiles of 120 px on the field for the tiny model's 48-px crops
SAME = 1e-5


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= SAME * (abs(b) or 1.0)


@pytest.fixture
def slides(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(generate_cell(crop_rng(4, False, 0), False, size=TINY_CROP)).save(data / "Im001_0.png")
    field, cells = draw_field(field_rng(4, 0), width=420, height=300, n_cells=3, blast_fraction=0.5)
    Image.fromarray(field).save(data / "Im002_1.png")
    return data


def test_watch_score_evaluate_and_the_app_agree_on_a_crop_and_a_field(tmp_path: Path, tiny_bundle: Path,
                                                                     slides: Path, capsys) -> None:
    home = tmp_path / "home"
    crop, field = slides / "Im001_0.png", slides / "Im002_1.png"
    common = ["--field-scale", FIELD_SCALE, "--threads", "1"]
    assert main(["watch", "--inbox", str(slides), "--home", str(home), "--once", "--quiet", "0.1",
                 "--bundle", str(tiny_bundle), *common]) == 0
    capsys.readouterr()
    assert main(["score", "--bundle", str(tiny_bundle), "--json", *common, str(crop), str(field)]) == 0
    scored = {Path(row["file"]).name: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main(["evaluate", "--bundle", str(tiny_bundle), "--data", str(slides), "--json", *common]) == 0
    evaluated = {Path(row["file"]).name: row for row in json.loads(capsys.readouterr().out)["slides"]}
    bundle = load_bundle(tiny_bundle)

    with open_store(home=home) as store:
        for summary in store.list_slides():
            name, stored = summary.slide.file_name, summary.score
            cells = store.list_cells(stored.id)
            inspection = inspect_slide(summary.slide.id, Path(summary.slide.path), bundle, stored, cells)

            assert _close(scored[name]["score"], stored.score), name
            assert _close(evaluated[name]["score"], stored.score), name
            assert _close(inspection.result.score, stored.score) and inspection.matches_stored, name
            assert scored[name]["flagged"] == evaluated[name]["flagged"] == stored.flagged, name
            assert stored.score == max(cell.score for cell in cells)
            assert stored.flagged == any(cell.flagged for cell in cells)
            boxes = [(cell.x, cell.y, cell.width, cell.height) for cell in cells]
            assert boxes == [(c["x"], c["y"], c["width"], c["height"]) for c in scored[name]["cells"]], name
            for cell, again in zip(cells, inspection.result.cells):
                assert _close(again.score, cell.score) and again.flagged == cell.flagged
            # the stored tiling, applied again, finds the same tiles
            rule = TilingRule(crop_size=stored.crop_size, field_scale=stored.field_scale, overlap=stored.tile_overlap)
            plan = rule.plan(read_pixels(summary.slide.path))
            assert [(t.left, t.top, t.width, t.height) for t in plan.tiles] == boxes
            assert (plan.rule, plan.how) == (stored.tiling_rule, stored.tiling)

        by_name = {summary.slide.file_name: summary.score for summary in store.list_slides()}
    assert by_name["Im001_0.png"].tiling_rule == "whole image" and by_name["Im001_0.png"].crop_size == TINY_CROP
    assert by_name["Im002_1.png"].tiling_rule == "white cells" and by_name["Im002_1.png"].field_scale == 2.5
    assert len(scored["Im002_1.png"]["cells"]) == 3 and len(scored["Im001_0.png"]["cells"]) == 1
    reaching = [c for c in scored["Im002_1.png"]["cells"] if c["y"] < 0 or c["x"] + c["width"] > 420]
    assert len(reaching) == 2  # centred on cells near the edge, the boxes reach beyond the field

    report = tmp_path / "report.pdf"
    assert main(["report", "--home", str(home), "--out", str(report), "--csv"]) == 0
    exported = (tmp_path / "report_cells.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(exported) == 1 + 4 and any(f",{c['x']},{c['y']},120,120," in line for c in reaching
                                            for line in exported)


def test_a_score_made_before_cells_were_kept_is_not_recomputed_with_other_settings(
        tmp_path: Path, tiny_bundle: Path, slides: Path) -> None:
    from ganad_clinic.screening.registry import import_bundle
    from ganad_clinic.screening.slide_records import UnrecordedTilingError

    with open_store(home=tmp_path / "home") as store:
        model = import_bundle(store, tiny_bundle, tmp_path / "home", actor="tester").model
        slide = store.record_slide(str(slides / "Im002_1.png"), "abc", 10, str(slides)).slide
        score = store.add_score(slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=0.5, flagged=True,
                                duration_seconds=0.1)
        with pytest.raises(UnrecordedTilingError, match="before GANAD Clinic kept each score's cells"):
            inspect_slide(slide.id, slides / "Im002_1.png", load_bundle(tiny_bundle), score, store.list_cells(score.id))


def test_score_prints_a_line_per_cell_under_its_file(tiny_bundle: Path, slides: Path, capsys) -> None:
    field = slides / "Im002_1.png"
    assert main(["score", "--bundle", str(tiny_bundle), "--cells", "--field-scale", FIELD_SCALE, "--threads", "1",
                 str(field)]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].startswith(f"{field}\t") and lines[0].endswith("3 tiles, one per white cell")
    assert [line.split("\t")[0] for line in lines[1:]] == ["  cell 1", "  cell 2", "  cell 3"]
    top = max(float(line.split("\t")[1]) for line in lines[1:])
    assert f"{top:.4f}" == lines[0].split("\t")[1]
    assert all("(white cell)" in line and " 120x120 " in line for line in lines[1:])
