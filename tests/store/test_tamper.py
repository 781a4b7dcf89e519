"""Tampering with direct SQL (issue 19, item 6) is refused by the database or found by
`verify_database`, which names the row."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from ganad_clinic.store import Cell, NewScore, Score, Store, open_store
from ganad_clinic.store.chain import chained_columns, row_hash
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, record, register_model

# The seeded database: slide 1 scored (flagged) and reviewed, slide 2 a duplicate of it, slide 3
# rejected, slide 4 pending and archived.
FORGED_SCORE = (
    "INSERT INTO scores (slide_id, model_version_id, model_version, model_sha256, score, l_d, l_r, l_l, "
    "threshold, flagged, duration_seconds, created_at{hash_column}) "
    "SELECT slide_id, model_version_id, model_version, model_sha256, 0.01, l_d, l_r, l_l, threshold, {false}, "
    "duration_seconds, created_at{hash_value} FROM scores WHERE id = 1"
)


@pytest.fixture
def seeded(store: Store) -> Store:
    model = register_model(store)
    original = record(store, "/in/a.png", "aaa").slide
    add_score(store, original.id, model.id, score=0.9, threshold=0.7)
    store.add_review(original.id, "ana", "anomaly_confirmed", "blasts")
    record(store, "/in/copy-of-a.png", "aaa")
    store.mark_rejected(record(store, "/in/bad.png", "bbb").slide.id, "not an image")
    store.mark_archived(record(store, "/in/d.png", "ddd").slide.id, "/archive/d.png")
    return store


@pytest.fixture
def raw(db_url: str) -> Iterator[Engine]:
    """Another program with the database's password: plain SQL, no GANAD Clinic code."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def _false(engine: Engine) -> str:
    return "false" if engine.dialect.name == "postgresql" else "0"


def _drop_guard(engine: Engine, sqlite_trigger: str, table: str) -> str:
    """Take a guard away as the tables' owner can: drop it (SQLite), disable its table's triggers (PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        return f"DROP TRIGGER {sqlite_trigger}"
    return f"ALTER TABLE {table} DISABLE TRIGGER USER"


def test_a_sound_database_verifies_with_a_one_line_summary(seeded: Store) -> None:
    verification = verify_database(seeded.url)
    assert verification.problems == []
    assert verification.rows == {"scores": 1, "reviews": 1, "audit_events": 2, "signatures": 0}
    assert verification.slides == 4
    summary = verification.summary()
    assert "verified: chains intact (1 scores, 1 reviews, 2 audit events, 0 signatures; heads scores " in summary
    assert "\n" not in summary


def test_a_forged_score_without_a_hash_is_refused(seeded: Store, raw: Engine) -> None:
    forged = FORGED_SCORE.format(hash_column="", hash_value="", false=_false(raw))
    with pytest.raises(DBAPIError, match="scores rows are added by GANAD Clinic only"):
        _execute(raw, forged)
    assert seeded.latest_score(1).flagged is True


def test_a_forged_later_score_that_unflags_is_found(seeded: Store, raw: Engine) -> None:
    forged = FORGED_SCORE.format(hash_column=", row_hash", hash_value=", row_hash", false=_false(raw))
    _execute(raw, forged)
    assert seeded.latest_score(1).flagged is False  # what the report would now show
    assert verify_database(seeded.url).problems == [
        "scores row 2 does not match its hash: it was changed, or a row before it was inserted, changed or "
        "deleted, after GANAD Clinic wrote it"
    ]


def test_scores_appended_in_one_transaction_chain_one_onto_the_other(seeded: Store, raw: Engine) -> None:
    model_id = seeded.latest_score(1).model_version_id
    slides = [record(seeded, f"/incoming/batch-{index}.png", f"{index:02x}" * 32).slide for index in range(3)]
    entries = [NewScore(slide.id, model_id, score=0.1 * index, l_d=0.1, l_r=0.2, l_l=0.3, threshold=0.7,
                        flagged=False, duration_seconds=0.1, cells=[_one_cell(0.1 * index)])
               for index, slide in enumerate(slides)]
    stored = seeded.add_scores(entries)
    assert [row.id for row in stored] == [2, 3, 4]
    previous = seeded.latest_score(1).row_hash
    for row in stored:  # each hashed onto the one before it, the first onto the earlier head
        values = {column: getattr(row, column) for column in chained_columns(Score.__table__)}
        assert row.row_hash == row_hash("scores", previous, values)
        previous = row.row_hash
    assert verify_database(seeded.url).ok
    _execute(raw, _drop_guard(raw, "cells_no_update", "cells"), "UPDATE cells SET score = 9.0 WHERE score_id = 3")
    assert any("scores row 3" in problem for problem in verify_database(seeded.url).problems)


def _one_cell(score: float) -> Cell:
    return Cell(cell_index=0, x=0, y=0, width=8, height=8, found_by="whole image", score=score, l_d=0.1, l_r=0.2,
                l_l=0.3, flagged=False)


@pytest.mark.parametrize("onto_the_head", [False, True])
def test_a_score_forged_with_the_published_algorithm(seeded: Store, raw: Engine, onto_the_head: bool) -> None:
    """A row hashed without its predecessor does not fit the chain; one hashed onto the head does,
    and only a kept chain head reveals it (the limit verify states)."""
    genuine = seeded.latest_score(1)
    head_before = verify_database(seeded.url).heads["scores"]
    values = {column: getattr(genuine, column) for column in chained_columns(Score.__table__)}
    values.update(id=2, flagged=False, score=0.01)
    previous = genuine.row_hash if onto_the_head else None
    _execute(raw, FORGED_SCORE.format(hash_column=", row_hash", false=_false(raw),
                                      hash_value=f", '{row_hash('scores', previous, values)}'"))
    verification = verify_database(seeded.url)
    assert verification.ok is onto_the_head
    if onto_the_head:
        assert verification.heads["scores"] != head_before
    else:
        assert verification.problems[0].startswith("scores row 2 does not match its hash")


def test_repointing_a_duplicate_is_refused(seeded: Store, raw: Engine) -> None:
    with pytest.raises(DBAPIError, match="duplicate_of_id is set once"):
        _execute(raw, "UPDATE slides SET duplicate_of_id = 4 WHERE id = 2")
    with pytest.raises(DBAPIError, match="duplicate_of_id is set once"):
        _execute(raw, "UPDATE slides SET duplicate_of_id = NULL WHERE id = 2")
    with pytest.raises(DBAPIError, match="duplicate_of_id is set once"):  # a scored original made a copy
        _execute(raw, "UPDATE slides SET duplicate_of_id = 4 WHERE id = 1")
    assert seeded.get_slide(2).duplicate_of_id == 1


def test_a_repointed_duplicate_is_found_when_the_guard_is_gone(seeded: Store, raw: Engine) -> None:
    _execute(raw, _drop_guard(raw, "slides_duplicate_once", "slides"),
             "UPDATE slides SET duplicate_of_id = 3 WHERE id = 2")
    problems = verify_database(seeded.url).problems
    assert "slides row 2 (scored, duplicate of slide 3) is a duplicate of a slide that is not a scored original " \
           "with the same content" in problems


def test_a_scored_slide_cannot_be_marked_rejected(seeded: Store, raw: Engine) -> None:
    for statement in ("UPDATE slides SET status = 'rejected' WHERE id = 1",
                      "UPDATE slides SET status = 'pending' WHERE id = 1",
                      "UPDATE slides SET status = 'scored' WHERE id = 3"):
        with pytest.raises(DBAPIError, match="keeps"):
            _execute(raw, statement)
    assert [seeded.get_slide(number).status.value for number in (1, 3)] == ["scored", "rejected"]


def test_a_scored_slide_marked_rejected_is_found_when_the_guard_is_gone(seeded: Store, raw: Engine) -> None:
    _execute(raw, _drop_guard(raw, "slides_status_forward", "slides"),
             "UPDATE slides SET status = 'rejected' WHERE id = 1")
    problems = verify_database(seeded.url).problems
    assert "slides row 1 (rejected) has a score but is not marked scored" in problems


def test_slides_cannot_be_deleted(seeded: Store, raw: Engine) -> None:
    for statement in ("DELETE FROM slides WHERE id = 4", "DELETE FROM slides"):
        with pytest.raises(DBAPIError, match="slides cannot be deleted"):
            _execute(raw, statement)
    assert len(seeded.list_slides()) == 4


def test_an_archived_path_and_a_slide_identity_are_set_once(seeded: Store, raw: Engine) -> None:
    with pytest.raises(DBAPIError, match="archived_path is set once"):
        _execute(raw, "UPDATE slides SET archived_path = '/elsewhere/d.png' WHERE id = 4")
    for column, value in (("sha256", "'zzz'"), ("path", "'/in/other.png'"), ("id", "99")):
        with pytest.raises(DBAPIError, match="what identifies a slide never changes"):
            _execute(raw, f"UPDATE slides SET {column} = {value} WHERE id = 1")
    _execute(raw, "UPDATE slides SET archived_path = '/archive/a.png' WHERE id = 1")  # NULL -> value is allowed


def test_a_review_edited_after_dropping_its_trigger_is_found(seeded: Store, raw: Engine) -> None:
    _execute(raw, _drop_guard(raw, "reviews_no_update", "reviews"),
             "UPDATE reviews SET decision = 'normal', note = '' WHERE id = 1")
    problems = verify_database(seeded.url).problems
    missing = "missing" if raw.dialect.name == "sqlite" else "disabled"
    trigger = "reviews_no_update" if raw.dialect.name == "sqlite" else "reviews_append_only"
    assert problems[0].startswith(f"trigger {trigger} on reviews is {missing}: reviews is no longer guarded")
    assert "reviews row 1 does not match its hash" in problems[-1]


def test_a_disabled_trigger_is_found_on_postgresql(pg_url: str) -> None:
    with open_store(pg_url):
        pass
    engine = create_engine(pg_url)
    _execute(engine, "ALTER TABLE scores DISABLE TRIGGER scores_append_only")
    engine.dispose()
    assert verify_database(pg_url).problems == [
        "trigger scores_append_only on scores is disabled: scores is no longer guarded against changes "
        "(the table's owner can run ALTER TABLE scores ENABLE TRIGGER scores_append_only)"
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [("slide_id", "2"), ("model_version", "'9.9'"), ("model_sha256", "'x'"), ("l_d", "0"), ("l_r", "0"),
     ("l_l", "0"), ("threshold", "2"), ("flagged", "{false}"), ("heatmap_path", "'/h.png'"), ("tiling", "'grid'"),
     ("warning", "'page 1 of 2 scored'"), ("duration_seconds", "9"), ("created_at", "{time}"),
     ("score", repr(math.nextafter(0.9, 1)))],
)
def test_every_column_of_a_score_is_covered_floats_to_the_last_bit(
    seeded: Store, raw: Engine, column: str, value: str
) -> None:
    time = "'2030-01-01 00:00:00.000000'" if raw.dialect.name == "sqlite" else "'2030-01-01 00:00:00+00'"
    _execute(raw, _drop_guard(raw, "scores_no_update", "scores"),
             f"UPDATE scores SET {column} = {value.format(false=_false(raw), time=time)} WHERE id = 1")
    assert any(problem.startswith("scores row 1 does not match its hash")
               for problem in verify_database(seeded.url).problems)


def test_concurrent_writers_on_postgresql_keep_one_chain(pg_url: str) -> None:
    """Two workstations (two stores, each with its own connections) appending at once."""
    stores = [open_store(pg_url), open_store(pg_url)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(store: Store, actor: str) -> None:
        try:
            start.wait(timeout=30)
            for number in range(60):
                store.audit(actor, "test.write", {"number": number})
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(store, f"station-{n}")) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for store in stores:
        store.close()
    assert errors == []
    verification = verify_database(pg_url)
    assert verification.problems == []
    assert verification.rows["audit_events"] == 120


def test_a_score_for_a_duplicate_or_a_rejected_slide_is_refused(seeded: Store, raw: Engine) -> None:
    """Even with a row hash, a duplicate (slide 2) or a rejected slide (slide 3) gets no score."""
    forged = FORGED_SCORE.format(hash_column=", row_hash", hash_value=", row_hash", false=_false(raw))
    for slide_id in (2, 3):
        with pytest.raises(DBAPIError, match="a duplicate or rejected"):
            _execute(raw, forged.replace("SELECT slide_id,", f"SELECT {slide_id},"))
    _execute(raw, forged.replace("SELECT slide_id,", "SELECT 4,"))  # a pending slide may be scored
    assert seeded.latest_score(2).slide_id == 1
    assert seeded.latest_score(3) is None
