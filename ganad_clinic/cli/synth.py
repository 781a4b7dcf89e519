"""`ganad synth`: write a synthetic ALL-IDB-style data set for the demo and for trying the app."""

from __future__ import annotations

import argparse
from pathlib import Path


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _shift(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not -1.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above -1 and finite (0.25 stains 25 % more densely), got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic blood-smear crops (ALL-IDB2 style) and optional full fields",
        description="Write ImNNN_1.tif blast crops, then ImNNN_0.tif normal crops, and fields/ImNNN_L.jpg, "
                    "each with its blast centres (one 'x y' line each, ALL-IDB1 style) in fields/ImNNN_L.xyc.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into (created if missing)")
    parser.add_argument("--normal", type=_count, default=130, help="normal lymphocyte crops (default 130)")
    parser.add_argument("--blast", type=_count, default=130, help="lymphoblast crops (default 130)")
    parser.add_argument("--seed", type=_count, default=0, help="random seed (default 0)")
    parser.add_argument("--field", type=_count, default=0,
                        help="ALL-IDB1-style full fields, each with its .xyc ground truth (default 0)")
    parser.add_argument("--stain-shift", type=_shift, default=0.0, metavar="FRACTION",
                        help="stain every image this much more (or, below 0, less) densely, as a changed stain or "
                             "scanner would (default 0: the usual images); for trying the drift alarm")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.imaging.synthetic import write_dataset

    written = write_dataset(args.out, n_normal=args.normal, n_blast=args.blast, seed=args.seed, n_fields=args.field,
                            stain_shift=args.stain_shift)
    truth = "; their blast centres in fields/*.xyc" if written.n_fields else ""
    print(
        f"wrote {written.n_normal} normal + {written.n_blast} blast crops and {written.n_fields} fields "
        f"({written.n_blast_fields} with blasts{truth}) to {written.out_dir}"
    )
    return 0
