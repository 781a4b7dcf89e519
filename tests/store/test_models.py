from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ganad_clinic.store import AppendOnlyError, AuditEvent, ModelVersion, Review, Score, Store
from ganad_clinic.store.models import Slide

from .helpers import add_score, record, register_model


def _seed(store: Store) -> None:
    model = register_model(store)
    slide = record(store, "/incoming/a.png", "aaa").slide
    add_score(store, slide.id, model.id)
    store.add_review(slide.id, "ana", "normal")


@pytest.mark.parametrize("model_class", [Score, Review, AuditEvent])
def test_orm_refuses_to_update_append_only_rows(store: Store, model_class: type) -> None:
    _seed(store)
    with Session(store.engine) as session:
        row = session.scalars(select(model_class).limit(1)).one()
        row.created_at = row.time = datetime.now(UTC)
        with pytest.raises(AppendOnlyError, match="append-only"):
            session.flush()


@pytest.mark.parametrize("model_class", [Score, Review, AuditEvent])
def test_orm_refuses_to_delete_append_only_rows(store: Store, model_class: type) -> None:
    _seed(store)
    with Session(store.engine) as session:
        session.delete(session.scalars(select(model_class).limit(1)).one())
        with pytest.raises(AppendOnlyError, match="append-only"):
            session.flush()


def test_times_are_stored_as_utc_and_read_back_timezone_aware(store: Store) -> None:
    cet = timezone(timedelta(hours=1))
    seen = datetime(2025, 3, 1, 9, 30, tzinfo=cet)
    with Session(store.engine) as session, session.begin():
        session.add(
            Slide(path="/a.png", file_name="a.png", sha256="a", size_bytes=1, source_folder="/", first_seen=seen)
        )
    with Session(store.engine) as session:
        stored = session.scalars(select(Slide.first_seen)).one()
    assert stored == seen
    assert stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused(store: Store) -> None:
    with Session(store.engine) as session:
        session.add(
            Slide(
                path="/a.png",
                file_name="a.png",
                sha256="a",
                size_bytes=1,
                source_folder="/",
                first_seen=datetime(2025, 3, 1, 9, 30),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()


def test_enums_are_stored_as_their_string_values(store: Store) -> None:
    _seed(store)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT decision FROM reviews")).scalar() == "normal"
        assert connection.execute(text("SELECT status FROM slides")).scalar() == "scored"


def test_the_database_allows_at_most_one_active_model(store: Store) -> None:
    register_model(store, "1.0.0")
    with Session(store.engine) as session:
        session.add(ModelVersion(version="1.1.0", bundle_path="/m", sha256="s", active=True))
        with pytest.raises(IntegrityError):
            session.flush()
