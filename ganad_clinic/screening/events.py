"""What the screening service reports, one event per file, from its worker thread.

Listeners (the command line, later the GUI) receive these on the service's thread and must hand
them to their own thread before touching anything thread-bound (e.g. emit a Qt signal).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class Outcome(enum.Enum):
    SCORED = "scored"          # scored now with the active model
    RESCORED = "rescored"      # content scored before by another model, scored again (--rescore)
    DUPLICATE = "duplicate"    # content already scored under another name: linked to that result
    KNOWN = "known"            # this very file was handled before (e.g. before a restart)


@dataclass(frozen=True)
class SlideScored:
    """A file has a committed score: `score_slide_id` is the slide the score belongs to (the
    original, for a duplicate); `tiles` and `seconds` describe scoring done now, else None;
    `warning` is a caveat the technician must see with the score ("page 1 of 3 scored...");
    `p_value` the slide's conformal p-value (None for a score made before they were kept)."""

    path: Path
    slide_id: int
    score_slide_id: int
    outcome: Outcome
    score: float
    flagged: bool
    threshold: float
    model_version: str
    heatmap_path: Path | None
    tiles: int | None = None
    seconds: float | None = None
    warning: str | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class SlideRejected:
    """A file cannot be screened; `reason` says why. `known`: it was rejected before."""

    path: Path
    slide_id: int
    reason: str
    known: bool = False
