from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ganad_clinic.screening.watcher import FolderWatcher
from tests.screening.helpers import wait_until


class Offers:
    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.lock = threading.Lock()

    def __call__(self, path: Path, inbox: Path) -> None:
        with self.lock:
            self.paths.append(path)

    def names(self) -> set[str]:
        with self.lock:
            return {path.name for path in self.paths}


def _populate(inbox: Path) -> None:
    for name in ("a.png", "b.tif", ".hidden.png", "c.png.part", "~lock.png", "notes.txt"):
        (inbox / name).write_bytes(b"x")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "d.png").write_bytes(b"x")
    (inbox / ".sync").mkdir()
    (inbox / ".sync" / "e.png").write_bytes(b"x")
    (inbox / "archive").mkdir()
    (inbox / "archive" / "f.png").write_bytes(b"x")


def test_scan_offers_final_names_of_the_top_folder(tmp_path: Path) -> None:
    _populate(tmp_path)
    offers = Offers()
    found = FolderWatcher([tmp_path], offers).scan()
    assert offers.names() == {"a.png", "b.tif", "notes.txt"}
    assert {path.name for path in found} == offers.names()


def test_recursive_scan_skips_hidden_and_excluded_folders(tmp_path: Path) -> None:
    _populate(tmp_path)
    offers = Offers()
    FolderWatcher([tmp_path], offers, recursive=True, exclude=[tmp_path / "archive"]).scan()
    assert offers.names() == {"a.png", "b.tif", "notes.txt", "d.png"}


@pytest.mark.parametrize("poll", [False, True], ids=["native", "polling"])
def test_events_offer_new_files_and_renamed_temporary_ones(tmp_path: Path, poll: bool) -> None:
    offers = Offers()
    watcher = FolderWatcher([tmp_path], offers, poll=poll)
    watcher.start()
    try:
        (tmp_path / "new.png").write_bytes(b"x")
        (tmp_path / "scan.png.part").write_bytes(b"x")
        wait_until(lambda: "new.png" in offers.names(), timeout=10)
        os.replace(tmp_path / "scan.png.part", tmp_path / "scan.png")
        wait_until(lambda: "scan.png" in offers.names(), timeout=10)
        assert "scan.png.part" not in offers.names()
    finally:
        watcher.stop()
    assert not watcher.is_alive()


def test_a_folder_moved_into_a_recursive_inbox_is_scanned(tmp_path: Path) -> None:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    (outside / "batch").mkdir(parents=True)
    (outside / "batch" / "g.png").write_bytes(b"x")
    offers = Offers()
    watcher = FolderWatcher([inbox], offers, recursive=True)
    watcher.start()
    try:
        os.replace(outside / "batch", inbox / "batch")
        wait_until(lambda: "g.png" in offers.names(), timeout=10)
    finally:
        watcher.stop()


def test_a_dead_observer_is_restarted(tmp_path: Path) -> None:
    offers = Offers()
    watcher = FolderWatcher([tmp_path], offers)
    watcher.start()
    try:
        assert not watcher.restart_if_dead()
        watcher._observer.stop()
        watcher._observer.join()
        assert watcher.restart_if_dead()
        (tmp_path / "after.png").write_bytes(b"x")
        wait_until(lambda: "after.png" in offers.names(), timeout=10)
    finally:
        watcher.stop()


def test_a_missing_inbox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FolderWatcher([tmp_path / "nope"], Offers()).start()


def test_an_inbox_replaced_between_two_looks_is_watched_again(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    offers = Offers()
    watcher = FolderWatcher([inbox], offers)
    watcher.start()
    try:
        assert watcher.check_inboxes() == []
        inbox.rename(tmp_path / "old inbox")
        inbox.mkdir()
        (message,) = watcher.check_inboxes()
        assert "was replaced by a new folder" in message
        (inbox / "a.png").write_bytes(b"x")
        wait_until(lambda: "a.png" in offers.names())  # the observer watches the new folder
    finally:
        watcher.stop()
