"""The main window: watched folders, the review queue, the viewer and the review panel, with the
retrain, models, report and settings windows one click away.

The window is thin: it forwards events and hands anything slow to a worker or to the screening
service. The queue is read on a worker thread (app.queue_reader: only what changed since the last
read, and the active model), whenever the service reports a slide and every few seconds for
changes made elsewhere (another workstation on a shared database); the rows are merged on the main
thread. Saving a review, or withdrawing one (Ctrl+Z), is the one database write made here (one
short transaction).

A review key acts on the slide on screen, and only once its picture has been in view for
REVIEW_DWELL_S: a press that comes sooner (a double press that would land on the next slide) is
not applied, and the status line says so. The status line names every slide reviewed; Ctrl+Z
withdraws the last review made here (a withdrawal row is appended: reviews stay append-only and
audited) and goes back to its slide. The review keys act from anywhere in the window but a text
field, where the letters type and Alt+A / Alt+N / Alt+S review.

The status bar says the operating point in force (the lab's stated rate, or the model's training
target) and the drift alarm while it is raised: as this window's screening service reports it, or
as the audit trail last recorded it for the active model (another station's service, or one that
ran before this window opened).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.folders_panel import FoldersPanel
from ganad_clinic.app.inspection_worker import InspectionThread
from ganad_clinic.app.models_panel import ModelsDialog
from ganad_clinic.app.opened_files import is_image_file, stage_for_screening
from ganad_clinic.app.operating_point_dialog import APPLIES, OperatingPointDialog
from ganad_clinic.app.operating_words import rate_in_force
from ganad_clinic.app.queue_panel import QueuePanel
from ganad_clinic.app.queue_reader import ModelFacts, QueueReader, QueueUpdate
from ganad_clinic.app.report_dialog import ReportDialog
from ganad_clinic.app.retrain_dialog import RetrainDialog
from ganad_clinic.app.review_panel import ReviewPanel
from ganad_clinic.app.screening_controller import ScreeningController, WatcherState
from ganad_clinic.app.settings import AppSettings, Section
from ganad_clinic.app.settings_dialog import SettingsDialog
from ganad_clinic.app.slide_table_model import DECISION_TEXT, QueueFilter, SlideTableModel
from ganad_clinic.app.specimens_dialog import SpecimensDialog
from ganad_clinic.app.viewer import SlideViewer
from ganad_clinic.app.workers import BackgroundCall
from ganad_clinic.model.conformal import percent
from ganad_clinic.screening.drift import DriftState
from ganad_clinic.screening.names import slide_file
from ganad_clinic.screening.users import Permission, may
from ganad_clinic.store import (
    ModelVersion,
    OperatingPointSetting,
    Review,
    ReviewDecision,
    SlideStatus,
    SlideSummary,
    Store,
    StoreError,
    User,
    answers_own_second_read,
)

log = logging.getLogger(__name__)

REFRESH_DELAY_MS = 150  # events in a burst become one refresh
REVIEW_DWELL_S = 0.35
"""A review key counts only once the slide's picture has been in view this long: two presses 0.12 s
apart were seen to review the next slide unseen; looking at a slide takes longer than this."""
POLL_INTERVAL_MS = 5_000
SERVICE_SETTINGS = {"watched_folders", "poll", "rescan_seconds", "field_scale", "accession_pattern", "station"}
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DRIFT_STYLE = "background: #c82828; color: white; font-weight: 600; padding: 1px 8px;"


def drift_text(state: DriftState) -> str:
    """The status bar's line for a raised drift alarm: short, so it never crowds the bar; the whole
    message is in its tooltip."""
    return f"Drift alarm: {state.exceeding} of the last {state.window} slides look unusual (point here for why)"


class MainWindow(QMainWindow):
    def __init__(self, store: Store, home: Path, settings: AppSettings, *, user: User,
                 torch_threads: int | None = None) -> None:
        super().__init__()
        self.setWindowTitle(f"{user.full_name} ({user.role.value})")  # Qt adds the app's name (main.py)
        self.resize(1280, 820)
        self.store, self.home, self.settings, self.user = store, home, settings, user
        settings.signed_in = user
        self.retrain_dialog: RetrainDialog | None = None
        self.report_dialog: ReportDialog | None = None
        self.models_dialog: ModelsDialog | None = None
        self.specimens_dialog: SpecimensDialog | None = None
        self._shut_down = False
        self.active_model: ModelVersion | None = None
        self.active_facts: ModelFacts | None = None
        self.operating_point: OperatingPointSetting | None = None  # the lab's stated rate, as last read
        self.drift: DriftState | None = None  # the drift alarm's latest state: the service's, or the stored one
        self.drift_recorded: datetime | None = None  # when the stored state shown was recorded
        self.notice: QMessageBox | None = None  # the last change of the operating point, said
        self.undoable: list[tuple[Review, SlideSummary]] = []  # reviews made here, each with the summary before it
        self.loaded = False  # the first read of the queue is in

        self.controller = ScreeningController(store, home, torch_threads=torch_threads, parent=self)
        self.inspector = InspectionThread(store, self)
        self.table_model = SlideTableModel(self)
        self.table_model.remember(settings.seen_up_to, settings.unseen)
        self.viewer = SlideViewer(settings.overlay_opacity, details=settings.show_details)
        self._make_actions()  # after the viewer: its cell keys are in the Review menu
        self.folders_panel = FoldersPanel(settings.watched_folders)
        self.queue = QueuePanel(self.table_model)
        self.review_panel = ReviewPanel([self.confirm_action, self.normal_action, self.second_read_action])
        self.review_panel.set_reviewer(f"{user.full_name} ({user.name}, {user.role.value})")
        self._lay_out()
        self._make_status_bar()
        self.setAcceptDrops(True)

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setSingleShot(True)
        self.refresh_timer.setInterval(REFRESH_DELAY_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_INTERVAL_MS)
        self.poll_timer.timeout.connect(self.refresh)
        self.reader = QueueReader(store)
        self.refresher = BackgroundCall(self.reader.read, self)
        self.refresher.returned.connect(self._refreshed)
        self.refresher.errored.connect(self._refresh_failed)
        self.table_model.inserted.connect(self._rows_inserted)

        self.controller.slide_scored.connect(self._slide_arrived)
        self.controller.slide_rejected.connect(self._slide_arrived)
        self.controller.problem.connect(self._service_problem)
        self.controller.failed.connect(self._service_failed)
        self.controller.state_changed.connect(self._update_status)
        self.controller.drift_changed.connect(self._drift_changed)
        self.inspector.worker.finished.connect(self.viewer.show_inspection)
        self.inspector.worker.failed.connect(self.viewer.show_failure)
        self.queue.current_changed.connect(self._show_slide)
        self.review_panel.leave_requested.connect(self.queue.focus_table)
        self.folders_panel.folders_changed.connect(self._folders_changed)
        self.folders_panel.pause_toggled.connect(self.controller.set_paused)
        self.viewer.opacity_changed.connect(self._opacity_changed)
        self.viewer.details_toggled.connect(lambda shown: setattr(self.settings, "show_details", shown))

        self.refresh()
        self._configure_service()
        self.poll_timer.start()
        self.queue.table.setFocus()

    # building

    def _action(self, text: str, shortcut: str | QKeySequence.StandardKey | None, slot, tip: str = "",
                also: str | None = None) -> QAction:
        """A window action; `also` is a second shortcut, one that works while typing in a text field."""
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts([QKeySequence(shortcut), *([QKeySequence(also)] if also else [])])
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut is not None else tip or text)
        action.triggered.connect(lambda _checked=False: slot())  # triggered(bool) never reaches the slot
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.open_action = self._action("Open slides…", QKeySequence.StandardKey.Open, self.choose_files,
                                        "Score image files now (they are copied to the app's inbox)")
        self.report_action = self._action("Export report…", "Ctrl+P", self.open_report)
        self.settings_action = self._action("Settings…", "Ctrl+,", self.open_settings,
                                            "Data folder, watched folders, heat map and the LIS outbox")
        self.model_settings_action = self._action("Training and model settings…", None,
                                                  lambda: self.open_settings(Section.MODEL),
                                                  "λ and β of the next retrain, and the field pixel scale")
        if not may(self.user, Permission.MODEL_SETTINGS):
            self.model_settings_action.setEnabled(False)
            self.model_settings_action.setToolTip("Training and model settings: for a supervisor")
        self.find_action = self._action("Find slide…", QKeySequence.StandardKey.Find, self.queue_search,
                                        "Search the slides by file name")
        self.quit_action = self._action("Quit", "Ctrl+Q", self.close)
        self.refresh_action = self._action("Refresh", "F5", self.refresh)
        self.confirm_action = self._action("Confirm anomaly", "A",
                                           lambda: self.review(ReviewDecision.ANOMALY_CONFIRMED), also="Alt+A")
        self.normal_action = self._action("Normal", "N", lambda: self.review(ReviewDecision.NORMAL),
                                          "Mark normal (overrule a flag)", also="Alt+N")
        self.second_read_action = self._action("Second read", "S", lambda: self.review(ReviewDecision.SECOND_READ),
                                               "Second read needed", also="Alt+S")
        self.undo_action = self._action("Undo last review", QKeySequence.StandardKey.Undo, self.undo_review,
                                        "Withdraw the last review made here and go back to its slide")
        self.next_action = self._action("Next awaiting review", "J", lambda: self.go_to_awaiting(1))
        self.previous_action = self._action("Previous awaiting review", "K", lambda: self.go_to_awaiting(-1))
        self.models_action = self._action("Models…", "Ctrl+M", self.open_models)
        self.specimens_action = self._action("Specimens…", "Ctrl+E", self.open_specimens,
                                             "Specimens, their state, and signing them off to the LIS")
        self.retrain_action = self._action("Retrain on local normals…", "Ctrl+R", self.open_retrain)
        self.operating_point_action = self._action("Operating point…", None, self.open_operating_point,
                                                   "Change the share of normal slides the tool may flag (audited)")

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for action in (self.open_action, self.find_action, self.report_action, self.settings_action,
                       self.refresh_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        review_menu = menus.addMenu("&Review")
        for action in (self.confirm_action, self.normal_action, self.second_read_action, self.undo_action):
            review_menu.addAction(action)
        review_menu.addAction(self.specimens_action)
        review_menu.addSeparator()
        review_menu.addAction(self.next_action)
        review_menu.addAction(self.previous_action)
        review_menu.addSeparator()
        review_menu.addAction(self.viewer.next_cell_action)
        review_menu.addAction(self.viewer.previous_cell_action)
        model_menu = menus.addMenu("&Model")
        model_menu.addAction(self.models_action)
        model_menu.addAction(self.retrain_action)
        model_menu.addAction(self.operating_point_action)
        model_menu.addAction(self.model_settings_action)
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        for action in (self.open_action, self.specimens_action, self.retrain_action, self.models_action,
                       self.report_action, self.settings_action):
            toolbar.addAction(action)

    def _lay_out(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.folders_panel)
        left_layout.addWidget(self.queue, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.viewer, 1)
        right_layout.addWidget(self.review_panel)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([640, 640])  # the queue's five columns, dates and flags unclipped
        self.setCentralWidget(splitter)

    def _make_status_bar(self) -> None:
        self.drift_label = QLabel()
        self.drift_label.setStyleSheet(DRIFT_STYLE)
        self.drift_label.hide()
        self.watcher_label = QLabel()
        self.operating_label = QLabel()
        self.model_label = QLabel()
        self.statusBar().addPermanentWidget(self.drift_label, 1)  # permanent: a passing message never hides it
        for label in (self.watcher_label, self.operating_label, self.model_label):  # short: messages need the room
            label.setContentsMargins(10, 0, 10, 0)
            self.statusBar().addPermanentWidget(label)

    # the queue

    def refresh(self) -> None:
        """Ask the worker to read what changed in the database; rows update in place, the selection stays."""
        self.refresher.request()

    @property
    def refreshing(self) -> bool:
        """A read of the queue is running or asked for, or its new rows are still going in."""
        return self.refresher.busy or self.table_model.inserting

    def _refreshed(self, update: QueueUpdate) -> None:
        self.active_model, self.active_facts = update.active_model, update.active_facts
        self.operating_point = update.operating_point
        stored = update.drift
        if stored is not None and (self.drift_recorded is None or stored.time > self.drift_recorded):
            self.drift_recorded = stored.time  # raised by another station, or before this window opened
            self._drift_changed(stored.state)
        self.table_model.merge(update.summaries)
        self._follow_current()
        self._update_status()

    def _rows_inserted(self) -> None:
        self.loaded = True
        self._follow_current()
        self._update_status()

    def _refresh_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Database: {message}", 10_000)

    def _follow_current(self) -> None:
        """Select a first slide once there is one; show the newer summary of the slide on screen."""
        current = self.queue.current_summary()
        if current is None:
            self.queue.select_first()
        elif (self.viewer.summary is not None and self.viewer.summary.slide.id == current.slide.id
              and self.viewer.summary is not current):
            if self._pictures_hold(current):
                self.viewer.show_summary(current, keep_pictures=True)
                self.review_panel.show_summary(current)
            else:  # re-scored (or scored at last): the old cells and pictures go, the new score is inspected
                self._show_slide(current)

    def _pictures_hold(self, current: SlideSummary) -> bool:
        """The viewer's pictures and cells (or the inspection asked for) belong to this summary's score."""
        shown, score, inspection = self.viewer.summary, current.score, self.viewer.inspection
        if score is None or shown is None or shown.score is None or shown.score.id != score.id:
            return False
        return inspection is None or inspection.score_id == score.id

    def _slide_arrived(self, event: object) -> None:
        self.refresh_timer.start()

    def _show_slide(self, summary: SlideSummary | None) -> None:
        self.viewer.show_summary(summary)
        self.review_panel.show_summary(summary)
        scored = summary is not None and summary.score is not None and summary.slide.status is SlideStatus.SCORED
        for action in (self.confirm_action, self.normal_action, self.second_read_action):
            action.setEnabled(scored)  # a rejected or pending file cannot be reviewed as normal or anomalous
        if summary is None or summary.score is None or not scored:
            return
        path = slide_file(summary.slide.archived_path, summary.slide.path)
        self.inspector.worker.request(summary.slide.id, path, summary.score)

    def _update_status(self) -> None:
        model = self.table_model
        counts = model.counts
        self.queue.counts_label.setText(f"{counts[QueueFilter.FLAGGED_OPEN]} flagged to review · "
                                        f"{counts[QueueFilter.AWAITING]} awaiting review · "
                                        f"{counts[QueueFilter.PROBLEMS]} not scored · {model.rowCount()} slides")
        self.queue.show_counts()
        self.watcher_label.setText(self.controller.describe())
        active = self.active_model
        self.model_label.setText(f"Model {active.version}" if active else "No active model")
        facts = self.active_facts
        rate = rate_in_force(self.operating_point, None if facts is None else facts.target_fpr)
        self.operating_label.setText(rate.partition(" (")[0])  # who stated it, and when, in the tooltip
        self.operating_label.setToolTip(rate)

    def _drift_changed(self, state: DriftState) -> None:
        """The service's drift alarm: shown until a cleared state comes."""
        raised = state.alarm and (self.drift is None or not self.drift.alarm)
        cleared = not state.alarm and self.drift is not None and self.drift.alarm
        self.drift = state
        if state.alarm:
            self.drift_label.setText(drift_text(state))
            expected = percent(state.expected_rate)
            self.drift_label.setToolTip(f"{state.message}\n\n"
                                        f"{state.exceeding} of the last {state.window} slides looked unusual against "
                                        f"the calibration normals; normal slides do so at most {expected} of the "
                                        f"time (binomial p = {state.p_value:.2g}). A stain, focus or scanner change, "
                                        "or a run of abnormal samples: both worth a look.")
            self.drift_label.show()
            if raised:
                log.warning("drift alarm: %s", state.message)
        else:
            self.drift_label.hide()
            if cleared:
                self.statusBar().showMessage(f"Drift alarm cleared: {state.message}", 15_000)

    # review

    def review(self, decision: ReviewDecision) -> None:
        """Review the slide on screen: the viewer's, which is the queue's selected row, once its
        picture has been in view for REVIEW_DWELL_S."""
        shown, selected = self.viewer.summary, self.queue.current_summary()
        row = None if shown is None else self.table_model.row_of(shown.slide.id)
        summary = None if row is None else self.table_model.summary(row)
        if (summary is None or selected is None or selected.slide.id != summary.slide.id
                or summary.slide.status is not SlideStatus.SCORED):
            self.statusBar().showMessage("Select a scored slide to review.", 5_000)
            return
        on_screen = self.viewer.seconds_on_screen()
        if on_screen is None or on_screen < REVIEW_DWELL_S:
            self.statusBar().showMessage(f"Not reviewed: {summary.slide.file_name} is not on screen yet. "
                                         "Look at it, then press again.", 5_000)
            return
        if not may(self.user, Permission.REVIEW):
            self.statusBar().showMessage(f"{self.user.name} may not review slides.", 5_000)
            return
        reviewer = self.user.name
        if answers_own_second_read(summary.review, reviewer, decision):
            self.statusBar().showMessage(f"Not reviewed: you asked for a second read of {summary.slide.file_name}; "
                                         "another reviewer gives it.", 8_000)
            return
        following = (self.queue.awaiting_neighbour(1, exclude=summary.slide.id)
                     or self.queue.awaiting_neighbour(-1, exclude=summary.slide.id))
        try:
            saved = self.store.add_review(summary.slide.id, reviewer, decision,
                                          self.review_panel.take_note(summary.slide.id))
        except StoreError as error:
            QMessageBox.critical(self, "Review", f"The review was not saved: {error}")
            return
        self.undoable.append((saved, summary))
        if self.review_panel.note.hasFocus():  # reviewed with Alt+A / N / S from the note: back to the slides
            self.queue.focus_table()
        self.statusBar().showMessage(f"Reviewed {summary.slide.file_name}: {DECISION_TEXT[decision]} ({reviewer}). "
                                     "Ctrl+Z undoes it.", 8_000)
        reviewed = replace(summary, review=saved, last_review_id=saved.id)
        self.table_model.replace_row(reviewed)  # at once; the worker's next read confirms it
        if following is not None:
            self.queue.select_slide(following.slide.id)
        else:
            self._show_again(reviewed)
        self._update_status()
        self.refresh()

    def undo_review(self) -> None:
        """Withdraw the last review made here (a withdrawal is appended) and go back to its slide."""
        if not self.undoable:
            self.statusBar().showMessage("No review to undo: none was made in this window.", 5_000)
            return
        saved, before = self.undoable[-1]
        try:
            withdrawal = self.store.withdraw_review(saved.id, self.user.name, "undone in the app (Ctrl+Z)")
        except StoreError as error:
            self.undoable.pop()
            QMessageBox.warning(self, "Undo review", f"{before.slide.file_name}: the review could not be withdrawn: "
                                                     f"{error}")
            self.refresh()
            return
        self.undoable.pop()
        row = self.table_model.row_of(before.slide.id)
        restored = replace(before if row is None else self.table_model.summary(row), review=before.review,
                           last_review_id=withdrawal.id)
        self.table_model.replace_row(restored)  # at once; the worker's next read confirms it
        where = ("back to it" if self.queue.select_slide(restored.slide.id)
                 else "the slide is not in this view (choose All slides to see it)")
        self.statusBar().showMessage(f"Withdrawn: the review of {before.slide.file_name} "
                                     f"({DECISION_TEXT[saved.decision]}); {where}.", 8_000)
        self._show_again(restored)
        self._update_status()
        self.refresh()

    def _show_again(self, summary: SlideSummary) -> None:
        """The slide on screen with its new review (its pictures stay)."""
        if self.viewer.summary is not None and self.viewer.summary.slide.id == summary.slide.id:
            self.viewer.show_summary(summary, keep_pictures=True)
            self.review_panel.show_summary(summary)

    def queue_search(self) -> None:
        self.queue.search.setFocus()
        self.queue.search.selectAll()

    def go_to_awaiting(self, step: int) -> None:
        summary = self.queue.awaiting_neighbour(step)
        if summary is None:
            self.statusBar().showMessage("No more slides awaiting review in this direction.", 5_000)
        else:
            self.queue.select_slide(summary.slide.id)

    # slides from files

    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open slides", "",
                                                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)")
        if paths:
            self.open_paths([Path(path) for path in paths])

    def open_paths(self, paths: list[Path]) -> None:
        """Score files now: they are copied into the app's inbox and scored by the screening service."""
        images = [path for path in paths if is_image_file(path)]
        skipped = len(paths) - len(images)
        if not images:
            QMessageBox.information(self, "Open slides", "None of these is an image file the app can score.")
            return
        try:
            stage_for_screening(images, self.controller.opened_inbox)
        except OSError as error:
            QMessageBox.critical(self, "Open slides", f"The files could not be copied for scoring: {error}")
            return
        message = f"{len(images)} file(s) queued for scoring"
        if skipped:
            message += f"; {skipped} skipped (not images)"
        if self.controller.state is not WatcherState.WATCHING:
            message += f" — {self.controller.describe().lower()}: they are scored once screening runs"
        self.statusBar().showMessage(message, 8_000)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        self.open_paths(paths)

    # the screening service

    def _configure_service(self) -> None:
        self.controller.configure(self.settings.watched_folders, poll=self.settings.poll,
                                  rescan_seconds=self.settings.rescan_seconds, field_scale=self.settings.field_scale,
                                  accession_pattern=self.settings.accession_pattern, station=self.settings.station)

    def _folders_changed(self, folders: list[Path]) -> None:
        old = [str(folder) for folder in self.settings.watched_folders]
        self.settings.watched_folders = folders
        self._audit_settings({"watched_folders": [old, [str(folder) for folder in folders]]})
        self._configure_service()

    def _service_problem(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    def _service_failed(self, message: str) -> None:
        self._update_status()
        QMessageBox.warning(self, "Screening stopped", f"{message}\n\nFix the cause, then add or remove a folder or "
                                                       "pause and resume to start screening again.")

    def _model_changed(self) -> None:
        if self.models_dialog is not None:
            self.models_dialog.panel.refresh()
        self.refresh()  # the worker reads the active model too; the status bar follows
        if self.controller.state in (WatcherState.NO_MODEL, WatcherState.FAILED):
            self.controller.restart()

    def _opacity_changed(self, percent: int) -> None:
        self.settings.overlay_opacity = percent

    def _audit_settings(self, changes: dict) -> None:
        try:
            self.store.audit(self.settings.actor(), "settings.changed", changes)
        except StoreError as error:
            QMessageBox.warning(self, "Settings", f"The change could not be recorded in the audit trail: {error}")

    # other windows

    def _show(self, dialog) -> None:
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def open_retrain(self) -> RetrainDialog:
        if self.retrain_dialog is None:
            self.retrain_dialog = RetrainDialog(self.store, self.home, self.settings, self)
            self.retrain_dialog.model_registered.connect(self._model_changed)
            self.retrain_dialog.model_activated.connect(self._model_changed)
        else:
            self.retrain_dialog.update_summary()
        self._show(self.retrain_dialog)
        return self.retrain_dialog

    def open_report(self) -> ReportDialog:
        if self.report_dialog is None:
            folders = [*self.settings.watched_folders, self.controller.opened_inbox]
            self.report_dialog = ReportDialog(self.store, self.home, self.settings, folders, self)
        self._show(self.report_dialog)
        return self.report_dialog

    def open_models(self) -> ModelsDialog:
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.store, self.home, self.settings, self)
            self.models_dialog.panel.active_changed.connect(self._model_changed)
            self.models_dialog.panel.operating_point_requested.connect(self.open_operating_point)
        self.models_dialog.panel.refresh()
        self._show(self.models_dialog)
        return self.models_dialog

    def open_specimens(self) -> SpecimensDialog:
        if self.specimens_dialog is None:
            self.specimens_dialog = SpecimensDialog(self.store, self.settings, self)
        self.specimens_dialog.refresh()
        self._show(self.specimens_dialog)
        return self.specimens_dialog

    def open_operating_point(self) -> OperatingPointDialog:
        """The rate in force and a way to change it (a reason is required; audited)."""
        facts = self.active_facts
        dialog = OperatingPointDialog(self.store, self.settings, self.operating_point,
                                      None if facts is None else facts.target_fpr, self)
        dialog.changed.connect(self._operating_point_changed)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._show(dialog)
        return dialog

    def _operating_point_changed(self, setting: OperatingPointSetting) -> None:
        self.operating_point = setting
        self._update_status()
        self.notice = QMessageBox(QMessageBox.Icon.Information, "Operating point",
                                  f"The operating point is now at most {percent(setting.target_fpr)} of normal slides "
                                  f"flagged. {APPLIES}", QMessageBox.StandardButton.Ok, self)
        self.notice.open()  # not modal to the event loop: screening and the queue carry on
        self.refresh()
        if self.models_dialog is not None:
            self.models_dialog.panel.refresh()

    def open_settings(self, section: Section = Section.REVIEW) -> None:
        facts = self.active_facts
        dialog = SettingsDialog(self.settings, None if facts is None else facts.weights, section, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        changes = dialog.apply()
        if not changes:
            return
        self._audit_settings(changes)
        self.folders_panel.set_folders(self.settings.watched_folders)
        if SERVICE_SETTINGS & changes.keys():
            self._configure_service()
        if "home" in changes:
            QMessageBox.information(self, "Settings", "The new data folder is used from the next start of the app.")
        self._update_status()

    # closing

    @property
    def busy_with(self) -> list[str]:
        """Work that closing would interrupt."""
        work = []
        if self.retrain_dialog is not None and self.retrain_dialog.running:
            work.append("a retraining")
        if self.report_dialog is not None and self.report_dialog.running:
            work.append("a report")
        return work

    def closeEvent(self, event: QCloseEvent) -> None:
        busy = self.busy_with
        if busy:
            answer = QMessageBox.question(self, "Quit GANAD Clinic",
                                          f"{' and '.join(busy).capitalize()} is still running. Stop it and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop every worker and the screening service, and wait for their threads."""
        if self._shut_down:
            return
        self._shut_down = True
        self.refresh_timer.stop()
        self.poll_timer.stop()
        for dialog in (self.retrain_dialog, self.report_dialog):
            if dialog is not None:
                dialog.stop_work()
                dialog.hide()
        if self.models_dialog is not None:
            self.models_dialog.panel.stop_work()
            self.models_dialog.hide()
        if self.specimens_dialog is not None:
            self.specimens_dialog.stop_work()
            self.specimens_dialog.hide()
        self.inspector.stop()
        self.refresher.stop()
        self.table_model.stop_inserting()
        looked = self.table_model.looked()
        if looked is not None:
            self.settings.seen_up_to, self.settings.unseen = looked
        if not self.controller.shutdown():
            log.warning("the screening service did not stop in time; pending slides are finished at the next start")
