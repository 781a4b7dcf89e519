"""The operating point in the report: p-values in words beside flagged slides and cells, p-value and
target columns in the CSVs (empty for scores made before p-values were kept), and the drift alarm
in the summary."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

from pypdf import PdfReader

from ganad_clinic.model.conformal import p_value_words
from ganad_clinic.report import build_report
from ganad_clinic.report.content import gather_content
from ganad_clinic.store import DRIFT_ALARM_CLEARED, DRIFT_ALARM_RAISED, Judgement, ModelVersion, Store

from .builders import SlideFiles, record_field, record_scored

N = 150
FIELD_SCORES = (0.2, 0.95, 0.1, 0.3, 0.8, 0.2, 0.1, 0.3, 0.2, 0.1, 0.3, 0.4)  # cells 2 and 5 flagged
FIELD_P_VALUES = (0.4, 1 / 151, 0.7, 0.3, 3 / 151, 0.5, 0.8, 0.3, 0.5, 0.8, 0.3, 0.2)
SLIDE_P = 12 / 151  # 12 cells x the smallest


def text_of(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return {f"{line['file']}#{line.get('cell', '')}": line for line in csv.DictReader(handle)}


def judged_world(store: Store, model: ModelVersion, root: Path) -> None:
    """A field scored with p-values, a crop scored with them, and a flagged crop scored before."""
    files = SlideFiles(root)
    field = files.field("judged.jpg", hot=[1, 4])
    record_field(store, model, field, FIELD_SCORES, p_values=FIELD_P_VALUES,
                 judgement=Judgement(SLIDE_P, 0.05, 0.05, N))
    path, heatmap = files.slide("crop.png", blast=True)
    record_scored(store, model, path, heatmap, 0.9, judgement=Judgement(2 / 151, 0.05, 0.05, N))
    path, heatmap = files.slide("old.png", blast=True)
    record_scored(store, model, path, heatmap, 0.8)


def test_the_csvs_carry_the_p_values_and_the_target(store: Store, model: ModelVersion, tmp_path: Path) -> None:
    judged_world(store, model, tmp_path / "data")
    summary = build_report(store, tmp_path / "r.pdf", csv_path=tmp_path / "r.csv")
    assert summary.cells_csv_path is not None
    slides, cells = read(tmp_path / "r.csv"), read(summary.cells_csv_path)

    assert float(slides["judged.jpg#"]["p_value"]) == SLIDE_P and float(slides["judged.jpg#"]["target_fpr"]) == 0.05
    assert float(slides["crop.png#"]["p_value"]) == 2 / 151
    assert slides["old.png#"]["p_value"] == slides["old.png#"]["target_fpr"] == ""
    assert [float(cells[f"judged.jpg#{number}"]["p_value"]) for number in range(1, 13)] == list(FIELD_P_VALUES)


def test_flagged_slides_and_cells_say_their_p_values_in_words(store: Store, model: ModelVersion,
                                                             tmp_path: Path) -> None:
    judged_world(store, model, tmp_path / "data")
    build_report(store, tmp_path / "r.pdf")
    text = text_of(tmp_path / "r.pdf")

    # a field's p-value (12 x its smallest cell's) is not a share of calibration cells: its top cell is said
    assert (f"Slide p = {SLIDE_P:.3g}: its most unusual cell is {p_value_words(1 / 151, N)}; a normal slide of 12 "
            "cells shows one so unusual at most 7.95 % of the time") in text
    assert f"Slide p = {2 / 151:.3g}: {p_value_words(2 / 151, N)}" in text
    assert f"p = {1 / 151:.3g}: {p_value_words(1 / 151, N)}" in text  # cell 2, close up
    assert f"p = {3 / 151:.3g}: {p_value_words(3 / 151, N)}" in text  # cell 5
    assert text.count("this model was calibrated on") == 4  # the old score says nothing
    rows = {row.file_name: row for row in gather_content(store).rows}
    assert rows["old.png"].slide_p_value_text is None


def test_the_summary_says_whether_a_drift_alarm_was_raised_in_the_period(store: Store, model: ModelVersion,
                                                                        tmp_path: Path) -> None:
    judged_world(store, model, tmp_path / "data")
    build_report(store, tmp_path / "quiet.pdf")
    assert "Drift alarm none raised in this period" in text_of(tmp_path / "quiet.pdf")

    message = "drift alarm: 40 of the last 200 slides had a cell more unusual than 136 of the 150 normal cells"
    store.audit("tester", DRIFT_ALARM_RAISED, {"model_version": "1.0.0", "message": message, "exceeding": 40})
    store.audit("tester", DRIFT_ALARM_CLEARED, {"model_version": "1.0.0", "message": "drift alarm cleared: ..."})
    store.audit("tester", DRIFT_ALARM_RAISED, {"model_version": "1.0.0", "message": message, "exceeding": 41})
    content = gather_content(store)
    assert [event.raised for event in content.drift_events] == [True, False, True]
    assert len(content.drift_alarms) == 2 and content.drift_alarms[0].message == message
    assert gather_content(store, since=datetime.now() + timedelta(hours=1)).drift_events == ()

    build_report(store, tmp_path / "alarm.pdf")
    text = text_of(tmp_path / "alarm.pdf")
    assert "Drift alarm raised 2 times in this period, still raised at its end" in text
    assert text.count(f"model 1.0.0: {message.removeprefix('drift alarm: ')}") == 2  # the heading says "Drift alarm"
