"""From a complete file to a slide in the database: hash, record, reject, link, decode.

Ingest is idempotent by content: the store knows each (path, sha256) once, so a file seen again
after a restart or a duplicate event is recognised and nothing is scored twice. A file whose
content was scored under another name is linked to that result, not scored again, unless the
service re-scores (`rescore`) content whose current score came from a model other than the active
one; the new score is appended to the original slide. Every file that cannot be screened ends as a
rejected slide with its reason, so nothing dropped into an inbox goes unaccounted for.
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ganad_clinic.imaging.io import ImageReadError, MultiPageWarning, read_image, read_image_info
from ganad_clinic.screening.events import Outcome
from ganad_clinic.screening.stability import FileSignature, file_signature
from ganad_clinic.store import Slide, SlideStatus, Store

_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)
CHANGED_WHILE_READ = "the file changed while it was being read; its new content is taken as a new slide"


class Step(enum.Enum):
    RETRY = "retry"        # changed or locked while being read: wait until it is stable again
    GONE = "gone"          # vanished before it could be read: nothing to record
    SCORE = "score"        # decoded: score `image` and add the score to slide `score_slide_id`
    FINISHED = "finished"  # the file has its result: rejected or linked now, or handled before


@dataclass(frozen=True)
class Arrival:
    """What ingest made of one file."""

    path: Path
    inbox: Path
    step: Step
    signature: FileSignature | None = None
    slide: Slide | None = None
    outcome: Outcome | None = None  # for SCORE and FINISHED; None for a rejected slide
    score_slide_id: int | None = None
    image: np.ndarray | None = None

    @property
    def rejected(self) -> bool:
        return self.slide is not None and self.slide.status is SlideStatus.REJECTED


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Ingestor:
    """Runs on the service's worker thread; every decision is committed before it returns."""

    def __init__(self, store: Store, *, rescore: bool = False, max_pixels: int | None = None) -> None:
        self.store = store
        self.rescore = rescore
        self.max_pixels = max_pixels

    def receive(self, path: Path, inbox: Path, model_id: int) -> Arrival:
        """Take one file that has stopped changing; `model_id` is the active model version."""
        arrival = Arrival(path, inbox, Step.GONE)
        try:
            before = file_signature(path)
            if before is None:
                return arrival
            sha256 = file_sha256(path)
        except FileNotFoundError:
            return arrival
        except OSError:
            return replace(arrival, step=Step.RETRY)
        arrival = replace(arrival, signature=before)
        slide = self.store.find_slide(path, sha256)
        if slide is not None:
            return self.resume(replace(arrival, slide=slide), model_id, known=True)
        width = height = reason = None
        try:
            info = read_image_info(path, self.max_pixels)
            width, height = info.width, info.height
        except ImageReadError as error:
            reason = error.reason
        except _HEADER_ERRORS:
            pass  # read_image_info lets some damage through (e.g. a truncated PNG's EXIF); decoding names it
        if self._changed(arrival):
            return replace(arrival, step=Step.RETRY)
        recorded = self.store.record_slide(path, sha256, before.size, inbox, width=width, height=height)
        arrival = replace(arrival, slide=recorded.slide)
        if reason is not None and recorded.slide.status is SlideStatus.PENDING:
            return self._reject(arrival, reason)
        return self.resume(arrival, model_id, known=not recorded.is_new)

    def resume(self, arrival: Arrival, model_id: int, *, known: bool) -> Arrival:
        """Carry on with a recorded slide: link it, decode it for scoring, or call it finished."""
        slide = arrival.slide
        if slide.status is SlideStatus.PENDING:
            linked = self.store.link_to_scored_original(slide.id)
            if linked is None:
                return self._decode(arrival, slide.id, Outcome.SCORED)
            slide, known = linked, False
        if slide.status is SlideStatus.REJECTED:
            return replace(arrival, slide=slide, step=Step.FINISHED, outcome=Outcome.KNOWN if known else None)
        outcome = Outcome.KNOWN if known else Outcome.DUPLICATE
        arrival = replace(arrival, slide=slide, outcome=outcome)
        scored_id = slide.duplicate_of_id or slide.id
        if self.rescore and self._scored_by_other_model(slide.id, model_id):
            return self._decode(arrival, scored_id, Outcome.RESCORED)
        return replace(arrival, step=Step.FINISHED, score_slide_id=scored_id)

    def reject(self, arrival: Arrival, reason: str) -> Arrival:
        """Record that a pending slide cannot be screened (e.g. the model failed on it)."""
        return self._reject(arrival, reason)

    def _decode(self, arrival: Arrival, score_slide_id: int, outcome: Outcome) -> Arrival:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MultiPageWarning)  # the first page is screened
                image = read_image(arrival.path, self.max_pixels)
        except ImageReadError as error:
            return self._give_up(arrival, outcome, error.reason)
        if self._changed(arrival):
            return self._give_up(arrival, outcome, CHANGED_WHILE_READ)
        return replace(arrival, step=Step.SCORE, outcome=outcome, score_slide_id=score_slide_id, image=image)

    def _give_up(self, arrival: Arrival, outcome: Outcome, reason: str) -> Arrival:
        """The file could not be decoded: retry it if it changed meanwhile, else reject it. Content
        already scored (a re-score) keeps its earlier result instead."""
        changed = self._changed(arrival)
        if outcome is Outcome.RESCORED:
            return replace(arrival, step=Step.RETRY if changed else Step.FINISHED)
        if changed and reason != CHANGED_WHILE_READ:
            reason = CHANGED_WHILE_READ
        rejected = self._reject(arrival, reason)
        return replace(rejected, step=Step.RETRY) if changed else rejected

    def _reject(self, arrival: Arrival, reason: str) -> Arrival:
        slide = self.store.mark_rejected(arrival.slide.id, reason)
        return replace(arrival, slide=slide, step=Step.FINISHED, outcome=None)

    def _scored_by_other_model(self, slide_id: int, model_id: int) -> bool:
        latest = self.store.latest_score(slide_id)
        return latest is None or latest.model_version_id != model_id

    @staticmethod
    def _changed(arrival: Arrival) -> bool:
        try:
            return file_signature(arrival.path) != arrival.signature
        except OSError:
            return True
