"""From a complete file to a slide in the database: hash, record, reject, link, decode.

Ingest is idempotent by content: the store knows each (path, sha256) once, so a file seen again
after a restart or a duplicate event is recognised and nothing is scored twice. A file whose
content was scored under another name is linked to that result, not scored again, unless the
service re-scores (`rescore`) content whose current score came from a model other than the active
one; the new score is appended to the original slide. Every file that cannot be screened ends as a
rejected slide with its reason, so nothing dropped into an inbox goes unaccounted for. Files taken
together (`receive_many`) are looked up in one read and the new ones recorded in one transaction;
decoding is a step of its own (`decode`), so the service decodes only as its memory allows.

A scanner may pause longer than the quiet period while writing. A file that still looks unfinished
(its bytes begin like an image but its end is missing, or it may not be read yet) is therefore not
recorded until it has been unchanged for a grace period: a decodable prefix is never a result, and
an incomplete write is not rejected as truncated. A symbolic link is followed only to a file inside
its inbox; its target could be any file on the computer (a huge one, a private one).
"""

from __future__ import annotations

import enum
import errno
import hashlib
import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np

from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.completeness import looks_unfinished
from ganad_clinic.imaging.io import ImageInfo, ImageReadError, MultiPageWarning, read_image_info, read_pixels
from ganad_clinic.screening.events import Outcome
from ganad_clinic.screening.names import path_text
from ganad_clinic.screening.specimens import AccessionRule
from ganad_clinic.screening.stability import FileSignature, file_signature
from ganad_clinic.store import NewSlide, RecordedSlide, Slide, SlideStatus, Store

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 20.0
"""How long a file that looks unfinished must stay unchanged before it is judged as it is: longer
than a scanner's pause between strips or a network copy stalled by a busy share, short enough that
a technician sees a bad file's rejection within half a minute."""
DEFAULT_LEASE_SECONDS = 30.0
"""How long a station's claim on a slide holds unless renewed (the heartbeat renews it every third
of it): a killed station's slides are taken over by another within about this long."""
CHANGED_WHILE_READ = "the file changed while it was being read; its new content is taken as a new slide"


class Step(enum.Enum):
    RETRY = "retry"        # changed or locked while being read: wait until it is stable again
    INCOMPLETE = "incomplete"  # looks unfinished: look again once unchanged for the grace period
    GONE = "gone"          # vanished before it could be read: nothing to record
    ELSEWHERE = "elsewhere"  # another station holds its claim: looked at again after half a lease
    DECODE = "decode"      # recorded and claimed: decode it (`Ingestor.decode`) for scoring
    SCORE = "score"        # decoded: score `image` and add the score to slide `score_slide_id`
    FINISHED = "finished"  # the file has its result: rejected or linked now, or handled before


class Offer(NamedTuple):
    """A file to take: where it is, the inbox it came in, and how long it has been seen unchanged."""

    path: Path
    inbox: Path
    unchanged_for: float = math.inf


@dataclass(frozen=True)
class Arrival:
    """What ingest made of one file."""

    path: Path
    inbox: Path
    step: Step
    signature: FileSignature | None = None
    slide: Slide | None = None
    outcome: Outcome | None = None  # for DECODE, SCORE and FINISHED; None for a rejected slide
    score_slide_id: int | None = None
    image: np.ndarray | None = None
    info: ImageInfo | None = None  # what the header says, with `image`

    @property
    def rejected(self) -> bool:
        return self.slide is not None and self.slide.status is SlideStatus.REJECTED

    @property
    def recorded(self) -> Slide:
        """The slide row of an arrival that has one: a SCORE or FINISHED step, a rejection."""
        assert self.slide is not None, f"{self.path}: no slide recorded"
        return self.slide

    @property
    def signed(self) -> FileSignature:
        """The file's signature, taken by `Ingestor.receive` before anything is recorded."""
        assert self.signature is not None, f"{self.path}: no file signature"
        return self.signature

    def to_score(self) -> tuple[np.ndarray, int, Outcome]:
        """A SCORE step's decoded pixels, the slide its score is for, and its outcome."""
        assert self.image is not None and self.score_slide_id is not None and self.outcome is not None, (
            f"{self.path}: not decoded for scoring")
        return self.image, self.score_slide_id, self.outcome


class Ingestor:
    """Runs on the service's worker thread; every decision is committed before it returns."""

    def __init__(self, store: Store, *, rescore: bool = False, max_pixels: int | None = None,
                 grace_seconds: float = DEFAULT_GRACE_SECONDS, accession: AccessionRule | None = None,
                 station: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        """`station`: this screening station's name; a slide is scored or rejected only once it
        has claimed it (Store.claim_slide), so stations sharing a database never do it twice."""
        self.store = store
        self.station = station
        self.lease_seconds = lease_seconds
        self.accession = accession or AccessionRule()
        self.rescore = rescore
        self.max_pixels = max_pixels
        self.grace_seconds = grace_seconds

    def receive(self, path: Path, inbox: Path, model_id: int, *, unchanged_for: float = math.inf) -> Arrival:
        """Take one file that has stopped changing (see `receive_many`), decoded when it is to be scored."""
        return self.decode(self.receive_many([Offer(path, inbox, unchanged_for)], model_id)[0])

    def receive_many(self, offers: Sequence[Offer], model_id: int) -> list[Arrival]:
        """Take files that have stopped changing, in order; `model_id` is the active model version.
        The files are looked up in one read and the new ones recorded (and claimed) in one
        transaction: what a burst costs the database once, not per file. A file to score comes back
        as a DECODE step, for `decode`."""
        arrivals: list[Arrival | None] = []
        hashed: list[tuple[int, Arrival, str, bool]] = []  # (place, arrival, sha256, patient)
        for offer in offers:
            arrival, sha256 = self._hashed(offer)
            if sha256 is not None:
                hashed.append((len(arrivals), arrival, sha256, offer.unchanged_for < self.grace_seconds))
            arrivals.append(None if sha256 is not None else arrival)
        known = self.store.find_slides([(path_text(arrival.path), sha256) for _, arrival, sha256, _ in hashed])
        new: list[tuple[int, Arrival, str, ImageInfo | None, str | None]] = []
        for place, arrival, sha256, patient in hashed:
            slide = known.get((path_text(arrival.path), sha256))
            if slide is not None:
                arrivals[place] = self.resume(replace(arrival, slide=slide), model_id, known=True)
                continue
            looked_at = self._looked_at(arrival, patient)
            if looked_at is not None:
                arrivals[place] = looked_at
                continue
            info, reason = self._inspect(arrival.path)
            if self._changed(arrival):
                arrivals[place] = replace(arrival, step=Step.RETRY)
            else:
                new.append((place, arrival, sha256, info, reason))
        recorded = self.store.record_slides(
            [NewSlide(path_text(arrival.path), sha256, arrival.signed.size, path_text(arrival.inbox),
                      width=info.width if info else None, height=info.height if info else None,
                      accession=self._accession(arrival)) for _, arrival, sha256, info, _ in new],
            station=self.station, lease_seconds=self.lease_seconds) if new else []
        for (place, arrival, _, info, reason), entry in zip(new, recorded):
            arrivals[place] = self._recorded(replace(arrival, slide=entry.slide, info=info), entry, reason, model_id)
        assert all(arrival is not None for arrival in arrivals)  # each offer has its arrival
        return cast(list[Arrival], arrivals)

    def decode(self, arrival: Arrival) -> Arrival:
        """A DECODE step's pixels, read for scoring (a SCORE step), or its rejection when they cannot
        be read; any other arrival as it is."""
        if arrival.step is not Step.DECODE:
            return arrival
        outcome = arrival.outcome
        assert arrival.score_slide_id is not None and outcome is not None  # set with DECODE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MultiPageWarning)  # the first page is screened, and said so
                image = read_pixels(arrival.path, self.max_pixels)
                info = arrival.info or read_image_info(arrival.path, self.max_pixels)
        except ImageReadError as error:
            return self._give_up(arrival, outcome, error.reason)
        except Exception as error:  # a decoder's own bug on a damaged file is still a reason, not a crash
            return self._give_up(arrival, outcome, f"the image could not be decoded; the file may be damaged "
                                                   f"({type(error).__name__}: {error})")
        if self._changed(arrival):
            return self._give_up(arrival, outcome, CHANGED_WHILE_READ)
        return replace(arrival, step=Step.SCORE, image=image, info=info)

    def resume(self, arrival: Arrival, model_id: int, *, known: bool) -> Arrival:
        """Carry on with a recorded slide: link it, claim it for decoding, or call it finished."""
        slide = arrival.slide
        assert slide is not None  # resumed only once recorded
        if slide.status is SlideStatus.PENDING:
            linked = self.store.link_to_scored_original(slide.id)
            if linked is None:
                if not self._claim(slide.id):
                    return replace(arrival, slide=slide, step=Step.ELSEWHERE)
                return replace(arrival, slide=slide, step=Step.DECODE, outcome=Outcome.SCORED,
                               score_slide_id=slide.id)
            slide, known = linked, False
        if slide.status is SlideStatus.REJECTED:
            return replace(arrival, slide=slide, step=Step.FINISHED, outcome=Outcome.KNOWN if known else None)
        outcome = Outcome.KNOWN if known else Outcome.DUPLICATE
        arrival = replace(arrival, slide=slide, outcome=outcome)
        scored_id = slide.duplicate_of_id or slide.id
        if self.rescore and self._scored_by_other_model(slide.id, model_id):
            if not self._claim(scored_id, rescore=True):
                return replace(arrival, step=Step.ELSEWHERE)
            return replace(arrival, step=Step.DECODE, outcome=Outcome.RESCORED, score_slide_id=scored_id)
        return replace(arrival, step=Step.FINISHED, score_slide_id=scored_id)

    def reject(self, arrival: Arrival, reason: str) -> Arrival:
        """Record that a pending slide cannot be screened (e.g. the model failed on it)."""
        return self._reject(arrival, reason)

    def _hashed(self, offer: Offer) -> tuple[Arrival, str | None]:
        """The file signed and its content hashed, or (without a hash) what became of it: gone,
        changing, refused unread (a link not followed, a file that may not be read)."""
        path, inbox = offer.path, offer.inbox
        arrival = Arrival(path, inbox, Step.GONE)
        try:
            before = file_signature(path)
        except OSError:
            return replace(arrival, step=Step.RETRY), None
        if before is None:
            return arrival, None
        arrival = replace(arrival, signature=before)
        link = link_problem(path, inbox)
        if link is not None:
            return self._reject_unread(arrival, link), None
        try:
            return arrival, file_sha256(path)
        except FileNotFoundError:
            return arrival, None
        except OSError as error:
            if offer.unchanged_for < self.grace_seconds:
                return replace(arrival, step=Step.INCOMPLETE), None
            return self._reject_unread(arrival, unreadable_reason(error)), None

    def _looked_at(self, arrival: Arrival, patient: bool) -> Arrival | None:
        """What a new file's bytes say before it is recorded: None to record it now; INCOMPLETE
        while it looks unfinished (`patient`: not yet unchanged for the grace period), GONE when
        it vanished, and a file that may not be read rejected unless still `patient`."""
        if not patient:
            return None
        try:
            return replace(arrival, step=Step.INCOMPLETE) if looks_unfinished(arrival.path) else None
        except FileNotFoundError:
            return replace(arrival, step=Step.GONE)
        except OSError:
            return replace(arrival, step=Step.INCOMPLETE)

    def _recorded(self, arrival: Arrival, recorded: RecordedSlide, reason: str | None, model_id: int) -> Arrival:
        """Carry on with a file just recorded: claimed for decoding, held elsewhere, rejected for
        its header (`reason`), or, recorded before, resumed."""
        if recorded.is_new and recorded.slide.status is SlideStatus.PENDING:  # claimed with its record
            if recorded.holder is not None:
                log.info("slide %d is being screened by %s", recorded.slide.id, recorded.holder)
                return replace(arrival, step=Step.ELSEWHERE)
            if reason is not None:
                return self._reject(arrival, reason)
            return replace(arrival, step=Step.DECODE, outcome=Outcome.SCORED, score_slide_id=recorded.slide.id)
        if reason is not None and recorded.slide.status is SlideStatus.PENDING:
            return self._reject(arrival, reason)
        return self.resume(arrival, model_id, known=not recorded.is_new)

    def _inspect(self, path: Path) -> tuple[ImageInfo | None, str | None]:
        """The header's description of the image, or the reason it is refused. Damage that the
        header reader lets through (e.g. a truncated PNG's EXIF) is named when decoding."""
        try:
            return read_image_info(path, self.max_pixels), None
        except ImageReadError as error:
            return None, error.reason
        except Exception:
            return None, None

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
        assert arrival.slide is not None  # only a recorded slide is rejected
        if not self._claim(arrival.slide.id):
            return replace(arrival, step=Step.ELSEWHERE)
        slide = self.store.mark_rejected(arrival.slide.id, reason, station=self.station)
        return replace(arrival, slide=slide, step=Step.FINISHED, outcome=None)

    def _claim(self, slide_id: int, *, rescore: bool = False) -> bool:
        """Whether this station may score or reject the slide now (always, without a station name)."""
        if self.station is None:
            return True
        holder = self.store.claim_slide(slide_id, self.station, lease_seconds=self.lease_seconds, rescore=rescore)
        if holder is not None:
            log.info("slide %d is being screened by %s", slide_id, holder)
        return holder is None

    def _reject_unread(self, arrival: Arrival, reason: str) -> Arrival:
        """Record as rejected a file whose content is not read (a link not followed, a file that
        may not be read). The link's or file's own signature stands in for the content hash, so
        the same file is recognised again and a changed one is looked at again."""
        assert arrival.signature is not None  # receive() signs an arrival before refusing it unread
        size, mtime_ns, inode = arrival.signature  # REFUSED's for a file in a folder that may not be entered
        stand_in = f"unread file: size {size}, mtime {mtime_ns} ns, inode {inode}"
        recorded = self.store.record_slide(path_text(arrival.path), hashlib.sha256(stand_in.encode()).hexdigest(),
                                           max(0, size), path_text(arrival.inbox), accession=self._accession(arrival))
        arrival = replace(arrival, slide=recorded.slide)
        if recorded.slide.status is not SlideStatus.PENDING:
            return replace(arrival, step=Step.FINISHED, outcome=Outcome.KNOWN)
        return self._reject(arrival, reason)

    def _accession(self, arrival: Arrival) -> str:
        return self.accession.accession(path_text(arrival.path), path_text(arrival.inbox))

    def _scored_by_other_model(self, slide_id: int, model_id: int) -> bool:
        latest = self.store.latest_score(slide_id)
        return latest is None or latest.model_version_id != model_id

    @staticmethod
    def _changed(arrival: Arrival) -> bool:
        try:
            return file_signature(arrival.path) != arrival.signature
        except OSError:
            return True


def link_problem(path: Path, inbox: Path) -> str | None:
    """Why `path` is not followed: it is (or lies in a folder that is) a symbolic link leading
    outside `inbox`, in a loop or to nothing. None for an ordinary file of the inbox."""
    try:
        target = Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return "a symbolic link to a file that does not exist; not followed" if path.is_symlink() else None
    except OSError as error:  # other errors are the reading's to report
        is_loop = error.errno == errno.ELOOP
        return "a symbolic link that leads back to itself (a loop); not followed" if is_loop else None
    if not target.is_relative_to(os.path.realpath(inbox)):
        return "a symbolic link to a file outside the inbox; not followed"
    return None


def unreadable_reason(error: OSError) -> str:
    """Why a file could not be read, in words that say what to do about it."""
    if isinstance(error, PermissionError):
        return ("the screening service may not read this file (permission denied); "
                "allow it to read the file, then drop it again")
    return f"the file could not be read ({error.strerror or error})"
