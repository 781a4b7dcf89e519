from __future__ import annotations

import subprocess
import sys


def test_the_command_line_does_not_import_qt_until_the_app_runs():
    code = ("import sys; from ganad_clinic.cli import build_parser; "
            "args = build_parser().parse_args(['app', '--home', 'x']); "
            "assert args.func.__module__ == 'ganad_clinic.cli.app'; "
            "assert not any(name.startswith('PySide6') for name in sys.modules), 'Qt imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
