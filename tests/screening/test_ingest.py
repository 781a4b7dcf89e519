from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import ganad_clinic.screening.ingest as ingest
from ganad_clinic.imaging.completeness import looks_unfinished
from ganad_clinic.screening.events import Outcome
from ganad_clinic.screening.ingest import Ingestor, Offer, Step, link_problem
from ganad_clinic.screening.stability import REFUSED
from ganad_clinic.store import ModelVersion, SlideStatus, Store
from tests.screening.helpers import bomb_png_bytes, image_bytes, png_bytes, write_png

RECENT = 0.5  # seen unchanged this long: less than the default grace period


def test_a_new_image_is_recorded_pending_and_decoded(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = write_png(inbox / "a.png", 1, 30, 50)
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.step is Step.SCORE and arrival.outcome is Outcome.SCORED
    assert arrival.image.shape == (30, 50, 3)
    assert arrival.slide.status is SlideStatus.PENDING
    assert (arrival.slide.width, arrival.slide.height) == (50, 30)
    assert arrival.score_slide_id == arrival.slide.id
    assert Path(arrival.slide.source_folder) == inbox


def test_receiving_again_is_idempotent(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = write_png(inbox / "a.png", 1)
    ingestor = Ingestor(store)
    first = ingestor.receive(path, inbox, model.id)
    again = ingestor.receive(path, inbox, model.id)  # not scored yet (e.g. killed): still pending, same slide
    assert again.slide.id == first.slide.id and again.step is Step.SCORE
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    known = ingestor.receive(path, inbox, model.id)
    assert known.step is Step.FINISHED and known.outcome is Outcome.KNOWN
    assert known.slide.id == first.slide.id
    assert len(store.list_slides()) == 1


def test_a_copy_of_scored_content_is_linked_not_scored(store: Store, model: ModelVersion, inbox: Path) -> None:
    ingestor = Ingestor(store)
    original = ingestor.receive(write_png(inbox / "a.png", 1), inbox, model.id)
    store.add_score(original.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    copy = shutil.copy(inbox / "a.png", inbox / "copy of a.png")
    arrival = ingestor.receive(Path(copy), inbox, model.id)
    assert arrival.step is Step.FINISHED and arrival.outcome is Outcome.DUPLICATE
    assert arrival.slide.duplicate_of_id == original.slide.id
    assert arrival.score_slide_id == original.slide.id


def test_a_pending_copy_is_linked_once_the_original_is_scored(store: Store, model: ModelVersion, inbox: Path) -> None:
    ingestor = Ingestor(store)
    first = ingestor.receive(write_png(inbox / "a.png", 1), inbox, model.id)
    second = ingestor.receive(Path(shutil.copy(inbox / "a.png", inbox / "b.png")), inbox, model.id)
    assert second.step is Step.SCORE and second.slide.id != first.slide.id  # both pending for now
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    resumed = ingestor.resume(second, model.id, known=False)
    assert resumed.step is Step.FINISHED and resumed.outcome is Outcome.DUPLICATE
    assert resumed.slide.duplicate_of_id == first.slide.id


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (png_bytes(3)[:120], "truncated or corrupt"),
    (bomb_png_bytes(), "too many pixels"),
])
def test_bad_files_are_rejected_with_their_reason(store: Store, model: ModelVersion, inbox: Path,
                                                  content: bytes, reason: str) -> None:
    path = inbox / "bad.png"
    path.write_bytes(content)
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.step is Step.FINISHED and arrival.rejected
    assert reason in arrival.slide.reason
    assert store.get_slide(arrival.slide.id).status is SlideStatus.REJECTED
    assert path.read_bytes() == content  # originals are never modified


def test_unsupported_types_are_rejected(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = inbox / "notes.txt"
    path.write_text("hello")
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.rejected and "unsupported file type" in arrival.slide.reason


def test_a_vanished_file_leaves_no_trace(store: Store, model: ModelVersion, inbox: Path) -> None:
    arrival = Ingestor(store).receive(inbox / "gone.png", inbox, model.id)
    assert arrival.step is Step.GONE and arrival.slide is None
    assert store.list_slides() == []


def test_rescore_only_when_asked_and_the_model_changed(store: Store, model: ModelVersion, inbox: Path,
                                                       tiny_bundle: Path) -> None:
    path = write_png(inbox / "a.png", 1)
    first = Ingestor(store).receive(path, inbox, model.id)
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    other = store.register_model_version("2.0.0", tiny_bundle, "other-sha", actor="tester")

    assert Ingestor(store, rescore=True).receive(path, inbox, model.id).step is Step.FINISHED  # same model
    assert Ingestor(store).receive(path, inbox, other.id).step is Step.FINISHED  # not asked
    rescore = Ingestor(store, rescore=True).receive(path, inbox, other.id)
    assert rescore.step is Step.SCORE and rescore.outcome is Outcome.RESCORED
    assert rescore.score_slide_id == first.slide.id


@pytest.mark.parametrize("kind,pages", [("PNG", 1), ("JPEG", 1), ("TIFF", 1), ("TIFF", 3), ("BMP", 1)])
def test_an_image_without_its_end_looks_unfinished(tmp_path: Path, kind: str, pages: int) -> None:
    data = image_bytes(1, kind, pages=pages)
    path = tmp_path / "image"
    path.write_bytes(data)
    assert not looks_unfinished(path)
    for cut in (0, 3, 20, len(data) // 3, len(data) // 2, len(data) - 40):
        path.write_bytes(data[:cut])
        assert looks_unfinished(path), cut


def test_files_received_together_are_recorded_in_one_transaction_and_decoded_only_when_asked(
        store: Store, model: ModelVersion, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = Ingestor(store).receive(write_png(inbox / "known.png", 1), inbox, model.id)
    calls: list[list[str]] = []
    real_record = type(store).record_slides

    def record_slides(self, entries, **kwargs):
        calls.append([Path(entry.path).name for entry in entries])
        return real_record(self, entries, **kwargs)

    monkeypatch.setattr(type(store), "record_slides", record_slides)
    (inbox / "text.png").write_bytes(b"hello, I am text")
    names = ["a.png", "known.png", "text.png", "gone.png", "b.png"]
    for index, name in enumerate(names):
        if name not in ("known.png", "text.png", "gone.png"):
            write_png(inbox / name, 10 + index, 20, 30)
    arrivals = Ingestor(store).receive_many([Offer(inbox / name, inbox) for name in names], model.id)
    assert [arrival.path.name for arrival in arrivals] == names  # in the order offered
    assert calls == [["a.png", "text.png", "b.png"]]  # the new files, in one transaction
    a, again, text, gone, b = arrivals
    assert (a.step, b.step) == (Step.DECODE, Step.DECODE) and a.image is None and a.outcome is Outcome.SCORED
    assert again.step is Step.DECODE and again.slide.id == known.slide.id  # pending still: resumed, claimed
    assert text.rejected and gone.step is Step.GONE
    decoded = Ingestor(store).decode(a)
    assert decoded.step is Step.SCORE and decoded.image.shape == (20, 30, 3) and decoded.score_slide_id == a.slide.id
    assert Ingestor(store).decode(text) is text  # nothing to decode: as it is


@pytest.mark.parametrize("content", [b"hello, I am text", bytes(range(200)), b"GIF89a" + b"x" * 40])
def test_bytes_no_image_begins_with_are_not_unfinished(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.png"
    path.write_bytes(content)
    assert not looks_unfinished(path)  # nothing written later makes an image of them: rejected at once


def test_a_recent_file_that_looks_unfinished_is_not_recorded(store: Store, model: ModelVersion, inbox: Path) -> None:
    data = png_bytes(1)
    path = inbox / "scan.png"
    ingestor = Ingestor(store)
    for cut in (100, len(data) - 12):  # undecodable, then all but IEND (which Pillow decodes)
        path.write_bytes(data[:cut])
        assert ingestor.receive(path, inbox, model.id, unchanged_for=RECENT).step is Step.INCOMPLETE
    assert store.list_slides() == []
    assert ingestor.receive(path, inbox, model.id).step is Step.SCORE  # unchanged for the grace period: taken
    path.write_bytes(data[:100])
    assert "truncated" in ingestor.receive(path, inbox, model.id).slide.reason


def test_a_complete_recent_file_is_taken_at_once(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = write_png(inbox / "a.png", 1)
    assert Ingestor(store).receive(path, inbox, model.id, unchanged_for=RECENT).step is Step.SCORE


def test_a_file_that_may_not_be_read_waits_then_is_rejected_once(store: Store, model: ModelVersion, inbox: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(ingest, "file_sha256", denied)
    path = write_png(inbox / "locked.png", 1)
    ingestor = Ingestor(store)
    assert ingestor.receive(path, inbox, model.id, unchanged_for=RECENT).step is Step.INCOMPLETE  # a copy may hold it
    rejected = ingestor.receive(path, inbox, model.id)
    assert rejected.rejected and "permission denied" in rejected.slide.reason
    again = ingestor.receive(path, inbox, model.id)
    assert again.slide.id == rejected.slide.id and again.outcome is Outcome.KNOWN
    assert len(store.list_slides()) == 1


def test_a_file_in_a_folder_that_may_not_be_entered_waits_then_is_rejected_once(
        store: Store, model: ModelVersion, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_png(inbox / "closed" / "scan.png", 1)

    def refusing(real):  # what stat and open do there (tests run as root, who may enter anywhere)
        def call(target, *args, **kwargs):
            if isinstance(target, (str, os.PathLike)) and Path(target) == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real(target, *args, **kwargs)
        return call

    for module, name in ((os, "lstat"), (os, "stat"), (ingest, "file_sha256")):
        monkeypatch.setattr(module, name, refusing(getattr(module, name)))
    ingestor = Ingestor(store)
    assert ingestor.receive(path, inbox, model.id, unchanged_for=RECENT).step is Step.INCOMPLETE
    rejected = ingestor.receive(path, inbox, model.id)
    assert rejected.rejected and "permission denied" in rejected.slide.reason
    assert rejected.signature == REFUSED  # settled with it: not offered again while refused
    assert ingestor.receive(path, inbox, model.id).outcome is Outcome.KNOWN
    assert len(store.list_slides()) == 1


def test_an_unexpected_decoder_error_is_a_rejection(store: Store, model: ModelVersion, inbox: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path, max_pixels=None):
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(ingest, "read_pixels", broken)
    monkeypatch.setattr(ingest, "read_image_info", broken)
    arrival = Ingestor(store).receive(write_png(inbox / "a.png", 1), inbox, model.id)
    assert arrival.rejected and "could not be decoded" in arrival.slide.reason and "TypeError" in arrival.slide.reason


def test_links_are_followed_only_to_files_inside_the_inbox(tmp_path: Path, inbox: Path) -> None:
    target = write_png(inbox / "sub" / "a.png", 1)
    outside = write_png(tmp_path / "outside.png", 2)
    links = {"inside.png": target, "outside.png": outside, "loop.png": inbox / "loop.png",
             "missing.png": inbox / "missing target.png", "escape.png": inbox / ".." / "outside.png"}
    for name, pointee in links.items():
        (inbox / name).symlink_to(pointee)
    assert link_problem(target, inbox) is None
    assert link_problem(inbox / "inside.png", inbox) is None
    assert "outside the inbox" in link_problem(inbox / "outside.png", inbox)
    assert "outside the inbox" in link_problem(inbox / "escape.png", inbox)
    assert "(a loop)" in link_problem(inbox / "loop.png", inbox)
    assert "does not exist" in link_problem(inbox / "missing.png", inbox)
    (inbox / "linked folder").symlink_to(tmp_path / "elsewhere")
    write_png(tmp_path / "elsewhere" / "b.png", 3)
    assert "outside the inbox" in link_problem(inbox / "linked folder" / "b.png", inbox)  # the folder is the link
    assert link_problem(inbox / "gone.png", inbox) is None  # not a link: a vanished file, nothing to say
