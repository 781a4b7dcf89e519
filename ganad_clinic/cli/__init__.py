"""The `ganad` command line.

One module per command (group) in this package, each with `register(subparsers)` that adds its
parser and sets `func`. The modules are thin: parse arguments, call the layers below, print.

Starting is cheap: a command module imports nothing heavy (torch, MONAI, Qt, reportlab) at its top,
and a command whose options need heavy modules (their choices and defaults) adds its parser with
`common.add_command(subparsers, name, arguments=add_arguments, ...)`: those options are added only
when that command is the one being parsed, so `ganad --help` and `ganad db ...` never import torch.

Errors: a command prints its own `GanadError`s (a file, a folder, the database, a bundle, an
option) on one line with its exit status; one that escapes it is printed here, on one line, with
status 1. Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ganad_clinic import __version__
from ganad_clinic.cli.common import CommandParser
from ganad_clinic.errors import GanadError

COMMAND_MODULES: tuple[str, ...] = (
    "synth", "train", "evaluate", "score", "db", "watch", "models", "operating_point", "users", "signoff", "demo",
    "report", "app", "stations",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganad",
        description="Screen blood-smear slides for anomalies with a GAN + autoencoder model.",
    )
    parser.add_argument("--version", action="version", version=f"ganad {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"ganad_clinic.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GanadError as error:
        print(f"ganad {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
