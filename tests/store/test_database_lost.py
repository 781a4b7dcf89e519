"""The SQLite file deleted or replaced under a running store, and a start that would silently
make a new, empty database where one is expected (issue 19, item 3)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import event

from ganad_clinic.store import StoreError, open_store
from ganad_clinic.store.errors import DatabaseLostError

from .helpers import add_score, record, register_model
from .test_cli_db import ganad_db


def _remove_database(database: Path) -> None:
    for path in database.parent.glob(database.name + "*"):  # ganad.db, -wal, -shm
        path.unlink()


def test_a_deleted_database_file_stops_every_write_and_read(tmp_path: Path) -> None:
    database = tmp_path / "ganad.db"
    with open_store(f"sqlite:///{database}") as store:
        model = register_model(store)
        slide = record(store, "/in/a.png", "aaa").slide
        _remove_database(database)

        with pytest.raises(DatabaseLostError) as raised:
            add_score(store, slide.id, model.id)
        with pytest.raises(DatabaseLostError):
            store.list_slides()

    assert str(raised.value) == (
        f"the database file {database} was deleted or replaced while GANAD Clinic was using it; nothing more "
        "can be saved (the last result was not). Restore it from backup (or put the file back), then start "
        "GANAD Clinic again."
    )
    assert not database.exists()  # and no new, empty file in its place


def test_a_replaced_database_file_is_noticed(tmp_path: Path) -> None:
    database = tmp_path / "ganad.db"
    with open_store(f"sqlite:///{database}") as store:
        store.audit("service", "before.backup")
        shutil.copy(database, tmp_path / "backup.db")
        os.replace(tmp_path / "backup.db", database)
        with pytest.raises(DatabaseLostError, match="was deleted or replaced"):
            store.audit("service", "after.restore")


def test_a_home_with_model_bundles_but_no_database_is_not_given_an_empty_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "models" / "1.0.0" / "configs").mkdir(parents=True)
    (home / "models" / "1.0.0" / "configs" / "metadata.json").write_text("{}")
    with pytest.raises(StoreError) as raised:
        open_store(home=home)
    message = str(raised.value)
    assert message.startswith(f"there is no database {home / 'ganad.db'}, but {home} holds model bundles from "
                              "earlier use: the database was probably deleted or moved")
    assert f"run `ganad db upgrade --new --db sqlite:///{home / 'ganad.db'}`" in message
    assert not (home / "ganad.db").exists()

    with open_store(home=home, create=True) as store:
        assert store.list_slides() == []


def test_heat_maps_without_a_database_are_refused_too_and_db_upgrade_new_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "heatmaps").mkdir()
    (tmp_path / "heatmaps" / "slide-1-model-1.png").write_bytes(b"png")
    assert ganad_db("upgrade", "--home", str(tmp_path)) == 1
    assert "holds heat maps from earlier use" in capsys.readouterr().err
    assert not (tmp_path / "ganad.db").exists()
    assert ganad_db("upgrade", "--new", "--home", str(tmp_path)) == 0
    assert (tmp_path / "ganad.db").is_file()
    with open_store(home=tmp_path):  # from now on it is expected and there
        pass


def test_an_empty_models_folder_is_a_first_run(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "heatmaps").mkdir()
    with open_store(home=tmp_path):
        pass
    assert (tmp_path / "ganad.db").is_file()


def test_a_database_deleted_during_the_commit_is_not_reported_saved(tmp_path: Path) -> None:
    """The file checked before commit can go during it: the write must still fail, not return."""
    database = tmp_path / "ganad.db"
    with open_store(f"sqlite:///{database}") as store:
        event.listen(store._write_sessions, "after_commit", lambda session: _remove_database(database))
        with pytest.raises(DatabaseLostError, match="was deleted or replaced"):
            store.audit("service", "slide.scored")


def test_a_home_with_model_bundles_is_not_given_an_empty_database_kept_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--db puts the file outside the home; the home's bundles still show a database existed."""
    home = tmp_path / "home"
    (home / "models" / "1.0.0" / "configs").mkdir(parents=True)
    (home / "models" / "1.0.0" / "configs" / "metadata.json").write_text("{}")
    database = tmp_path / "elsewhere" / "ganad.db"
    url = f"sqlite:///{database}"
    with pytest.raises(StoreError, match=f"there is no database {database}, but {home} holds model bundles"):
        open_store(url, home)
    assert ganad_db("upgrade", "--db", url, "--home", str(home)) == 1
    assert f"{home} holds model bundles" in capsys.readouterr().err
    assert not database.exists()
    assert ganad_db("upgrade", "--new", "--db", url, "--home", str(home)) == 0
    with open_store(url, home) as store:
        assert store.list_slides() == []
