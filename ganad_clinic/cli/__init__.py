"""The `ganad` command line.

One module per command (group) in this package, each with `register(subparsers)` that adds its
parser and sets `func`. The modules are thin: parse arguments, call the layers below, print.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ganad_clinic import __version__

COMMAND_MODULES: tuple[str, ...] = ("synth", "train", "evaluate", "score", "db", "watch", "models", "demo", "report", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganad",
        description="Screen blood-smear slides for anomalies with a GAN + autoencoder model.",
    )
    parser.add_argument("--version", action="version", version=f"ganad {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ganad_clinic.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
