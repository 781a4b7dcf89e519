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
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ganad_clinic.store.engine import (
    DENIED_SQLSTATE,
    busy_message,
    display_url,
    is_busy_error,
    plain_reason,
    sqlite_file,
    writer,
)
from ganad_clinic.store.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: PostgreSQL workstations starting together migrate one after the other.
_PG_MIGRATION_LOCK_KEY = 0x6A4AD
# What the application's everyday PostgreSQL role may do: read, add results, move slides forward,
# switch the active model and link its acceptance report, count sign-ins, updating only the columns the store itself
# updates (what identifies a slide or a model bundle is never writable). Never change or delete a
# result; owning nothing, it cannot alter the schema or disable a trigger.
EVERYDAY_GRANTS = (
    ("SELECT, INSERT", ("scores", "cells", "reviews", "audit_events", "signatures", "specimens")),
    ("SELECT, INSERT, UPDATE (disabled, failed_sign_ins, password_hash)", ("users",)),
    ("SELECT, INSERT, UPDATE (status, reason, duplicate_of_id, archived_path, claimed_by, lease_until)", ("slides",)),
    ("SELECT, INSERT, UPDATE (host, pid, started_at, heartbeat_at, stopped)", ("stations",)),
    ("SELECT, INSERT, UPDATE (active, activated_at, acceptance_report)", ("model_versions",)),
    ("SELECT", ("alembic_version",)),
)
EVERYDAY_TABLES = tuple(table for _, tables in EVERYDAY_GRANTS for table in tables)


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
    except DBAPIError as error:
        raise StoreError(f"cannot read database {display_url(url)}: {plain_reason(error)}") from error
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
    except DBAPIError as error:
        if isinstance(error, OperationalError) and is_busy_error(error):
            raise StoreError(busy_message(url)) from error
        owner_hint = "; run `ganad db upgrade` as the role that owns the tables" if _is_denied(error) else ""
        raise StoreError(f"cannot upgrade database {display_url(url)}: {plain_reason(error)}{owner_hint}") from error
    except (CommandError, SQLAlchemyError) as error:
        raise StoreError(f"cannot upgrade database {display_url(url)}: {error}") from error


def _is_denied(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == DENIED_SQLSTATE


def grant_everyday_access(engine: Engine, url: str, role: str) -> None:
    """Give PostgreSQL role `role` what the application needs every day (EVERYDAY_GRANTS) on the
    current schema, so the tables' owner, who runs the migrations, is used for nothing else."""
    if engine.dialect.name != "postgresql":
        raise StoreError(
            f"database {display_url(url)} has no roles to grant to (--grant-to is for PostgreSQL); "
            "protect a SQLite file with the folder's permissions"
        )
    try:
        with engine.begin() as connection:
            if connection.scalar(text("SELECT current_user")) == role:
                raise StoreError(
                    f"role {role} is the one running this upgrade, the tables' owner: the everyday role "
                    "must be another one, which owns nothing"
                )
            quote = connection.dialect.identifier_preparer.quote
            grantee = quote(role)
            schema = quote(connection.scalar(text("SELECT current_schema()")))
            connection.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {grantee}"))
            # Start from nothing, so an earlier, wider grant (table-wide UPDATE) does not linger.
            connection.execute(text(f"REVOKE ALL ON {', '.join(EVERYDAY_TABLES)} FROM {grantee}"))
            for privileges, tables in EVERYDAY_GRANTS:
                connection.execute(text(f"GRANT {privileges} ON {', '.join(tables)} TO {grantee}"))
            connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}"))
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "42704":
            raise StoreError(
                f"there is no role {role} in database {display_url(url)}: create it first "
                f"(CREATE ROLE {role} LOGIN PASSWORD '...')"
            ) from error
        raise StoreError(f"cannot grant {role} access to database {display_url(url)}: {plain_reason(error)}") from error
