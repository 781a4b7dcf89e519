"""Retrain on local normal samples: gather, train in a worker (progress, time left, live losses,
Cancel), then check the candidate against the active model on the held-out evidence (the
acceptance check, app.acceptance_view); it becomes active only on request, through that check.

The active model, its metadata and the samples (a look at every reviewed slide's file) are read on
a worker thread too; training starts from the samples the dialog shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.acceptance_view import AcceptanceView
from ganad_clinic.app.loss_plot import LossPlot
from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.workers import BackgroundCall, TaskRunner
from ganad_clinic.model.bundle import BundleError, read_metadata
from ganad_clinic.model.trainer import TrainConfig, TrainProgress
from ganad_clinic.screening.retrain import (
    Candidate,
    GatheredSamples,
    RetrainError,
    config_for,
    gather_samples,
    retrain,
    split_samples,
)
from ganad_clinic.store import ModelVersion, Store, StoreError

MAX_STEPS = 100_000


@dataclass(frozen=True)
class Gathering:
    """What the dialog reads off the main thread: the active model (the parent) and the samples."""

    parent: ModelVersion | None
    metadata: dict
    parent_error: str
    samples: GatheredSamples | None
    samples_error: str


def gather(store: Store, folder: Path | None) -> Gathering:
    parent, metadata, parent_error = None, {}, ""
    try:
        parent = store.active_model_version()
        if parent is not None:
            metadata = read_metadata(parent.bundle_path)
    except (StoreError, BundleError) as error:
        parent, parent_error = None, f"Cannot read the active model: {error}"
    try:
        return Gathering(parent, metadata, parent_error, gather_samples(store, folder), "")
    except (RetrainError, StoreError) as error:
        return Gathering(parent, metadata, parent_error, None, str(error))


def clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class RetrainDialog(QDialog):
    model_registered = Signal()
    model_activated = Signal()

    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Retrain on local normal samples")
        self.resize(720, 640)
        self.store, self.home, self.settings = store, home, settings
        self.runner: TaskRunner | None = None
        self._training = False
        self.candidate: Candidate | None = None
        self.parent_model: ModelVersion | None = None
        self.parent_metadata: dict = {}
        self.samples: GatheredSamples | None = None
        self.gatherer = BackgroundCall(lambda folder: gather(store, folder), self)
        self.gatherer.returned.connect(self._gathered)
        self.gatherer.finished.connect(self._gather_finished)

        self.data_summary = QLabel("")
        self.data_summary.setWordWrap(True)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("optional: a folder of normal images")
        self.folder.editingFinished.connect(self.update_summary)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.steps = QSpinBox()
        self.steps.setRange(1, MAX_STEPS)
        self.parameters = QLabel("")
        self.parameters.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Training data", self.data_summary)
        form.addRow("Extra normals", folder_row)
        form.addRow("Training steps", self.steps)
        form.addRow("Score weights", self.parameters)

        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress_label = QLabel("")
        self.plot = LossPlot()
        self.result_note = QLabel("")
        self.result_note.setWordWrap(True)
        self.acceptance = AcceptanceView(store, home, settings, self)
        self.acceptance.activated.connect(self._activated)
        self.acceptance.setVisible(False)
        self.activate_button = self.acceptance.activate_button
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        end_row = QHBoxLayout()
        end_row.addStretch(1)
        end_row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.result_note)
        layout.addWidget(self.acceptance)
        layout.addLayout(end_row)
        self.steps.setValue(TrainConfig.steps)
        self.update_summary()

    @property
    def running(self) -> bool:
        """Training runs, or its last signals (the outcome, then done) are still on their way."""
        return self._training or (self.runner is not None and self.runner.running)

    @property
    def gathering(self) -> bool:
        """The active model and the samples are being read."""
        return self.gatherer.busy

    def _gathered(self, gathering: Gathering) -> None:
        previous = self.parent_model
        self.parent_model, self.parent_metadata = gathering.parent, gathering.metadata
        if gathering.parent_error:
            self.progress_label.setText(gathering.parent_error)
        if previous is None or gathering.parent is None or previous.id != gathering.parent.id:
            self._show_parent()
        self.samples = gathering.samples
        if gathering.samples is None:
            self.data_summary.setText(gathering.samples_error)
        else:
            self._show_samples(gathering.samples)

    def _gather_finished(self) -> None:
        self._set_running(self.running)

    def _show_parent(self) -> None:
        """The active model is the parent: its recorded training config is the starting point."""
        if self.parent_model is None:
            self.start_button.setEnabled(False)
            self.progress_label.setText(self.progress_label.text() or "No model is active: import one first.")
            self.steps.setValue(TrainConfig.steps)
            return
        recorded = config_for(self.parent_metadata, lam=self.settings.lam, beta=self.settings.beta)
        self.steps.setValue(recorded.steps)
        active = self.parent_metadata["ganad"]["score"]
        self.parameters.setText(f"λ = {self.settings.lam:g}, β = {self.settings.beta:g} (from Model → Training and "
                                f"model settings; the active model {self.parent_model.version} uses "
                                f"λ = {active['lambda']:g}, β = {active['beta']:g})")

    def _extra_folder(self) -> Path | None:
        text = self.folder.text().strip()
        return Path(text) if text else None

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder of normal images")
        if chosen:
            self.folder.setText(chosen)
            self.update_summary()

    def update_summary(self) -> None:
        """Read the active model and gather the samples again, on the worker."""
        self.data_summary.setText("Gathering the samples…")
        self.start_button.setEnabled(False)
        self.gatherer.request(self._extra_folder())

    def _show_samples(self, gathered: GatheredSamples) -> None:
        text = (f"{gathered.reviewed_normals} slides reviewed as normal, {gathered.folder_normals} images from the "
                f"folder; {len(gathered.anomalies)} confirmed anomalies (validation only)")
        if gathered.missing:
            text += f"; {gathered.missing} reviewed slides skipped (file no longer found)"
        self.data_summary.setText(text)

    def start(self) -> None:
        """Train on the samples shown (gathered when the dialog opened or the folder changed)."""
        if self.running or self.gathering or self.parent_model is None:
            return
        try:
            if self.samples is None:
                raise RetrainError(self.data_summary.text())
            split = split_samples(self.samples)
        except RetrainError as error:
            QMessageBox.warning(self, "Retrain", str(error))
            return
        config = config_for(self.parent_metadata, lam=self.settings.lam, beta=self.settings.beta,
                            steps=self.steps.value())
        store, home, parent, actor = self.store, self.home, self.parent_model, self.settings.actor()
        field_scale = self.settings.field_scale

        def work(report, cancel) -> Candidate:
            return retrain(store, home, split, config, parent=parent, actor=actor, field_scale=field_scale,
                           progress=report, cancel=cancel)

        self.candidate = None
        self.acceptance.show_check(None)
        self.acceptance.setVisible(False)
        self.result_note.setText("")
        self.plot.clear(config.steps)
        self.progress.setRange(0, config.steps)
        self.progress.setValue(0)
        self.progress_label.setText(f"Preparing {len(split.train)} training and {len(split.val)} validation slides…")
        self.runner = TaskRunner(work, self)
        self.runner.task.progress.connect(self._on_progress)
        self.runner.task.succeeded.connect(self._on_trained)
        self.runner.task.failed.connect(self._on_failed)
        self.runner.task.cancelled.connect(self._on_cancelled)
        self.runner.task.done.connect(self._on_done)
        self._training = True
        self._set_running(True)
        self.runner.start()

    def cancel(self) -> None:
        if self.runner is not None and self.running:
            self.runner.cancel()
            self.progress_label.setText("Cancelling…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and not self.gathering and self.parent_model is not None)
        self.cancel_button.setEnabled(running)
        self.steps.setEnabled(not running)
        self.folder.setEnabled(not running)

    def _on_progress(self, progress: TrainProgress) -> None:
        self.progress.setValue(progress.step)
        self.plot.add(progress.step, progress.losses)
        validation = ("" if progress.validation is None
                      else f" · validation {progress.validation_name} {progress.validation:.3f}")
        self.progress_label.setText(f"Step {progress.step} / {progress.total_steps} · epoch {progress.epoch} · "
                                    f"time left {clock(progress.seconds_left)}{validation}")

    def _on_trained(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.progress.setValue(self.progress.maximum())
        self.progress_label.setText(f"Candidate {candidate.model.version} registered (not active).")
        self.result_note.setText(
            f"Its validation figures rest on {candidate.n_val_normal} normal and {candidate.n_val_anomalous} "
            f"anomalous slides ({candidate.threshold_rule}); the acceptance check below judges it against the "
            f"active model {candidate.parent.version} on the held-out evidence (it was audited).")
        self.acceptance.setVisible(True)
        self.acceptance.show_result(candidate.check)
        self.model_registered.emit()

    def _on_failed(self, message: str) -> None:
        self.progress_label.setText("Training failed.")
        QMessageBox.critical(self, "Retrain", f"Training failed: {message}")

    def _on_cancelled(self) -> None:
        self.progress_label.setText("Training cancelled; nothing was saved or registered.")

    def _on_done(self) -> None:
        self._training = False
        self._set_running(False)

    def _activated(self, model: ModelVersion) -> None:
        self.result_note.setText(f"Model {model.version} is now active; roll back in Models if needed.")
        self.model_activated.emit()

    def stop_work(self, timeout_ms: int = 60_000) -> bool:
        """Cancel a running training and wait for its thread (nothing is saved), and end the gatherer's."""
        gatherer_stopped = self.gatherer.stop(timeout_ms)
        acceptance_stopped = self.acceptance.stop_work(timeout_ms)
        training_stopped = self.runner is None or self.runner.stop(timeout_ms)
        if training_stopped:
            self._training = False
        return training_stopped and gatherer_stopped and acceptance_stopped

    def closeEvent(self, event) -> None:
        if self.running:
            answer = QMessageBox.question(self, "Retrain", "Training is running. Cancel it and close?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            if self.runner is not None:
                self.runner.stop()
        self.gatherer.stop(for_good=False)  # opened again: it gathers again
        super().closeEvent(event)
