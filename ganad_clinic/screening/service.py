"""The screening service: watch inboxes, ingest complete files, score them with the active model,
keep every result. Headless; the command line runs it and the GUI will embed it.

`start()` returns at once; a worker thread owns torch, the model and the loop. Listeners get one
event per file (`SlideScored` or `SlideRejected`) on that thread, and a `DriftState` when the
loaded model's drift alarm (screening.drift) is raised or cleared. Each slide's result is committed
in its own transaction before the file is archived or reported, and a slide recorded as pending
when the process died is finished on the next start, so a kill at any moment loses nothing and
scores nothing twice. If the database itself is lost (its file deleted or replaced), the service
stops and says so rather than report results it cannot keep.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np

from ganad_clinic.errors import ConfigError
from ganad_clinic.imaging.completeness import looks_unfinished
from ganad_clinic.imaging.tiling import TilePlan
from ganad_clinic.model.conformal import percent
from ganad_clinic.model.device import resolve_device
from ganad_clinic.model.inference import Inferencer, score_warning
from ganad_clinic.screening.archive import Archiver
from ganad_clinic.screening.drift import DriftMonitor, DriftState
from ganad_clinic.screening.events import Outcome, SlideRejected, SlideScored
from ganad_clinic.screening.heatmaps import heatmap_name, write_heatmap
from ganad_clinic.screening.ingest import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_LEASE_SECONDS,
    Arrival,
    Ingestor,
    Offer,
    Step,
    file_sha256,
)
from ganad_clinic.screening.names import path_text, stored_path
from ganad_clinic.screening.registry import current_actor, find_model_version, load_registered
from ganad_clinic.screening.slide_records import cell_rows, judgement, tiling_record
from ganad_clinic.screening.specimens import AccessionRule, compile_pattern
from ganad_clinic.screening.stability import StabilityTracker, StableFile
from ganad_clinic.screening.watcher import FolderWatcher
from ganad_clinic.store import (
    DRIFT_ALARM_CLEARED,
    DRIFT_ALARM_RAISED,
    ClaimLost,
    ModelVersion,
    NewScore,
    Slide,
    Store,
    StoreError,
    resolve_home,
)
from ganad_clinic.store.engine import HEATMAPS_FOLDER
from ganad_clinic.store.errors import DatabaseLostError
from ganad_clinic.store.models import utc_now

log = logging.getLogger(__name__)

DEFAULT_QUIET_SECONDS = 0.4
DEFAULT_RESCAN_SECONDS = 30.0
MAX_TILES_PER_STEP = 64
"""Tiles scored between two looks at the stop flag, so that stopping waits for a batch of slides
no longer than one slide: a field's tiles (one per white cell, at most its grid) are one step."""
DECODED_PIXELS_HELD = 25_000_000
"""Decoded pixels a batch holds before it is scored: small files are scored together, while a large
field is scored before the next file is decoded, so the service's memory follows one image at the
pixel cap (imaging.io.DEFAULT_MAX_PIXELS) plus at most this much, never a batch of large fields."""
RECORD_CHUNK = 32
"""Files of a batch looked up and recorded in one transaction before the first of them is decoded:
the database's cost per file falls about fivefold, and a burst's first result waits a few ms more."""
STATION_NAME_LENGTH = 64
PAINTING_PIXELS_HELD = DECODED_PIXELS_HELD
"""Decoded pixels the heat-map painter may hold: beyond it, the scoring waits for the painter."""
DEFERRED_PIXELS_HELD = DECODED_PIXELS_HELD
"""Decoded pixels of slides whose heat maps wait for the scoring to pause (about 380 257-px crops:
7 bytes a pixel with the heat, 175 MB): beyond it, the oldest are painted at once."""
STORE_RETRY_SECONDS = 2.0
STORE_ATTEMPTS = 3
"""Tries of a batch the database refuses before its files are tried one at a time: a file whose
result the database will not take (a value it refuses) must not hold up the files after it."""


def _rejection_reason(slide: Slide) -> str:
    return cast(str, slide.reason)  # Store.mark_rejected gives every rejected slide its reason


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def default_station() -> str:
    """A station's name when none is given: the computer's host name (stations.name is 64 long)."""
    return (socket.gethostname() or "station")[:STATION_NAME_LENGTH]


def default_torch_threads() -> int:
    """One torch thread per core, at most 4: beyond that these small convolutions barely gain."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServiceConfig:
    inboxes: tuple[Path, ...]
    home: Path | None = None  # heat maps go to <home>/heatmaps (see store.resolve_home)
    recursive: bool = True  # subfolders too: a subfolder directly under an inbox is one specimen
    poll: bool = False  # polling observer, for network shares
    accession_pattern: str | None = None  # a file-name pattern naming the specimen (screening.specimens)
    quiet_seconds: float = DEFAULT_QUIET_SECONDS  # size and mtime unchanged this long = complete
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # ... unless it looks unfinished: then this long
    rescan_seconds: float = DEFAULT_RESCAN_SECONDS
    archive: Path | None = None
    rescore: bool = False
    model_version: str | None = None  # None: the registry's active model, checked before each batch
    field_scale: float = 1.0  # pixel scale of fields relative to the training crops (tiling)
    batch_size: int = 128  # files taken per batch (scored a model batch at a time as they are ingested)
    torch_threads: int = field(default_factory=default_torch_threads)
    """Torch's CPU thread count for this service. Torch's count is process-wide, so the service never
    sets it: the entry point that starts the service does (`cli.common.configure_torch`, as
    `ganad watch` does, or the app's `configure_process`), once, before anything runs."""
    device: str = "auto"  # where the model scores: a CUDA GPU when there is one
    max_pixels: int | None = None  # larger images are rejected (default: imaging.io's limit)
    station: str = field(default_factory=default_station)  # this station's name, stored with every score
    lease_seconds: float = DEFAULT_LEASE_SECONDS  # a claim on a slide lapses this long after its last renewal

    def __post_init__(self) -> None:
        if not self.inboxes:
            raise ConfigError("at least one inbox folder is needed")
        inboxes = tuple(Path(inbox).absolute() for inbox in self.inboxes)
        object.__setattr__(self, "inboxes", inboxes)
        if self.archive is not None:
            archive = Path(self.archive).absolute()
            object.__setattr__(self, "archive", archive)
            for inbox in inboxes:
                if archive == inbox or archive.is_relative_to(inbox) or inbox.is_relative_to(archive):
                    raise ConfigError(f"the archive folder {archive} must lie outside the inbox {inbox}")
        if self.accession_pattern:
            compile_pattern(self.accession_pattern)
        if self.quiet_seconds < 0 or self.grace_seconds < 0:
            raise ConfigError("quiet_seconds and grace_seconds must not be negative")
        if self.batch_size < 1 or self.torch_threads < 1:
            raise ConfigError("batch_size and torch_threads must be at least 1")
        if not self.station.strip() or len(self.station) > STATION_NAME_LENGTH:
            raise ConfigError(f"a station name has 1 to {STATION_NAME_LENGTH} characters, not {self.station!r}")
        if self.lease_seconds < 1:
            raise ConfigError(f"the lease must be at least 1 s, not {self.lease_seconds:g}")
        try:
            resolve_device(self.device)  # "cuda" without a GPU is refused before anything starts
        except ValueError as error:
            raise ConfigError(str(error)) from None

    @property
    def heatmap_folder(self) -> Path:
        return resolve_home(self.home) / HEATMAPS_FOLDER


@dataclass
class _LoadedModel:
    version: ModelVersion
    scorer: Inferencer  # holds the bundle
    drift: DriftMonitor  # watches this model's slides against its calibration


def _pixels(image: np.ndarray | None) -> int:
    return 0 if image is None else int(image.shape[0] * image.shape[1])


class _DecodedPixels:
    """The decoded pixels a batch holds, ingested and not yet scored: the ingest thread waits for
    room before it decodes another file, the service thread frees them once scored or let go."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.closed = False
        self._room = threading.Condition()

    def wait_for_room(self) -> bool:
        """Until fewer than `limit` pixels are held; False once closed (the batch is over)."""
        with self._room:
            self._room.wait_for(lambda: self.held < self.limit or self.closed)
            return not self.closed

    def take(self, pixels: int) -> None:
        with self._room:
            self.held += pixels

    def free(self, pixels: int) -> None:
        with self._room:
            self.held -= pixels
            self._room.notify_all()

    def close(self) -> None:
        with self._room:
            self.closed = True
            self._room.notify_all()


class ScreeningService:
    """One screening loop over some inboxes. Not restartable: make a new one to start again."""

    def __init__(
        self,
        store: Store,
        config: ServiceConfig,
        *,
        on_scored: Callable[[SlideScored], None] | None = None,
        on_rejected: Callable[[SlideRejected], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
        on_drift: Callable[[DriftState], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._on_scored = on_scored
        self._on_rejected = on_rejected
        self._on_error = on_error
        self._on_stopped = on_stopped
        self._on_drift = on_drift
        self._idle = threading.Event()
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._tracker = StabilityTracker(config.quiet_seconds, on_offer=self._idle.clear)
        self._watcher = FolderWatcher(config.inboxes, self._tracker.offer, recursive=config.recursive,
                                      poll=config.poll, exclude=[config.archive] if config.archive else [])
        self._ingestor = Ingestor(store, rescore=config.rescore, max_pixels=config.max_pixels,
                                  grace_seconds=config.grace_seconds,
                                  accession=AccessionRule(config.accession_pattern),
                                  station=config.station, lease_seconds=config.lease_seconds)
        self._heartbeat: threading.Thread | None = None
        self._painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganad-heatmaps")
        self._ingest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganad-ingest")
        self._painting: deque[tuple[Future, int]] = deque()  # heat maps being written after their commit, pixels
        self._deferred: deque[tuple[bool, Path, np.ndarray, np.ndarray]] = deque()  # (flagged, ...): heat maps to paint
        self._deferred_pixels = 0
        self._archiver = Archiver(config.archive, store) if config.archive else None
        self._model: _LoadedModel | None = None
        self._next_rescan = 0.0
        self.error: BaseException | None = None

    # control, from any thread

    def start(self) -> None:
        """Start the worker thread and return at once."""
        if self._thread is not None:
            raise RuntimeError("this screening service was started already")
        self._thread = threading.Thread(target=self._run, name="ganad-screening", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the worker to stop after the slide in hand; returns at once (safe in signal handlers)."""
        self._stop_requested.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the worker to stop and wait up to `timeout` s; returns whether it has stopped."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.stopped

    @property
    def stopped(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Wait until every file found so far has its result (or the service stopped); returns
        whether the service is idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._idle.wait(0.1 if remaining is None else min(0.1, remaining)):
                return True
            if remaining == 0.0:
                return False
        return False

    # the worker

    def _run(self) -> None:
        registered = False
        try:
            self._check_station_name()
            self.store.register_station(self.config.station, socket.gethostname(), os.getpid(),
                                        lease_seconds=self.config.lease_seconds)
            registered = True
            self._heartbeat = threading.Thread(target=self._beat, name="ganad-heartbeat", daemon=True)
            self._heartbeat.start()
            self._current_model()
            self._watcher.start()
            self._recover_pending()
            self._rescan()
            poll = max(0.01, min(0.05, self.config.quiet_seconds / 4))
            while not self._stop_requested.is_set():
                if time.monotonic() >= self._next_rescan:
                    self._rescan()
                batch = self._tracker.take_stable(self.config.batch_size)
                if batch:
                    self._process(batch)
                    continue
                self._paint_deferred(0)  # nothing to score this instant: the heat maps waiting, flagged first
                if len(self._tracker) == 0 and not self._still_painting():
                    self._idle.set()
                self._stop_requested.wait(poll)
        except Exception as error:  # the service cannot go on (no usable model, inbox gone...)
            self.error = error
            self._report_error(f"screening stopped: {error}")
        finally:
            self._watcher.stop()
            self._ingest.shutdown(wait=True)
            self._paint_deferred(0)
            self._painter.shutdown(wait=True)  # every heat map of a committed score is written before the stop
            if registered:
                self._sign_off_station()
            self._stopped.set()
            self._notify(self._on_stopped, self.error)

    def _check_station_name(self) -> None:
        """Two running processes under one station name would both hold its claims: refuse a name
        whose heartbeat is live, unless its process is this one or is gone from this computer."""
        station = self.store.get_station(self.config.station)
        if station is None or station.stopped or station.pid == os.getpid():
            return
        age = (utc_now() - station.heartbeat_at).total_seconds()
        if age >= self.config.lease_seconds:
            return
        if station.host == socket.gethostname() and not _process_alive(station.pid):
            return  # killed a moment ago: this is its restart
        raise ConfigError(f"station {station.name} is running already (process {station.pid} on {station.host}, "
                          f"heartbeat {age:.0f} s ago): give this one another name (--station NAME)")

    def _beat(self) -> None:
        """Renew this station's heartbeat and its claims every third of a lease, until it stops."""
        while not self._stop_requested.wait(self.config.lease_seconds / 3):
            try:
                self.store.heartbeat(self.config.station, lease_seconds=self.config.lease_seconds)
            except StoreError as error:  # the server may be back before the leases lapse
                self._report_error(f"station {self.config.station}: heartbeat not recorded ({error})")

    def _sign_off_station(self) -> None:
        """A clean stop: the claims go back at once, not a lease later."""
        self._stop_requested.set()  # the heartbeat thread ends too
        if self._heartbeat is not None:
            self._heartbeat.join(5.0)
        try:
            self.store.station_stopped(self.config.station)
        except StoreError as error:
            self._report_error(f"station {self.config.station}: could not record its stop ({error}); "
                               "its claims lapse after a lease")

    def _current_model(self) -> _LoadedModel:
        """The model to score with now, at the operating point in force: reloaded when another
        version has been activated, re-judged when the lab has stated another rate."""
        version = find_model_version(self.store, self.config.model_version)
        setting = self.store.target_fpr_setting()
        target = None if setting is None else setting.target_fpr
        if self._model is None or self._model.version.id != version.id:
            bundle = load_registered(version, self.config.device)
            scorer = Inferencer(bundle, self.config.field_scale, target_fpr=target)
            previous, self._model = self._model, _LoadedModel(version, scorer, DriftMonitor(bundle.calibration.n))
            log.info("scoring with model %s (%s) at a false-positive rate of %s", version.version,
                     version.bundle_path, percent(scorer.operating_point.target_fpr))
            if previous is not None:
                self._drift_changed(previous, previous.drift.end(f"model {version.version} now scores, "
                                                                 "against its own calibration"))
        elif target is not None and target != self._model.scorer.operating_point.target_fpr:
            bundle = self._model.scorer.bundle  # the same calibration, so the same drift window
            scorer = Inferencer(bundle, self.config.field_scale, target_fpr=target)
            self._model = _LoadedModel(version, scorer, self._model.drift)
            log.info("the operating point is now a false-positive rate of %s", percent(target))
        return self._model

    def _rescan(self) -> None:
        if self._watcher.restart_if_dead():
            self._report_error("the folder observer had stopped and was restarted")
        for message in self._watcher.check_inboxes():
            self._report_error(message)
        found = self._watcher.scan()
        self._tracker.keep_settled_only(found)
        self._next_rescan = time.monotonic() + self.config.rescan_seconds

    def _recover_pending(self) -> None:
        """Finish slides recorded but not scored when a station last stopped: those no live station
        holds. A file this station cannot find is rejected only when no other station is live (their
        paths to the share may differ); otherwise its claim goes back with the reason."""
        station, lease = self.config.station, self.config.lease_seconds
        for slide in self.store.list_pending_slides():
            path = stored_path(slide.path)
            if self.store.claim_slide(slide.id, station, lease_seconds=lease) is not None:
                self._look_again_later(path, stored_path(slide.source_folder))  # in case its claim lapses
                continue
            try:
                same = file_sha256(path) == slide.sha256
            except FileNotFoundError:
                if any(other != station for other in self.store.live_stations(lease_seconds=lease)):
                    self.store.release_claim(slide.id, station, f"the file is not at {path_text(path)} on this "
                                                                "station")
                else:
                    self._reject_pending(slide.id, path, "the file was removed before it was scored")
                continue
            except OSError:
                same = True  # unreadable for now: ingest will retry it
            if not same:
                self._reject_pending(slide.id, path, "the file was replaced before it was scored; "
                                                     "its new content is taken as a new slide")
            self._tracker.offer(path, stored_path(slide.source_folder))

    def _reject_pending(self, slide_id: int, path: Path, reason: str) -> None:
        slide = self.store.mark_rejected(slide_id, reason, station=self.config.station)
        self._notify(self._on_rejected, SlideRejected(path, slide.id, reason))

    def _process(self, batch: Sequence[StableFile]) -> None:
        """Handle a batch, retrying it while the database refuses it. After STORE_ATTEMPTS tries its
        files are handled one at a time: one that still fails while others succeed is reported and
        left until it changes; when none succeeds, the database is at fault and all are retried."""
        remaining = list(batch)
        for _ in range(STORE_ATTEMPTS):
            error = self._try_batch(remaining)
            if error is None:
                return
            self._report_error(f"database problem, retrying in {STORE_RETRY_SECONDS:g} s: {error}")
            if self._stop_requested.wait(STORE_RETRY_SECONDS):
                return  # files not finished are found again by the next start's rescan
            remaining = [stable for stable in remaining
                         if not self._tracker.accounted_for(stable.path, stable.signature)]
        refused = [(stable, error) for stable in remaining if (error := self._try_batch([stable])) is not None]
        if len(refused) == len(batch):  # nothing could be saved: the database is at fault
            for stable, _ in refused:
                self._tracker.offer(stable.path, stable.inbox)  # results committed already are recognised
            return
        for stable, error in refused:
            self._report_error(f"{path_text(stable.path)}: its result could not be saved ({error}); "
                               "it is tried again when it changes")
            self._tracker.settle(stable.path, stable.signature)

    def _try_batch(self, batch: Sequence[StableFile]) -> StoreError | None:
        """Handle a batch; returns the database's error (other than a lost database), if any. Its
        files are ingested on the ingest thread while those taken already are scored here, a
        model batch (or DECODED_PIXELS_HELD) at a time."""
        try:
            model = self._current_model()
            to_score: dict[str, Arrival] = {}
            contents: set[str] = set()  # of the slides scored in this batch, or to be
            repeats: list[Arrival] = []
            held = 0  # decoded pixels in `to_score`
            budget = _DecodedPixels(DECODED_PIXELS_HELD)
            with closing(self._received(batch, model, budget)) as arrivals:
                for arrival in arrivals:
                    pixels = _pixels(arrival.image)
                    if arrival.step is not Step.SCORE:
                        budget.free(pixels)
                        self._settle(arrival)
                    elif arrival.recorded.sha256 in contents:  # the same content twice in a batch is scored once
                        budget.free(pixels)
                        repeats.append(replace(arrival, image=None, info=None))  # decoded again only if needed
                    else:
                        to_score[arrival.recorded.sha256] = arrival
                        contents.add(arrival.recorded.sha256)
                        held += pixels
                        if held >= DECODED_PIXELS_HELD or len(to_score) >= model.scorer.scorer.batch_size:
                            self._score(list(to_score.values()), model)
                            to_score.clear()
                            budget.free(held)
                            held = 0
            if self._stop_requested.is_set():
                return None  # files not taken yet are found again by the next start's rescan
            self._score(list(to_score.values()), model)
            for arrival in repeats:  # now linked to the copy just scored (or scored alone if that failed)
                again = self._ingestor.decode(self._ingestor.resume(arrival, model.version.id,
                                                                    known=arrival.outcome is Outcome.RESCORED))
                if again.step is Step.SCORE:
                    self._score([again], model)
                else:
                    self._settle(again)
        except DatabaseLostError:
            raise  # nothing more can be saved: the service stops and says so
        except StoreError as error:
            return error
        return None

    def _received(self, batch: Sequence[StableFile], model: _LoadedModel,
                  budget: _DecodedPixels) -> Generator[Arrival, None, None]:
        """The batch's files ingested in order on the ingest thread while the caller scores those it
        has: hashed, recorded and claimed RECORD_CHUNK at a time, then decoded. A file is decoded
        only while the caller's `budget` has room, so the service holds what it did without the
        thread: at most DECODED_PIXELS_HELD decoded pixels and one image more. None is taken once a
        stop is asked. The database's errors are raised here; a file that fails otherwise is
        reported and left until it changes, instead of stopping the service."""
        taken: queue.Queue[tuple[StableFile, Arrival | Exception] | None] = queue.Queue()

        def ingest() -> None:
            try:
                for first in range(0, len(batch), RECORD_CHUNK):
                    if self._stop_requested.is_set():
                        return  # files not taken are found again by the next start's rescan
                    chunk = batch[first:first + RECORD_CHUNK]
                    for stable, arrival in zip(chunk, self._taken(chunk, model.version.id)):
                        if isinstance(arrival, Arrival) and arrival.step is Step.DECODE:
                            if not budget.wait_for_room() or self._stop_requested.is_set():
                                continue  # recorded and claimed: finished by the next start (_recover_pending)
                            arrival = self._decoded(arrival)
                        if isinstance(arrival, Arrival):
                            budget.take(_pixels(arrival.image))
                        taken.put((stable, arrival))
                        if isinstance(arrival, StoreError):
                            return
            finally:
                taken.put(None)

        worker = self._ingest.submit(ingest)
        try:
            while (item := taken.get()) is not None:
                stable, arrival = item
                if isinstance(arrival, StoreError):
                    raise arrival
                if isinstance(arrival, Exception):
                    log.error("ingest of %s failed", path_text(stable.path), exc_info=arrival)
                    self._report_error(f"{path_text(stable.path)}: could not be taken ({arrival!r}); "
                                       "it is tried again when it changes")
                    self._tracker.settle(stable.path, stable.signature)
                    continue
                yield arrival
        finally:
            budget.close()
            worker.result()  # the batch is over only once its ingest is: a retry starts afresh

    def _taken(self, chunk: Sequence[StableFile], model_id: int) -> list[Arrival | Exception]:
        """The chunk's files received together (`Ingestor.receive_many`); when that fails other than
        by the database, one at a time, so that one file's failure is that file's alone. A database
        error ends the list: the batch stops there and is tried again."""
        offers = [Offer(stable.path, stable.inbox, stable.unchanged_for) for stable in chunk]
        try:
            return list(self._ingestor.receive_many(offers, model_id))
        except StoreError as error:
            return [error]
        except Exception as error:  # the caller reports it, on the service thread
            if len(chunk) == 1:
                return [error]
        taken: list[Arrival | Exception] = []
        for stable in chunk:
            taken += self._taken([stable], model_id)
            if isinstance(taken[-1], StoreError):
                break
        return taken

    def _decoded(self, arrival: Arrival) -> Arrival | Exception:
        try:
            return self._ingestor.decode(arrival)
        except Exception as error:  # the database's errors too: the caller raises those
            return error

    def _score(self, arrivals: list[Arrival], model: _LoadedModel) -> None:
        step: list[Arrival] = []
        plans: list[TilePlan] = []
        planning: list[float] = []  # seconds spent finding each slide's tiles
        tiles = 0
        for arrival in arrivals:
            image = arrival.to_score()[0]
            started = time.monotonic()
            try:
                plan = model.scorer.plan(image)
            except Exception as error:  # finding a field's cells must not take the service down
                self._failed(arrival, f"its white cells could not be found ({error})")
                continue
            seconds = time.monotonic() - started
            if step and tiles + len(plan.tiles) > MAX_TILES_PER_STEP:
                self._score_step(step, plans, planning, model)
                step, plans, planning, tiles = [], [], [], 0
            if self._stop_requested.is_set():
                return  # recorded slides stay pending and are finished on the next start
            step.append(arrival)
            plans.append(plan)
            planning.append(seconds)
            tiles += len(plan.tiles)
        if step:
            self._score_step(step, plans, planning, model)

    def _score_step(self, arrivals: list[Arrival], plans: list[TilePlan], planning: list[float],
                    model: _LoadedModel) -> None:
        started = time.monotonic()
        try:
            results = model.scorer.score([arrival.to_score()[0] for arrival in arrivals], plans)
        except Exception as error:  # a model failure on one image must not take the others down
            if len(arrivals) > 1:
                for arrival, plan, seconds in zip(arrivals, plans, planning):
                    self._score_step([arrival], [plan], [seconds], model)
                return
            self._failed(arrivals[0], f"the model could not score this image ({error})")
            return
        per_tile = (time.monotonic() - started) / max(1, sum(len(result.cells) for result in results))
        entries, heatmaps = [], []
        for arrival, result, seconds in zip(arrivals, results, planning):
            _, score_slide_id, _ = arrival.to_score()
            heatmaps.append(self.config.heatmap_folder / heatmap_name(score_slide_id, model.version.id))
            entries.append(NewScore(
                score_slide_id, model.version.id, score=result.score, l_d=result.l_d, l_r=result.l_r,
                l_l=result.l_l, threshold=result.threshold, flagged=result.flagged,
                duration_seconds=seconds + per_tile * len(result.cells),
                heatmap_path=heatmaps[-1], tiling=tiling_record(result), cells=cell_rows(result),
                warning=score_warning(arrival.info, model.scorer.bundle.channels), judgement=judgement(result),
                station=self.config.station,
            ))
        stored = self.store.add_scores(entries)  # the step's scores in one transaction
        for arrival, result, entry, heatmap, row in zip(arrivals, results, entries, heatmaps, stored):
            if isinstance(row, ClaimLost):  # this station stalled past its lease: the other's result stands
                log.warning("%s", row)
                self._settle(replace(arrival, step=Step.ELSEWHERE, image=None))
                continue
            image, score_slide_id, outcome = arrival.to_score()
            self._paint_later(heatmap, image, result.heat, flagged=result.flagged)
            self._finish(arrival, SlideScored(
                arrival.path, arrival.recorded.id, score_slide_id, outcome, result.score,
                result.flagged, result.threshold, model.version.version, heatmap, len(result.cells),
                entry.duration_seconds, entry.warning, result.p_value,
            ))
            self._drift_changed(model, model.drift.observe(result.decision.p_values))

    def _look_again_later(self, path: Path, inbox: Path) -> None:
        """A file whose slide another station holds: looked at twice a lease, so a lapsed claim is
        taken over within half a lease of lapsing."""
        self._tracker.forget(path)
        self._tracker.offer(path, inbox, quiet_seconds=self.config.lease_seconds / 2)

    def _paint_later(self, path: Path, image: np.ndarray, heat: np.ndarray, *, flagged: bool) -> None:
        """Write a slide's heat map on the painter thread once its score is committed, never on the
        way of a commit or beside a batch's scoring (painting flagged slides' beside it cost a burst
        a fifth of its rate on two cores): as soon as the service has no file ready to take,
        `flagged` slides' first, or at once when DEFERRED_PIXELS_HELD are waiting. One file at a
        time is painted right after its commit; a burst's once it is scored. The viewer recomputes
        a slide's heat anyway; the report shows the pictures; `wait_until_idle` waits for them all."""
        self._deferred.append((flagged, path, image, heat))
        self._deferred_pixels += _pixels(image)
        self._paint_deferred(DEFERRED_PIXELS_HELD)

    def _paint_deferred(self, keep_pixels: int) -> None:
        """Hand deferred heat maps to the painter until at most `keep_pixels` wait: the oldest first
        while over the budget, all of them (flagged slides' first) for `keep_pixels` 0."""
        if keep_pixels == 0 and self._deferred:
            self._deferred = deque(sorted(self._deferred, key=lambda waiting: not waiting[0]))
        while self._deferred and self._deferred_pixels > keep_pixels:
            _, path, image, heat = self._deferred.popleft()
            self._deferred_pixels -= _pixels(image)
            self._paint(path, image, heat)

    def _paint(self, path: Path, image: np.ndarray, heat: np.ndarray) -> None:
        pixels = _pixels(image)
        while self._painting and sum(held for _, held in self._painting) + pixels > PAINTING_PIXELS_HELD:
            self._painting.popleft()[0].exception()  # bounded memory: wait for the oldest (its error is _painted's)
        future = self._painter.submit(write_heatmap, path, image, heat)
        future.add_done_callback(lambda done: self._painted(path, done))
        self._painting.append((future, pixels))

    def _painted(self, path: Path, done: Future) -> None:
        error = done.exception()
        if error is not None:  # the score stands; the viewer recomputes the picture
            self._report_error(f"{path_text(path)}: the heat map could not be written ({error})")

    def _still_painting(self) -> bool:
        while self._painting and self._painting[0][0].done():
            self._painting.popleft()
        return bool(self._painting)

    def _drift_changed(self, model: _LoadedModel, state: DriftState | None) -> None:
        """Record and report a change of `model`'s drift alarm (none when `state` is None)."""
        if state is None:
            return
        action = DRIFT_ALARM_RAISED if state.alarm else DRIFT_ALARM_CLEARED
        try:
            self.store.audit(current_actor(), action, {"model_version": model.version.version, **state.to_dict()})
        except DatabaseLostError:
            raise
        except StoreError as error:  # the score is committed: the alarm is still said, and the audit gap too
            self._report_error(f"the drift alarm could not be recorded in the audit trail ({error})")
        log.warning("model %s: %s", model.version.version, state.message)
        self._notify(self._on_drift, state)

    def _failed(self, arrival: Arrival, reason: str) -> None:
        """A slide that could not be scored: rejected with the reason, or, when it was being
        re-scored by a new model, left with its earlier score."""
        if arrival.outcome is Outcome.RESCORED:
            self._report_error(f"{path_text(arrival.path)}: could not be re-scored: {reason}; "
                               "its earlier score stands")
            self._settle(replace(arrival, step=Step.FINISHED, outcome=Outcome.KNOWN, image=None))
        else:
            self._settle(self._ingestor.reject(arrival, reason))

    def _settle(self, arrival: Arrival) -> None:
        """Report an arrival that needs no scoring now, and put away its file."""
        if arrival.step is Step.GONE:
            self._tracker.forget(arrival.path)
            return
        if arrival.step is Step.INCOMPLETE:  # looked at again once it has rested for the grace period
            self._tracker.offer(arrival.path, arrival.inbox, quiet_seconds=self.config.grace_seconds)
            return
        if arrival.step is Step.ELSEWHERE:
            self._look_again_later(arrival.path, arrival.inbox)
            return
        if arrival.step is Step.RETRY:
            if arrival.rejected:
                slide = arrival.recorded
                self._notify(self._on_rejected, SlideRejected(arrival.path, slide.id, _rejection_reason(slide)))
            self._tracker.forget(arrival.path)
            self._tracker.offer(arrival.path, arrival.inbox)
            return
        slide = arrival.recorded
        if arrival.rejected:
            self._finish(arrival, SlideRejected(arrival.path, slide.id, _rejection_reason(slide),
                                                known=arrival.outcome is Outcome.KNOWN))
            return
        score = self.store.latest_score(slide.id)
        if score is None:
            self._report_error(f"{path_text(arrival.path)}: slide {slide.id} is marked scored "
                               "but has no score")
            return
        outcome = cast(Outcome, arrival.outcome)  # Ingestor.resume sets it on a slide finished unscored
        self._finish(arrival, SlideScored(
            arrival.path, slide.id, score.slide_id, outcome, score.score, score.flagged,
            score.threshold, score.model_version, Path(score.heatmap_path) if score.heatmap_path else None,
            warning=score.warning, p_value=score.p_value,
        ))

    def _finish(self, arrival: Arrival, event: SlideScored | SlideRejected) -> None:
        """The result is committed: archive the file (if asked), remember it, report it."""
        if self._archiver is not None and not self._still_being_written(arrival, event):
            try:
                self._archiver.archive(arrival.recorded, arrival.path, arrival.inbox,
                                       rejected=isinstance(event, SlideRejected))
                self._tracker.forget(arrival.path)
            except OSError as error:
                self._report_error(f"{path_text(arrival.path)}: scored, but could not be archived ({error}); "
                                   "the next rescan tries again")
        else:
            self._tracker.settle(arrival.path, arrival.signed)
        listener = self._on_scored if isinstance(event, SlideScored) else self._on_rejected
        self._notify(listener, event)

    @staticmethod
    def _still_being_written(arrival: Arrival, event: SlideScored | SlideRejected) -> bool:
        """Whether a rejected file still looks unfinished: it stays in the inbox, so that the rest
        of a slow write changes it and it is examined again, instead of being archived half written."""
        if not isinstance(event, SlideRejected):
            return False
        try:
            return looks_unfinished(arrival.path)
        except OSError:
            return False

    def _report_error(self, message: str) -> None:
        log.warning("%s", message)
        self._notify(self._on_error, message)

    def _notify(self, listener: Callable | None, value: object) -> None:
        if listener is None:
            return
        try:
            listener(value)
        except Exception:  # a listener's bug must not stop the screening
            log.exception("a screening listener failed")
