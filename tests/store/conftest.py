"""Database fixtures: every store test runs on a fresh SQLite file, and on a fresh PostgreSQL
schema (tests/conftest.py's pg_url) when GANAD_TEST_PG_URL names a database the tests may create
schemas in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ganad_clinic.store import Store, open_store


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
