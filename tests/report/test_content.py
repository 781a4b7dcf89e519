from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ganad_clinic.report.content import describe_period, gather_content, period_bounds
from ganad_clinic.store import ReviewDecision, SlideStatus, Store

from .builders import THRESHOLD, THRESHOLD_RULE, SlideFiles, record_scored, register_model
from .conftest import UNICODE_NAME, World


def test_counts_follow_the_latest_scores_and_reviews(world: World) -> None:
    counts = gather_content(world.store).counts
    assert (counts.slides, counts.scored, counts.flagged, counts.rejected, counts.pending) == (10, 8, 4, 1, 1)
    assert counts.reviewed == 5
    assert (counts.flags_confirmed, counts.flags_overruled) == (1, 1)
    assert (counts.flags_awaiting_review, counts.flags_second_read) == (2, 1)
    assert counts.unflagged_confirmed == 1


def test_a_later_review_replaces_the_earlier_one_in_the_counts(world: World) -> None:
    world.store.add_review(world.ids[UNICODE_NAME], "Dr. Ünal", "anomaly_confirmed", "second reader agrees")
    content = gather_content(world.store)
    row = next(row for row in content.rows if row.file_name == UNICODE_NAME)
    assert row.decision is ReviewDecision.ANOMALY_CONFIRMED and row.review_note == "second reader agrees"
    assert (content.counts.flags_confirmed, content.counts.flags_awaiting_review) == (2, 1)


def test_model_settings_come_from_the_bundle_metadata(world: World) -> None:
    (model,) = gather_content(world.store).models
    assert model.version == "1.0.0" and model.sha256 == world.model.sha256
    assert model.short_sha256 == world.model.sha256[:12]
    assert (model.threshold, model.threshold_rule, model.lam, model.beta) == (THRESHOLD, THRESHOLD_RULE, 0.8, 1.0)
    assert model.thresholds_in_force == (THRESHOLD,) and model.slides_scored == 8
    assert model.problem is None


def test_several_model_versions_are_all_listed_most_used_first(world: World, tmp_path: Path) -> None:
    newer = register_model(world.store, tmp_path, "1.1.0", threshold=0.8, lam=0.5, beta=0.25)
    for name in ("Im001_0.tif", "Im002_0.tif"):
        world.store.add_score(world.ids[name], newer.id, score=0.9, l_d=1, l_r=1, l_l=1, threshold=0.8,
                              flagged=True, duration_seconds=0.1)
    models = gather_content(world.store).models
    assert [(model.version, model.slides_scored) for model in models] == [("1.0.0", 6), ("1.1.0", 2)]
    assert (models[1].threshold, models[1].lam, models[1].beta) == (0.8, 0.5, 0.25)


def test_a_missing_bundle_is_described_not_fatal(store: Store, tmp_path: Path) -> None:
    model = store.register_model_version("2.0.0", tmp_path / "gone", "f" * 64, actor="tester")
    files = SlideFiles(tmp_path / "data")
    path, heatmap = files.slide("a.png")
    record_scored(store, model, path, heatmap, 0.9)
    (info,) = gather_content(store).models
    assert info.threshold is None and info.lam is None
    assert info.thresholds_in_force == (THRESHOLD,)
    assert "not found" in info.problem


def test_without_scores_the_active_model_is_described(store: Store, tmp_path: Path) -> None:
    register_model(store, tmp_path)
    content = gather_content(store)
    assert content.is_empty
    assert [model.version for model in content.models] == ["1.0.0"]


def test_the_period_selects_slides_by_arrival(world: World) -> None:
    today = datetime.now().astimezone().date()
    assert gather_content(world.store, since=today, until=today).counts.slides == 10
    assert gather_content(world.store, until=today - timedelta(days=1)).is_empty
    assert gather_content(world.store, since=today + timedelta(days=1)).is_empty


def test_folder_and_flagged_only_filters(world: World) -> None:
    assert gather_content(world.store, folder=str(world.files.inbox)).counts.slides == 10
    assert gather_content(world.store, folder="/elsewhere").is_empty
    flagged = gather_content(world.store, flagged_only=True)
    assert flagged.counts.slides == flagged.counts.flagged == 4
    assert all(row.status is SlideStatus.SCORED for row in flagged.rows)


def test_a_date_until_includes_its_whole_day() -> None:
    start, end = period_bounds(date(2024, 5, 1), date(2024, 5, 31))
    assert start == datetime(2024, 5, 1).astimezone()
    assert end == datetime(2024, 6, 1).astimezone()
    moment = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)
    assert period_bounds(None, moment) == (None, moment)


def test_periods_read_as_the_user_gave_them() -> None:
    assert describe_period(date(2024, 5, 1), date(2024, 5, 31)) == "2024-05-01 – 2024-05-31"
    assert describe_period(None, None) == "all slides received so far"
    assert describe_period(date(2024, 5, 1), None) == "received from 2024-05-01"
