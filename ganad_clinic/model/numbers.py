"""Scores as people read them: one fixed precision in the queue, the viewer, the cell list, the
tooltips and the PDF report, so a number can be checked against another by eye."""

from __future__ import annotations

SCORE_DECIMALS = 3
NO_SCORE = "–"


def score_text(value: float | None) -> str:
    """A score, a threshold or a score's term at the fixed precision (0.412, -3.135, 25.600); a
    dash where there is none (not scored)."""
    return NO_SCORE if value is None else f"{value:.{SCORE_DECIMALS}f}"
