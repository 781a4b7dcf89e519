"""`ganad db upgrade|current`: migrate the results database, or say which schema it has."""

from __future__ import annotations

import argparse
import sys

from ganad_clinic.store import StoreError, open_store, resolve_url
from ganad_clinic.store.engine import display_url
from ganad_clinic.store.migrate import database_revisions, head_revision, refuse_newer_database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="manage the results database")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="create the database or migrate it to this version's schema")
    current = actions.add_parser(
        "current", help="show the database's schema revision without changing it (exit 1 unless up to date)"
    )
    for action in (upgrade, current):
        action.add_argument("--db", dest="db_url", metavar="URL", help="SQLAlchemy URL (default: $GANAD_DB)")
        action.add_argument("--home", metavar="DIR", help="GANAD Clinic home folder (default: $GANAD_HOME)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        url = resolve_url(args.db_url, args.home)
        if args.db_action == "upgrade":
            return _upgrade(url)
        return _current(url)
    except StoreError as error:
        print(f"ganad db {args.db_action}: {error}", file=sys.stderr)
        return 1


def _upgrade(url: str) -> int:
    with open_store(url):
        pass
    print(f"database {display_url(url)} is at revision {head_revision()} (up to date)")
    return 0


def _current(url: str) -> int:
    refuse_newer_database(url)
    revisions = database_revisions(url)
    head = head_revision()
    if revisions == (head,):
        print(f"database {display_url(url)} is at revision {head} (up to date)")
        return 0
    found = ", ".join(revisions) or "none"
    print(f"database {display_url(url)} is at revision {found}; this version needs {head}: run `ganad db upgrade`")
    return 1
