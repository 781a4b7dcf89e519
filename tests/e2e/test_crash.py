"""`ganad watch` killed with SIGKILL in the middle of a burst, then restarted: every file must end
up scored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ganad_clinic.cli import main
from ganad_clinic.store import SlideStatus, open_store
from tests.screening.helpers import png_bytes, wait_until

N_FILES = 150


def _count_scores(home: Path) -> int:
    with open_store(home=home) as store:
        with store.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT COUNT(*) FROM scores").scalar()


def _count_pending(home: Path) -> int:
    with open_store(home=home) as store:
        with store.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT COUNT(*) FROM slides WHERE status = 'pending'").scalar()


def _watch_command(inbox: Path, home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganad_clinic", "watch", "--inbox", str(inbox), "--home", str(home),
            "--quiet", "0.1", "--threads", "1", *extra]


def test_a_killed_watcher_loses_nothing_and_scores_nothing_twice(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("GANAD_DB", None)
    watcher = subprocess.Popen(_watch_command(inbox, home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=environment)
    try:
        assert watcher.stdout.readline().startswith("watching")  # started: the burst begins now

        def burst() -> None:
            for index in range(N_FILES):
                (inbox / f"burst {index:03d}.png").write_bytes(png_bytes(index))
                time.sleep(0.005)

        writer = threading.Thread(target=burst)
        writer.start()
        # killed with files recorded (a chunk at a time, in one transaction) but not yet scored
        wait_until(lambda: _count_scores(home) >= 20 and _count_pending(home) > 0, timeout=60, interval=0.02)
        watcher.send_signal(signal.SIGKILL)
        scored_at_kill, pending_at_kill = _count_scores(home), _count_pending(home)
        writer.join()
    finally:
        watcher.kill()
        watcher.wait(10)
    assert watcher.returncode == -signal.SIGKILL
    assert scored_at_kill < N_FILES and pending_at_kill > 0  # killed in the middle of the burst

    restarted = subprocess.run(_watch_command(inbox, home, "--once"), capture_output=True, text=True,
                               env=environment, timeout=300)
    assert restarted.returncode == 0, restarted.stderr

    with open_store(home=home) as store:
        summaries = store.list_slides()
        assert sorted(summary.slide.file_name for summary in summaries) == [
            f"burst {index:03d}.png" for index in range(N_FILES)
        ]
        assert all(summary.slide.status is SlideStatus.SCORED and summary.score for summary in summaries)
        with store.engine.connect() as connection:
            per_slide = connection.exec_driver_sql("SELECT slide_id, COUNT(*) FROM scores GROUP BY slide_id").all()
        assert len(per_slide) == N_FILES and {count for _, count in per_slide} == {1}
        assert store.integrity_check() == []
