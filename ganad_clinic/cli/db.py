"""`ganad db upgrade|current|verify`: migrate the results database, say which schema it has, or
check that it is as GANAD Clinic wrote it."""

from __future__ import annotations

import argparse
import sys

from ganad_clinic.cli.common import add_store_options
from ganad_clinic.errors import GanadError
from ganad_clinic.store import open_store, resolve_url
from ganad_clinic.store.engine import display_url
from ganad_clinic.store.migrate import database_revisions, grant_everyday_access, head_revision, refuse_newer_database
from ganad_clinic.store.verify import verify_database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="manage the results database")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="create the database or migrate it to this version's schema")
    upgrade.add_argument(
        "--new", action="store_true",
        help="create a new, empty database even where models or heat maps show that one existed",
    )
    upgrade.add_argument(
        "--grant-to", metavar="ROLE",
        help="PostgreSQL: let ROLE, the application's everyday role, read and add results (and nothing more)",
    )
    current = actions.add_parser(
        "current", help="show the database's schema revision without changing it (exit 1 unless up to date)"
    )
    verify = actions.add_parser(
        "verify",
        help="check the hash chains, the guarding triggers and the slides without changing anything "
             "(exit 1 naming what is wrong)",
    )
    for action in (upgrade, current, verify):
        add_store_options(action)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        url = resolve_url(args.db_url, args.home)
        if args.db_action == "upgrade":
            return _upgrade(url, args.home, create=args.new, grant_to=args.grant_to)
        if args.db_action == "verify":
            return _verify(url)
        return _current(url)
    except GanadError as error:
        print(f"ganad db {args.db_action}: {error}", file=sys.stderr)
        return 1


def _upgrade(url: str, home: str | None, *, create: bool, grant_to: str | None) -> int:
    with open_store(url, home, create=create) as store:
        if grant_to:
            grant_everyday_access(store.engine, url, grant_to)
            print(f"role {grant_to} may now read and add results in {display_url(url)}")
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


def _verify(url: str) -> int:
    verification = verify_database(url)
    if not verification.ok:
        for problem in verification.problems:
            print(f"ganad db verify: {problem}", file=sys.stderr)
        return 1
    print(verification.summary())
    return 0
