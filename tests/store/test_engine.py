from __future__ import annotations

import sqlite3
from pathlib import Path

import platformdirs
import pytest
from sqlalchemy import text

from ganad_clinic.store import StoreError, open_store, resolve_home, resolve_url
from ganad_clinic.store.engine import create_store_engine, display_url, writer


def test_home_defaults_to_the_user_data_folder() -> None:
    assert resolve_home() == Path(platformdirs.user_data_dir("ganad-clinic")).absolute()


def test_home_comes_from_ganad_home_then_from_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANAD_HOME", str(tmp_path / "env-home"))
    assert resolve_home() == tmp_path / "env-home"
    assert resolve_home(tmp_path / "arg-home") == tmp_path / "arg-home"


def test_url_defaults_to_ganad_db_in_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANAD_HOME", str(tmp_path))
    assert resolve_url() == f"sqlite:///{tmp_path / 'ganad.db'}"


def test_url_precedence_is_url_then_home_then_ganad_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANAD_HOME", str(tmp_path / "env-home"))
    monkeypatch.setenv("GANAD_DB", "postgresql+psycopg://lab@server/ganad")
    assert resolve_url() == "postgresql+psycopg://lab@server/ganad"
    assert resolve_url(home=tmp_path / "arg-home") == f"sqlite:///{tmp_path / 'arg-home' / 'ganad.db'}"
    assert resolve_url("sqlite:////elsewhere/x.db", tmp_path / "arg-home") == "sqlite:////elsewhere/x.db"


def test_open_store_creates_the_home_folder_and_database(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    with open_store(home=home) as store:
        assert store.integrity_check() == []
    assert (home / "ganad.db").is_file()


def test_open_store_uses_ganad_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANAD_DB", f"sqlite:///{tmp_path / 'shared.db'}")
    with open_store():
        pass
    assert (tmp_path / "shared.db").is_file()


def test_display_url_hides_the_password() -> None:
    shown = display_url("postgresql+psycopg://ganad:secret@db.lab/ganad")
    assert "secret" not in shown and "db.lab" in shown


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(StoreError, match="in memory"):
        open_store("sqlite://")


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "could not be read"), ("nosuchdb+nodriver://host/db", "cannot use database URL")],
)
def test_unusable_urls_are_store_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_sqlite_connections_get_the_pragmas(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url, busy_timeout_ms=1234)
    with engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") == 1234
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
    engine.dispose()


def test_a_write_transaction_takes_the_lock_before_writing(tmp_path: Path) -> None:
    database = tmp_path / "lock.db"
    engine = create_store_engine(f"sqlite:///{database}", busy_timeout_ms=0)
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        with writer(engine).begin() as connection:
            connection.execute(text("SELECT 1"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with engine.begin() as reader:
            reader.execute(text("SELECT 1"))
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
    finally:
        other.close()
        engine.dispose()
