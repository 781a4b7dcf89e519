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
        self.worker_thread = QThread(self)
        self.task.moveToThread(self.worker_thread)
        self.worker_thread.started.connect(self.task.run)
        # Direct: quit from the worker itself, so a main thread blocked in stop() is not needed.
        self.task.done.connect(self.worker_thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.worker_thread.start()

    def cancel(self) -> None:
        self.task.cancel_event.set()

    @property
    def running(self) -> bool:
        return self.worker_thread.isRunning()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel and wait for the thread to end; returns whether it ended in time."""
        self.cancel()
        self.worker_thread.quit()
        return self.worker_thread.wait(timeout_ms)


class _CallWorker(QObject):
    started = Signal()
    returned = Signal(object)
    errored = Signal(str)
    finished = Signal()

    def __init__(self, function: Callable[..., object]) -> None:
        super().__init__()
        self._function = function

    @Slot(object)
    def run(self, args: tuple) -> None:
        self.started.emit()
        try:
            result = self._function(*args)
        except Exception as error:  # reported through `errored`, never a traceback in the user's face
            log.warning("background call failed: %s", error)
            self.errored.emit(str(error) or type(error).__name__)
        else:
            self.returned.emit(result)
        finally:
            self.finished.emit()


class BackgroundCall(QObject):
    """One function run on request on a thread of its own, napari style: `started`, then
    `returned(value)` or `errored(message)`, then `finished`, all delivered on the main thread.

    A request while a call runs becomes one more call after it, with the latest request's
    arguments (requests in between are dropped: only the newest matters). Calls run one at a time,
    in order, so a function may keep state between calls (the queue's read mark). The thread runs
    only while there is work, so an idle owner can go at any time; `stop()` waits for a running
    call and refuses further requests (unless `for_good=False`).
    """

    started = Signal()
    returned = Signal(object)
    errored = Signal(str)
    finished = Signal()
    _go = Signal(object)

    def __init__(self, function: Callable[..., object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker = _CallWorker(function)
        self.worker_thread = QThread(self)
        self._worker.moveToThread(self.worker_thread)
        self._go.connect(self._worker.run)
        self._worker.started.connect(self.started)
        self._worker.returned.connect(self.returned)
        self._worker.errored.connect(self.errored)
        self._worker.finished.connect(self._call_finished)
        self._busy = False
        self._pending: tuple | None = None
        self._refused = False

    @property
    def busy(self) -> bool:
        """A call is running or asked for."""
        return self._busy or self._pending is not None

    def request(self, *args: object) -> None:
        if self._refused:
            return
        if self._busy:
            self._pending = args
            return
        self._busy = True
        if not self.worker_thread.isRunning():
            self.worker_thread.start()
        self._go.emit(args)

    def _call_finished(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not self._refused:
            self._go.emit(pending)
        else:
            self._busy = False
            self.worker_thread.quit()
            self.worker_thread.wait()  # idle: it ends at once
        self.finished.emit()

    def stop(self, timeout_ms: int = 30_000, *, for_good: bool = True) -> bool:
        """Wait for a running call and end the thread; unless `for_good`, later requests run again."""
        self._refused = for_good
        self._pending = None
        self.worker_thread.quit()
        stopped = self.worker_thread.wait(timeout_ms)
        if stopped:
            self._busy = False
        return stopped
