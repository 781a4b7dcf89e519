from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ganad_clinic.store import StoreError, TilingRecord, open_store
from ganad_clinic.store.migrate import alembic_config, database_revisions, head_revision
from ganad_clinic.store.models import Base
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, record, register_model


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    with open_store(db_url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_on_start_is_idempotent(db_url: str) -> None:
    with open_store(db_url) as store:
        record(store, "/incoming/a.png", "aaa")
    with open_store(db_url) as store:
        assert [summary.slide.path for summary in store.list_slides()] == ["/incoming/a.png"]
    assert database_revisions(db_url) == (head_revision(),)


def test_new_database_has_no_revision_until_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ganad.db'}"
    assert database_revisions(url) == ()
    assert not (tmp_path / "ganad.db").exists()


def test_database_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    database = tmp_path / "ganad.db"
    url = f"sqlite:///{database}"
    open_store(url).close()
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_future'")
    connection.close()
    before = database.read_bytes()
    files_before = sorted(path.name for path in tmp_path.iterdir())

    with pytest.raises(StoreError) as raised:
        open_store(url)

    assert str(raised.value) == (
        f"database {url} was created by a newer version of GANAD Clinic (revision 9999_future); "
        "upgrade the application"
    )
    assert database.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == files_before


def test_newer_postgresql_database_is_refused_and_left_untouched(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999_future')"))
    with pytest.raises(StoreError, match=r"newer version of GANAD Clinic \(revision 9999_future\)"):
        open_store(pg_url)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()


APPEND_ONLY_CHANGES = [
    "UPDATE scores SET score = 0",
    "DELETE FROM scores",
    "UPDATE reviews SET decision = 'normal'",
    "DELETE FROM reviews",
    "UPDATE audit_events SET actor = 'someone else'",
    "DELETE FROM audit_events",
]


def test_triggers_refuse_raw_sql_changes_to_append_only_tables(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        slide = record(store, "/incoming/a.png", "aaa").slide
        add_score(store, slide.id, model.id, score=0.5)
        store.add_review(slide.id, "ana", "second_read")
    engine = create_engine(db_url)
    for statement in APPEND_ONLY_CHANGES:
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT score FROM scores")).scalars().all() == [0.5]
        assert connection.execute(text("SELECT decision FROM reviews")).scalars().all() == ["second_read"]
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 2
    engine.dispose()


def test_upgrade_from_the_first_schema_keeps_every_score_and_the_triggers(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        slide = record(store, "/incoming/a.png", "aaa").slide
        add_score(store, slide.id, model.id, score=0.5)
    engine = create_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:  # back to revision 0001, as an older GANAD Clinic left it
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert database_revisions(db_url) == ("0001",)

    with open_store(db_url) as store:
        assert (store.latest_score(slide.id).score, store.latest_score(slide.id).tiling) == (0.5, None)
        store.add_score(slide.id, model.id, score=0.9, l_d=1, l_r=1, l_l=1, threshold=0.7, flagged=True,
                        duration_seconds=1,
                        tiling=TilingRecord("white cells", "4 tiles, one per white cell", 257, 1.0, 0.5))
    assert database_revisions(db_url) == (head_revision(),)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT score, tiling FROM scores ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(0.5, None), (0.9, "4 tiles, one per white cell")]
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text("UPDATE scores SET tiling = 'grid'"))
    engine.dispose()


def _row_hashes(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT row_hash FROM {table} ORDER BY id")).scalars().all()
            for table in ("scores", "reviews", "audit_events")
        }


def test_upgrade_from_0002_hashes_earlier_rows_exactly_as_the_store_does(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        slide = record(store, "/incoming/a.png", "aaa").slide
        add_score(store, slide.id, model.id, score=0.1 + 0.2)
        store.add_review(slide.id, "Zoë", "anomaly_confirmed", "blasts \u05d0")
        store.audit("service", "odd.details", {"float": 1e-300, "list": [1, 2.5, None], "text": "\u0645"})
    engine = create_engine(db_url)
    written = _row_hashes(engine)
    config = alembic_config()
    with engine.begin() as connection:  # back to revision 0002, as an older GANAD Clinic left it
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert "row_hash" not in {column["name"] for column in inspect(engine).get_columns("scores")}

    open_store(db_url).close()

    assert _row_hashes(engine) == written
    assert all(len(value) == 64 for values in written.values() for value in values)
    engine.dispose()
    assert verify_database(db_url).problems == []
