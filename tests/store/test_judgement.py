"""The operating point in the store (issue 22): each score's judgement and its cells' p-values,
covered by the chains; the lab's stated rate in the audit trail; the acceptance report's link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text

from ganad_clinic.store import OPERATING_POINT_SET, Cell, Judgement, Store, StoreError, TilingRecord
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, record, register_model

TILING = TilingRecord("white cells", "2 tiles, one per white cell", 257, 0.5, 0.5)
JUDGEMENT = Judgement(p_value=2 / 121, target_fpr=0.05, kept_fpr=2 / 121 * 2, calibration_n=120)


def _cells(with_p_values: bool = True) -> list[Cell]:
    return [
        Cell(cell_index=0, x=10, y=20, width=128, height=128, found_by="white cell", score=0.25, l_d=0.1,
             l_r=0.2, l_l=0.3, flagged=False, p_value=0.5 if with_p_values else None),
        Cell(cell_index=1, x=300, y=40, width=128, height=128, found_by="white cell", score=0.75, l_d=0.4,
             l_r=0.5, l_l=0.6, flagged=True, p_value=1 / 121 if with_p_values else None),
    ]


def _judged(store: Store, path: str = "/incoming/field.jpg", sha256: str = "aaa", *, with_p_values: bool = True):
    model = store.active_model_version() or register_model(store)
    slide = record(store, path, sha256).slide
    return store.add_score(slide.id, model.id, score=0.75, l_d=0.4, l_r=0.5, l_l=0.6, threshold=0.7, flagged=True,
                           duration_seconds=1.0, tiling=TILING, cells=_cells(with_p_values),
                           judgement=JUDGEMENT if with_p_values else None)


@pytest.fixture
def raw(db_url: str) -> Engine:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _drop_guard(engine: Engine, table: str) -> str:
    """Take a table's append-only guard away, as the tables' owner can."""
    if engine.dialect.name == "sqlite":
        return f"DROP TRIGGER {table}_no_update"
    return f"ALTER TABLE {table} DISABLE TRIGGER USER"


def test_a_score_keeps_its_judgement_and_its_cells_p_values(store: Store) -> None:
    score = _judged(store)

    stored = store.latest_score(score.slide_id)
    assert (stored.p_value, stored.target_fpr, stored.kept_fpr, stored.calibration_n) == (
        JUDGEMENT.p_value, 0.05, JUDGEMENT.kept_fpr, 120)
    assert [cell.p_value for cell in store.list_cells(score.id)] == [0.5, 1 / 121]


def test_a_score_without_a_judgement_keeps_none(store: Store) -> None:
    score = _judged(store, with_p_values=False)

    stored = store.latest_score(score.slide_id)
    assert (stored.p_value, stored.target_fpr, stored.kept_fpr, stored.calibration_n) == (None, None, None, None)
    assert [cell.p_value for cell in store.list_cells(score.id)] == [None, None]


def test_verify_passes_on_scores_with_and_without_p_values(store: Store) -> None:
    _judged(store, "/in/a.jpg", "aaa")
    _judged(store, "/in/b.jpg", "bbb", with_p_values=False)
    model = store.active_model_version()
    add_score(store, record(store, "/in/c.png", "ccc").slide.id, model.id)  # no cells, no judgement

    verification = verify_database(store.url)

    assert verification.problems == [] and verification.rows["scores"] == 3


@pytest.mark.parametrize("p_value", ["0.9", "NULL"])
def test_verify_finds_a_changed_cell_p_value(store: Store, raw: Engine, p_value: str) -> None:
    score = _judged(store)
    with raw.begin() as connection:
        connection.execute(text(_drop_guard(raw, "cells")))
        connection.execute(text(f"UPDATE cells SET p_value = {p_value} WHERE score_id = {score.id} AND cell_index = 1"))

    assert (f"the cells of scores row {score.id} do not match the digest in that row: a cell was changed, added or "
            "removed") in verify_database(store.url).problems


def test_verify_finds_a_p_value_given_to_a_cell_that_had_none(store: Store, raw: Engine) -> None:
    score = _judged(store, with_p_values=False)
    with raw.begin() as connection:
        connection.execute(text(_drop_guard(raw, "cells")))
        connection.execute(text(f"UPDATE cells SET p_value = 0.001 WHERE score_id = {score.id}"))

    problems = verify_database(store.url).problems
    assert any(problem.startswith(f"the cells of scores row {score.id} do not match") for problem in problems)


@pytest.mark.parametrize("column, value", [("p_value", "0.9"), ("target_fpr", "0.5"), ("kept_fpr", "NULL"),
                                           ("calibration_n", "1000")])
def test_verify_finds_a_changed_judgement(store: Store, raw: Engine, column: str, value: str) -> None:
    score = _judged(store)
    with raw.begin() as connection:
        connection.execute(text(_drop_guard(raw, "scores")))
        connection.execute(text(f"UPDATE scores SET {column} = {value} WHERE id = {score.id}"))

    problems = verify_database(store.url).problems
    assert any(problem.startswith(f"scores row {score.id} does not match its hash") for problem in problems)


def test_the_lab_states_its_target_rate_in_the_audit_trail(store: Store) -> None:
    assert store.target_fpr_setting() is None  # each model's own training target holds
    before = datetime.now(UTC) - timedelta(seconds=5)

    first = store.set_target_fpr(0.05, actor="ana", reason="  the lab's policy  ")
    second = store.set_target_fpr(0.02, actor="ben", reason="fewer second reads")

    assert (first.target_fpr, first.actor, first.reason) == (0.05, "ana", "the lab's policy")
    assert store.target_fpr_setting() == second
    assert (second.target_fpr, second.actor, second.reason) == (0.02, "ben", "fewer second reads")
    assert second.time.astimezone(UTC) >= before
    events = store.list_audit_events(OPERATING_POINT_SET)
    assert [event.details for event in events] == [
        {"target_fpr": 0.05, "reason": "the lab's policy", "previous": None},
        {"target_fpr": 0.02, "reason": "fewer second reads", "previous": 0.05},
    ]
    assert [event.actor for event in events] == ["ana", "ben"]
    assert verify_database(store.url).problems == []


@pytest.mark.parametrize("rate", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), True, "0.05", None])
def test_a_target_rate_that_is_not_a_rate_is_refused_and_nothing_is_audited(store: Store, rate) -> None:
    with pytest.raises(StoreError, match="strictly between 0 and 1"):
        store.set_target_fpr(rate, actor="ana", reason="policy")
    assert store.target_fpr_setting() is None and store.list_audit_events() == []


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_target_rate_without_a_reason_is_refused(store: Store, reason: str) -> None:
    with pytest.raises(StoreError, match="needs a reason"):
        store.set_target_fpr(0.05, actor="ana", reason=reason)
    assert store.target_fpr_setting() is None and store.list_audit_events() == []


def test_an_acceptance_report_is_linked_from_the_registry_and_audited(store: Store) -> None:
    register_model(store, "1.0.0")
    register_model(store, "1.1.0")

    linked = store.link_acceptance_report("1.1.0", "/home/reports/acceptance-1.1.0.pdf", actor="ana",
                                          details={"accepted": False, "reasons": ["fewer than 20 normals"]})

    assert linked.acceptance_report == "/home/reports/acceptance-1.1.0.pdf"
    versions = {model.version: model for model in store.list_model_versions()}
    assert versions["1.1.0"].acceptance_report == "/home/reports/acceptance-1.1.0.pdf"
    assert versions["1.0.0"].acceptance_report is None
    (event,) = store.list_audit_events("model.acceptance_report")
    assert event.actor == "ana" and event.details == {
        "version": "1.1.0", "report": "/home/reports/acceptance-1.1.0.pdf", "accepted": False,
        "reasons": ["fewer than 20 normals"]}
    assert verify_database(store.url).problems == []


def test_an_acceptance_report_for_an_unregistered_version_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="model version 9.9.9 is not registered"):
        store.link_acceptance_report("9.9.9", "/reports/x.pdf", actor="ana", details={})
    assert store.list_audit_events() == []
