"""Start the desktop app: QApplication, settings, the database, the main window.

Errors that reach the event loop are logged and shown in a message box, never as a bare traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from ganad_clinic.app.main_window import RESOURCES, MainWindow
from ganad_clinic.app.settings import APPLICATION, ORGANIZATION, AppSettings
from ganad_clinic.store import StoreError, open_store, resolve_home

log = logging.getLogger(__name__)
ICON = RESOURCES / "icon.png"


def _show_unexpected(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    log.error("unexpected error\n%s", "".join(traceback.format_exception(kind, error, trace)))
    QMessageBox.critical(None, "GANAD Clinic", f"Something went wrong: {error}\n\nThe details are in the log.")


def run(home: str | Path | None = None, db_url: str | None = None, torch_threads: int | None = None) -> int:
    """Open the window and run until it closes; `home` and `db_url` override the settings."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv)
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
    with store:
        window = MainWindow(store, home_folder, settings, torch_threads=torch_threads)
        app.aboutToQuit.connect(window.shutdown)
        window.show()
        return app.exec()
