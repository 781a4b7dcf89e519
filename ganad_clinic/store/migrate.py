"""Schema migrations with Alembic, configured in code so an installed or frozen app needs no
alembic.ini. A database made by a newer GANAD Clinic is refused before anything touches it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ganad_clinic.store.engine import busy_message, display_url, is_busy_error, sqlite_file, writer
from ganad_clinic.store.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: PostgreSQL workstations starting together migrate one after the other.
_PG_MIGRATION_LOCK_KEY = 0x6A4AD


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest schema revision this version of the application knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


def database_revisions(url: str) -> tuple[str, ...]:
    """The revisions the database is stamped with; empty for a new database.

    Reads through a bare connection (no WAL pragma, no pool) so the database is not modified.
    """
    database_file = sqlite_file(url)
    if database_file is not None and not database_file.exists():
        return ()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read database {display_url(url)}: {error}") from error
    finally:
        engine.dispose()


def refuse_newer_database(url: str) -> None:
    """Raise StoreError when the database carries a revision our migrations don't know."""
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [revision for revision in database_revisions(url) if revision not in known]
    if unknown:
        raise StoreError(
            f"database {display_url(url)} was created by a newer version of GANAD Clinic "
            f"(revision {', '.join(unknown)}); upgrade the application"
        )


def upgrade_to_head(engine: Engine, url: str) -> None:
    """Bring the schema to our head in one write transaction; a no-op when already there."""
    refuse_newer_database(url)
    config = alembic_config()
    try:
        with writer(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as error:
        if is_busy_error(error):
            raise StoreError(busy_message(url)) from error
        raise StoreError(f"cannot upgrade database {display_url(url)}: {error.orig}") from error
    except (CommandError, SQLAlchemyError) as error:
        raise StoreError(f"cannot upgrade database {display_url(url)}: {error}") from error
