from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from ganad_clinic.app.inspection import Inspection, inspect_slide  # noqa: E402
from ganad_clinic.app.main_window import MainWindow  # noqa: E402
from ganad_clinic.app.settings import AppSettings  # noqa: E402
from ganad_clinic.screening.registry import import_bundle, load_registered  # noqa: E402
from ganad_clinic.screening.users import add_user  # noqa: E402
from ganad_clinic.store import ModelVersion, SlideSummary, Store, User, UserRole, open_store  # noqa: E402
from tests.app.builders import score_slide, train_app_bundle, write_field  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The machine is shared: one torch thread here, and the previous count back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def app_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return train_app_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_store(home=home) as opened:
        yield opened


@pytest.fixture
def model(store: Store, app_bundle: Path, home: Path) -> ModelVersion:
    return import_bundle(store, app_bundle, home, actor="tester").model


@pytest.fixture
def user(store: Store) -> User:
    """The signed-in user of the windows the tests make: a supervisor."""
    return add_user(store, "drtest", "Dr Test", UserRole.SUPERVISOR, "test-password", actor="admin")


@pytest.fixture
def settings(tmp_path: Path, user: User) -> AppSettings:
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.rescan_seconds = 2.0
    settings.signed_in = user  # as the sign-in window leaves it
    return settings


@pytest.fixture
def make_window(qtbot, store: Store, home: Path, settings: AppSettings, user: User) -> Iterator:
    """Build the main window; it is shut down (workers and service stopped) after the test."""
    windows: list[MainWindow] = []

    def make(signed_in: User | None = None) -> MainWindow:
        window = MainWindow(store, home, settings, user=signed_in or user, torch_threads=1)
        qtbot.addWidget(window)
        with qtbot.waitActive(window):  # keyboard shortcuts work in the active window only
            window.show()
            window.activateWindow()
        windows.append(window)
        qtbot.waitUntil(lambda: not window.refreshing, timeout=30_000)  # the queue is read on a worker
        return window

    yield make
    for window in windows:
        window.shutdown()


@pytest.fixture
def inspected_field(store: Store, model: ModelVersion, tmp_path: Path) -> tuple[SlideSummary, Inspection]:
    """A synthetic field (six white cells, some flagged) scored as the service scores it, and its
    inspection recomputed as the app's worker recomputes it."""
    path = write_field(tmp_path / "slides", 0, "field-Im001_1.png")
    score = score_slide(store, model, path)
    inspection = inspect_slide(score.slide_id, path, load_registered(model), score, store.list_cells(score.id))
    [summary] = [summary for summary in store.list_slides() if summary.slide.id == score.slide_id]
    return summary, inspection
