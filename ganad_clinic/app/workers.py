"""Background work on QThreads: a task runs a plain function and reports through queued signals.

The function gets `report(value)` (emitted as `progress`) and a threading.Event it should check to
stop early. Widgets connect only bound methods of main-thread QObjects, so every signal reaches
them on the main thread. `TaskRunner.stop()` cancels and waits, so a window never destroys a
running thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ganad_clinic.model.trainer import TrainingCancelled

log = logging.getLogger(__name__)

Work = Callable[[Callable[[object], None], threading.Event], object]


class TaskCancelled(Exception):
    """Raised by a task's function when it saw the cancel flag and stopped."""


class Task(QObject):
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, work: Work) -> None:
        super().__init__()
        self._work = work
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            result = self._work(self.progress.emit, self.cancel_event)
        except (TaskCancelled, TrainingCancelled):
            self.cancelled.emit()
        except Exception as error:  # shown to the user as a message, never as a traceback
            log.exception("background task failed")
            self.failed.emit(str(error) or type(error).__name__)
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class TaskRunner(QObject):
    """One task on its own thread; start once, then `stop()` (or let it finish) before dropping it."""

    def __init__(self, work: Work, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.task = Task(work)
        self.thread = QThread(self)
        self.task.moveToThread(self.thread)
        self.thread.started.connect(self.task.run)
        # Direct: quit from the worker itself, so a main thread blocked in stop() is not needed.
        self.task.done.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.task.cancel_event.set()

    @property
    def running(self) -> bool:
        return self.thread.isRunning()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel and wait for the thread to end; returns whether it ended in time."""
        self.cancel()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
