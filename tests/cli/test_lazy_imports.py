"""`ganad --help` and `ganad db ...` start without torch: each command imports its heavy modules
only when it runs (or parses its own options)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "monai", "PySide6", "reportlab")


def modules_loaded_by(argv: list[str]) -> set[str]:
    code = ("import sys\n"
            "from ganad_clinic.cli import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print('loaded:', *sorted(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    [line] = [line for line in done.stderr.splitlines() if line.startswith("loaded:")]
    return set(line.split()[1:])


@pytest.mark.parametrize("argv", [["--help"], [], ["--version"], ["db", "--help"], ["models", "--help"],
                                  ["report", "--help"], ["synth", "--help"], ["score", "--help"],
                                  ["evaluate", "--help"], ["app", "--help"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    assert modules_loaded_by(argv) == set()


def test_the_db_commands_import_no_torch(tmp_path) -> None:
    home = str(tmp_path / "home")
    for action in ("current", "upgrade", "verify", "current"):
        assert "torch" not in modules_loaded_by(["db", action, "--home", home])


def test_a_command_whose_options_need_the_model_imports_it_when_it_parses_them() -> None:
    assert "torch" in modules_loaded_by(["train", "--help"])
