"""Benchmark of the desktop app's responsiveness with a large database: the longest the Qt main
thread goes without running its event loop while the queue loads and while it refreshes.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m training.bench_gui_stall [--slides 100000]

A SQLite database is filled with `--slides` scored slides in one transaction (SQL through the
ORM's bulk insert, not the service: no files, no model), a third of them reviewed. The main window
is opened offscreen; a QTimer ticking every 10 ms records the gaps between its ticks. Figures:

- `load`: from the window's construction until the whole queue is in the table; the stall is
  the longest gap in that time (the constructor included, as `construct_s`);
- `refresh`: while a background thread adds `--rate` scored slides a second (through the Store,
  as the screening service would) for `--seconds` seconds, with a refresh asked for every second
  (as the service's "slide scored" events ask for one); the stall is the longest gap, and each
  refresh's time from request to its rows merged is reported.

The model registered for the scores is left inactive, so no screening service starts. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from ganad_clinic.app.main import LongLivedFreezer, configure_process
from ganad_clinic.app.main_window import MainWindow
from ganad_clinic.app.settings import AppSettings
from ganad_clinic.store import ModelVersion, Review, ReviewDecision, Score, Slide, SlideStatus, Store, open_store
from ganad_clinic.store.chain import HASH_COLUMN, chained_columns, row_hash

TICK_MS = 10


class StallMeter:
    """Ticks every TICK_MS on the main thread; the largest gap between ticks beyond the interval."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.reset()

    def reset(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.gaps_over_50ms = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = now - self.last
        self.last = now
        self.max_gap = max(self.max_gap, gap)
        self.gaps_over_50ms += gap > 0.05

    def start(self) -> None:
        self.reset()
        self.timer.start()

    def stall_ms(self) -> float:
        return round(max(0.0, self.max_gap * 1000 - TICK_MS), 1)


def chained(table, rows: list[dict]) -> list[dict]:
    """The rows with their hash chain (store.chain), as the Store would write them one by one."""
    columns = chained_columns(table)
    previous = None
    for row in rows:
        values = {name: row.get(name) for name in columns}
        row[HASH_COLUMN] = previous = row_hash(table.name, previous, values)
    return rows


def fill(store: Store, n: int, seed: int = 0) -> tuple[int, float]:
    """`n` scored slides (a third reviewed), in one transaction; returns the model's id and seconds."""
    start = time.perf_counter()
    model = store.register_model_version("bench-1.0.0", "/nonexistent/bench-bundle", "0" * 64, actor="bench")
    rng = random.Random(seed)
    first_seen = datetime.now(UTC) - timedelta(days=30)
    with Session(store.engine) as session, session.begin():
        session.execute(update(ModelVersion).values(active=False))  # no service starts in the window
        session.execute(insert(Slide), [
            {"id": i, "path": f"/inbox/bench-{i:06d}.png", "file_name": f"bench-{i:06d}.png",
             "sha256": f"{i:064x}", "size_bytes": 100_000, "first_seen": first_seen + timedelta(seconds=20 * i),
             "source_folder": "/inbox", "width": 257, "height": 257, "status": SlideStatus.SCORED,
             "archived_path": f"/archive/bench-{i:06d}.png"}
            for i in range(1, n + 1)
        ])
        scores = []
        for i in range(1, n + 1):
            value = rng.gauss(1.0, 0.4)
            scores.append({"id": i, "slide_id": i, "model_version_id": model.id, "model_version": model.version,
                           "model_sha256": model.sha256, "score": value, "l_d": 0.1, "l_r": 0.2, "l_l": 0.3,
                           "threshold": 1.5, "flagged": value >= 1.5, "duration_seconds": 0.05,
                           "created_at": first_seen})
        session.execute(insert(Score), chained(Score.__table__, scores))
        decisions = (ReviewDecision.NORMAL, ReviewDecision.ANOMALY_CONFIRMED, ReviewDecision.SECOND_READ)
        reviews = [{"id": k + 1, "slide_id": i, "reviewer": "bench", "decision": decisions[k % 3], "note": "",
                    "created_at": first_seen} for k, i in enumerate(range(1, n + 1, 3))]
        session.execute(insert(Review), chained(Review.__table__, reviews))
    return model.id, time.perf_counter() - start


def add_slides(store: Store, model_id: int, stop: threading.Event, rate: float, added: list[int]) -> None:
    """As the screening service would: record a slide, then its score, `rate` a second."""
    rng = random.Random(1)
    n = 0
    while not stop.is_set():
        n += 1
        recorded = store.record_slide(f"/inbox/new-{n:06d}.png", f"new{n:061x}", 100_000, "/inbox",
                                      width=257, height=257)
        value = rng.gauss(1.0, 0.4)
        store.add_score(recorded.slide.id, model_id, score=value, l_d=0.1, l_r=0.2, l_l=0.3, threshold=1.5,
                        flagged=value >= 1.5, duration_seconds=0.05)
        added.append(recorded.slide.id)
        stop.wait(1.0 / rate)


def cpu_description() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "torch_cpu_capability": capability,
            "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0], "platform": platform.platform()}


def wait(app: QApplication, condition, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slides", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long slides are added while refreshing")
    parser.add_argument("--rate", type=float, default=10.0, help="slides added a second meanwhile")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the window runs no torch here)")
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the garbage collector as Python sets it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        store = open_store(home=home)
        model_id, fill_s = fill(store, args.slides)
        settings = AppSettings(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        settings.reviewer = "bench"
        meter = StallMeter()
        if not args.no_gc_freeze:
            configure_process(args.threads)  # as the app's entry point does

        meter.start()
        start = time.perf_counter()
        window = MainWindow(store, home, settings, torch_threads=args.threads)
        construct_s = time.perf_counter() - start
        if not args.no_gc_freeze:
            freezer = LongLivedFreezer(window.table_model)
            window.table_model.rowsInserted.connect(freezer)
        window.show()
        loaded = wait(app, lambda: window.loaded and not window.refreshing, 600)
        load_s = time.perf_counter() - start
        app.processEvents()
        load = {"seconds": round(load_s, 2), "construct_s": round(construct_s, 3), "max_stall_ms": meter.stall_ms(),
                "gaps_over_50ms": meter.gaps_over_50ms, "rows": window.table_model.rowCount(), "complete": loaded}

        refresh_times: list[float] = []
        asked: list[float] = []
        window.refresher.started.connect(lambda: asked.append(time.perf_counter()))
        window.refresher.returned.connect(lambda _: refresh_times.append(time.perf_counter() - asked[-1]))
        stop, added = threading.Event(), []
        adder = threading.Thread(target=add_slides, args=(store, model_id, stop, args.rate, added), daemon=True)
        ask = QTimer()
        ask.setInterval(1000)
        ask.timeout.connect(window.refresh)
        meter.start()
        adder.start()
        ask.start()
        end = time.perf_counter() + args.seconds
        wait(app, lambda: time.perf_counter() > end, args.seconds + 5)
        stop.set()
        adder.join()
        ask.stop()
        window.refresh()
        wait(app, lambda: not window.refreshing, 60)
        wait(app, lambda: not window.refreshing, 60)
        refresh = {"seconds": args.seconds, "slides_added": len(added), "refreshes": len(refresh_times),
                   "max_stall_ms": meter.stall_ms(), "gaps_over_50ms": meter.gaps_over_50ms,
                   "refresh_mean_s": round(sum(refresh_times) / max(1, len(refresh_times)), 4),
                   "refresh_max_s": round(max(refresh_times, default=0.0), 4),
                   "rows": window.table_model.rowCount(),
                   "all_added_shown": window.table_model.rowCount() == args.slides + len(added)}
        meter.timer.stop()
        window.shutdown()
        window.close()
        store.close()
    print(json.dumps({"slides": args.slides, "gc_freeze": not args.no_gc_freeze, "fill_s": round(fill_s, 2),
                      "load": load, "refresh": refresh, "machine": cpu_description()}, indent=2))


if __name__ == "__main__":
    main()
