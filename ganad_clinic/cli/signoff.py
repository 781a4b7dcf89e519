"""`ganad review FILE` and `ganad signoff ACCESSION`: a named user's review of one image, and a
supervisor's sign-off of a specimen with its result written to the LIS outbox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganad_clinic.cli.common import add_store_options, add_user_options, read_passwords
from ganad_clinic.errors import GanadError

DECISIONS = {"anomaly": "anomaly_confirmed", "normal": "normal", "second-read": "second_read"}


def register(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser("review", help="review one scored image as a named user",
                                   description="Record a review of the slide made from FILE (matched by its "
                                               "content; among several, the one from the same path, else the newest).")
    review.add_argument("file", type=Path, metavar="FILE")
    review.add_argument("--decision", choices=tuple(DECISIONS), required=True)
    review.add_argument("--note", default="")
    add_user_options(review)
    add_store_options(review)
    review.set_defaults(func=run_review)
    signoff = subparsers.add_parser(
        "signoff", help="sign a specimen off and send its result to the LIS outbox",
        description="Refused (exit 1, nothing changed) while an image of the specimen is unscored or a flag "
                    "unreviewed or awaiting a second read, or when the user may not sign (supervisors and admins "
                    "may). Writes an HL7 v2.5.1 ORU^R01 message and a FHIR DiagnosticReport into the outbox.")
    signoff.add_argument("accession", metavar="ACCESSION")
    signoff.add_argument("--meaning", default=None, help="what the signature means (default: review and release)")
    signoff.add_argument("--outbox", type=Path, required=True, metavar="DIR", help="the LIS outbox folder")
    signoff.add_argument("--lab", default="", help="the sending facility (MSH-4)")
    add_user_options(signoff)
    add_store_options(signoff)
    signoff.set_defaults(func=run_signoff)


def run_review(args: argparse.Namespace) -> int:
    from ganad_clinic.files import file_sha256
    from ganad_clinic.screening.users import Permission, require, sign_in
    from ganad_clinic.store import SlideStatus, open_store

    try:
        [password] = read_passwords(1)
        with open_store(args.db_url, args.home) as store:
            user = sign_in(store, args.user, password)
            require(user, Permission.REVIEW)
            try:
                sha256 = file_sha256(args.file)
            except OSError as error:
                raise GanadError(f"cannot read {args.file}: {error.strerror or error}") from error
            same = [s for s in store.list_slides() if s.slide.sha256 == sha256]
            if not same:
                raise GanadError(f"{args.file} was never received (no slide has its content)")
            summary = max(same, key=lambda s: (s.slide.path == str(args.file.resolve()), s.slide.id))
            if summary.slide.status is not SlideStatus.SCORED:
                raise GanadError(f"{args.file} is {summary.slide.status.value}, not scored: it cannot be reviewed")
            review = store.add_review(summary.slide.id, user.name, DECISIONS[args.decision], args.note)
            specimen = store.specimen_of(summary.slide.id)
            amendment = " (an amendment: the specimen was signed off)" if specimen.signature is not None else ""
            print(f"slide {summary.slide.id} ({summary.slide.file_name}) of specimen {specimen.specimen.accession}: "
                  f"{args.decision} by {user.name}, review {review.id}{amendment}")
            return 0
    except GanadError as error:
        print(f"ganad review: {error}", file=sys.stderr)
        return 1


def run_signoff(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.signoff import DEFAULT_MEANING, sign_off
    from ganad_clinic.store import open_store

    try:
        [password] = read_passwords(1)
        with open_store(args.db_url, args.home) as store:
            result = sign_off(store, args.accession, args.user, password, outbox=args.outbox,
                              meaning=args.meaning or DEFAULT_MEANING, lab=args.lab)
        signature = result.signature
        kind = "amendment signed" if signature.amends_id is not None else "signed"
        print(f"specimen {args.accession} {kind} by {signature.printed_name}: {signature.finding}; "
              f"sent {result.hl7_path} and {result.fhir_path}")
        return 0
    except GanadError as error:
        print(f"ganad signoff: {error}", file=sys.stderr)
        return 1
