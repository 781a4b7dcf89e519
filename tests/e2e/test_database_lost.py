"""The database file deleted while the service runs: SQLite would go on writing into the deleted
file, and the service reported "scored" for results stored nowhere. It must stop and say so, and
report nothing it could not keep."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ganad_clinic.cli import main
from ganad_clinic.screening import ServiceConfig
from ganad_clinic.store.errors import DatabaseLostError
from tests.screening.helpers import Collector, screening, wait_until, write_png


def _delete_database(home: Path) -> None:
    for name in ("ganad.db", "ganad.db-wal", "ganad.db-shm"):
        (home / name).unlink(missing_ok=True)


def test_the_service_stops_when_its_database_is_deleted(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    write_png(inbox / "before.png", 1)
    collector = Collector()
    stopped = threading.Event()
    with screening(tiny_bundle, ServiceConfig((inbox,), home=home, quiet_seconds=0.1, torch_threads=1), collector,
                   on_stopped=lambda error: stopped.set()) as service:
        wait_until(lambda: "before.png" in collector.names())
        _delete_database(home)
        write_png(inbox / "after.png", 2)
        assert stopped.wait(30)  # stopped by itself: not retrying forever
    assert isinstance(service.error, DatabaseLostError)
    assert [event.path.name for event in collector.scored] == ["before.png"]  # nothing reported unsaved
    assert any("screening stopped" in message and "deleted or replaced" in message for message in collector.errors)


def test_watch_exits_with_an_error_when_its_database_is_deleted(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    write_png(inbox / "before.png", 1)
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("GANAD_DB", None)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ganad_clinic", "watch", "--inbox", str(inbox), "--home", str(home),
         "--quiet", "0.1", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        assert watcher.stdout.readline().startswith("watching")
        first = watcher.stdout.readline()
        assert first.startswith("scored") and "before.png" in first
        _delete_database(home)
        write_png(inbox / "after.png", 2)
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
        watcher.wait(10)
    assert watcher.returncode == 1
    assert "after.png" not in out
    assert "deleted or replaced" in err
