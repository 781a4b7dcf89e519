from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganad_clinic.screening.ingest as ingest_module
import ganad_clinic.screening.service as service_module
from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.synthetic import crop_rng, draw_field, field_rng, generate_cell
from ganad_clinic.model.inference import Inferencer
from ganad_clinic.screening import Outcome, ScreeningService, ServiceConfig
from ganad_clinic.screening.archive import Archiver
from ganad_clinic.screening.registry import RegistryError
from ganad_clinic.screening.watcher import FolderWatcher
from ganad_clinic.store import ModelVersion, SlideStatus, Store
from tests.screening.helpers import TINY_CROP, Collector, noise_image, nudged_model, png_bytes, wait_until, write_png

QUIET = 0.1
GRACE = 0.5  # files that look unfinished (broken.png, an empty file) wait this long before rejection


def config(inbox: Path, home: Path, **overrides) -> ServiceConfig:
    values = dict(inboxes=(inbox,), home=home, quiet_seconds=QUIET, grace_seconds=GRACE, torch_threads=1)
    values.update(overrides)
    return ServiceConfig(**values)


@contextmanager
def running(store: Store, service_config: ServiceConfig, collector: Collector) -> Iterator[ScreeningService]:
    service = ScreeningService(store, service_config, **collector.listeners())
    service.start()
    try:
        yield service
    finally:
        assert service.stop(timeout=30)


def scores_of(store: Store) -> dict[str, int]:
    """Score rows per file name of the scored (non-duplicate) slides."""
    counts: dict[str, int] = {}
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT slides.file_name, COUNT(scores.id) FROM slides LEFT JOIN scores ON scores.slide_id = slides.id "
            "WHERE slides.duplicate_of_id IS NULL GROUP BY slides.id"
        )
        for name, count in rows:
            counts[name] = counts.get(name, 0) + count
    return counts


def test_files_are_scored_once_with_heat_maps_and_events(store: Store, model: ModelVersion, inbox: Path,
                                                          home: Path) -> None:
    write_png(inbox / "before start.png", 1, 30, 50)
    (inbox / "broken.png").write_bytes(b"\x89PNG broken")
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
        write_png(inbox / "after start.png", 2)
        shutil.copy(inbox / "before start.png", inbox / "copy.png")
        wait_until(lambda: {"after start.png", "copy.png"} <= collector.names())
        assert service.wait_until_idle(30)

    assert scores_of(store) == {"before start.png": 1, "after start.png": 1, "broken.png": 0}
    by_name = {event.path.name: event for event in collector.scored}
    assert by_name["before start.png"].outcome is Outcome.SCORED
    assert by_name["copy.png"].outcome is Outcome.DUPLICATE
    assert by_name["copy.png"].score == by_name["before start.png"].score
    assert collector.threads == {"ganad-screening"}
    heatmap = by_name["before start.png"].heatmap_path
    assert heatmap.parent == home / "heatmaps"
    assert Image.open(heatmap).size == (50, 30)
    score = store.latest_score(by_name["before start.png"].slide_id)
    assert Path(score.heatmap_path) == heatmap and score.model_version_id == model.id
    (rejected,) = collector.rejected
    assert rejected.path.name == "broken.png" and rejected.reason
    assert (inbox / "before start.png").exists()  # no --archive: originals stay where they are


def test_a_field_without_white_cells_is_scored_by_the_grid(store: Store, model: ModelVersion, inbox: Path,
                                                           home: Path) -> None:
    pink = np.random.default_rng(5).normal((235, 215, 218), 4, (100, 160, 3)).clip(0, 255).astype(np.uint8)
    Image.fromarray(pink).save(inbox / "field.png")  # the tiny model's crops are 48 px: tiled above 72 px
    write_png(inbox / "crop.png", 6, 48, 48)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
    by_name = {event.path.name: event for event in collector.scored}
    assert by_name["crop.png"].tiles == 1
    assert by_name["field.png"].tiles == 24  # 4 rows x 6 columns of 48-px tiles, 24 px apart
    assert Image.open(by_name["field.png"].heatmap_path).size == (160, 100)
    stored = {name: store.latest_score(event.score_slide_id) for name, event in by_name.items()}
    assert stored["crop.png"].tiling == "whole image"
    assert stored["field.png"].tiling == "grid of 24 tiles: no white cell found"


def test_a_stained_field_is_scored_by_one_tile_per_white_cell(store: Store, model: ModelVersion, inbox: Path,
                                                               home: Path) -> None:
    image, cells = draw_field(field_rng(0, 2), width=400, height=300, n_cells=2, blast_fraction=0.0)
    Image.fromarray(image).save(inbox / "field.png")
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
    (event,) = collector.scored
    assert event.tiles == len(cells) == 2
    assert store.latest_score(event.score_slide_id).tiling == "2 tiles, one per white cell"


def test_files_are_archived_only_after_their_result_is_committed(store: Store, model: ModelVersion, inbox: Path,
                                                                 home: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "archive"
    write_png(inbox / "a.png", 1)
    (inbox / "bad.png").write_bytes(b"text, not an image")  # an empty one might still be written: it stays
    committed_when_archived: dict[str, bool] = {}
    failures = {"a.png": 1}
    real_archive = Archiver.archive

    def checking_archive(self: Archiver, slide, path: Path, inbox_: Path, *, rejected: bool = False) -> Path:
        current = store.get_slide(slide.id)
        committed_when_archived[path.name] = current.status is not SlideStatus.PENDING
        if failures.get(path.name):
            failures[path.name] -= 1
            raise OSError("simulated: the archive share is away")
        return real_archive(self, slide, path, inbox_, rejected=rejected)

    monkeypatch.setattr(Archiver, "archive", checking_archive)
    collector = Collector()
    with running(store, config(inbox, home, archive=archive, rescan_seconds=0.3), collector):
        wait_until(lambda: (archive / "a.png").exists() and (archive / "rejected" / "bad.png").exists())

    assert committed_when_archived == {"a.png": True, "bad.png": True}
    assert any("could not be archived" in message for message in collector.errors)
    assert not (inbox / "a.png").exists()
    slides = {summary.slide.file_name: summary for summary in store.list_slides()}
    assert Path(slides["a.png"].slide.archived_path) == archive / "a.png"
    assert slides["a.png"].score is not None
    assert scores_of(store)["a.png"] == 1


def test_pending_slides_are_finished_after_a_restart(store: Store, model: ModelVersion, inbox: Path,
                                                     home: Path) -> None:
    kept = write_png(inbox / "kept.png", 1)
    store.record_slide(kept, file_sha256(kept), kept.stat().st_size, inbox)
    store.record_slide(inbox / "removed.png", "0" * 64, 10, inbox)
    replaced = write_png(inbox / "replaced.png", 2)
    store.record_slide(replaced, file_sha256(replaced), replaced.stat().st_size, inbox)
    write_png(replaced, 3)  # replaced while the service was down

    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)

    assert store.list_pending_slides() == []
    reasons = {event.path.name: event.reason for event in collector.rejected}
    assert "removed before it was scored" in reasons["removed.png"]
    assert "replaced before it was scored" in reasons["replaced.png"]
    statuses = sorted((s.slide.file_name, s.slide.status.value, s.score is not None) for s in store.list_slides())
    assert statuses == [("kept.png", "scored", True), ("removed.png", "rejected", False),
                        ("replaced.png", "rejected", False), ("replaced.png", "scored", True)]
    assert scores_of(store) == {"kept.png": 1, "removed.png": 0, "replaced.png": 1}


def test_a_periodic_rescan_takes_files_whose_events_were_lost(store: Store, model: ModelVersion, inbox: Path,
                                                              home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FolderWatcher, "consider", lambda self, path, inbox, is_directory: None)
    collector = Collector()
    with running(store, config(inbox, home, rescan_seconds=0.3), collector) as service:
        assert service.wait_until_idle(30)
        write_png(inbox / "unnoticed.png", 1)
        wait_until(lambda: "unnoticed.png" in collector.names())
    assert scores_of(store) == {"unnoticed.png": 1}


@pytest.mark.parametrize("rescore", [False, True])
def test_a_new_active_model_rescores_only_when_asked(store: Store, model: ModelVersion, inbox: Path, home: Path,
                                                     tiny_bundle: Path, tmp_path: Path, rescore: bool) -> None:
    write_png(inbox / "a.png", 1)
    with running(store, config(inbox, home), Collector()) as service:
        assert service.wait_until_idle(30)
    other = nudged_model(store, tiny_bundle, home, tmp_path)
    assert other.version.startswith("1.0.0+")
    store.activate_model_version(other.version, actor="tester")

    collector = Collector()
    with running(store, config(inbox, home, rescore=rescore), collector) as service:
        assert service.wait_until_idle(30)
        write_png(inbox / "b.png", 2)
        wait_until(lambda: "b.png" in collector.names())

    by_name = {event.path.name: event for event in collector.scored}
    assert by_name["b.png"].model_version == other.version  # the service follows the active model
    assert by_name["a.png"].outcome is (Outcome.RESCORED if rescore else Outcome.KNOWN)
    assert scores_of(store)["a.png"] == (2 if rescore else 1)
    assert store.latest_score(by_name["a.png"].slide_id).model_version == (other.version if rescore else model.version)


def test_without_an_active_model_the_service_stops_with_an_error(store: Store, inbox: Path, home: Path) -> None:
    stopped = threading.Event()
    errors: list[BaseException | None] = []

    def on_stopped(error: BaseException | None) -> None:
        errors.append(error)
        stopped.set()

    service = ScreeningService(store, config(inbox, home), on_stopped=on_stopped)
    service.start()
    assert stopped.wait(30)
    assert isinstance(errors[0], RegistryError) and "ganad models import" in str(errors[0])
    assert service.stop(5) and service.error is errors[0]


def test_a_failing_listener_does_not_stop_the_service(store: Store, model: ModelVersion, inbox: Path,
                                                      home: Path) -> None:
    seen: list[str] = []

    def broken(event) -> None:
        seen.append(event.path.name)
        raise RuntimeError("listener bug")

    write_png(inbox / "a.png", 1)
    service = ScreeningService(store, config(inbox, home), on_scored=broken)
    service.start()
    try:
        wait_until(lambda: "a.png" in seen)
        write_png(inbox / "b.png", 2)
        wait_until(lambda: "b.png" in seen)
        assert not service.stopped
    finally:
        assert service.stop(30)


def test_the_archive_may_not_lie_inside_an_inbox(inbox: Path) -> None:
    with pytest.raises(ValueError, match="outside the inbox"):
        ServiceConfig((inbox,), archive=inbox / "done")


def test_a_slides_stored_duration_includes_finding_its_tiles(store: Store, model: ModelVersion, inbox: Path,
                                                             home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Inferencer.plan

    def slow_plan(self: Inferencer, image):
        time.sleep(0.3)  # as a search for cells on a large field might take
        return real(self, image)

    monkeypatch.setattr(Inferencer, "plan", slow_plan)
    write_png(inbox / "crop.png", 1)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
    (event,) = collector.scored
    assert store.latest_score(event.score_slide_id).duration_seconds >= 0.3


@pytest.mark.parametrize("step,reason", [("plan", "its white cells could not be found"),
                                         ("score", "the model could not score this image")])
def test_an_image_the_model_fails_on_is_rejected_and_the_rest_scored(store: Store, model: ModelVersion,
                                                                      inbox: Path, home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      step: str, reason: str) -> None:
    real = getattr(Inferencer, step)

    def failing_on_odd_shapes(self: Inferencer, images, *rest):
        if any(image.shape[:2] == (33, 33) for image in (images if step == "score" else [images])):
            raise RuntimeError("simulated model failure")
        return real(self, images, *rest)

    monkeypatch.setattr(Inferencer, step, failing_on_odd_shapes)
    write_png(inbox / "odd.png", 1, 33, 33)
    write_png(inbox / "fine.png", 2)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
        assert not service.stopped
    assert [event.path.name for event in collector.scored] == ["fine.png"]
    (rejected,) = collector.rejected
    assert rejected.path.name == "odd.png" and reason in rejected.reason


def test_the_same_file_dropped_again_is_archived_beside_the_first(store: Store, model: ModelVersion, inbox: Path,
                                                                 home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_png(inbox / "a.png", 1)
    collector = Collector()
    with running(store, config(inbox, home, archive=archive), collector):
        wait_until(lambda: (archive / "a.png").exists())
        write_png(inbox / "a.png", 1)  # the very same file again: the same slide
        wait_until(lambda: not (inbox / "a.png").exists())
    (summary,) = store.list_slides()
    assert Path(summary.slide.archived_path) == archive / "a.png"  # where it was archived is recorded once
    assert sorted(path.name for path in archive.iterdir()) == ["a-1.png", "a.png"]
    assert [event.outcome for event in collector.scored] == [Outcome.SCORED, Outcome.KNOWN]
    assert not collector.errors


def test_a_batch_is_scored_before_it_holds_more_decoded_pixels_than_allowed(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganad_clinic.screening import service as service_module

    held: list[int] = []
    real_score = ScreeningService._score

    def score(self, arrivals, loaded):
        held.append(sum(arrival.image.shape[0] * arrival.image.shape[1] for arrival in arrivals))
        return real_score(self, arrivals, loaded)

    monkeypatch.setattr(service_module, "DECODED_PIXELS_HELD", 3 * 40 * 40)  # three 40x40 files
    monkeypatch.setattr(ScreeningService, "_score", score)
    for index in range(7):
        write_png(inbox / f"slide {index}.png", index)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(60)
    assert len(collector.scored) == 7 and set(scores_of(store).values()) == {1}
    assert max(held) <= 3 * 40 * 40 and sum(held) == 7 * 40 * 40
    assert 3 * 40 * 40 in held  # one batch did fill up to the limit: the limit was what split it


def test_a_rejected_file_that_still_looks_unfinished_stays_in_the_inbox(store: Store, model: ModelVersion,
                                                                         inbox: Path, home: Path,
                                                                         tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    data = png_bytes(1)
    path = inbox / "slow scan.png"
    path.write_bytes(data[:len(data) // 2])  # the scanner stalled for longer than the grace period
    collector = Collector()
    with running(store, config(inbox, home, archive=archive), collector):
        wait_until(lambda: collector.rejected)
        assert path.exists() and not (archive / "rejected" / path.name).exists()
        path.write_bytes(data)  # the rest of the write arrives
        wait_until(lambda: collector.scored)
    assert (archive / path.name).exists() and not path.exists()


def test_a_copy_kept_for_after_its_batch_holds_no_decoded_image(store: Store, model: ModelVersion, inbox: Path,
                                                                home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganad_clinic.screening.ingest import Ingestor, Step

    resumed_with_image: list[bool] = []
    real_resume = Ingestor.resume

    def resume(self, arrival, model_id, *, known):
        if arrival.step is Step.SCORE:  # a repeat of content decoded earlier in its batch
            resumed_with_image.append(arrival.image is not None)
        return real_resume(self, arrival, model_id, known=known)

    monkeypatch.setattr(Ingestor, "resume", resume)
    for name in ("a.png", "b.png", "c.png"):
        write_png(inbox / name, 1)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)
    assert resumed_with_image == [False, False]
    assert sorted(event.outcome.value for event in collector.scored) == sorted(
        [Outcome.SCORED.value, Outcome.DUPLICATE.value, Outcome.DUPLICATE.value])


def test_a_file_whose_result_the_database_refuses_does_not_hold_up_the_others(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganad_clinic.screening import service as service_module
    from ganad_clinic.store import StoreError

    monkeypatch.setattr(service_module, "STORE_RETRY_SECONDS", 0.05)
    real_record = type(store).record_slides

    def record_slides(self, entries, **kwargs):  # the whole transaction fails, as a refused value fails it
        if any(entry.path.endswith("refused.png") for entry in entries):
            raise StoreError("simulated: the database refuses a value of this file")
        return real_record(self, entries, **kwargs)

    monkeypatch.setattr(type(store), "record_slides", record_slides)
    for index, name in enumerate(["a.png", "refused.png", "b.png", "c.png"]):
        write_png(inbox / name, index)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(30)  # as `ganad watch --once` waits
    assert {event.path.name for event in collector.scored} == {"a.png", "b.png", "c.png"}
    assert any("refused.png: its result could not be saved" in message and "refuses a value" in message
               for message in collector.errors)
    assert set(scores_of(store)) == {"a.png", "b.png", "c.png"}


def test_heat_maps_wait_until_the_batch_is_scored_flagged_slides_first(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(6):  # synthetic normal cells like the model's training crops, and noise: both kinds
        pixels = generate_cell(crop_rng(7, False, index), False, size=TINY_CROP) if index % 2 else noise_image(index)
        Image.fromarray(pixels).save(inbox / f"slide {index}.png")
    store.set_target_fpr(0.2, actor="lab", reason="a rate that flags the noise only")
    painted: list[tuple[bool, int]] = []  # (its slide flagged, how many slides were scored when it was painted)
    real_write = service_module.write_heatmap

    def write(path, image, heat):
        slide_id = int(Path(path).name.split("-")[1])  # slide-<id>-model-<id>.png
        scored = sum(summary.score is not None for summary in store.list_slides())
        painted.append((store.latest_score(slide_id).flagged, scored))
        return real_write(path, image, heat)

    monkeypatch.setattr(service_module, "write_heatmap", write)
    with running(store, config(inbox, home), Collector()) as service:
        assert service.wait_until_idle(60)
    flags = [flagged for flagged, _ in painted]
    assert len(painted) == 6 and any(flags) and not all(flags)
    assert all(scored == 6 for _, scored in painted)  # none beside the batch's scoring, flagged slides' neither
    assert flags.index(False) > max(index for index, flagged in enumerate(flags) if flagged)  # flagged first


def test_heat_maps_are_written_after_their_scores_commit_on_the_painter_thread(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(6):
        write_png(inbox / f"slide {index}.png", index, 40, 40)
    painted: list[tuple[str, bool]] = []  # (thread, was its slide's score committed already)
    real_write = service_module.write_heatmap

    def write(path, image, heat):
        slide_id = int(Path(path).name.split("-")[1])  # slide-<id>-model-<id>.png
        painted.append((threading.current_thread().name, store.latest_score(slide_id) is not None))
        return real_write(path, image, heat)

    monkeypatch.setattr(service_module, "write_heatmap", write)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(60)
        at_idle = [Path(store.latest_score(summary.slide.id).heatmap_path).is_file() for summary in store.list_slides()]
    assert len(painted) == 6 and all(committed for _, committed in painted)  # never holding a commit back
    assert {thread for thread, _ in painted} != {"ganad-screening"}  # beside the scoring, not in its way
    assert len(at_idle) == 6 and all(at_idle)  # idle means the pictures are written too
    assert collector.errors == []


def test_a_file_is_decoded_only_once_the_images_held_before_it_are_scored_when_they_fill_the_budget(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(4):
        write_png(inbox / f"slide {index}.png", index, 40, 40)  # 1,600 pixels each, over the budget alone
    monkeypatch.setattr(service_module, "DECODED_PIXELS_HELD", 1_000)
    steps: list[str] = []  # "decoded" and "scored" in the order they finished
    real_read, real_score = ingest_module.read_pixels, ScreeningService._score

    def read(path, max_pixels=None):
        pixels = real_read(path, max_pixels)
        steps.append("decoded")
        return pixels

    def score(self, arrivals, loaded):
        real_score(self, arrivals, loaded)
        steps.extend("scored" for _ in arrivals)

    monkeypatch.setattr(ingest_module, "read_pixels", read)
    monkeypatch.setattr(ScreeningService, "_score", score)
    with running(store, config(inbox, home, quiet_seconds=0.5), Collector()) as service:
        assert service.wait_until_idle(60)
    assert steps == ["decoded", "scored"] * 4  # never two images decoded and unscored at once


def test_heat_maps_that_cannot_be_written_are_reported_and_the_screening_goes_on(
        store: Store, model: ModelVersion, inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(path, image, heat):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service_module, "write_heatmap", disk_full)
    monkeypatch.setattr(service_module, "PAINTING_PIXELS_HELD", 1)  # each heat map waits for the one before it
    for index in range(4):
        write_png(inbox / f"slide {index}.png", index)
    collector = Collector()
    with running(store, config(inbox, home), collector) as service:
        assert service.wait_until_idle(60)
        write_png(inbox / "later.png", 9)
        wait_until(lambda: len(collector.scored) == 5)
        assert not service.stopped
    assert service.error is None
    assert sum("the heat map could not be written" in message and "No space left" in message
               for message in collector.errors) == 5
