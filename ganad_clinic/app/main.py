"""Start the desktop app: QApplication, settings, the database, the main window.

Errors that reach the event loop are logged and shown in a message box, never as a bare traceback.
This is where the app's process-wide settings are made, once (`configure_process`): torch's
threads and determinism, and the garbage collector's view of the long-lived objects.
"""

from __future__ import annotations

import gc
import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

import torch
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from ganad_clinic.app.main_window import RESOURCES, MainWindow
from ganad_clinic.app.settings import APPLICATION, ORGANIZATION, AppSettings
from ganad_clinic.app.sign_in_dialog import SignInDialog
from ganad_clinic.errors import GanadError
from ganad_clinic.model.device import configure_determinism
from ganad_clinic.screening.service import default_torch_threads
from ganad_clinic.screening.users import sign_in
from ganad_clinic.store import Store, StoreError, User, open_store, resolve_home

log = logging.getLogger(__name__)
ICON = RESOURCES / "icon.png"
FREEZE_GROWTH = 5_000
GC_THRESHOLDS = (50_000, 5, 1_000)
"""Young collections every 50,000 allocations, not 700, and full ones rarely: a worker reading
100,000 summaries makes millions of objects that live on, and with Python's defaults each full
collection they trigger walks all of them, holding the GIL (the window stood still 0.4 s each).
The app makes little cyclic garbage; what there is waits for a full collection a little longer."""


def _show_unexpected(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    log.error("unexpected error\n%s", "".join(traceback.format_exception(kind, error, trace)))
    QMessageBox.critical(None, "GANAD Clinic", f"Something went wrong: {error}\n\nThe details are in the log.")


def configure_process(torch_threads: int | None = None) -> int:
    """The app's process-wide settings, made once before the window opens; returns the threads.

    torch: `torch_threads` (default: the screening service's, `default_torch_threads()`) and
    deterministic kernels. The garbage collector: what is loaded by now (Qt, torch, numpy...) lives
    as long as the process, so it is frozen out of the full collections; `LongLivedFreezer` does
    the same for the queue's rows once they are in. A full collection walks every tracked object
    while holding the GIL: with 100,000 slides in the queue that was a stall of the window of
    several hundred milliseconds each time a worker's read allocated enough to trigger one.
    """
    threads = torch_threads or default_torch_threads()
    torch.set_num_threads(threads)
    configure_determinism()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return threads


class LongLivedFreezer:
    """Keeps the queue's rows (slides are never deleted) out of the full collections: when the
    table has grown by FREEZE_GROWTH rows since the last time, the young garbage is collected and
    everything alive is frozen (what little older garbage there is stays, a bounded cost)."""

    def __init__(self, model) -> None:
        self.model = model
        self.frozen_rows = 0

    def __call__(self, *_: object) -> None:
        rows = self.model.rowCount()
        if rows - self.frozen_rows >= FREEZE_GROWTH:
            gc.collect(1)
            gc.freeze()
            self.frozen_rows = rows


def _sign_in(store: Store, credentials: tuple[str, str] | None) -> User | None:
    """Who uses the app this session (None: they cancelled, or `credentials` were refused); a
    database without users makes its first admin."""
    try:
        if credentials is not None:
            return sign_in(store, *credentials)
        first_admin = not store.list_users()
    except GanadError as error:
        print(f"ganad app: {error}", file=sys.stderr)
        QMessageBox.critical(None, "GANAD Clinic", f"Cannot sign in: {error}")
        return None
    dialog = SignInDialog(store, first_admin=first_admin)
    return dialog.user if dialog.exec() == SignInDialog.DialogCode.Accepted else None


def run(home: str | Path | None = None, db_url: str | None = None, torch_threads: int | None = None,
        credentials: tuple[str, str] | None = None) -> int:
    """Open the window and run until it closes; `home` and `db_url` override the settings, and
    `credentials` (name, password) sign in without the sign-in window."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("GANAD Clinic")
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    settings = AppSettings()
    home_folder = resolve_home(home if home is not None else settings.home)
    try:
        store = open_store(db_url, home_folder)
    except StoreError as error:
        QMessageBox.critical(None, "GANAD Clinic", f"The database cannot be opened: {error}")
        return 2
    sys.excepthook = _show_unexpected
    threads = configure_process(torch_threads)
    with store:
        user = _sign_in(store, credentials)
        if user is None:
            return 0 if credentials is None else 1
        window = MainWindow(store, home_folder, settings, user=user, torch_threads=threads)
        freezer = LongLivedFreezer(window.table_model)
        window.table_model.rowsInserted.connect(freezer)
        app.aboutToQuit.connect(window.shutdown)
        window.show()
        return app.exec()
