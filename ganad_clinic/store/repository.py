"""The operations the screening service, the GUI and the reports need, each in its own short
transaction. Methods return detached ORM objects or small dataclasses, never open sessions."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, exists, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker

import ganad_clinic.store.chain as chain
from ganad_clinic.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    busy_message,
    create_store_engine,
    display_url,
    home_with_content,
    is_busy_error,
    plain_reason,
    resolve_home,
    resolve_url,
    sqlite_file,
    writer,
)
from ganad_clinic.store.errors import ClaimLost, DatabaseLostError, SignOffRefused, StoreError
from ganad_clinic.store.migrate import upgrade_to_head
from ganad_clinic.store.models import (
    AuditEvent,
    Cell,
    ModelVersion,
    Review,
    ReviewDecision,
    Score,
    Signature,
    Slide,
    SlideStatus,
    Specimen,
    Station,
    User,
    UserRole,
    answers_own_second_read,
    utc_now,
)
from ganad_clinic.store.specimens import (
    ACCESSION_LENGTH,
    SpecimenSummary,
    content_digest,
    default_accession,
    sign_off_refusal,
)
from ganad_clinic.store.summaries import SlideSummary

T = TypeVar("T")

WRITE_ATTEMPTS = 4
FIRST_RETRY_DELAY_S = 0.05


@dataclass(frozen=True)
class RecordedSlide:
    """The outcome of `Store.record_slides` for one file."""

    slide: Slide
    is_new: bool
    holder: str | None = None
    """For a new pending slide recorded with a station's claim: None when that station holds it,
    else the station scoring the same content, which the slide is linked to once it is scored."""

    @property
    def is_duplicate(self) -> bool:
        """The content was already scored under another path; the earlier result stands."""
        return self.slide.duplicate_of_id is not None


@dataclass(frozen=True)
class SlideMark:
    """How far a reader of `Store.list_slides_changed_since` has read: the highest slide, score and
    review ids it has seen, and the slides that can still change without a new score or review row
    (`pending`: not yet scored or rejected, so they may be rejected or linked as duplicates;
    `settling`: just scored or rejected, their file's archive place may be recorded next)."""

    slide_id: int = 0
    score_id: int = 0
    review_id: int = 0
    pending: frozenset[int] = frozenset()
    settling: frozenset[int] = frozenset()
    # Ids at or below the marks not seen yet: PostgreSQL hands out ids at INSERT, so a slower
    # transaction (another station's) commits a lower id after a higher one was read. Looked for
    # again until seen, or until HOLE_SPAN newer ids exist (an id a rolled-back insert took never comes).
    slide_holes: frozenset[int] = frozenset()
    score_holes: frozenset[int] = frozenset()
    review_holes: frozenset[int] = frozenset()


@dataclass(frozen=True)
class SlideChanges:
    """The outcome of `Store.list_slides_changed_since`: the summaries to merge, and the mark to
    pass next time."""

    summaries: list[SlideSummary]
    mark: SlideMark


@dataclass(frozen=True)
class TilingRecord:
    """What decided a slide's tiles, stored with its score so that a recompute uses exactly
    these (imaging.tiling.TilingRule): the rule that chose them, the same in words, the crops'
    field of view, the field pixel scale and the grid's overlap."""

    rule: str
    how: str
    crop_size: int
    field_scale: float
    overlap: float


@dataclass(frozen=True)
class Judgement:
    """The operating point's say on a score, stored with it: the slide's conformal p-value, the
    slide false-positive rate in force, the rate its calibration keeps for its number of cells
    and how many calibration normals stand behind the p-values."""

    p_value: float
    target_fpr: float
    kept_fpr: float
    calibration_n: int


@dataclass(frozen=True)
class NewSlide:
    """A received file to record (`Store.record_slides`): its place, content hash and header size;
    `accession` names its specimen (None: the one its folders say, `default_accession`)."""

    path: str
    sha256: str
    size_bytes: int
    source_folder: str
    width: int | None = None
    height: int | None = None
    accession: str | None = None

    @property
    def accession_or_default(self) -> str:
        return (self.accession or default_accession(self.path, self.source_folder))[:ACCESSION_LENGTH]


@dataclass(frozen=True)
class NewScore:
    """A score to append (`Store.add_score`, `Store.add_scores`), with its cells."""

    slide_id: int
    model_version_id: int
    score: float
    l_d: float
    l_r: float
    l_l: float
    threshold: float
    flagged: bool
    duration_seconds: float
    heatmap_path: str | os.PathLike[str] | None = None
    tiling: TilingRecord | None = None
    cells: Sequence[Cell] = ()
    warning: str | None = None
    judgement: Judgement | None = None
    station: str | None = None


@dataclass(frozen=True)
class OperatingPointSetting:
    """The lab's stated false-positive rate: who set it, when and why (its audit event)."""

    target_fpr: float
    actor: str
    time: datetime
    reason: str


OPERATING_POINT_SET = "operating_point.set"  # the audit action that states the lab's target rate
DRIFT_ALARM_RAISED = "drift.alarm_raised"  # the audit actions of the screening service's drift alarm
DRIFT_ALARM_CLEARED = "drift.alarm_cleared"

READ_BATCH = 500  # rows fetched at a time by the incremental read
MAX_WATCHED_IDS = 5_000  # more slides to read again than this: read every slide from the lowest on
HOLE_SPAN = 1_000  # ids not yet seen are looked for again until this many newer ids exist
FILE_NAME_LENGTH = 255  # slides.file_name is VARCHAR(255); the full path is in slides.path (TEXT)


def open_store(
    url: str | None = None,
    home: str | os.PathLike[str] | None = None,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    create: bool = False,
) -> Store:
    """Open the results database (see `resolve_url`) and upgrade its schema to ours.

    Raises StoreError, without touching the database, when a newer GANAD Clinic made it, and
    when a SQLite file is missing while its folder, or the home `home` names, holds models or
    heat maps: that database was lost, and a new empty one would hide it. `create` makes the new
    database anyway; a first run in an empty (or new) home needs no flag.
    """
    resolved = resolve_url(url, home)
    database_file = sqlite_file(resolved)
    if database_file is not None:
        if not create and not database_file.exists():
            _refuse_unexpected_new_database(database_file, resolved, home)
        database_file.parent.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(resolved, busy_timeout_ms)
    try:
        upgrade_to_head(engine, resolved)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, resolved)


def _refuse_unexpected_new_database(
    database_file: Path, url: str, home: str | os.PathLike[str] | None
) -> None:
    """Refuse when the database's folder, or the home given (whose models and heat maps go with
    this database even when --db puts the file elsewhere), shows that a database existed."""
    folders = [database_file.parent]
    if home is not None and resolve_home(home) != database_file.parent:
        folders.append(resolve_home(home))
    for folder in folders:
        found = home_with_content(folder)
        if found:
            raise StoreError(
                f"there is no database {database_file}, but {folder} holds {' and '.join(found)} "
                "from earlier use: the database was probably deleted or moved, and a new, empty one would "
                "hide every earlier result. Restore it from backup (or point GANAD Clinic at it with --db or "
                "$GANAD_DB); to start a new, empty database there on purpose, run "
                f"`ganad db upgrade --new --db {display_url(url)}`"
            )


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file now at `path`, None when there is none."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


class Store:
    """The results database. Thread-safe; one instance per process is enough.

    Writes run one at a time in this process (SQLite allows one writer anyway, and queueing here
    is fairer than spinning on the file lock), and are retried with backoff when another process
    holds the lock, so "database is locked" never reaches a user.

    A SQLite file deleted or replaced while open is noticed (its device and inode are checked
    before every transaction, before every commit and after it): SQLite itself would go on
    writing into the deleted file, and results would be reported saved that are stored nowhere.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._database_file = sqlite_file(url)
        self._file_identity = None if self._database_file is None else _file_identity(self._database_file)
        if self._database_file is not None and self._file_identity is None:
            raise StoreError(f"there is no database {self._database_file}: open it with open_store()")
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=writer(engine), expire_on_commit=False)
        self._write_lock = threading.Lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # transactions

    def _read(self, work: Callable[[Session], T]) -> T:
        self._check_database_file()
        try:
            with self._read_sessions() as session:
                return work(session)
        except DBAPIError as error:
            self._check_database_file()
            if isinstance(error, OperationalError) and is_busy_error(error):
                raise StoreError(busy_message(self.url)) from error
            raise StoreError(f"cannot read database {display_url(self.url)}: {plain_reason(error)}") from error

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction, committed on return, retried with backoff while
        another process holds the database."""
        busy_error: OperationalError | None = None
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                time.sleep(FIRST_RETRY_DELAY_S * 2 ** (attempt - 1))
            self._check_database_file()
            try:
                with self._write_lock, self._write_sessions.begin() as session:
                    result = work(session)
                    session.flush()
                    self._check_database_file()
            except DBAPIError as error:
                self._check_database_file()
                if not (isinstance(error, OperationalError) and is_busy_error(error)):
                    raise StoreError(
                        f"cannot write to database {display_url(self.url)}: {plain_reason(error)}. Nothing was saved."
                    ) from error
                busy_error = error
                continue
            # The file may have gone during the commit itself: then the result is stored nowhere.
            self._check_database_file()
            return result
        raise StoreError(f"{busy_message(self.url)} Nothing was saved.") from busy_error

    def _check_database_file(self) -> None:
        """Raise DatabaseLostError when the SQLite file opened is no longer the one at its path."""
        if self._database_file is None or _file_identity(self._database_file) == self._file_identity:
            return
        raise DatabaseLostError(
            f"the database file {self._database_file} was deleted or replaced while GANAD Clinic was using it; "
            "nothing more can be saved (the last result was not). Restore it from backup (or put the file "
            "back), then start GANAD Clinic again."
        )

    # slides

    def record_slide(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        size_bytes: int,
        source_folder: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        accession: str | None = None,
        station: str | None = None,
        lease_seconds: float = 0.0,
    ) -> RecordedSlide:
        """Record one received file (see `record_slides`)."""
        entry = NewSlide(str(path), sha256, size_bytes, str(source_folder), width=width, height=height,
                         accession=accession)
        return self.record_slides([entry], station=station, lease_seconds=lease_seconds)[0]

    def record_slides(self, entries: Sequence[NewSlide], *, station: str | None = None,
                      lease_seconds: float = 0.0) -> list[RecordedSlide]:
        """Record received files in one transaction, idempotently: the same (path, content) returns
        the same slide. What a burst of files costs the database once instead of per file.

        The same content under a new path, once scored, becomes a new slide already marked scored
        and linked to the earlier one, so it is not scored again. Each file belongs to the specimen
        its `accession` names (made when new), by default the one the folders say
        (`default_accession`). A new pending slide is claimed for `station` as it is recorded, unless
        another station is scoring the same content (then that station is its `holder`).
        """

        def work(session: Session) -> list[RecordedSlide]:
            now = utc_now()
            contents = sorted({entry.sha256 for entry in entries})
            if station is not None:
                self._lock_contents(session, contents)
            known = _slides_at(session, [(entry.path, entry.sha256) for entry in entries])
            # Claims before scores: a score commits as its claim ends, so a content being scored
            # now shows in one or the other, never in neither.
            twins = {} if station is None else _claimed_elsewhere(session, contents, station, now)
            originals = _scored_originals(session, contents)
            specimens = _specimens(session, {entry.accession_or_default for entry in entries
                                             if (entry.path, entry.sha256) not in known})  # made only for new slides
            recorded: list[RecordedSlide] = []
            for entry in entries:
                slide = known.get((entry.path, entry.sha256))
                if slide is not None:
                    recorded.append(RecordedSlide(slide, is_new=False))
                    continue
                original = originals.get(entry.sha256)
                holder = None if station is None or original is not None else twins.get(entry.sha256)
                claimed = station is not None and original is None and holder is None
                slide = Slide(
                    path=entry.path,
                    file_name=Path(entry.path).name[:FILE_NAME_LENGTH],
                    sha256=entry.sha256,
                    size_bytes=entry.size_bytes,
                    source_folder=entry.source_folder,
                    width=entry.width,
                    height=entry.height,
                    status=SlideStatus.PENDING if original is None else SlideStatus.SCORED,
                    duplicate_of_id=None if original is None else original.id,
                    specimen_id=specimens[entry.accession_or_default].id,
                    claimed_by=station if claimed else None,
                    lease_until=now + timedelta(seconds=lease_seconds) if claimed else None,
                )
                known[(entry.path, entry.sha256)] = slide  # the same file twice in one call is one slide
                recorded.append(RecordedSlide(slide, is_new=True, holder=holder))
            return _inserted(session, recorded)

        return self._write(work)

    def _lock_contents(self, session: Session, contents: Sequence[str]) -> None:
        """On PostgreSQL, one claimant per content at a time across stations: lock each content's
        advisory key until the transaction ends, in sorted order and before any row lock, so that
        two stations never deadlock."""
        if self.engine.dialect.name != "postgresql":
            return
        for key in sorted({_content_lock_key(sha256) for sha256 in contents}):
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def find_slides(self, places: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Slide]:
        """The slides recorded for these (path, sha256) pairs, by pair, in one read."""
        if not places:
            return {}
        return self._read(lambda session: _slides_at(session, places))

    def get_slide(self, slide_id: int) -> Slide:
        return self._read(lambda session: _get(session, Slide, slide_id))

    def list_pending_slides(self) -> list[Slide]:
        """Slides received but not yet scored or rejected: the service finishes them after a crash."""
        return self._read(
            lambda session: list(
                session.scalars(select(Slide).where(Slide.status == SlideStatus.PENDING).order_by(Slide.id))
            )
        )

    def mark_rejected(self, slide_id: int, reason: str, *, station: str | None = None) -> Slide:
        """The file cannot be scored (unreadable, wrong format...); `reason` says why for the user.
        A `station` rejects only a slide it holds the claim on, as it scores (`add_score`)."""

        def work(session: Session) -> Slide:
            slide = _get(session, Slide, slide_id, for_update=True)
            if slide.status is SlideStatus.SCORED:
                raise StoreError(
                    f"slide {slide_id} ({slide.file_name}) is already scored: its result stands and cannot "
                    "be turned into a rejection"
                )
            _end_claim(slide, station)
            slide.status = SlideStatus.REJECTED
            slide.reason = reason
            return slide

        return self._write(work)

    def mark_archived(self, slide_id: int, archived_path: str | os.PathLike[str]) -> Slide:
        """Record where the original file was moved after its result was committed; recorded once."""

        def work(session: Session) -> Slide:
            slide = _get(session, Slide, slide_id, for_update=True)
            if slide.archived_path is not None and slide.archived_path != str(archived_path):
                raise StoreError(
                    f"slide {slide_id} was already archived to {slide.archived_path}: where a file was "
                    "archived is recorded once"
                )
            slide.archived_path = str(archived_path)
            return slide

        return self._write(work)

    def link_to_scored_original(self, slide_id: int) -> Slide | None:
        """Turn a pending slide into a duplicate of a scored slide with the same content, if any.

        Files with the same content that arrive before either is scored are all recorded as
        pending; the screening service scores one and links the others here, so no content is
        scored twice. Returns the linked slide, or None (nothing changed) when the slide is not
        pending or no slide with its content has been scored.
        """

        def work(session: Session) -> Slide | None:
            slide = _get(session, Slide, slide_id, for_update=True)
            if slide.status is not SlideStatus.PENDING:
                return None
            original = _scored_originals(session, [slide.sha256]).get(slide.sha256)
            if original is None:
                return None
            slide.duplicate_of_id = original.id
            slide.status = SlideStatus.SCORED
            slide.claimed_by, slide.lease_until = None, None  # nothing left to score: any claim on it ends
            return slide

        return self._write(work)

    # scores

    def add_score(
        self,
        slide_id: int,
        model_version_id: int,
        *,
        score: float,
        l_d: float,
        l_r: float,
        l_l: float,
        threshold: float,
        flagged: bool,
        duration_seconds: float,
        heatmap_path: str | os.PathLike[str] | None = None,
        tiling: TilingRecord | None = None,
        cells: Sequence[Cell] = (),
        warning: str | None = None,
        judgement: Judgement | None = None,
        station: str | None = None,
    ) -> Score:
        """Append a score with its cells (one per tile, `score_id` left unset) and mark the slide
        scored, in one transaction; `judgement` is the operating point's say on it (its p-value,
        the rate it was flagged at). The model's version and sha256 are copied from the registry so
        the row says exactly which bundle produced it; `warning` is a plain-words caveat on the
        result ("page 1 of 3 scored"). A `station` scores only a slide it holds the claim on
        (`claim_slide`; ClaimLost otherwise), and the commit ends its claim."""
        entry = NewScore(slide_id, model_version_id, score=score, l_d=l_d, l_r=l_r, l_l=l_l, threshold=threshold,
                         flagged=flagged, duration_seconds=duration_seconds, heatmap_path=heatmap_path,
                         tiling=tiling, cells=cells, warning=warning, judgement=judgement, station=station)
        [stored] = self.add_scores([entry])
        if isinstance(stored, ClaimLost):
            raise stored
        return stored

    def add_scores(self, entries: Sequence[NewScore]) -> list[Score | ClaimLost]:
        """Append several scores (each as `add_score` does) in one transaction: a slide whose claim
        was lost gets its ClaimLost in its place and the others are kept; any other refusal keeps
        none of them. What a burst of small files costs the database once instead of per file."""
        for entry in entries:
            _check_cell_numbers(entry)

        def work(session: Session) -> list[Score | ClaimLost]:
            slides = _slides_for_update(session, {entry.slide_id for entry in entries})
            models = {model.id: model for model in session.scalars(
                select(ModelVersion).where(ModelVersion.id.in_({entry.model_version_id for entry in entries})))}
            results: list[Score | ClaimLost] = []
            for entry in entries:
                try:
                    results.append(_score_row(entry, slides, models))
                except ClaimLost as lost:  # raised before anything of its entry is changed
                    results.append(lost)
            rows = [(row, entry.cells) for row, entry in zip(results, entries) if isinstance(row, Score)]
            chain.append_all(session, [row for row, _ in rows])
            for row, cells in rows:
                for cell in cells:
                    cell.score_id = row.id
                session.add_all(cells)
            return results

        return self._write(work)

    def latest_score(self, slide_id: int) -> Score | None:
        """The current score: the slide's latest, or for a duplicate the latest of its original."""

        def work(session: Session) -> Score | None:
            slide = _get(session, Slide, slide_id)
            scored_id = slide.duplicate_of_id or slide.id
            return session.scalars(
                select(Score).where(Score.slide_id == scored_id).order_by(Score.id.desc()).limit(1)
            ).one_or_none()

        return self._read(work)

    def list_cells(self, score_id: int) -> list[Cell]:
        """A score's cells in plan order (none for a score written before cells were kept)."""
        return self._read(
            lambda session: list(
                session.scalars(select(Cell).where(Cell.score_id == score_id).order_by(Cell.cell_index))
            )
        )

    # reviews

    def add_review(
        self, slide_id: int, reviewer: str, decision: ReviewDecision | str, note: str = ""
    ) -> Review:
        """Append a reviewer's decision and its audit event, in one transaction. A second read is
        another person's: who asked for it may not answer it (StoreError)."""
        decision = ReviewDecision(decision)

        def work(session: Session) -> Review:
            slide = _get(session, Slide, slide_id)
            current_id = session.scalar(_current_review_id(slide_id))
            current = None if current_id is None else session.get(Review, current_id)
            if answers_own_second_read(current, reviewer, decision):
                raise StoreError(f"{slide.file_name}: {reviewer} asked for a second read of it; "
                                 "another reviewer gives it")
            review = Review(slide_id=slide_id, reviewer=reviewer, decision=decision, note=note)
            chain.append(session, review)
            _add_audit(
                session, reviewer, "review.added",
                {"slide_id": slide_id, "review_id": review.id, "decision": decision.value},
            )
            return review

        return self._write(work)

    def withdraw_review(self, review_id: int, actor: str, reason: str = "") -> Review:
        """Withdraw a slide's current review (an undo): append a withdrawal row and its audit
        event, in one transaction; the review before it, if any, is current again."""

        def work(session: Session) -> Review:
            review = _get(session, Review, review_id)
            if review.withdraws_id is not None:
                raise StoreError(f"review {review_id} is a withdrawal; review the slide again instead")
            current = session.scalar(_current_review_id(review.slide_id))
            if current != review.id:
                raise StoreError(f"review {review_id} is not the current review of slide {review.slide_id} "
                                 "(withdrawn already, or reviewed again since): only the current review can be "
                                 "withdrawn")
            withdrawal = Review(slide_id=review.slide_id, reviewer=actor, decision=review.decision, note=reason,
                                withdraws_id=review.id)
            chain.append(session, withdrawal)
            _add_audit(
                session, actor, "review.withdrawn",
                {"slide_id": review.slide_id, "review_id": withdrawal.id, "withdraws": review.id,
                 "decision": review.decision.value},
            )
            return withdrawal

        return self._write(work)

    def current_review(self, slide_id: int) -> Review | None:
        """The slide's latest review that is neither a withdrawal nor withdrawn."""
        current = _current_review_id(slide_id).scalar_subquery()
        return self._read(lambda session: session.scalars(select(Review).where(Review.id == current)).one_or_none())

    # specimens and sign-off

    def get_specimen(self, accession: str) -> SpecimenSummary:
        """A specimen with its images' summaries and its latest signature; StoreError when unknown."""
        def work(session: Session) -> SpecimenSummary:
            specimen = session.scalars(select(Specimen).where(Specimen.accession == accession)).one_or_none()
            if specimen is None:
                raise StoreError(f"there is no specimen {accession!r}")
            return _specimen_summary(session, specimen)

        return self._read(work)

    def specimen_of(self, slide_id: int) -> SpecimenSummary:
        def work(session: Session) -> SpecimenSummary:
            slide = _get(session, Slide, slide_id)
            if slide.specimen_id is None:
                raise StoreError(f"slide {slide_id} belongs to no specimen")
            return _specimen_summary(session, _get(session, Specimen, slide.specimen_id))

        return self._read(work)

    def list_specimens(self) -> list[SpecimenSummary]:
        """Every specimen, oldest first, with its images and latest signature."""
        def work(session: Session) -> list[SpecimenSummary]:
            slides: dict[int, list[SlideSummary]] = {}
            for slide, score, review, *facts in session.execute(_current_summaries()):
                slides.setdefault(slide.specimen_id, []).append(SlideSummary(slide, score, review, *facts))
            latest = select(func.max(Signature.id)).group_by(Signature.specimen_id)
            signatures = {row.specimen_id: row for row in session.scalars(select(Signature).where(
                Signature.id.in_(latest)))}
            return [SpecimenSummary(specimen, slides.get(specimen.id, []), signatures.get(specimen.id))
                    for specimen in session.scalars(select(Specimen).order_by(Specimen.first_seen, Specimen.id))]

        return self._read(work)

    def sign_specimen(self, specimen_id: int, user: User, *, meaning: str, message_id: str,
                      model_version: str | None, target_fpr: float | None,
                      prepare: Callable[[SpecimenSummary, Signature], None] | None = None) -> Signature:
        """Sign a specimen off, in one transaction that first locks it: refused (SignOffRefused, and
        nothing written) while an image is unscored or a flag unreviewed or awaiting a second read,
        or when nothing changed since its last signature. The signature (chained) records what it
        signs (`content_digest`) and amends the previous one, if any. `prepare` is called with the
        specimen as checked and the signature before the commit: an error from it (an outbox that
        cannot be written) leaves nothing signed."""

        def work(session: Session) -> Signature:
            specimen = _get(session, Specimen, specimen_id, for_update=True)
            summary = _specimen_summary(session, specimen)
            refusal = sign_off_refusal(summary.slides)
            if refusal is not None:
                raise SignOffRefused(f"specimen {specimen.accession} cannot be signed off yet: {refusal}")
            digest = content_digest(summary.slides)
            previous = summary.signature
            if previous is not None and previous.content_sha256 == digest:
                raise SignOffRefused(f"specimen {specimen.accession} is signed already (by {previous.printed_name}, "
                                     f"{previous.signed_at:%Y-%m-%d %H:%M} UTC) and nothing changed since")
            reviews = [s.last_review_id for s in summary.slides]
            signature = Signature(specimen_id=specimen.id, user_id=user.id, printed_name=user.full_name,
                                  role=user.role.value, meaning=meaning, finding=summary.finding,
                                  model_version=model_version, target_fpr=target_fpr,
                                  reviews_up_to=max(reviews, default=0), content_sha256=digest,
                                  message_id=message_id, amends_id=None if previous is None else previous.id)
            chain.append(session, signature)
            _add_audit(session, user.name, "specimen.signed",
                       {"specimen_id": specimen.id, "accession": specimen.accession, "signature_id": signature.id,
                        "finding": signature.finding, "amends": signature.amends_id, "meaning": meaning})
            if prepare is not None:
                prepare(summary, signature)
            return signature

        return self._write(work)

    # users

    def add_user(self, name: str, full_name: str, role: UserRole | str, password_hash: str, *, actor: str) -> User:
        role = UserRole(role)

        def work(session: Session) -> User:
            if session.scalars(select(User).where(User.name == name)).first() is not None:
                raise StoreError(f"there is a user {name!r} already")
            user = User(name=name, full_name=full_name, role=role, password_hash=password_hash)
            session.add(user)
            session.flush()
            _add_audit(session, actor, "user.added", {"user": name, "role": role.value})
            return user

        return self._write(work)

    def get_user(self, name: str) -> User | None:
        return self._read(lambda session: session.scalars(select(User).where(User.name == name)).one_or_none())

    def list_users(self) -> list[User]:
        return self._read(lambda session: list(session.scalars(select(User).order_by(User.name))))

    def set_user_disabled(self, name: str, disabled: bool, *, actor: str) -> User:
        def work(session: Session) -> User:
            user = session.scalars(select(User).where(User.name == name).with_for_update()).one_or_none()
            if user is None:
                raise StoreError(f"there is no user {name!r}")
            user.disabled = disabled
            _add_audit(session, actor, "user.disabled" if disabled else "user.enabled", {"user": name})
            return user

        return self._write(work)

    def record_sign_in(self, name: str, succeeded: bool, *, why: str = "") -> None:
        """Count a failed sign-in (or clear the count on success), and audit it."""
        def work(session: Session) -> None:
            user = session.scalars(select(User).where(User.name == name).with_for_update()).one_or_none()
            if user is not None:
                user.failed_sign_ins = 0 if succeeded else user.failed_sign_ins + 1
            details: dict[str, Any] = {"user": name}
            if not succeeded:
                details.update(why=why, failed_in_a_row=None if user is None else user.failed_sign_ins)
            _add_audit(session, name, "user.signed_in" if succeeded else "user.sign_in_failed", details)

        self._write(work)

    def list_slides(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source_folder: str | os.PathLike[str] | None = None,
        flagged_only: bool = False,
        specimen_id: int | None = None,
    ) -> list[SlideSummary]:
        """Slides first seen in [since, until), optionally from one folder, of one specimen or
        flagged only, each with its current score and review, in one query, oldest first."""
        latest_scores = (
            select(Score.slide_id, func.max(Score.id).label("score_id")).group_by(Score.slide_id).subquery()
        )
        statement = (
            select(Slide, Score, Review, *_summary_facts())
            .outerjoin(latest_scores, latest_scores.c.slide_id == func.coalesce(Slide.duplicate_of_id, Slide.id))
            .outerjoin(Score, Score.id == latest_scores.c.score_id)
            .outerjoin(Review, Review.id == _current_review_id(Slide.id).correlate(Slide).scalar_subquery())
            .order_by(Slide.first_seen, Slide.id)
        )
        if since is not None:
            statement = statement.where(Slide.first_seen >= since)
        if until is not None:
            statement = statement.where(Slide.first_seen < until)
        if source_folder is not None:
            statement = statement.where(Slide.source_folder == str(source_folder))
        if flagged_only:
            statement = statement.where(Score.flagged.is_(True))
        if specimen_id is not None:
            statement = statement.where(Slide.specimen_id == specimen_id)
        return self._read(lambda session: [SlideSummary(slide, score, review, *facts)
                                           for slide, score, review, *facts in session.execute(statement)])

    def list_slides_changed_since(self, mark: SlideMark | None = None) -> SlideChanges:
        """The summaries (as `list_slides` gives them, oldest first) of the slides new or changed
        since `mark`, and the mark to pass next time; `None` reads every slide.

        A slide changes when it is new, when its current score is newer (for a duplicate: its
        original's), when its latest review is newer, or when a pending slide is rejected or linked,
        or a just-scored one archived (the mark's `pending` and `settling`, read again). Slides are
        never deleted, scores and reviews are append-only with increasing ids, so nothing else
        changes a summary. The new mark is read before the rows: a row committed meanwhile comes
        again next time, never not at all. A summary may come again unchanged; merge by slide id.
        """

        def work(session: Session) -> SlideChanges:
            top_slide, top_score, top_review = session.execute(
                select(
                    select(func.coalesce(func.max(Slide.id), 0)).scalar_subquery(),
                    select(func.coalesce(func.max(Score.id), 0)).scalar_subquery(),
                    select(func.coalesce(func.max(Review.id), 0)).scalar_subquery(),
                )
            ).one()
            statement = _current_summaries()
            watched: frozenset[int] = frozenset()
            before = mark or SlideMark()
            holes = (
                _holes(session, Slide, before.slide_id, top_slide, before.slide_holes),
                _holes(session, Score, before.score_id, top_score, before.score_holes),
                _holes(session, Review, before.review_id, top_review, before.review_holes),
            )
            if mark is not None:
                rescored = select(Score.slide_id).where(
                    or_(Score.id > mark.score_id, Score.id.in_(sorted(mark.score_holes))))
                watched = mark.pending | mark.settling
                conditions = [
                    Slide.id > mark.slide_id,
                    Slide.id.in_(sorted(mark.slide_holes)),
                    Slide.id.in_(rescored),
                    Slide.duplicate_of_id.in_(rescored),
                    Slide.id.in_(select(Review.slide_id).where(
                        or_(Review.id > mark.review_id, Review.id.in_(sorted(mark.review_holes))))),
                    Slide.path.in_(select(_later.path).where(  # replaced by a new file at its path
                        or_(_later.id > mark.slide_id, _later.id.in_(sorted(mark.slide_holes))))),
                ]
                if watched:
                    conditions.append(
                        Slide.id.in_(sorted(watched)) if len(watched) <= MAX_WATCHED_IDS
                        else Slide.id >= min(watched)
                    )
                statement = statement.where(or_(*conditions))
            # In batches: a reader on a worker thread lets the others (a GUI's) run between batches.
            rows = session.execute(statement.execution_options(yield_per=READ_BATCH))
            summaries = [SlideSummary(slide, score, review, *facts) for slide, score, review, *facts in rows]
            pending, settling = set(), set()
            for summary in summaries:
                slide = summary.slide
                if slide.status is SlideStatus.PENDING:
                    pending.add(slide.id)
                elif mark is not None and slide.archived_path is None and (
                    slide.id > mark.slide_id
                    or slide.id in mark.pending
                    or (summary.score is not None and summary.score.id > mark.score_id)
                ):
                    settling.add(slide.id)
            new_mark = SlideMark(
                max(top_slide, mark.slide_id if mark else 0),
                max(top_score, mark.score_id if mark else 0),
                max(top_review, mark.review_id if mark else 0),
                frozenset(pending),
                frozenset(settling),
                *holes,
            )
            return SlideChanges(summaries, new_mark)

        return self._read(work)

    # model registry

    def register_model_version(
        self,
        version: str,
        bundle_path: str | os.PathLike[str],
        sha256: str,
        *,
        actor: str,
        metrics: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> ModelVersion:
        """Add a model bundle to the registry; the first one in an empty registry becomes active."""

        def work(session: Session) -> ModelVersion:
            if _find_version(session, version) is not None:
                raise StoreError(f"model version {version} is already registered")
            if parent_id is not None:
                _get(session, ModelVersion, parent_id)
            is_first = session.scalar(select(func.count()).select_from(ModelVersion)) == 0
            model = ModelVersion(
                version=version,
                bundle_path=str(bundle_path),
                sha256=sha256,
                metrics=metrics or {},
                parent_id=parent_id,
                active=is_first,
                activated_at=utc_now() if is_first else None,
            )
            session.add(model)
            session.flush()
            _add_audit(
                session,
                actor,
                "model.registered",
                {"version": version, "sha256": sha256, "bundle_path": str(bundle_path), "active": is_first},
            )
            return model

        return self._write(work)

    def activate_model_version(self, version: str, *, actor: str) -> ModelVersion:
        """Make `version` the active model; a no-op (not audited) when it already is."""

        def work(session: Session) -> ModelVersion:
            model = _find_version(session, version)
            if model is None:
                raise StoreError(f"model version {version} is not registered")
            if model.active:
                return model
            previous = _active_version(session)
            _switch_active(session, model)
            _add_audit(
                session,
                actor,
                "model.activated",
                {"version": version, "previous": None if previous is None else previous.version},
            )
            return model

        return self._write(work)

    def rollback_model_version(self, *, actor: str, reason: str = "") -> ModelVersion:
        """Re-activate the version that was active before the current one (the most recently
        activated other version); repeated rollbacks therefore alternate between the two. The
        reason, when given, is kept in the audit event."""

        def work(session: Session) -> ModelVersion:
            current = _active_version(session)
            if current is None:
                raise StoreError("no model version is active, so there is nothing to roll back")
            previous = session.scalars(
                select(ModelVersion)
                .where(ModelVersion.id != current.id, ModelVersion.activated_at.is_not(None))
                .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
                .limit(1)
            ).one_or_none()
            if previous is None:
                raise StoreError(
                    f"model version {current.version} is the only one ever activated: "
                    "no earlier version to roll back to"
                )
            _switch_active(session, previous)
            details = {"version": previous.version, "previous": current.version}
            _add_audit(session, actor, "model.rolled_back", {**details, "reason": reason} if reason else details)
            return previous

        return self._write(work)

    def link_acceptance_report(self, version: str, report_path: str | os.PathLike[str], *, actor: str,
                               details: dict[str, Any]) -> ModelVersion:
        """Link the PDF of a model's acceptance check from its registry entry, audited with the
        check's outcome (`details`, JSON-serialisable)."""

        def work(session: Session) -> ModelVersion:
            model = _find_version(session, version)
            if model is None:
                raise StoreError(f"model version {version} is not registered")
            model.acceptance_report = str(report_path)
            _add_audit(session, actor, "model.acceptance_report", {"version": version, "report": str(report_path),
                                                                  **details})
            return model

        return self._write(work)

    def active_model_version(self) -> ModelVersion | None:
        return self._read(_active_version)

    def list_model_versions(self) -> list[ModelVersion]:
        """All registered versions, oldest first."""
        return self._read(lambda session: list(session.scalars(select(ModelVersion).order_by(ModelVersion.id))))

    # audit

    def audit(self, actor: str, action: str, details: dict[str, Any] | None = None) -> AuditEvent:
        """Append an audit event; `details` must be JSON-serialisable."""
        return self._write(lambda session: _add_audit(session, actor, action, details or {}))

    def list_audit_events(self, action: str | None = None) -> list[AuditEvent]:
        """Audit events, oldest first, optionally of one action."""
        statement = select(AuditEvent).order_by(AuditEvent.id)
        if action is not None:
            statement = statement.where(AuditEvent.action == action)
        return self._read(lambda session: list(session.scalars(statement)))

    # stations and claims (several screening services on one database)

    def register_station(self, name: str, host: str, pid: int, *, lease_seconds: float) -> Station:
        """Say that station `name` is up (made when new). A SQLite database is one station's: it is
        refused while another station's heartbeat is younger than a lease (PostgreSQL shares the
        work out instead)."""

        def work(session: Session) -> Station:
            now = utc_now()
            if self.engine.dialect.name == "sqlite":
                live = session.scalars(select(Station).where(Station.name != name,
                                                             *_live_station(now, lease_seconds))).first()
                if live is not None:
                    raise StoreError(
                        f"station {live.name} (on {live.host}, process {live.pid}) is screening into this SQLite "
                        f"database already (heartbeat {(now - live.heartbeat_at).total_seconds():.0f} s ago): a "
                        "SQLite file is for one station; for several, use a PostgreSQL server (GANAD_DB)")
            station = _station(session, name)
            if station is None:
                station = Station(name=name, host=host, pid=pid, started_at=now, heartbeat_at=now, stopped=False)
                session.add(station)
            else:
                station.host, station.pid, station.started_at, station.heartbeat_at = host, pid, now, now
                station.stopped = False
            _add_audit(session, name, "station.started", {"host": host, "pid": pid})
            return station

        return self._write(work)

    def get_station(self, name: str) -> Station | None:
        return self._read(lambda session: _station(session, name))

    def heartbeat(self, name: str, *, lease_seconds: float) -> int:
        """The station is alive: its heartbeat, and the leases of the slides it holds renewed.
        Returns how many slides it holds."""

        def work(session: Session) -> int:
            now = utc_now()
            session.execute(update(Station).where(Station.name == name).values(heartbeat_at=now))
            renewed = session.execute(update(Slide).where(Slide.claimed_by == name)
                                      .values(lease_until=now + timedelta(seconds=lease_seconds)))
            return int(getattr(renewed, "rowcount", 0) or 0)

        return self._write(work)

    def station_stopped(self, name: str) -> None:
        """The station stopped cleanly: its claims are released for the others at once."""

        def work(session: Session) -> None:
            session.execute(update(Station).where(Station.name == name).values(stopped=True, heartbeat_at=utc_now()))
            session.execute(update(Slide).where(Slide.claimed_by == name).values(claimed_by=None, lease_until=None))
            _add_audit(session, name, "station.stopped", {})

        self._write(work)

    def claim_slide(self, slide_id: int, station: str, *, lease_seconds: float, rescore: bool = False) -> str | None:
        """Claim a slide for scoring: None when `station` holds it now (until the lease ends, unless
        renewed), else the name of the station whose live claim it is, or that finished it meanwhile
        (only a pending slide is claimed, unless to `rescore` it). A lapsed claim is taken over
        (audited). On PostgreSQL the row is locked with SKIP LOCKED: a slide another station is
        claiming or committing this instant counts as held by it, and nobody waits."""

        def work(session: Session) -> str | None:
            sha256 = session.scalar(select(Slide.sha256).where(Slide.id == slide_id))
            if sha256 is None:
                raise StoreError(f"no slides row with id {slide_id}")
            self._lock_contents(session, [sha256])  # the content's lock before any row's, as record_slides
            slide = session.scalars(select(Slide).where(Slide.id == slide_id)
                                    .with_for_update(skip_locked=True)).one_or_none()
            if slide is None:
                return "another station (busy with it)"
            holder = slide.claimed_by
            if holder is not None and holder != station and slide.lease_until is not None \
                    and slide.lease_until > utc_now():
                return holder
            if slide.status is not SlideStatus.PENDING and not rescore:  # finished since the caller looked
                latest = session.scalars(select(Score.station).where(Score.slide_id == slide.id)
                                         .order_by(Score.id.desc()).limit(1)).first()
                return latest or "another station"
            return self._claim(session, slide, station, lease_seconds)

        return self._write(work)

    def _claim(self, session: Session, slide: Slide, station: str, lease_seconds: float) -> str | None:
        """Claim a slide (it and its content locked by the caller, no other station's claim on it
        live) for `station` unless another station is scoring the same content: None when claimed,
        else its name."""
        now = utc_now()
        holder = slide.claimed_by
        twin = _claimed_elsewhere(session, [slide.sha256], station, now).get(slide.sha256)
        if twin is not None:  # the same content under another name, being scored: linked to it afterwards
            return twin
        if holder is not None and holder != station:
            _add_audit(session, station, "slide.claim_taken_over",
                       {"slide_id": slide.id, "from": holder, "lease_until": slide.lease_until.isoformat()
                        if slide.lease_until is not None else None})
        slide.claimed_by, slide.lease_until = station, now + timedelta(seconds=lease_seconds)
        return None

    def release_claim(self, slide_id: int, station: str, reason: str) -> None:
        """Give a claimed slide back unscored, saying why (e.g. the file is not at this station's
        path): another station may take it."""

        def work(session: Session) -> None:
            slide = _get(session, Slide, slide_id, for_update=True)
            if slide.claimed_by != station:
                return
            slide.claimed_by, slide.lease_until = None, None
            _add_audit(session, station, "slide.claim_released", {"slide_id": slide_id, "reason": reason})

        self._write(work)

    def list_stations(self) -> list[tuple[Station, int]]:
        """Every station seen, by name, with how many slides it holds claims on."""

        def work(session: Session) -> list[tuple[Station, int]]:
            held = dict(session.execute(select(Slide.claimed_by, func.count(Slide.id))
                                        .where(Slide.claimed_by.is_not(None)).group_by(Slide.claimed_by)).all())
            stations = session.scalars(select(Station).order_by(Station.name))
            return [(station, int(held.get(station.name, 0))) for station in stations]

        return self._read(work)

    def live_stations(self, *, lease_seconds: float) -> list[str]:
        """The stations whose heartbeat is younger than a lease and that have not stopped."""
        statement = select(Station.name).where(*_live_station(utc_now(), lease_seconds))
        return self._read(lambda session: list(session.scalars(statement)))

    def latest_audit_event(self, actions: Sequence[str]) -> AuditEvent | None:
        """The newest audit event of any of these actions (one indexed read, for a poll)."""
        statement = select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id.desc()).limit(1)
        return self._read(lambda session: session.scalars(statement).first())

    # the operating point

    def set_target_fpr(self, target_fpr: float, *, actor: str, reason: str) -> OperatingPointSetting:
        """State the lab's slide false-positive rate from now on, audited (the audit trail is its
        record: the latest such event is the rate in force). Stored flags stay as they were."""
        if isinstance(target_fpr, bool) or not isinstance(target_fpr, (int, float)) or not 0 < target_fpr < 1:
            raise StoreError(f"a target false-positive rate must lie strictly between 0 and 1, got {target_fpr!r}")
        if not reason.strip():
            raise StoreError("changing the operating point needs a reason, for the audit trail")

        def work(session: Session) -> OperatingPointSetting:
            previous = _target_fpr_setting(session)  # in the same transaction as the new one
            event = _add_audit(session, actor, OPERATING_POINT_SET, {
                "target_fpr": float(target_fpr), "reason": reason.strip(),
                "previous": None if previous is None else previous.target_fpr})
            return _setting_of(event)

        return self._write(work)

    def target_fpr_setting(self) -> OperatingPointSetting | None:
        """The lab's stated rate, or None when it never stated one (each model's own then holds)."""
        return self._read(_target_fpr_setting)

    # maintenance

    def integrity_check(self) -> list[str]:
        """Problems found in the database file; empty when it is sound.

        On SQLite this runs `PRAGMA integrity_check` and `PRAGMA foreign_key_check`. PostgreSQL
        guards its own storage, so there it only checks that the server answers.
        """

        def work(session: Session) -> list[str]:
            if session.get_bind().dialect.name != "sqlite":
                session.execute(text("SELECT 1"))
                return []
            problems = [row[0] for row in session.execute(text("PRAGMA integrity_check"))]
            if problems == ["ok"]:
                problems = []
            problems += [
                f"row {rowid} of {table} refers to a missing row of {parent}"
                for table, rowid, parent, _ in session.execute(text("PRAGMA foreign_key_check"))
            ]
            return problems

        return self._read(work)


def _current_review_id(slide_id):
    """The id of a slide's current review: its latest review that is neither a withdrawal nor
    withdrawn (`slide_id` a value, or `Slide.id` in a correlated subquery)."""
    withdrawn = aliased(Review)
    return select(func.max(Review.id)).where(
        Review.slide_id == slide_id,
        Review.withdraws_id.is_(None),
        ~exists().where(withdrawn.withdraws_id == Review.id),
    )


_later = aliased(Slide)
"""Another slide row, for the slide received later from the same path."""


def _summary_facts() -> tuple:
    """A summary's columns after the slide, score and review, in SlideSummary's order: the latest
    review row's id (0 for none), the current score's cells and flagged cells, the first later
    slide from the same path (None when the file was not replaced), its specimen's accession, and the
    last review its specimen's latest signature covers (None: never signed)."""
    latest = select(func.max(Review.id)).where(Review.slide_id == Slide.id).correlate(Slide).scalar_subquery()
    cells = select(func.count(Cell.id)).where(Cell.score_id == Score.id).correlate(Score).scalar_subquery()
    flagged = (select(func.count(Cell.id)).where(Cell.score_id == Score.id, Cell.flagged.is_(True))
               .correlate(Score).scalar_subquery())
    replaced_by = (select(func.min(_later.id)).where(_later.path == Slide.path, _later.id > Slide.id)
                   .correlate(Slide).scalar_subquery())
    accession = select(Specimen.accession).where(Specimen.id == Slide.specimen_id).correlate(Slide).scalar_subquery()
    signed_up_to = (select(func.max(Signature.reviews_up_to)).where(Signature.specimen_id == Slide.specimen_id)
                    .correlate(Slide).scalar_subquery())
    return (func.coalesce(latest, 0), func.coalesce(cells, 0), func.coalesce(flagged, 0), replaced_by, accession,
            signed_up_to)


def _current_summaries():
    """Slides with their current score (a duplicate's: its original's latest) and current review,
    oldest first; each looked up through the (slide_id, id) indexes, so a filter on the slides
    reads only what it selects."""
    score_id = (
        select(func.max(Score.id))
        .where(Score.slide_id == func.coalesce(Slide.duplicate_of_id, Slide.id))
        .correlate(Slide)
        .scalar_subquery()
    )
    return (
        select(Slide, Score, Review, *_summary_facts())
        .outerjoin(Score, Score.id == score_id)
        .outerjoin(Review, Review.id == _current_review_id(Slide.id).correlate(Slide).scalar_subquery())
        .order_by(Slide.first_seen, Slide.id)
    )


def _holes(session: Session, model: type[Slide] | type[Score] | type[Review], seen_up_to: int, top: int,
           earlier: frozenset[int]) -> frozenset[int]:
    """The ids of `model` at or below `top` not committed yet (see SlideMark): the earlier holes and
    the ids above `seen_up_to` that are missing, within the last HOLE_SPAN ids."""
    low = max(0, top - HOLE_SPAN)
    candidates = {hole for hole in earlier if hole > low} | set(range(max(seen_up_to, low) + 1, top + 1))
    if not candidates:
        return frozenset()
    present = set(session.scalars(select(model.id).where(model.id > min(candidates) - 1, model.id <= top)))
    return frozenset(candidates - present)


def _target_fpr_setting(session: Session) -> OperatingPointSetting | None:
    """The latest audit event stating the lab's rate, as a setting."""
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == OPERATING_POINT_SET)
                            .order_by(AuditEvent.id.desc()).limit(1)).first()
    return None if event is None else _setting_of(event)


def _setting_of(event: AuditEvent) -> OperatingPointSetting:
    return OperatingPointSetting(float(event.details["target_fpr"]), event.actor, event.time,
                                 str(event.details.get("reason", "")))


def _cell_values(cell: Cell) -> dict[str, Any]:
    """Make a cell hold what the database will give back (the digest covers that), and return it."""
    for name in ("cell_index", "x", "y", "width", "height"):
        setattr(cell, name, int(getattr(cell, name)))
    for name in ("score", "l_d", "l_r", "l_l"):
        setattr(cell, name, float(getattr(cell, name)))
    cell.flagged = bool(cell.flagged)
    if cell.p_value is not None:
        cell.p_value = float(cell.p_value)
    return {name: getattr(cell, name) for name in chain.CELL_DIGEST_COLUMNS}


def _specimen(session: Session, accession: str) -> Specimen:
    """The specimen of this accession, made when new (another station may make it at once: then theirs)."""
    found = session.scalars(select(Specimen).where(Specimen.accession == accession)).one_or_none()
    if found is not None:
        return found
    specimen = Specimen(accession=accession)
    try:
        with session.begin_nested():
            session.add(specimen)
    except IntegrityError:
        return session.scalars(select(Specimen).where(Specimen.accession == accession)).one()
    return specimen


def _specimens(session: Session, accessions: set[str]) -> dict[str, Specimen]:
    """The specimens of these accessions, by accession, in one query; those new are made."""
    found = {specimen.accession: specimen
             for specimen in session.scalars(select(Specimen).where(Specimen.accession.in_(accessions)))}
    return {accession: found.get(accession) or _specimen(session, accession)  # sorted: no two stations deadlock
            for accession in sorted(accessions)}


def _specimen_summary(session: Session, specimen: Specimen) -> SpecimenSummary:
    rows = session.execute(_current_summaries().where(Slide.specimen_id == specimen.id))
    slides = [SlideSummary(slide, score, review, *facts) for slide, score, review, *facts in rows]
    signature = session.scalars(select(Signature).where(Signature.specimen_id == specimen.id)
                                .order_by(Signature.id.desc()).limit(1)).first()
    return SpecimenSummary(specimen, slides, signature)


def _station(session: Session, name: str) -> Station | None:
    return session.scalars(select(Station).where(Station.name == name)).one_or_none()


def _live_station(now: datetime, lease_seconds: float) -> tuple:
    """Where-clauses of a live station: not stopped, its heartbeat younger than a lease."""
    return Station.stopped.is_(False), Station.heartbeat_at > now - timedelta(seconds=lease_seconds)


def _content_lock_key(sha256: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for one content hash; the chain lock's is
    small, so the two never meet."""
    return int(sha256[:15], 16) + (1 << 20)


def _check_cell_numbers(entry: NewScore) -> None:
    indices = sorted(cell.cell_index for cell in entry.cells)
    if indices != list(range(len(entry.cells))):
        raise StoreError(f"a score's cells must be numbered 0 to {len(entry.cells) - 1}, got {indices[:10]}")


def _slides_for_update(session: Session, slide_ids: set[int]) -> dict[int, Slide]:
    """The slides, locked (PostgreSQL's SELECT ... FOR UPDATE, in id order so that two stations
    never deadlock) until the transaction ends, so that no other station links one meanwhile."""
    slides = {slide.id: slide for slide in session.scalars(
        select(Slide).where(Slide.id.in_(slide_ids)).order_by(Slide.id).with_for_update())}
    missing = sorted(slide_ids - slides.keys())
    if missing:
        raise StoreError(f"no slides row with id {missing[0]}")
    return slides


def _score_row(entry: NewScore, slides: dict[int, Slide], models: dict[int, ModelVersion]) -> Score:
    """The score row of `entry` (not yet added), its slide marked scored and its claim ended;
    StoreError (ClaimLost for a lapsed claim) before anything is changed when it may not be scored."""
    slide = slides[entry.slide_id]
    if slide.duplicate_of_id is not None:
        raise StoreError(f"slide {slide.id} duplicates slide {slide.duplicate_of_id}; score that slide instead")
    if slide.status is SlideStatus.REJECTED:
        raise StoreError(f"slide {slide.id} was rejected ({slide.reason}): a rejected slide is not scored")
    model = models.get(entry.model_version_id)
    if model is None:
        raise StoreError(f"no model_versions row with id {entry.model_version_id}")
    _end_claim(slide, entry.station)
    tiling, judgement, cells = entry.tiling, entry.judgement, entry.cells
    row = Score(
        slide_id=slide.id,
        model_version_id=model.id,
        model_version=model.version,
        model_sha256=model.sha256,
        score=entry.score,
        l_d=entry.l_d,
        l_r=entry.l_r,
        l_l=entry.l_l,
        threshold=entry.threshold,
        flagged=entry.flagged,
        heatmap_path=None if entry.heatmap_path is None else str(entry.heatmap_path),
        tiling=None if tiling is None else tiling.how,
        tiling_rule=None if tiling is None else tiling.rule,
        crop_size=None if tiling is None else tiling.crop_size,
        field_scale=None if tiling is None else tiling.field_scale,
        tile_overlap=None if tiling is None else tiling.overlap,
        cells_sha256=chain.cells_digest([_cell_values(cell) for cell in cells]) if cells else None,
        warning=entry.warning,
        duration_seconds=entry.duration_seconds,
        p_value=None if judgement is None else judgement.p_value,
        target_fpr=None if judgement is None else judgement.target_fpr,
        kept_fpr=None if judgement is None else judgement.kept_fpr,
        calibration_n=None if judgement is None else judgement.calibration_n,
        station=entry.station,
    )
    slide.status = SlideStatus.SCORED
    return row


def _end_claim(slide: Slide, station: str | None) -> None:
    """A station's result for a slide it holds (ClaimLost when another station took it over); the
    claim ends with the transaction's commit. Without a station (a script, a test) nothing is checked."""
    if station is None:
        return
    if slide.claimed_by != station:
        holder = "no station" if slide.claimed_by is None else f"station {slide.claimed_by}"
        raise ClaimLost(f"slide {slide.id} ({slide.file_name}) is held by {holder}, not {station}: its claim "
                        "lapsed and was taken over, so the other station's result is the one kept")
    slide.claimed_by, slide.lease_until = None, None


def _get(session: Session, model: type[T], row_id: int, *, for_update: bool = False) -> T:
    """The row, or StoreError. `for_update` locks it (PostgreSQL's SELECT ... FOR UPDATE) until the
    transaction ends, so a check made on it still holds when the transaction writes; SQLite's
    BEGIN IMMEDIATE already makes every write transaction exclusive."""
    row = session.get(model, row_id, with_for_update=for_update or None)
    if row is None:
        raise StoreError(f"no {model.__tablename__} row with id {row_id}")  # type: ignore[attr-defined]
    return row


def _find_slide(session: Session, path: str, sha256: str) -> Slide | None:
    return session.scalars(select(Slide).where(Slide.path == path, Slide.sha256 == sha256)).one_or_none()


def _slides_at(session: Session, places: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Slide]:
    """The slides recorded for these (path, sha256) pairs, by pair, in one query."""
    wanted = set(places)
    found = session.scalars(select(Slide).where(Slide.sha256.in_({sha256 for _, sha256 in wanted})))
    return {(slide.path, slide.sha256): slide for slide in found if (slide.path, slide.sha256) in wanted}


def _scored_originals(session: Session, contents: Sequence[str]) -> dict[str, Slide]:
    """For each content, the first scored slide with it that is not itself a duplicate."""
    rows = session.scalars(
        select(Slide)
        .where(Slide.sha256.in_(contents), Slide.status == SlideStatus.SCORED, Slide.duplicate_of_id.is_(None))
        .order_by(Slide.id.desc())
    )
    return {slide.sha256: slide for slide in rows}  # the lowest id last, so it stays


def _claimed_elsewhere(session: Session, contents: Sequence[str], station: str, now: datetime) -> dict[str, str]:
    """For each content another station holds a live claim on (under any name), that station."""
    rows = session.execute(select(Slide.sha256, Slide.claimed_by).where(
        Slide.sha256.in_(contents), Slide.claimed_by.is_not(None), Slide.claimed_by != station,
        Slide.lease_until > now))
    return {sha256: cast(str, holder) for sha256, holder in rows}  # NOT NULL by the where-clause


def _inserted(session: Session, recorded: list[RecordedSlide]) -> list[RecordedSlide]:
    """Insert the new slides of `recorded` in one flush; when another station recorded one of
    them meanwhile (the unique (path, sha256) refuses it), one at a time, each such one as theirs."""
    new = [entry for entry in recorded if entry.is_new]
    try:
        with session.begin_nested():
            session.add_all([entry.slide for entry in new])
    except IntegrityError:
        alone: dict[int, RecordedSlide] = {}  # by the discarded slide object, which a file twice in one call shares
        inserted: list[RecordedSlide] = []
        for entry in recorded:  # a new slide comes before its file's second time
            if entry.is_new:
                alone[id(entry.slide)] = _inserted_alone(session, entry)
                inserted.append(alone[id(entry.slide)])
            elif id(entry.slide) in alone:
                inserted.append(RecordedSlide(alone[id(entry.slide)].slide, is_new=False))
            else:
                inserted.append(entry)
        return inserted
    return recorded


def _inserted_alone(session: Session, entry: RecordedSlide) -> RecordedSlide:
    slide = entry.slide
    copy = Slide(**{column: getattr(slide, column) for column in _SLIDE_INSERT_COLUMNS})
    try:
        with session.begin_nested():
            session.add(copy)
    except IntegrityError:
        existing = _find_slide(session, slide.path, slide.sha256)
        if existing is None:
            raise
        return RecordedSlide(existing, is_new=False)
    return RecordedSlide(copy, is_new=True, holder=entry.holder)


_SLIDE_INSERT_COLUMNS = ("path", "file_name", "sha256", "size_bytes", "source_folder", "width", "height", "status",
                         "duplicate_of_id", "specimen_id", "claimed_by", "lease_until")


def _find_version(session: Session, version: str) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.version == version)).one_or_none()


def _active_version(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.active.is_(True))).one_or_none()


def _switch_active(session: Session, model: ModelVersion) -> None:
    """Deactivate first and flush, so the one-active index never sees two active rows."""
    session.execute(update(ModelVersion).where(ModelVersion.active.is_(True)).values(active=False))
    model.active = True
    model.activated_at = utc_now()
    session.flush()


def _add_audit(session: Session, actor: str, action: str, details: dict[str, Any]) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, details=details)
    chain.append(session, event)
    return event
