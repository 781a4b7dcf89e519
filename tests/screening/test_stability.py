from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganad_clinic.screening.stability import REFUSED, StabilityTracker, file_signature


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_taken_only_after_a_quiet_period(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.5, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 10)
    assert tracker.offer(path, tmp_path)
    assert tracker.take_stable() == []
    clock.now += 0.49
    assert tracker.take_stable() == []
    clock.now += 0.02
    taken = tracker.take_stable()
    assert [(item.path, item.inbox) for item in taken] == [(path, tmp_path)]
    assert taken[0].signature == file_signature(path)
    assert taken[0].unchanged_for == pytest.approx(0.51)
    assert len(tracker) == 0


def test_growth_or_a_new_mtime_restarts_the_quiet_period(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.5, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 10)
    tracker.offer(path, tmp_path)
    clock.now += 0.4
    with open(path, "ab") as handle:
        handle.write(b"more")
    assert tracker.take_stable() == []  # size changed: quiet period starts again now
    clock.now += 0.4
    os.utime(path, ns=(0, file_signature(path).mtime_ns + 1_000_000))
    assert tracker.take_stable() == []  # same size, new mtime: still being written
    clock.now += 0.4
    assert tracker.take_stable() == []
    clock.now += 0.2
    assert [item.path for item in tracker.take_stable()] == [path]


def test_vanished_files_are_dropped(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    tracker.offer(path, tmp_path)
    path.unlink()
    clock.now += 1
    assert tracker.take_stable() == []
    assert len(tracker) == 0


def test_a_settled_file_is_ignored_until_it_changes(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    tracker.offer(path, tmp_path)
    clock.now += 1
    (taken,) = tracker.take_stable()
    tracker.settle(path, taken.signature)
    assert not tracker.offer(path, tmp_path)  # a duplicate event or a rescan: nothing to do
    assert len(tracker) == 0
    path.write_bytes(b"new content")
    assert tracker.offer(path, tmp_path)


def test_an_offer_made_while_a_file_is_handled_is_dropped_when_it_is_settled_unchanged(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    path, other = tmp_path / "a.png", tmp_path / "b.png"
    path.write_bytes(b"x")
    other.write_bytes(b"y")
    tracker.offer(path, tmp_path)
    tracker.offer(other, tmp_path)
    clock.now += 1
    taken = {item.path: item for item in tracker.take_stable()}
    assert tracker.offer(path, tmp_path)  # the writer's closing event arrives while the file is scored
    assert tracker.offer(other, tmp_path)
    other.write_bytes(b"changed while it was scored")
    tracker.settle(path, taken[path].signature)
    tracker.settle(other, taken[other].signature)
    assert tracker.take_stable() == []  # the change starts the other's quiet period afresh
    clock.now += 1
    assert [item.path for item in tracker.take_stable()] == [other]  # only the file that changed


def test_offers_are_oldest_first_and_limited(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        path.write_bytes(b"x")
        tracker.offer(path, tmp_path)
        paths.append(path)
        clock.now += 0.01
    clock.now += 1
    assert [item.path for item in tracker.take_stable(limit=2)] == paths[:2]
    assert [item.path for item in tracker.take_stable()] == paths[2:]


def test_forgetting_files_no_longer_on_disk(tmp_path: Path) -> None:
    tracker = StabilityTracker(0.1)
    kept, gone = tmp_path / "kept.png", tmp_path / "gone.png"
    for path in (kept, gone):
        path.write_bytes(b"x")
        tracker.settle(path, file_signature(path))
    tracker.keep_settled_only([kept])
    assert not tracker.offer(kept, tmp_path)
    assert tracker.offer(gone, tmp_path)


def test_offering_notifies(tmp_path: Path) -> None:
    calls = []
    tracker = StabilityTracker(0.1, on_offer=lambda: calls.append(1))
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    tracker.offer(path, tmp_path)
    tracker.offer(path, tmp_path)
    assert calls == [1]


def test_a_path_offered_with_a_longer_quiet_period_waits_for_it(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.5, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 10)
    tracker.offer(path, tmp_path, quiet_seconds=5)
    clock.now += 4
    assert tracker.take_stable() == []
    clock.now += 1
    (taken,) = tracker.take_stable()
    assert taken.path == path and taken.unchanged_for == 5


def test_a_change_ends_the_longer_quiet_period(tmp_path: Path) -> None:
    clock = FakeClock()
    tracker = StabilityTracker(0.5, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 10)
    tracker.offer(path, tmp_path, quiet_seconds=5)
    clock.now += 1
    path.write_bytes(b"x" * 20)  # the writer went on: judged afresh after the usual quiet period
    assert tracker.take_stable() == []
    clock.now += 0.5
    assert [item.path for item in tracker.take_stable()] == [path]


@pytest.mark.parametrize("target", ["loop.png", "missing.png"])
def test_a_link_that_leads_nowhere_has_a_signature_of_its_own(tmp_path: Path, target: str) -> None:
    link = tmp_path / "loop.png"
    link.symlink_to(tmp_path / target)
    assert file_signature(link) == (os.lstat(link).st_size, os.lstat(link).st_mtime_ns, os.lstat(link).st_ino)
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    tracker.offer(link, tmp_path)
    clock.now += 1
    assert [item.path for item in tracker.take_stable()] == [link]  # taken (and rejected), not waited for


def test_a_file_whose_stat_is_refused_is_taken_and_then_settled(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "closed" / "scan.png"  # in a folder the service may not enter
    real_lstat = os.lstat

    def lstat(target, *args, **kwargs):
        if Path(target) == path:
            raise PermissionError(13, "Permission denied", str(target))
        return real_lstat(target, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert file_signature(path) == REFUSED
    clock = FakeClock()
    tracker = StabilityTracker(0.1, clock=clock)
    tracker.offer(path, tmp_path)
    clock.now += 0.2
    (taken,) = tracker.take_stable()  # handed on (ingest waits for the grace period, then rejects it)
    assert taken.signature == REFUSED
    tracker.settle(path, taken.signature)
    assert not tracker.offer(path, tmp_path)  # not waited for again while it stays refused


def test_a_link_outside_is_settled_by_its_own_identity_not_its_targets(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x" * 10)
    link = tmp_path / "inbox" / "link.png"
    link.parent.mkdir()
    link.symlink_to(outside)
    signature = file_signature(link)
    assert signature.inode == os.lstat(link).st_ino
    tracker = StabilityTracker(0.1, clock=FakeClock())
    tracker.settle(link, signature)
    with open(outside, "ab") as handle:
        handle.write(b"more")
    assert not tracker.offer(link, link.parent)  # the target changed, the link did not
    link.unlink()
    link.symlink_to(tmp_path / "other.png")
    assert tracker.offer(link, link.parent)  # a new link is looked at again
