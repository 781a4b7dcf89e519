"""`ganad report`: write the PDF screening report of a period (and its CSV)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from ganad_clinic.cli.common import add_store_options, parse_moment
from ganad_clinic.errors import GanadError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a PDF screening report of a period",
        description="Write a PDF screening report of the slides received in a period: model, summary, score "
                    "histogram, every slide, rejected files, each flagged slide with its heat map, and a "
                    "sign-off block. The file is replaced only when complete.")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.pdf", help="the PDF to write")
    add_store_options(parser)
    parser.add_argument("--since", type=parse_moment, metavar="DATE",
                        help="first day (YYYY-MM-DD) or moment (YYYY-MM-DDTHH:MM), local time")
    parser.add_argument("--until", type=parse_moment, metavar="DATE",
                        help="last day, included (YYYY-MM-DD), or moment, excluded (YYYY-MM-DDTHH:MM)")
    parser.add_argument("--folder", type=Path, metavar="DIR", help="only slides received in this inbox")
    parser.add_argument("--flagged-only", action="store_true", help="only flagged slides")
    parser.add_argument("--accession", metavar="ACCESSION",
                        help="one specimen's report: its images, and its latest signature in the sign-off block")
    parser.add_argument("--lab", default="", metavar="NAME", help="laboratory name printed at the top")
    parser.add_argument("--operator", metavar="NAME", help="who prints the report (default: your user name)")
    parser.add_argument("--csv", action="store_true",
                        help="also write the slide table to FILE.csv and its cells to FILE_cells.csv")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.report import build_report
    from ganad_clinic.report.content import period_bounds
    from ganad_clinic.store import open_store

    start, end = period_bounds(args.since, args.until)
    if start is not None and end is not None and start >= end:
        print("ganad report: the period is empty: --since is not before --until", file=sys.stderr)
        return 2
    csv_path = args.out.with_suffix(".csv") if args.csv else None
    if csv_path == args.out:
        print("ganad report: --out must not end in .csv when --csv is given", file=sys.stderr)
        return 2
    folder = None if args.folder is None else args.folder.expanduser().absolute()
    try:
        with open_store(args.db_url, args.home) as store:
            specimen = None if args.accession is None else store.get_specimen(args.accession)
            summary = build_report(
                store, args.out, since=args.since, until=args.until, folder=folder,
                flagged_only=args.flagged_only, lab=args.lab, operator=_operator(args.operator), csv_path=csv_path,
                specimen=specimen,
            )
    except GanadError as error:
        print(f"ganad report: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"ganad report: cannot write the report: {error}", file=sys.stderr)
        return 1
    counts = summary.counts
    print(f"wrote {summary.pdf_path} ({_count(summary.pages, 'page')}): {_count(counts.slides, 'slide')}, "
          f"{counts.flagged} flagged, {counts.rejected} rejected, {counts.flags_awaiting_review} awaiting review"
          + (" (empty period)" if summary.is_empty else ""))
    if summary.csv_path:
        print(f"wrote {summary.csv_path} (one line per slide) and {summary.cells_csv_path} (one line per cell)")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _operator(given: str | None) -> str:
    if given is not None:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""

