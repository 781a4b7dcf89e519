"""A full disk, a read-only or a damaged database file are said in plain words, without SQL
(issue 19, item 7); the driver's error stays chained for the logs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from ganad_clinic.store import StoreError, open_store

from .test_cli_db import ganad_db

NOBODY = 65534


@contextmanager
def as_another_user() -> Iterator[None]:
    """Run as a user who does not own the files: root reads and writes every file regardless."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="ganad-plain-errors-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def test_a_full_disk_is_said_in_plain_words_and_nothing_is_saved(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'ganad.db'}") as store:
        store.audit("service", "before")
        store.engine.dispose()

        @event.listens_for(store.engine, "connect")
        def no_room_to_grow(dbapi_connection: Any, record: Any) -> None:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        with pytest.raises(StoreError) as raised:
            for number in range(200):
                store.audit("service", "filling", {"padding": "x" * 4000, "number": number})
        message = str(raised.value)
        assert message == (
            f"cannot write to database sqlite:///{tmp_path / 'ganad.db'}: the disk is full (or the database "
            "reached its size limit): free some space. Nothing was saved."
        )
        assert isinstance(raised.value.__cause__, OperationalError)
        event.remove(store.engine, "connect", no_room_to_grow)
        store.engine.dispose()
        store.audit("service", "after")
        assert store.list_audit_events()[-1].action == "after"


def test_a_read_only_database_file_is_said_in_plain_words(
    open_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = open_folder / "ganad.db"
    with open_store(f"sqlite:///{database}") as store:
        store.audit("service", "written")
    database.chmod(0o444)
    open_folder.chmod(0o555)
    with as_another_user():
        status = ganad_db("upgrade", "--db", f"sqlite:///{database}")
    error = capsys.readouterr().err
    assert status == 1
    assert error == (
        f"ganad db upgrade: cannot read database sqlite:///{database}: the database file or its folder is "
        "read-only: check their permissions\n"
    )


def test_a_damaged_database_file_is_said_in_plain_words(tmp_path: Path) -> None:
    (tmp_path / "ganad.db").write_bytes(b"not a database at all " * 200)
    with pytest.raises(StoreError) as raised:
        open_store(home=tmp_path)
    assert str(raised.value) == (
        f"cannot read database sqlite:///{tmp_path / 'ganad.db'}: the file is not a GANAD Clinic database "
        "(or it is damaged): restore it from backup"
    )
    assert "[SQL" not in str(raised.value)
