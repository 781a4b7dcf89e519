"""Database fixtures: every store test runs on a fresh SQLite file, and on a fresh PostgreSQL
schema when GANAD_TEST_PG_URL names a database the tests may create schemas in."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from ganad_clinic.store import Store, open_store

PG_URL_ENV = "GANAD_TEST_PG_URL"
PG_SKIP_REASON = f"{PG_URL_ENV} not set: PostgreSQL tests skipped"


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(PG_SKIP_REASON)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: Engine) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema, dropped after the test."""
    schema = f"ganad_test_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(os.environ[PG_URL_ENV]).update_query_dict(
        {"options": f"-csearch_path={schema} -csynchronous_commit=off"}  # durability is not under test
    )
    yield url.render_as_string(hide_password=False)
    with pg_admin_engine.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ganad.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as opened:
        yield opened
