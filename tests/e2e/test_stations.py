"""Three `ganad watch` stations on one inbox and one PostgreSQL database, as a lab's PCs share a
network folder and a server: 300 distinct files (and 20 copies under other names) delivered as a
scanner would; one station killed with SIGKILL mid-burst, then every station's connections cut
mid-burst (as when the server restarts). Every distinct content is scored exactly once, nothing is
lost, and the killed station's claims are taken over. On SQLite a second station is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ganad_clinic.cli import main
from ganad_clinic.store import SlideStatus, open_store
from tests.screening.helpers import png_bytes, wait_until

N_DISTINCT = 300
N_COPIES = 20  # the same content as earlier files, under other names
STATIONS = ("st-a", "st-b", "st-c")
LEASE = 3.0  # short, so that the takeover is seen within the test


def _watch_command(inbox: Path, url: str, home: Path, station: str) -> list[str]:
    return [sys.executable, "-m", "ganad_clinic", "watch", "--inbox", str(inbox), "--db", url, "--home", str(home),
            "--quiet", "0.1", "--rescan", "2", "--threads", "1", "--station", station, "--lease", str(LEASE)]


def _deliver(inbox: Path, indices: range) -> None:
    """As a scanner writes: a temporary name, then renamed; a copy of an earlier file now and then."""
    for index in indices:
        partial = inbox / f"scan {index:03d}.png.part"
        partial.write_bytes(png_bytes(index))
        partial.rename(inbox / f"scan {index:03d}.png")
        if index % (N_DISTINCT // N_COPIES) == 0:
            (inbox / f"copy of scan {index:03d}.png").write_bytes(png_bytes(index))
        time.sleep(0.004)


def _rows(url: str, sql: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).all())
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    return int(_rows(url, sql)[0][0] or 0)


def test_three_stations_share_a_burst_score_each_content_once_and_take_over_a_killed_ones_claims(
        tmp_path: Path, tiny_bundle: Path, pg_url: str) -> None:
    tag = f"ganad-e2e-{uuid.uuid4().hex[:8]}"  # the stations' connections, to cut them and no one else's
    url = make_url(pg_url).update_query_dict({"application_name": tag}).render_as_string(hide_password=False)
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    assert main(["models", "import", str(tiny_bundle), "--db", url, "--home", str(home)]) == 0
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    stations = {name: subprocess.Popen(_watch_command(inbox, url, home, name), stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, env=environment) for name in STATIONS}
    started = time.monotonic()
    try:
        for process in stations.values():
            assert process.stdout.readline().startswith("watching")
        first = threading.Thread(target=_deliver, args=(inbox, range(N_DISTINCT // 2)))
        first.start()
        wait_until(lambda: _count(url, "SELECT COUNT(*) FROM slides WHERE claimed_by = 'st-b'") > 0
                   and _count(url, "SELECT COUNT(*) FROM scores") >= 30, timeout=120, interval=0.02)
        stations["st-b"].send_signal(signal.SIGKILL)
        killed_at = time.time()
        held_at_kill = {slide_id for (slide_id,) in _rows(url, "SELECT id FROM slides WHERE claimed_by = 'st-b'")}
        first.join()

        second = threading.Thread(target=_deliver, args=(inbox, range(N_DISTINCT // 2, N_DISTINCT)))
        second.start()
        wait_until(lambda: _count(url, "SELECT COUNT(*) FROM scores") >= N_DISTINCT // 2 + 20, timeout=120)
        cut = 0
        for _ in range(3):  # the server going away: every connection of the stations is closed under them
            cut += _count(pg_url, f"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  f"WHERE application_name = '{tag}'")
            time.sleep(0.5)
        second.join()

        expected_files = N_DISTINCT + N_COPIES
        wait_until(lambda: _count(url, "SELECT COUNT(*) FROM slides WHERE status <> 'pending'") == expected_files,
                   timeout=180, interval=0.2)
        elapsed = time.monotonic() - started
    finally:
        for process in stations.values():
            process.send_signal(signal.SIGTERM)
        for process in stations.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    assert stations["st-b"].returncode == -signal.SIGKILL
    for name in ("st-a", "st-c"):
        output = stations[name].stdout.read()
        assert stations[name].returncode == 0, output

    with open_store(url, home) as store:
        summaries = store.list_slides()
        assert len(summaries) == N_DISTINCT + N_COPIES  # nothing lost
        assert all(summary.slide.status is SlideStatus.SCORED and summary.score for summary in summaries)
        with store.engine.connect() as connection:
            per_content = connection.execute(text(
                "SELECT slides.sha256, COUNT(*) FROM scores JOIN slides ON slides.id = scores.slide_id "
                "GROUP BY slides.sha256")).all()
            by_station = dict(connection.execute(text(
                "SELECT station, COUNT(*) FROM scores GROUP BY station")).all())
        assert len(per_content) == N_DISTINCT and {count for _, count in per_content} == {1}  # each content once
        assert sum(1 for summary in summaries if summary.slide.duplicate_of_id is not None) == N_COPIES
        takeovers = [event for event in store.list_audit_events("slide.claim_taken_over")
                     if event.details["from"] == "st-b"]
        by_id = {summary.slide.id: summary.slide for summary in summaries}
        to_take_over = {slide_id for slide_id in held_at_kill if by_id[slide_id].duplicate_of_id is None}
        assert to_take_over <= {event.details["slide_id"] for event in takeovers}  # scored by another, taken over
        assert not store.get_station("st-a").stopped or store.list_stations()  # the stations are on record
        assert store.integrity_check() == []
    delays = sorted(event.time.timestamp() - killed_at for event in takeovers)
    print(f"\n{N_DISTINCT + N_COPIES} files ({N_DISTINCT} distinct) in {elapsed:.1f} s by 3 stations; scores by "
          f"station {by_station}; st-b killed holding {len(held_at_kill)} claims, {len(takeovers)} taken over "
          f"{delays[0] if delays else 0:.1f}-{delays[-1] if delays else 0:.1f} s after the kill (lease {LEASE:g} s); "
          f"{cut} connections cut")
    # Liveness, not speed: a claim lapses a lease after the killed station's last heartbeat, and another
    # station takes it at its next look at the file (a lease after it found it held, behind the burst's
    # other files). Seen: 4-6 s alone, up to 11 s beside the other test process.
    assert not delays or delays[-1] < 8 * LEASE


def test_a_second_station_on_one_sqlite_file_is_refused_at_start(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    url = f"sqlite:///{home / 'ganad.db'}"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("GANAD_DB", None)
    first = subprocess.Popen(_watch_command(inbox, url, home, "st-a"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=environment)
    try:
        assert first.stdout.readline().startswith("watching")
        second = subprocess.run(_watch_command(inbox, url, home, "st-b"), capture_output=True, text=True,
                                env=environment, timeout=120)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    assert second.returncode == 1
    assert "station st-a" in second.stderr and "a SQLite file is for one station" in second.stderr
    assert "use a PostgreSQL server" in second.stderr
