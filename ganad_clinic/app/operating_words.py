"""The operating point and a score's judgement in words for a technician (plain Python, no Qt):
the rate in force, and what a stored p-value says. The numbers are the stored ones, so the screen
says what the PDF report says."""

from __future__ import annotations

from collections.abc import Sequence

from ganad_clinic.imaging.tiling import WHOLE_IMAGE
from ganad_clinic.model.conformal import Calibration, OperatingPoint, p_value_words, percent, slide_p_value_words
from ganad_clinic.model.numbers import score_text
from ganad_clinic.store import OperatingPointSetting, Score, SlideStatus, SlideSummary

NOT_CALIBRATED = "not calibrated (scored before GANAD Clinic kept p-values)"
MAX_CELLS_SAID = 1_000  # slides larger than this are said as "or more"


def rate_in_force(setting: OperatingPointSetting | None, model_target: float | None) -> str:
    """The slide false-positive rate in force, and who stated it when: the lab's, else the active
    model's training target."""
    if setting is not None:
        when = setting.time.astimezone().strftime("%Y-%m-%d %H:%M")
        return (f"Operating point: at most {percent(setting.target_fpr)} of normal slides flagged "
                f"(set by {setting.actor}, {when})")
    if model_target is None:
        return "Operating point: the model's training target"
    return f"Operating point: at most {percent(model_target)} of normal slides flagged (the model's training target)"


def p_value_text(p_value: float | None, calibration_n: int | None) -> str:
    """A stored p-value in words, or that there is none."""
    if p_value is None or not calibration_n:
        return NOT_CALIBRATED
    return p_value_words(p_value, calibration_n)


def verdict_text(summary: SlideSummary) -> str:
    """The slide's stored flag in a technician's words: its score (a field's: its highest cell's)
    against the threshold it was judged by, and for a field how many of its cells are above it."""
    score = summary.score
    if summary.slide.status is SlideStatus.REJECTED:
        return "Not scored: the file could not be read."
    if score is None:
        return "Not scored yet."
    verdict = "Flagged" if score.flagged else "Normal"
    threshold = score_text(score.threshold)
    if score.tiling_rule not in (None, WHOLE_IMAGE) and summary.cells:
        if summary.flagged_cells:
            return (f"{verdict}: {summary.flagged_cells} of {summary.cells} cells score above the threshold "
                    f"{threshold} (the highest {score_text(score.score)}).")
        return (f"{verdict}: none of its {summary.cells} cells scores above the threshold {threshold} "
                f"(the highest {score_text(score.score)}).")
    side = "above" if score.score > score.threshold else "not above"
    return f"{verdict}: its score {score_text(score.score)} is {side} the threshold {threshold}."


def slide_judgement(score: Score, cell_p_values: Sequence[float | None] = ()) -> str:
    """The slide's p-value in words (for a slide of several cells: its most unusual cell, and how
    often a normal slide of as many cells shows one so unusual), with the rate it was flagged at."""
    known = [p for p in cell_p_values if p is not None]
    if score.p_value is None or not score.calibration_n:
        words = NOT_CALIBRATED
    elif not known and score.tiling_rule not in (None, WHOLE_IMAGE):  # a field whose cells are not read yet
        words = f"a normal slide of as many cells shows a cell so unusual at most {percent(score.p_value)} of the time"
    else:
        words = slide_p_value_words(score.p_value, known, score.calibration_n)
    text = f"Slide: {words}"
    if score.p_value is not None:
        text += f" (p = {score.p_value:.3g})"
    if score.target_fpr is not None:
        text += f"; judged at a target of at most {percent(score.target_fpr)} of normal slides flagged"
    return text + "."


def kept_short(score: Score, cells: int | None) -> str | None:
    """When the model's calibration could not keep the target for this slide (too few calibration
    normals for its number of cells), in plain words; None when it kept it."""
    if score.kept_fpr is None or score.target_fpr is None or score.kept_fpr <= score.target_fpr + 1e-9:
        return None
    which = "this slide" if cells is None else f"slides of {cells} cell{'s' if cells != 1 else ''}"
    return (f"this model's calibration keeps at most {percent(score.kept_fpr)} for {which}; the target is "
            f"{percent(score.target_fpr)}")



def calibration_words(calibration: dict, target_fpr: float) -> str:
    """What a bundle's calibration (its metadata's ganad.calibration) keeps at `target_fpr`: the
    largest slides (in cells) it keeps the target for, or its shortfall for a single cell."""
    try:
        point = OperatingPoint(target_fpr, Calibration.of(calibration["scores"]))
    except (KeyError, TypeError, ValueError) as error:
        return f"calibration unreadable ({error})"
    shortfall = point.shortfall(1)
    if shortfall is not None:
        return shortfall
    cells = 1
    while cells < MAX_CELLS_SAID and point.kept_rate(cells + 1) <= target_fpr + 1e-9:
        cells += 1
    n = point.calibration.n
    if cells == 1:  # crops only: say what they keep, and that a field of two cells already exceeds it
        return (f"{n} calibration normals keep at most {percent(target_fpr)} of normal single cells flagged "
                f"(in fact at most {percent(point.kept_rate(1))}); fields of 2 or more cells need more "
                f"calibration normals ({point.minimum_calibration(2)} for 2 cells)")
    upto = f"{MAX_CELLS_SAID} or more" if cells == MAX_CELLS_SAID else f"up to {cells}"
    return (f"{n} calibration normals keep at most {percent(target_fpr)} of normal slides flagged for slides of "
            f"{upto} cells")
