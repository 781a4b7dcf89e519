"""Entry point of the frozen GANAD Clinic: the `ganad` console script, and `ganad-app`, the same
program that opens the desktop app (on Windows and macOS without a console window)."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

GUI_EXECUTABLE = "ganad-app"


def command_line(executable: str, arguments: list[str]) -> list[str]:
    """The `ganad` arguments for this start: `ganad-app ARGS` means `ganad app ARGS`."""
    if Path(executable).stem.lower() == GUI_EXECUTABLE:
        return ["app", *arguments]
    return list(arguments)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process runs its task here, not the command line
    from ganad_clinic.cli import main

    sys.exit(main(command_line(sys.executable, sys.argv[1:])))
