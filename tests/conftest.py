"""Fixtures every test folder shares."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.screening.helpers import tiny_bundle_once


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """Entry points (`ganad watch`, the app's start) set torch's process-wide thread count; the tests
    that run them in-process give the others theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GANAD_HOME or GANAD_DB must never leak into a test."""
    monkeypatch.delenv("GANAD_HOME", raising=False)
    monkeypatch.delenv("GANAD_DB", raising=False)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle_once(tmp_path_factory)


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
