"""Specimens: the accession an image belongs to by default, and what a specimen's images say
together (plain functions over their summaries): may it be signed off, its finding, its state,
and the digest a signature keeps of what it signed."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from ganad_clinic.store.models import ReviewDecision, Signature, SlideStatus, Specimen
from ganad_clinic.store.summaries import SlideSummary

ACCESSION_LENGTH = 64  # specimens.accession is VARCHAR(64)
ABNORMAL, NORMAL = "abnormal", "normal"


def default_accession(path: str, source_folder: str) -> str:
    """A file in a subfolder directly under its watched folder belongs to the subfolder's specimen;
    a file directly in it is a specimen of its own, named after the file (migration 0007 keeps a copy)."""
    try:
        parts = PurePath(path).relative_to(source_folder).parts
    except ValueError:
        parts = (PurePath(path).name,)
    name = parts[0] if len(parts) > 1 else PurePath(parts[-1]).stem
    return name[:ACCESSION_LENGTH]


class SpecimenState(enum.Enum):
    OPEN = "open"  # images to score or flags to review
    REVIEWED = "reviewed"  # ready to sign
    SIGNED = "signed"
    AMENDED = "amended"  # signed, and reviewed or rescored since: to sign again


@dataclass(frozen=True)
class SpecimenSummary:
    specimen: Specimen
    slides: list[SlideSummary]
    signature: Signature | None  # the latest

    @property
    def state(self) -> SpecimenState:
        if self.signature is None:
            return SpecimenState.OPEN if sign_off_refusal(self.slides) else SpecimenState.REVIEWED
        if self.signature.content_sha256 != content_digest(self.slides):
            return SpecimenState.AMENDED
        return SpecimenState.SIGNED

    @property
    def finding(self) -> str:
        return finding(self.slides)


def sign_off_refusal(slides: Sequence[SlideSummary]) -> str | None:
    """Why the specimen cannot be signed yet, in words naming the images; None when it can."""
    if not slides:
        return "it has no images"
    problems = []
    for summary in slides:
        slide, review = summary.slide, summary.review
        if slide.status is SlideStatus.PENDING:
            problems.append(f"{slide.file_name} is not scored yet")
        elif slide.status is SlideStatus.REJECTED and summary.replaced_by_id is None:
            problems.append(f"{slide.file_name} could not be scored ({slide.reason}); replace the file")
        elif summary.score is not None and summary.score.flagged:
            if review is None:
                cells = f" ({summary.flagged_cells} of {summary.cells} cells flagged)" if summary.cells > 1 else ""
                problems.append(f"{slide.file_name} is flagged{cells} and not reviewed")
            elif review.decision is ReviewDecision.SECOND_READ:
                problems.append(f"{slide.file_name} awaits a second read")
        elif review is not None and review.decision is ReviewDecision.SECOND_READ:
            problems.append(f"{slide.file_name} awaits a second read")
    return "; ".join(problems) or None


def finding(slides: Sequence[SlideSummary]) -> str:
    """Abnormal when any image is flagged and not overruled, or confirmed abnormal by a reviewer."""
    for summary in slides:
        decision = None if summary.review is None else summary.review.decision
        flagged = summary.score is not None and summary.score.flagged
        if decision is ReviewDecision.ANOMALY_CONFIRMED or (flagged and decision is not ReviewDecision.NORMAL):
            return ABNORMAL
    return NORMAL


def content_digest(slides: Sequence[SlideSummary]) -> str:
    """What a signature signs: each image's content, current score and flag, and current review."""
    rows = sorted(
        [summary.slide.id, summary.slide.sha256, summary.score.id if summary.score else None,
         bool(summary.score.flagged) if summary.score else None,
         summary.review.id if summary.review else None, summary.review.decision.value if summary.review else None]
        for summary in slides if not (summary.slide.status is SlideStatus.REJECTED and summary.replaced_by_id)
    )
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
