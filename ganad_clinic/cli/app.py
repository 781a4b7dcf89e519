"""`ganad app`: open the desktop app. Qt is imported only when the command runs, so every other
command works on a machine without a display."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="open the desktop app",
        description="Open the GANAD Clinic window: the review queue over the database, the watched folders "
                    "(screened while the window is open), the viewer, retraining, models and reports.")
    parser.add_argument("--db", dest="db_url", metavar="URL", help="SQLAlchemy URL (default: $GANAD_DB)")
    parser.add_argument("--home", metavar="DIR",
                        help="GANAD Clinic home folder (default: the app's setting, else $GANAD_HOME)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--user", metavar="NAME",
                        help="sign in as NAME without the sign-in window (with --password-stdin)")
    parser.add_argument("--password-stdin", action="store_true", help="read --user's password from standard input")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.app.main import run as run_app  # sets torch's process-wide state (configure_process)
    from ganad_clinic.cli.common import read_passwords

    if (args.user is None) != (not args.password_stdin):
        raise SystemExit("ganad app: --user and --password-stdin go together")
    credentials = None if args.user is None else (args.user, read_passwords(1)[0])
    return run_app(home=args.home, db_url=args.db_url, torch_threads=args.threads, credentials=credentials)
