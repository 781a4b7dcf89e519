"""The screening service inside the app: start, pause, restart on new folders, stop on close.

The service is headless and calls its listeners on its own thread; this controller re-emits each
event as a Qt signal, which reaches main-thread receivers queued (the drift alarm too). A service cannot be restarted,
so a change of folders stops the running one and starts a new one once it has stopped.
"""

from __future__ import annotations

import enum
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from ganad_clinic.screening import ScreeningService, ServiceConfig
from ganad_clinic.screening.service import default_station, default_torch_threads
from ganad_clinic.store import Store, StoreError

OPENED_FOLDER = "opened"
"""Files opened or dropped onto the window are copied here, an inbox the app always watches."""


class WatcherState(enum.Enum):
    STOPPED = "stopped"
    WATCHING = "watching"
    PAUSED = "paused"
    NO_MODEL = "no active model"
    FAILED = "stopped by an error"


class ScreeningController(QObject):
    slide_scored = Signal(object)  # SlideScored
    slide_rejected = Signal(object)  # SlideRejected
    problem = Signal(str)  # the service carries on
    failed = Signal(str)  # the service stopped
    state_changed = Signal()
    drift_changed = Signal(object)  # screening.drift.DriftState: an alarm raised, or cleared
    _stopped = Signal(object)  # from the service's thread

    def __init__(self, store: Store, home: Path, *, torch_threads: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.home = home
        self.opened_inbox = home / OPENED_FOLDER
        self.opened_inbox.mkdir(parents=True, exist_ok=True)
        self.torch_threads = torch_threads
        self.folders: list[Path] = []
        self.poll = False
        self.rescan_seconds = 30.0
        self.field_scale = 1.0
        self.accession_pattern = ""
        self.station = ""
        self.paused = False
        self.state = WatcherState.STOPPED
        self.missing_folders: list[Path] = []
        self._service: ScreeningService | None = None
        self._restart_pending = False
        self._closing = False
        self._stopped.connect(self._on_service_stopped)

    def configure(self, folders: list[Path], *, poll: bool, rescan_seconds: float, field_scale: float,
                  accession_pattern: str = "", station: str = "") -> None:
        """Watch these folders (plus the app's own inbox) from now on; `accession_pattern` (checked by
        the settings) names a file's specimen, empty for the default rule; `station` is this
        screening station's name, empty for the host name."""
        self.folders, self.poll = list(folders), poll
        self.rescan_seconds, self.field_scale = rescan_seconds, field_scale
        self.accession_pattern, self.station = accession_pattern, station
        self.restart()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.restart()

    @property
    def busy(self) -> bool:
        return self._service is not None and not self._service.stopped

    def restart(self) -> None:
        """Bring the service in line with the settings: stop the running one, start a new one."""
        if self._service is not None and not self._service.stopped:
            self._restart_pending = True
            self._service.request_stop()
            return
        self._service = None
        self._restart_pending = False
        if self._closing:
            return
        if self.paused:
            self._set_state(WatcherState.PAUSED)
            return
        try:
            if self.store.active_model_version() is None:
                self._set_state(WatcherState.NO_MODEL)
                return
        except StoreError as error:
            self._fail(str(error))
            return
        self.missing_folders = [folder for folder in self.folders if not folder.is_dir()]
        inboxes = (self.opened_inbox, *(folder for folder in self.folders if folder.is_dir()))
        config = ServiceConfig(inboxes, home=self.home, poll=self.poll, rescan_seconds=self.rescan_seconds,
                               field_scale=self.field_scale, accession_pattern=self.accession_pattern or None,
                               station=self.station or default_station(),
                               torch_threads=self.torch_threads or default_torch_threads())
        self._service = ScreeningService(self.store, config, on_scored=self.slide_scored.emit,
                                         on_rejected=self.slide_rejected.emit, on_error=self.problem.emit,
                                         on_stopped=self._stopped.emit, on_drift=self.drift_changed.emit)
        self._service.start()
        self._set_state(WatcherState.WATCHING)

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop for good (the window closes); returns whether the service has stopped in time."""
        self._closing = True
        if self._service is None:
            return True
        return self._service.stop(timeout)

    def wait_until_idle(self, timeout: float) -> bool:
        return self._service is not None and self._service.wait_until_idle(timeout)

    @Slot(object)
    def _on_service_stopped(self, error: BaseException | None) -> None:
        if self._closing:
            return
        if self._restart_pending:
            self.restart()
        elif error is not None:
            self._fail(str(error))
        else:
            self._set_state(WatcherState.STOPPED)

    def _fail(self, message: str) -> None:
        self._set_state(WatcherState.FAILED)
        self.failed.emit(message)

    def _set_state(self, state: WatcherState) -> None:
        self.state = state
        self.state_changed.emit()

    def describe(self) -> str:
        """The watcher's state in words, for the status bar."""
        if self.state is WatcherState.WATCHING:
            text = f"Watching {len(self.folders) - len(self.missing_folders)} folder(s)"
            if self.poll:
                text += " (polling)"
            if self.missing_folders:
                text += f"; {len(self.missing_folders)} missing"
            return text
        return {WatcherState.PAUSED: "Watcher paused", WatcherState.NO_MODEL: "No active model: nothing is scored",
                WatcherState.FAILED: "Watcher stopped by an error", WatcherState.STOPPED: "Watcher stopped"}[self.state]
