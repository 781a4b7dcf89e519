"""Throughput of one, two and three screening stations (`ganad watch --station`) sharing one inbox
and one PostgreSQL database on this machine: files per second from the first file written to the
last result committed, each station with one torch thread.

    .venv/bin/python -m training.bench_stations --pg-url postgresql+psycopg://ganad:ganad@127.0.0.1/ganad_test \
        [--files 300] [--stations 1 2 3]

Each count runs in a fresh schema with a one-step model of the default architecture (its weights do
not matter for speed; see training/bench_screening.py). On a 2-core machine three stations share
two cores: the figures say what the coordination costs, not what three PCs would do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ganad_clinic.cli import main as ganad
from training.bench_large_images import _machine
from training.bench_screening import _bundle, _tiff

LEASE_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", required=True, help="a PostgreSQL database the benchmark may make schemas in")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--stations", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    print(_machine(1), f"; load average {os.getloadavg()[0]:.2f}")
    payloads = [_tiff(index) for index in range(args.files)]
    figures = {}
    with tempfile.TemporaryDirectory(prefix="ganad-stations-") as folder:
        bundle = _bundle(Path(folder) / "bundle", 64)
        for count in args.stations:
            run = figures[count] = _run(Path(folder) / f"run-{count}", bundle, payloads, count, args.pg_url)
            print(f"{count} station{'s' if count > 1 else ''}: {args.files} files in {run['seconds']:.1f} s, "
                  f"{run['files_per_second']:.1f} files/s; scores by station {run['by_station']}")
    print(json.dumps({str(count): value for count, value in figures.items()}))


def _run(root: Path, bundle: Path, payloads: list[bytes], count: int, pg_url: str) -> dict:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    home, inbox = root / "home", root / "inbox"
    inbox.mkdir(parents=True)
    try:
        if ganad(["models", "import", str(bundle), "--db", url, "--home", str(home)]) != 0:
            raise SystemExit("the model could not be imported")
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        stations = [subprocess.Popen(
            [sys.executable, "-m", "ganad_clinic", "watch", "--inbox", str(inbox), "--db", url, "--home", str(home),
             "--threads", "1", "--station", f"bench-{index}", "--lease", str(LEASE_SECONDS)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment) for index in range(count)]
        try:
            for station in stations:
                station.stdout.readline()
            time.sleep(2.0)  # every service registered and scanning
            started = time.monotonic()
            for index, payload in enumerate(payloads):
                (inbox / f"burst {index:04d}.tif").write_bytes(payload)
            engine = create_engine(url)
            with engine.connect() as connection:
                while connection.execute(text("SELECT COUNT(*) FROM slides WHERE status <> 'pending'")).scalar() \
                        < len(payloads):
                    connection.rollback()
                    time.sleep(0.05)
                seconds = time.monotonic() - started
                by_station = {station: count for station, count in connection.execute(
                    text("SELECT station, COUNT(*) FROM scores GROUP BY station"))}
            engine.dispose()
        finally:
            for station in stations:
                station.terminate()
            for station in stations:
                station.wait(60)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return {"seconds": seconds, "files_per_second": len(payloads) / seconds, "by_station": by_station}


if __name__ == "__main__":
    main()
