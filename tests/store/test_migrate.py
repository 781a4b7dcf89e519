from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ganad_clinic.store import Cell, Judgement, StoreError, TilingRecord, open_store
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


def _columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


JUDGEMENT_COLUMNS = {"p_value", "target_fpr", "kept_fpr", "calibration_n"}


def test_downgrade_from_0005_drops_the_judgement_and_keeps_the_rows_and_their_guards(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        slide = record(store, "/incoming/a.png", "aaa").slide
        store.add_score(slide.id, model.id, score=0.9, l_d=1, l_r=1, l_l=1, threshold=0.7, flagged=True,
                        duration_seconds=1, cells=[Cell(cell_index=0, x=0, y=0, width=64, height=64,
                                                        found_by="whole image", score=0.9, l_d=1, l_r=1, l_l=1,
                                                        flagged=True, p_value=0.01)],
                        judgement=Judgement(0.01, 0.05, 0.05, 120))
        store.link_acceptance_report("1.0.0", "/reports/1.0.0.pdf", actor="ana", details={})
    engine = create_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")

    assert database_revisions(db_url) == ("0004",)
    assert not JUDGEMENT_COLUMNS & _columns(engine, "scores")
    assert "p_value" not in _columns(engine, "cells")
    assert "acceptance_report" not in _columns(engine, "model_versions")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT score, flagged FROM scores")).all() == [(0.9, True)]
        assert connection.execute(text("SELECT score FROM cells")).scalars().all() == [0.9]
    for statement in ("UPDATE scores SET score = 0", "UPDATE cells SET score = 0", "DELETE FROM cells"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    engine.dispose()


def test_upgrade_to_0005_keeps_earlier_scores_verifiable_and_adds_the_judgement(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        slide = record(store, "/incoming/a.png", "aaa").slide
        store.add_score(slide.id, model.id, score=0.9, l_d=1, l_r=1, l_l=1, threshold=0.7, flagged=True,
                        duration_seconds=1, cells=[Cell(cell_index=0, x=0, y=0, width=64, height=64,
                                                        found_by="whole image", score=0.9, l_d=1, l_r=1, l_l=1,
                                                        flagged=True)])
    engine = create_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:  # back to revision 0004, as the previous GANAD Clinic left it
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    written = _row_hashes(engine)

    with open_store(db_url) as store:
        assert database_revisions(db_url) == (head_revision(),)
        earlier = store.latest_score(slide.id)
        assert (earlier.p_value, earlier.target_fpr, earlier.kept_fpr, earlier.calibration_n) == (None,) * 4
        assert store.list_cells(earlier.id)[0].p_value is None
        assert store.list_model_versions()[0].acceptance_report is None
        judged = store.add_score(slide.id, model.id, score=0.95, l_d=1, l_r=1, l_l=1, threshold=0.7, flagged=True,
                                 duration_seconds=1, cells=[Cell(cell_index=0, x=0, y=0, width=64, height=64,
                                                                 found_by="whole image", score=0.95, l_d=1, l_r=1,
                                                                 l_l=1, flagged=True, p_value=1 / 121)],
                                 judgement=Judgement(1 / 121, 0.05, 1 / 121, 120))
        assert store.latest_score(slide.id).p_value == 1 / 121 and judged.calibration_n == 120
    assert {table: hashes[:len(written[table])] for table, hashes in _row_hashes(engine).items()} == written
    assert verify_database(db_url).problems == []
    for statement in ("UPDATE scores SET p_value = 0.5", "UPDATE cells SET p_value = 0.5"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    engine.dispose()


def test_0006_keeps_earlier_reviews_verifiable_and_its_downgrade_keeps_the_reviews_and_their_guards(
        db_url: str) -> None:
    with open_store(db_url) as store:
        slide = record(store, "/incoming/a.png", "aaa").slide
        store.add_review(slide.id, "ana", "normal")
    engine = create_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:  # back to revision 0005, as the previous GANAD Clinic left it
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "withdraws_id" not in _columns(engine, "reviews")
    written = _row_hashes(engine)

    with open_store(db_url) as store:
        assert database_revisions(db_url) == (head_revision(),) == ("0008",)
        earlier = store.current_review(slide.id)
        assert earlier.withdraws_id is None
        store.withdraw_review(earlier.id, "ana", "wrong slide")
        assert store.current_review(slide.id) is None
    assert {table: hashes[:len(written[table])] for table, hashes in _row_hashes(engine).items()} == written
    assert verify_database(db_url).problems == []

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "withdraws_id" not in _columns(engine, "reviews")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT decision FROM reviews ORDER BY id")).scalars().all() == [
            "normal", "normal"]
    for statement in ("UPDATE reviews SET note = ''", "DELETE FROM reviews"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    engine.dispose()


def test_0008_adds_stations_and_claims_and_keeps_earlier_scores_verifiable(db_url: str) -> None:
    with open_store(db_url) as store:
        model = register_model(store)
        add_score(store, record(store, "/incoming/a.png", "aaa").slide.id, model.id, 0.5)
    engine = create_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:  # back to revision 0007, as the previous GANAD Clinic left it
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    assert "station" not in _columns(engine, "scores") and "claimed_by" not in _columns(engine, "slides")
    written = _row_hashes(engine)

    with open_store(db_url) as store:
        pending = record(store, "/incoming/b.png", "bbb").slide
        assert store.claim_slide(pending.id, "st-1", lease_seconds=30) is None
        assert store.claim_slide(pending.id, "st-2", lease_seconds=30) == "st-1"
        assert add_score(store, pending.id, model.id, 0.9, station="st-1").station == "st-1"
        assert store.get_slide(pending.id).claimed_by is None  # the claim ends with the result
    assert {table: hashes[:len(written[table])] for table, hashes in _row_hashes(engine).items()} == written
    assert verify_database(db_url).problems == []

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    assert "station" not in _columns(engine, "scores") and "stations" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM scores")).scalar() == 2
    engine.dispose()
