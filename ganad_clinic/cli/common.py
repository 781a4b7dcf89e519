"""Small pieces shared by the command modules (light to import: torch and the imaging code are
imported by the functions that need them)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ganad_clinic.imaging.datasets import Sample


class CommandParser(argparse.ArgumentParser):
    """A command's parser whose options may be added late: `arguments(parser)` runs the first time
    the parser parses or formats its usage or help, not when `ganad` starts, so a command's heavy
    imports (the choices and defaults of its options) are paid only by that command."""

    def __init__(self, *args: Any, arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_arguments = arguments

    def _add_pending_arguments(self) -> None:
        arguments, self._pending_arguments = self._pending_arguments, None
        if arguments is not None:
            arguments(self)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._add_pending_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_pending_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_pending_arguments()
        return super().format_help()


def add_command(subparsers: argparse._SubParsersAction, name: str, *,
                arguments: Callable[[argparse.ArgumentParser], None], **kwargs: Any) -> argparse.ArgumentParser:
    """Add command `name` (`kwargs` as for `add_parser`: help, description) whose options
    `arguments(parser)` adds: late where `subparsers` makes CommandParsers (`ganad`'s own), else now."""
    if isinstance(subparsers._parser_class, type) and issubclass(subparsers._parser_class, CommandParser):
        return subparsers.add_parser(name, arguments=arguments, **kwargs)
    parser = subparsers.add_parser(name, **kwargs)
    arguments(parser)
    return parser


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """Where the results database is: --db URL and --home DIR (see store.resolve_url)."""
    parser.add_argument("--db", dest="db_url", metavar="URL", help="SQLAlchemy URL (default: $GANAD_DB)")
    parser.add_argument("--home", metavar="DIR", help="GANAD Clinic home folder (default: $GANAD_HOME)")


def add_device_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when a GPU is present, else the CPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: the number of cores)")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number, got {text}")
    return value


def rate(text: str) -> float:
    """A false-positive rate: a number strictly between 0 and 1 (0.05 is 5 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1 (0.05 is 5 %), got {text}")
    return value


def parse_moment(text: str) -> date | datetime:
    """A date (a whole day) or a date and time, ISO 8601."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-05-31 or 2024-05-31T14:00") from None
    is_plain_date = len(text.strip()) == len("YYYY-MM-DD")
    return moment.date() if is_plain_date else moment


def add_field_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--field-scale", type=positive_float, default=1.0,
                        help="pixel scale of large field images relative to the training crops; fields are "
                             "tiled into crop-sized tiles at this scale (default 1; 0.5 for `ganad synth` fields)")


def configure_torch(threads: int) -> None:
    """Set torch's process-wide state: its CPU thread count and deterministic kernels
    (model.device.configure_determinism). Only entry points (the commands, the app's start) do
    this, once, before any work; library code never does."""
    import torch

    from ganad_clinic.model.device import configure_determinism

    torch.set_num_threads(threads)
    configure_determinism()


def apply_threads(args: argparse.Namespace) -> None:
    """`configure_torch` with one thread per core unless told otherwise (more threads than cores thrash)."""
    configure_torch(args.threads or os.cpu_count() or 1)


def load_images(samples: Sequence[Sample]) -> list[np.ndarray]:
    from ganad_clinic.imaging.io import read_image

    return [read_image(sample.path) for sample in samples]


def add_user_options(parser: argparse.ArgumentParser, *, who: str = "--user") -> None:
    """The signed-in user of a command: a name, and the password on standard input."""
    parser.add_argument(who, dest="user", metavar="NAME", required=True, help="the user doing this")
    parser.add_argument("--password-stdin", action="store_true", required=True,
                        help="read the password from the first line of standard input")


def read_passwords(count: int) -> list[str]:
    """`count` passwords, one per line of standard input (a missing line is a clear error)."""
    import sys

    from ganad_clinic.errors import GanadError

    lines = [sys.stdin.readline() for _ in range(count)]
    if any(not line for line in lines):
        raise GanadError(f"expected {count} password line{'s' if count > 1 else ''} on standard input")
    return [line.rstrip("\r\n") for line in lines]


def add_optional_user_options(parser: argparse.ArgumentParser) -> None:
    """Who does this, needed once the database has users (see `acting_user`)."""
    parser.add_argument("--user", metavar="NAME", help="the user doing this (needed once the database has users)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read --user's password from the first line of standard input")


def acting_user(store: Any, args: argparse.Namespace, permission: Any) -> str:
    """The name the audit trail records: the signed-in user, whose role must allow `permission`,
    once the database has users; before that, the operating-system account."""
    from ganad_clinic.errors import GanadError
    from ganad_clinic.screening.registry import current_actor
    from ganad_clinic.screening.users import require, sign_in

    if not store.list_users():
        return current_actor()
    if args.user is None or not args.password_stdin:
        raise GanadError(f"this database has users: say who you are to {permission.value} "
                         "(--user NAME --password-stdin)")
    user = sign_in(store, args.user, read_passwords(1)[0])
    require(user, permission)
    return user.name
