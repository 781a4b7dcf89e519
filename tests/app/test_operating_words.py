"""The operating point and a score's judgement in words (no Qt)."""

from __future__ import annotations

from datetime import UTC, datetime

from ganad_clinic.app.operating_words import (
    NOT_CALIBRATED,
    calibration_words,
    kept_short,
    p_value_text,
    rate_in_force,
    slide_judgement,
    verdict_text,
)
from ganad_clinic.store import OperatingPointSetting, Score, Slide, SlideStatus, SlideSummary


def test_the_rate_in_force_names_who_stated_it_or_the_models_target():
    setting = OperatingPointSetting(0.02, "Dr Test", datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "validation")
    assert rate_in_force(setting, 0.05).startswith("Operating point: at most 2 % of normal slides flagged (set by "
                                                   "Dr Test, 2026-12-01 ")
    assert rate_in_force(None, 0.05) == ("Operating point: at most 5 % of normal slides flagged (the model's "
                                         "training target)")
    assert rate_in_force(None, None) == "Operating point: the model's training target"


def test_a_p_value_is_said_only_when_it_was_kept():
    assert p_value_text(0.01, 150) == "more unusual than 99 % of the 150 normal cells this model was calibrated on"
    assert p_value_text(None, None) == NOT_CALIBRATED


def test_a_calibration_short_of_the_target_is_said_with_the_cell_count():
    short = Score(kept_fpr=0.12, target_fpr=0.05)
    assert kept_short(short, 5) == ("this model's calibration keeps at most 12 % for slides of 5 cells; the target "
                                    "is 5 %")
    assert kept_short(short, None).endswith("for this slide; the target is 5 %")
    assert kept_short(Score(kept_fpr=0.05, target_fpr=0.05), 5) is None
    assert kept_short(Score(), 5) is None  # scored before the rates were kept


def test_what_a_calibration_keeps_is_said_in_cells():
    assert calibration_words({"scores": list(range(150))}, 0.05) == (
        "150 calibration normals keep at most 5 % of normal slides flagged for slides of up to 7 cells")
    assert calibration_words({"scores": list(range(12))}, 0.05).startswith(
        "12 calibration normals cannot keep a false-positive rate of 5 % for a single cell")
    assert calibration_words({"scores": list(range(25))}, 0.05) == (
        "25 calibration normals keep at most 5 % of normal single cells flagged (in fact at most 3.85 %); "
        "fields of 2 or more cells need more calibration normals (39 for 2 cells)")
    assert calibration_words({}, 0.05).startswith("calibration unreadable")


def test_a_fields_p_value_is_said_by_its_most_unusual_cell_not_as_a_share_of_cells():
    field = Score(p_value=6 / 151, calibration_n=150, target_fpr=0.05, tiling_rule="white cells")
    words = slide_judgement(field, (0.4, 1 / 151, 0.6, 0.7, 0.3, 0.5))
    assert words.startswith("Slide: its most unusual cell is more unusual than all 150 normal cells this model was "
                            "calibrated on; a normal slide of 6 cells shows one so unusual at most 3.97 % of the time")
    assert "more unusual than 96 %" not in words
    assert "a normal slide of as many cells" in slide_judgement(field)  # its cells not read yet
    crop = Score(p_value=0.01, calibration_n=150, target_fpr=0.05, tiling_rule="whole image")
    assert slide_judgement(crop).startswith("Slide: more unusual than 99 % of the 150 normal cells")
    assert slide_judgement(Score()).startswith(f"Slide: {NOT_CALIBRATED}")


def _summary(score: Score | None, status: SlideStatus = SlideStatus.SCORED, cells: int = 0,
             flagged_cells: int = 0) -> SlideSummary:
    return SlideSummary(Slide(file_name="s.png", status=status), score, None, cells=cells, flagged_cells=flagged_cells)


def test_the_verdict_says_the_score_against_the_threshold_at_three_decimals():
    flagged = Score(score=0.41234, threshold=0.3051, flagged=True, tiling_rule="whole image")
    assert verdict_text(_summary(flagged)) == "Flagged: its score 0.412 is above the threshold 0.305."
    normal = Score(score=-3.1349, threshold=0.3051, flagged=False, tiling_rule="whole image")
    assert verdict_text(_summary(normal)) == "Normal: its score -3.135 is not above the threshold 0.305."
    field = Score(score=0.9, threshold=0.61, flagged=True, tiling_rule="white cells")
    assert verdict_text(_summary(field, cells=37, flagged_cells=3)) == (
        "Flagged: 3 of 37 cells score above the threshold 0.610 (the highest 0.900).")
    quiet = Score(score=0.2, threshold=0.61, flagged=False, tiling_rule="white cells")
    assert verdict_text(_summary(quiet, cells=37)) == (
        "Normal: none of its 37 cells scores above the threshold 0.610 (the highest 0.200).")
    assert verdict_text(_summary(None, SlideStatus.REJECTED)) == "Not scored: the file could not be read."
    assert verdict_text(_summary(None, SlideStatus.PENDING)) == "Not scored yet."
