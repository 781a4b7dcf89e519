"""`ganad db` through its own argparse parser (the lead wires it into `ganad`)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from ganad_clinic.cli import db
from ganad_clinic.store.migrate import database_revisions, head_revision


def ganad_db(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ganad")
    db.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["db", *argv])
    return args.func(args)


def test_upgrade_creates_the_database_in_a_fresh_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert ganad_db("upgrade", "--home", str(home)) == 0
    assert (home / "ganad.db").is_file()
    assert database_revisions(f"sqlite:///{home / 'ganad.db'}") == (head_revision(),)
    assert "up to date" in capsys.readouterr().out


def test_upgrade_takes_a_url(tmp_path: Path) -> None:
    assert ganad_db("upgrade", "--db", f"sqlite:///{tmp_path / 'lab.db'}") == 0
    assert (tmp_path / "lab.db").is_file()


def test_current_reports_without_creating_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ganad_db("current", "--home", str(tmp_path)) == 1
    assert "run `ganad db upgrade`" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []

    ganad_db("upgrade", "--home", str(tmp_path))
    assert ganad_db("current", "--home", str(tmp_path)) == 0
    assert f"revision {head_revision()} (up to date)" in capsys.readouterr().out


def test_a_database_from_a_newer_version_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ganad_db("upgrade", "--home", str(tmp_path))
    with sqlite3.connect(tmp_path / "ganad.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_future'")
    connection.close()
    capsys.readouterr()
    for action in ("upgrade", "current"):
        assert ganad_db(action, "--home", str(tmp_path)) == 1
        assert "created by a newer version of GANAD Clinic (revision 9999_future)" in capsys.readouterr().err
