"""`ganad demo`: the whole product on synthetic slides, headless (what `make demo` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganad_clinic.cli.common import add_command, configure_torch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "demo", arguments=add_arguments,
        help="train on synthetic slides, screen a test set through a watched inbox, report",
        description="Draws a synthetic ALL-IDB-like slide set, trains a model (paper split), registers and "
                    "activates it, delivers the test slides into a watched inbox like a scanner, waits until "
                    "all are scored, prints the results and the AUC, and exports the screening report "
                    "WORKDIR/report.pdf (with report.csv and report_cells.csv beside it; demo-results.csv adds each "
                    "slide's truth).")
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ganad_clinic.screening.demo import QUICK_STEPS
    from ganad_clinic.screening.service import default_torch_threads

    parser.add_argument("--workdir", type=Path, default=Path("demo-work"), help="default %(default)s")
    parser.add_argument("--home", type=Path, help="GANAD Clinic home folder (default WORKDIR/home)")
    parser.add_argument("--quick", action="store_true", help=f"train {QUICK_STEPS} steps only (about a minute in all)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for torch (default {default_torch_threads()}: the cores, at most 4; "
                             "1 is faster on a machine busy with other work)")


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.report import build_report
    from ganad_clinic.screening.demo import run_demo
    from ganad_clinic.screening.service import default_torch_threads
    from ganad_clinic.store import open_store

    threads = args.threads or default_torch_threads()
    configure_torch(threads)  # process-wide, for training and screening alike: set at the entry point
    try:
        result = run_demo(args.workdir, home=args.home, quick=args.quick, threads=threads)
        with open_store(home=result.home) as store:
            report = build_report(store, args.workdir / "report.pdf", since=result.started,
                                  lab="GANAD Clinic demo", operator=f"ganad demo, run by {result.actor}",
                                  csv_path=args.workdir / "report.csv")
    except KeyboardInterrupt:
        print("ganad demo: cancelled", file=sys.stderr)
        return 130
    print(f"report: {report.pdf_path} ({report.pages} pages, {report.counts.flagged} flagged), {report.csv_path} "
          f"and {report.cells_csv_path}")
    return 0
