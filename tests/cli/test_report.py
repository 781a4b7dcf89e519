"""`ganad report` through its own argparse parser."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from ganad_clinic.cli import report
from ganad_clinic.store import Cell, TilingRecord, open_store


def ganad_report(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ganad")
    report.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", *argv])
    return args.func(args)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose database holds two scored fields of two cells each (one field flagged) from the
    inbox `tmp_path/in`; their images are not on disk."""
    home = tmp_path / "home"
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"version": "1.0.0", "ganad": {
        "bundle_format": 1, "threshold": {"value": 0.5, "rule": "mean + 3 std of normal scores"},
        "score": {"lambda": 0.8, "beta": 1.0, "mode": "normalised"}}}), encoding="utf-8")
    with open_store(home=home) as store:
        model = store.register_model_version("1.0.0", bundle, "ab" * 32, actor="tester")
        inbox = (tmp_path / "in").absolute()
        for name, score in (("normal.png", 0.2), ("blast.png", 0.9)):
            slide = store.record_slide(inbox / name, name, 10, inbox, width=400, height=200).slide
            store.add_score(slide.id, model.id, score=score, l_d=0.1, l_r=0.2, l_l=0.3, threshold=0.5,
                            flagged=score >= 0.5, duration_seconds=0.1, cells=_cells(score),
                            tiling=TilingRecord("white cells", "2 tiles, one per white cell", 257, 1.0, 0.5))
    return home


def _cells(score: float) -> list[Cell]:
    return [Cell(cell_index=index, x=200 * index, y=0, width=200, height=200, found_by="white cell",
                 score=value, l_d=0.1, l_r=0.2, l_l=0.3, flagged=value >= 0.5)
            for index, value in enumerate((0.1, score))]


def test_writes_the_pdf_and_the_csv_beside_it(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports" / "may.pdf"
    assert ganad_report("--out", str(out), "--home", str(home), "--csv", "--lab", "Lab 3", "--operator", "Jo") == 0
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    assert "Lab 3" in text and "Jo" in text and "mean + 3 std of normal scores" in text
    assert "1 of 2 cells flagged" in text and "heat map" in text  # the field's overview, its picture missing
    with open(out.with_suffix(".csv"), encoding="utf-8-sig", newline="") as handle:
        assert [row["file"] for row in csv.DictReader(handle)] == ["normal.png", "blast.png"]
    cells_csv = out.with_name("may_cells.csv")
    with open(cells_csv, encoding="utf-8-sig", newline="") as handle:
        assert [(row["file"], row["cell"], row["flagged"]) for row in csv.DictReader(handle)] == [
            ("normal.png", "1", "0"), ("normal.png", "2", "0"), ("blast.png", "1", "0"), ("blast.png", "2", "1")]
    printed = capsys.readouterr().out
    assert f"wrote {out} (2 pages): 2 slides, 1 flagged, 0 rejected, 1 awaiting review" in printed
    assert f"wrote {out.with_suffix('.csv')} (one line per slide) and {cells_csv} (one line per cell)" in printed


def test_the_period_folder_and_flag_filters_reach_the_report(home: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.pdf"
    assert ganad_report("--out", str(out), "--home", str(home), "--until", "2000-01-01") == 0
    assert "0 slides" in capsys.readouterr().out and "This report is empty" in PdfReader(out).pages[0].extract_text()
    assert ganad_report("--out", str(out), "--home", str(home), "--folder", str(tmp_path / "in"),
                        "--flagged-only", "--since", "2000-01-01T00:00") == 0
    assert "1 slide, 1 flagged" in capsys.readouterr().out


def test_a_reversed_period_is_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ganad_report("--out", str(tmp_path / "r.pdf"), "--home", str(home),
                        "--since", "2024-06-01", "--until", "2024-05-31") == 2
    assert "--since is not before --until" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()


def test_a_malformed_date_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ganad_report("--out", str(tmp_path / "r.pdf"), "--since", "31/05/2024")
    assert exit_info.value.code == 2
    assert "is not a date like 2024-05-31" in capsys.readouterr().err


def test_a_bad_database_url_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ganad_report("--out", str(tmp_path / "r.pdf"), "--db", "nosuchdb://x") == 1
    assert capsys.readouterr().err.startswith("ganad report: ")
