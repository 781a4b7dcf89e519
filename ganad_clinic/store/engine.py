"""Where the database lives and how we connect to it.

SQLite is the default, in the user's data folder. Its connections get WAL (readers never wait for
the writer), a busy timeout, and SQLAlchemy's pysqlite recipe: the driver's own transaction
handling is switched off and we emit BEGIN ourselves, BEGIN IMMEDIATE for writes, so a writer takes
the write lock up front instead of failing half-way through its transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from ganad_clinic.store.errors import StoreError

APP_NAME = "ganad-clinic"
DB_FILE_NAME = "ganad.db"
HOME_ENV = "GANAD_HOME"
DB_URL_ENV = "GANAD_DB"
DEFAULT_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "ganad_write"
_BUSY_SQLITE_MESSAGES = ("database is locked", "database is busy", "database table is locked")
_BUSY_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock
DENIED_SQLSTATE = "42501"  # PostgreSQL: the role in use lacks a privilege
# What a failing database said, in the user's words: SQLite message fragments, PostgreSQL SQLSTATEs.
_SQLITE_PLAIN = (
    ("database or disk is full", "the disk is full (or the database reached its size limit): free some space"),
    ("readonly database", "the database file or its folder is read-only: check their permissions"),
    ("malformed", "the database file is damaged: restore it from backup"),
    ("file is not a database", "the file is not a GANAD Clinic database (or it is damaged): restore it from backup"),
    ("disk i/o error", "the disk reported an input/output error: check the disk"),
    ("unable to open database file", "the database file cannot be opened: check that its folder exists "
                                     "and may be written"),
)
_PG_PLAIN = {
    "53100": "the database server's disk is full",
    "53200": "the database server is out of memory",
    "25006": "the database server only allows reading (a read-only server or standby)",
    DENIED_SQLSTATE: "the database role in use may not do this (permission denied)",
    "57P01": "the database server was shut down",
    "08006": "the connection to the database server was lost",
}
MODELS_FOLDER = "models"  # <home>/models/<version>/: the registry's copies of model bundles
HEATMAPS_FOLDER = "heatmaps"  # <home>/heatmaps/: the screening service's heat-map pictures
# What GANAD Clinic leaves in a home that had a database: bundles (each with its configs/metadata.json)
# and heat maps.
HOME_CONTENT = {"model bundles": f"{MODELS_FOLDER}/*/configs/metadata.json", "heat maps": f"{HEATMAPS_FOLDER}/*"}


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The GANAD Clinic home folder (database, models, heat maps): `home`, else $GANAD_HOME,
    else the platform's user data folder. Nothing is created here."""
    chosen = home if home is not None else os.environ.get(HOME_ENV) or platformdirs.user_data_dir(APP_NAME)
    return Path(chosen).expanduser().absolute()


def resolve_url(url: str | None = None, home: str | os.PathLike[str] | None = None) -> str:
    """The database URL. Explicit arguments beat the environment: `url`, else `<home>/ganad.db`
    when `home` is given, else $GANAD_DB, else `ganad.db` in the home resolved by `resolve_home`."""
    if url:
        return url
    if home is None and os.environ.get(DB_URL_ENV):
        return os.environ[DB_URL_ENV]
    database = resolve_home(home) / DB_FILE_NAME
    return URL.create("sqlite", database=str(database)).render_as_string()


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as error:
        raise StoreError(
            "the database URL could not be read; expected e.g. sqlite:////path/to/ganad.db "
            "or postgresql+psycopg://user:password@host/database"
        ) from error


def display_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return parse_url(url).render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return parse_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other backends."""
    if not is_sqlite(url):
        return None
    database = parse_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise StoreError(
            f"database {display_url(url)} is in memory: results must survive a restart; use a file"
        )
    return Path(database)


def create_store_engine(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url`. Take writes through `writer(engine)` so SQLite locks up front."""
    try:
        # a server restarted or a connection cut (another station's network) is found at checkout, not mid-work
        engine = create_engine(url) if is_sqlite(url) else create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        raise StoreError(f"cannot use database URL {display_url(url)}: {error}") from error
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine and pool, marked so that its transactions begin as writes."""
    return engine.execution_options(**{WRITE_OPTION: True})


def is_busy_error(error: OperationalError) -> bool:
    """True when the transaction failed only because another one held the database: retryable."""
    if getattr(error.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    message = str(error.orig).lower()
    return any(fragment in message for fragment in _BUSY_SQLITE_MESSAGES)


def busy_message(url: str) -> str:
    """What to tell a user when the database stays busy, instead of SQLite's "database is locked"."""
    return (
        f"database {display_url(url)} is busy: another program is holding it. "
        "Close other programs using it and try again."
    )


def plain_reason(error: DBAPIError) -> str:
    """What went wrong, in plain words and without the SQL: disk full, read-only, damaged file...;
    the driver's own message when it is none of those."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _PG_PLAIN:
        return _PG_PLAIN[sqlstate]
    message = str(error.orig).strip()
    lowered = message.lower()
    for fragment, reason in _SQLITE_PLAIN:
        if fragment in lowered:
            return reason
    return message.splitlines()[0] if message else type(error.orig).__name__


def home_with_content(folder: Path) -> list[str]:
    """What an earlier GANAD Clinic home left in `folder` (model bundles, heat maps), if anything."""
    return [what for what, pattern in HOME_CONTENT.items() if next(folder.glob(pattern), None) is not None]


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _enable_wal(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        is_write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    """Switch to WAL, retrying within the busy timeout: when two processes convert a new file at
    once, SQLite fails one of them at once (deadlock avoidance) instead of letting it wait."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
