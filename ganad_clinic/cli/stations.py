"""`ganad stations`: the screening stations seen on this database, their last heartbeat and what
they hold (slides claimed and not yet committed)."""

from __future__ import annotations

import argparse
import json
import sys

from ganad_clinic.cli.common import add_store_options
from ganad_clinic.errors import GanadError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stations", help="the screening stations on this database", description=__doc__)
    add_store_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per station")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.ingest import DEFAULT_LEASE_SECONDS
    from ganad_clinic.store import open_store
    from ganad_clinic.store.models import utc_now

    try:
        with open_store(args.db_url, args.home) as store:
            stations = store.list_stations()
    except GanadError as error:
        print(f"ganad stations: {error}", file=sys.stderr)
        return 1
    now = utc_now()
    for station, held in stations:
        age = (now - station.heartbeat_at).total_seconds()
        state = "stopped" if station.stopped else "live" if age < DEFAULT_LEASE_SECONDS else "gone (no heartbeat)"
        if args.json:
            print(json.dumps({"name": station.name, "host": station.host, "pid": station.pid, "state": state,
                              "started_at": station.started_at.isoformat(),
                              "heartbeat_at": station.heartbeat_at.isoformat(), "holds": held}))
        else:
            print(f"{station.name}\t{state}\t{station.host} (process {station.pid})\tlast heartbeat {age:.0f} s ago"
                  f"\tholds {held} slide{'s' if held != 1 else ''}")
    if not stations and not args.json:
        print("no station has screened into this database yet")
    return 0
