"""`ganad watch`: screen every slide dropped into one or more inbox folders, one line per file."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganad_clinic.cli.common import add_command, add_field_scale, add_store_options, configure_torch
from ganad_clinic.errors import GanadError

if TYPE_CHECKING:
    from ganad_clinic.screening.drift import DriftState
    from ganad_clinic.screening.events import SlideRejected, SlideScored
    from ganad_clinic.screening.service import ScreeningService
    from ganad_clinic.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "watch", arguments=add_arguments, help="screen the slides dropped into inbox folders",
        description="Score every complete image file in the inbox folders exactly once with the active model "
                    "(or --bundle), keep every result in the database and write a heat map per slide. Files "
                    "still being written, hidden files and temporary names (.part, .tmp, .crdownload) wait; "
                    "files that cannot be read are recorded as rejected with the reason. Ctrl-C stops.")
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ganad_clinic.model.device import DEVICES
    from ganad_clinic.screening.ingest import DEFAULT_GRACE_SECONDS, DEFAULT_LEASE_SECONDS
    from ganad_clinic.screening.service import DEFAULT_QUIET_SECONDS, DEFAULT_RESCAN_SECONDS, default_torch_threads

    parser.add_argument("--inbox", action="append", required=True, type=Path, metavar="DIR",
                        help="folder to watch (repeat for several)")
    add_store_options(parser)
    parser.add_argument("--bundle", type=Path, help="score with this bundle (registered if new) instead of "
                                                    "the active model")
    parser.add_argument("--once", action="store_true", help="score what is there now, then exit")
    parser.add_argument("--poll", action="store_true", help="poll the folders (for network shares)")
    parser.add_argument("--flat", action="store_true",
                        help="only files directly in the inboxes (by default subfolders too: a subfolder directly "
                             "under an inbox is one specimen)")
    parser.add_argument("--accession-pattern", metavar="REGEX",
                        help="name each file's specimen by this pattern's group accession, e.g. "
                             "'^(?P<accession>[A-Z]+-\\d+)_' (files it does not match: by folder)")
    parser.add_argument("--archive", type=Path, metavar="DIR",
                        help="move each file here once its result is saved (rejected ones to DIR/rejected)")
    parser.add_argument("--rescore", action="store_true",
                        help="score again content whose current score came from another model")
    parser.add_argument("--quiet", type=float, default=DEFAULT_QUIET_SECONDS, metavar="SECONDS",
                        help="a file is complete once unchanged this long (default %(default)s)")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS, metavar="SECONDS",
                        help="a file that looks unfinished (no end marker, not readable yet) waits until "
                             "unchanged this long before it is judged (default %(default)s)")
    parser.add_argument("--rescan", type=float, default=DEFAULT_RESCAN_SECONDS, metavar="SECONDS",
                        help="full rescan interval, for lost events (default %(default)s)")
    add_field_scale(parser)
    parser.add_argument("--station", default=None, metavar="NAME",
                        help="this station's name, stored with every score (default: the host name); "
                             "several stations on one PostgreSQL database share the work")
    parser.add_argument("--lease", type=float, default=DEFAULT_LEASE_SECONDS, metavar="SECONDS",
                        help="a station's claim on a slide lapses this long after its last heartbeat, and another "
                             "station takes the slide over (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for torch (default {default_torch_threads()}: the cores, at most 4)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the model scores (default auto: a CUDA GPU when there is one)")


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.names import path_text
    from ganad_clinic.screening.service import (
        ScreeningService,
        ServiceConfig,
        default_station,
        default_torch_threads,
    )
    from ganad_clinic.store import open_store
    from ganad_clinic.store.engine import display_url

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    for inbox in args.inbox:
        if not inbox.is_dir():
            print(f"ganad watch: inbox {inbox} does not exist or is not a folder", file=sys.stderr)
            return 2
    try:
        store = open_store(args.db_url, args.home)
    except GanadError as error:
        print(f"ganad watch: {error}", file=sys.stderr)
        return 2
    with store:
        try:
            version = _model_version(store, args)
            config = ServiceConfig(
                tuple(args.inbox), home=args.home, recursive=not args.flat, poll=args.poll,
                accession_pattern=args.accession_pattern,
                quiet_seconds=args.quiet, grace_seconds=args.grace, rescan_seconds=args.rescan,
                archive=args.archive, rescore=args.rescore,
                model_version=version, field_scale=args.field_scale,
                torch_threads=args.threads or default_torch_threads(), device=args.device,
                station=args.station or default_station(), lease_seconds=args.lease,
            )
        except GanadError as error:
            print(f"ganad watch: {error}", file=sys.stderr)
            return 2
        configure_torch(config.torch_threads)  # process-wide: set here, at the entry point, not by the service
        service = ScreeningService(store, config, on_scored=_print_scored, on_rejected=_print_rejected,
                                   on_error=lambda message: print(f"ganad watch: {message}", file=sys.stderr),
                                   on_drift=_print_drift)
        inboxes = ", ".join(path_text(inbox) for inbox in config.inboxes)
        print(f"watching {inboxes} -> {display_url(store.url)}; model {version or 'active'}; station {config.station}"
              f"{'; once' if args.once else '; Ctrl-C stops'}", flush=True)
        return _serve(service, args.once)


def _model_version(store: Store, args: argparse.Namespace) -> str:
    """The registry version to score with: --bundle's (imported if new), else the active one."""
    from ganad_clinic.screening.registry import current_actor, find_model_version, import_bundle

    if args.bundle is None:
        return find_model_version(store, None).version
    imported = import_bundle(store, args.bundle, args.home, actor=current_actor())
    state = "registered as" if imported.created else "already registered as"
    print(f"bundle {args.bundle} {state} model {imported.model.version}", flush=True)
    return imported.model.version


def _serve(service: ScreeningService, once: bool) -> int:
    """Run until done (--once), Ctrl-C or SIGTERM; stop cleanly, finishing the slide in hand."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: service.request_stop())
    service.start()
    try:
        while not service.wait_stopped(0.2):
            if once and service.wait_until_idle(0.2):
                break
    except KeyboardInterrupt:
        print("ganad watch: stopping", file=sys.stderr)
    finally:
        service.stop()
        signal.signal(signal.SIGTERM, previous)
    if service.error is not None:
        print(f"ganad watch: {service.error}", file=sys.stderr)
        return 1
    return 0


def _print_scored(event: SlideScored) -> None:
    from ganad_clinic.screening.events import Outcome
    from ganad_clinic.screening.names import path_text

    flag = "FLAGGED" if event.flagged else "normal"
    note = {Outcome.SCORED: "", Outcome.RESCORED: f"  (re-scored with model {event.model_version})",
            Outcome.DUPLICATE: f"  (same content as slide {event.score_slide_id})",
            Outcome.KNOWN: "  (scored before)"}[event.outcome]
    warning = f"  WARNING: {event.warning}" if event.warning else ""
    print(f"{event.outcome.value:<9} {path_text(event.path)}\t{event.score:.4f}\t{flag}{note}{warning}", flush=True)


def _print_rejected(event: SlideRejected) -> None:
    from ganad_clinic.screening.names import path_text

    note = "  (rejected before)" if event.known else ""
    print(f"{'rejected':<9} {path_text(event.path)}\t{event.reason}{note}", flush=True)


def _print_drift(state: DriftState) -> None:
    """The drift alarm raised or cleared, as a line among the slides' (the audit trail keeps it too)."""
    print(f"{'DRIFT' if state.alarm else 'drift ok':<9} {state.message}", flush=True)
