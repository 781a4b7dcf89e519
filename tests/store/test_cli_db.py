"""`ganad db` through its own argparse parser (the lead wires it into `ganad`)."""

from __future__ import annotations

import argparse
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ganad_clinic.cli import db
from ganad_clinic.store import Cell, Judgement, TilingRecord, open_store
from ganad_clinic.store.migrate import alembic_config, database_revisions, head_revision

from .helpers import record, register_model


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


def test_verify_says_one_line_when_sound_and_names_the_row_when_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ganad_db("verify", "--home", str(tmp_path)) == 1
    assert f"ganad db verify: there is no database {tmp_path / 'ganad.db'}" in capsys.readouterr().err
    with open_store(home=tmp_path) as store:
        store.audit("ana", "report.exported", {"pages": 3})
    assert ganad_db("verify", "--home", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"database sqlite:///{tmp_path / 'ganad.db'} verified: chains intact (0 scores, "
                          "0 reviews, 1 audit events, 0 signatures; heads scores empty, reviews empty, audit_events ")
    assert out.count("\n") == 1

    with sqlite3.connect(tmp_path / "ganad.db") as connection:
        connection.execute("DROP TRIGGER audit_events_no_update")
        connection.execute("""UPDATE audit_events SET details = '{"pages": 1}'""")
    connection.close()
    assert ganad_db("verify", "--home", str(tmp_path)) == 1
    assert capsys.readouterr().err.splitlines() == [
        "ganad db verify: trigger audit_events_no_update on audit_events is missing: audit_events is no longer "
        "guarded against changes",
        "ganad db verify: audit_events row 1 does not match its hash: it was changed, or a row before it was "
        "inserted, changed or deleted, after GANAD Clinic wrote it",
    ]


def test_verify_refuses_a_database_not_yet_upgraded_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ganad_db("upgrade", "--home", str(tmp_path))
    engine = create_engine(f"sqlite:///{tmp_path / 'ganad.db'}")
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    engine.dispose()
    assert ganad_db("verify", "--home", str(tmp_path)) == 1
    assert f"is at revision 0002, not {head_revision()}: run `ganad db upgrade` first" in capsys.readouterr().err
    assert database_revisions(f"sqlite:///{tmp_path / 'ganad.db'}") == ("0002",)


def test_grant_to_is_for_postgresql_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ganad_db("upgrade", "--home", str(tmp_path), "--grant-to", "clinic") == 1
    assert "has no roles to grant to (--grant-to is for PostgreSQL)" in capsys.readouterr().err


@pytest.fixture
def everyday_role(pg_url: str, pg_admin_engine: Engine) -> Iterator[str]:
    """A login role that owns nothing; removed after the test."""
    role = f"ganad_everyday_{uuid.uuid4().hex[:8]}"
    try:
        with pg_admin_engine.connect() as connection:
            connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'everyday'"))
    except DBAPIError as error:
        pytest.skip(f"the test role may not create roles (ALTER ROLE ... CREATEROLE): {error.orig}")
    yield role
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        schema = connection.scalar(text("SELECT current_schema()"))
        for objects in ("TABLES", "SEQUENCES"):
            connection.execute(text(f'REVOKE ALL ON ALL {objects} IN SCHEMA "{schema}" FROM {role}'))
        connection.execute(text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}'))
        connection.execute(text(f"DROP ROLE {role}"))
    engine.dispose()


def test_the_everyday_role_adds_results_but_cannot_change_them_or_the_guards(
    pg_url: str, everyday_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ganad_db("upgrade", "--db", pg_url) == 0
    owner = create_engine(pg_url)
    with owner.begin() as connection:  # an earlier, table-wide grant is taken back
        connection.execute(text(f"GRANT UPDATE ON slides, model_versions TO {everyday_role}"))
    owner.dispose()
    assert ganad_db("upgrade", "--db", pg_url, "--grant-to", everyday_role) == 0
    assert f"role {everyday_role} may now read and add results" in capsys.readouterr().out
    everyday_url = make_url(pg_url).set(username=everyday_role, password="everyday").render_as_string(False)

    with open_store(everyday_url) as store:  # every UPDATE the store does is allowed
        copy = record(store, "/in/copy-of-a.png", "aaa").slide
        register_model(store, "1.0.0")
        register_model(store, "1.1.0")
        store.activate_model_version("1.1.0", actor="ana")
        slide = record(store, "/in/a.png", "aaa").slide
        store.add_score(slide.id, 2, score=0.9, l_d=0.1, l_r=0.2, l_l=0.3, threshold=0.7, flagged=True,
                        duration_seconds=0.25, tiling=TilingRecord("white cells", "1 tile, one per white cell", 257,
                                                                   1.0, 0.5),
                        cells=[Cell(cell_index=0, x=-5, y=3, width=128, height=128, found_by="white cell", score=0.9,
                                    l_d=0.1, l_r=0.2, l_l=0.3, flagged=True, p_value=0.01)],
                        judgement=Judgement(0.01, 0.05, 0.05, 120))
        store.add_review(slide.id, "ana", "anomaly_confirmed")
        store.set_target_fpr(0.02, actor="ana", reason="the lab's policy")
        store.link_acceptance_report("1.1.0", "/reports/1.1.0.pdf", actor="ana", details={"accepted": True})
        store.mark_archived(slide.id, "/archive/a.png")
        store.mark_rejected(record(store, "/in/b.png", "bbb").slide.id, "not an image")
        assert store.link_to_scored_original(copy.id) is not None
        store.rollback_model_version(actor="ana")
    engine = create_engine(everyday_url)
    for statement in ("ALTER TABLE scores DISABLE TRIGGER USER", "UPDATE scores SET score = 0",
                      "DELETE FROM audit_events", "DROP TRIGGER slides_guard ON slides", "TRUNCATE reviews",
                      "UPDATE slides SET file_name = 'other.png'", "UPDATE slides SET size_bytes = 0",
                      "UPDATE cells SET score = 0", "DELETE FROM cells",
                      "UPDATE model_versions SET sha256 = 'forged'", "UPDATE model_versions SET bundle_path = '/x'"):
        with pytest.raises(DBAPIError, match="must be owner|permission denied"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    engine.dispose()
    assert ganad_db("verify", "--db", everyday_url) == 0


def test_the_everyday_role_cannot_migrate_and_is_told_who_can(
    pg_url: str, everyday_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ganad_db("upgrade", "--db", pg_url, "--grant-to", everyday_role) == 0
    engine = create_engine(pg_url)
    with engine.begin() as connection:  # as an older GANAD Clinic left it: this version must migrate it
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    engine.dispose()
    everyday_url = make_url(pg_url).set(username=everyday_role, password="everyday").render_as_string(False)
    capsys.readouterr()
    assert ganad_db("upgrade", "--db", everyday_url) == 1
    assert capsys.readouterr().err == (
        f"ganad db upgrade: cannot upgrade database {make_url(everyday_url).render_as_string()}: the database "
        "role in use may not do this (permission denied); run `ganad db upgrade` as the role that owns the tables\n"
    )
