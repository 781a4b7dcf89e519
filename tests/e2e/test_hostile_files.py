"""Files that once left no row or hung the service: names that are not UTF-8, symbolic links
(a loop, a missing target, a file outside the inbox), a file the service may not read, a truncated
multi-page TIFF, a decoder that fails with an unexpected error. Each must end as one row, scored
or rejected with a reason, and a restart must recognise every one of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ganad_clinic.screening.ingest as ingest
from ganad_clinic.cli import main
from ganad_clinic.screening import ScreeningService, ServiceConfig
from ganad_clinic.screening.names import path_text, stored_path
from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.store import SlideStatus, Store, open_store
from tests.screening.helpers import Collector, image_bytes

GRACE = 0.5


def _bytes_name(folder: Path, name: bytes) -> Path:
    """A path whose name is raw bytes, as Linux allows and Python keeps them (surrogate escapes)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def _drop_hostile_files(inbox: Path, outside: Path) -> dict[str, str | None]:
    """Drop them; returns file name -> expected reason fragment (None: scored)."""
    _bytes_name(inbox, b"slide \xff.png").write_bytes(image_bytes(1))
    _bytes_name(inbox, b"junk \xfe.png").write_bytes(b"some text, not an image")
    (inbox / "crop.png").write_bytes(image_bytes(2))
    (inbox / "alias.png").symlink_to(inbox / "crop.png")  # inside the inbox: followed
    (inbox / "loop.png").symlink_to(inbox / "loop.png")
    (inbox / "dangling.png").symlink_to(inbox / "nothing here.png")
    (outside / "private.png").write_bytes(image_bytes(3))
    (inbox / "private.png").symlink_to(outside / "private.png")
    (inbox / "locked.png").write_bytes(image_bytes(4))
    (inbox / "decoder bug.png").write_bytes(image_bytes(5))
    pages = image_bytes(6, "TIFF", pages=3)
    (inbox / "cut pages.tif").write_bytes(pages[:len(pages) // 2])
    return {
        path_text(_bytes_name(inbox, b"slide \xff.png").name): None,
        path_text(_bytes_name(inbox, b"junk \xfe.png").name): "not an image",
        "crop.png": None,
        "alias.png": None,
        "loop.png": "a symbolic link that leads back to itself (a loop); not followed",
        "dangling.png": "a symbolic link to a file that does not exist; not followed",
        "private.png": "a symbolic link to a file outside the inbox; not followed",
        "locked.png": "permission denied",
        "decoder bug.png": "the image could not be decoded; the file may be damaged",
        "cut pages.tif": "the file is truncated or corrupt",
    }


def _faults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the service may not read (tests run as root, who may read anything) and a decoder
    that fails with an error of its own (as Pillow's TIFF reader did with a TypeError)."""
    real_sha256, real_read = ingest.file_sha256, ingest.read_pixels

    def sha256(path: str | os.PathLike[str]) -> str:
        if Path(path).name == "locked.png":
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha256(path)

    def read_pixels(path: Path, max_pixels: int | None = None):
        if Path(path).name == "decoder bug.png":
            raise TypeError("'NoneType' object is not subscriptable")
        return real_read(path, max_pixels)

    monkeypatch.setattr(ingest, "file_sha256", sha256)
    monkeypatch.setattr(ingest, "read_pixels", read_pixels)


def _screen(store: Store, inbox: Path, home: Path, *, recursive: bool = False) -> Collector:
    collector = Collector()
    service = ScreeningService(store, ServiceConfig((inbox,), home=home, quiet_seconds=0.1, grace_seconds=GRACE,
                                                    recursive=recursive, torch_threads=1), **collector.listeners())
    service.start()
    try:
        assert service.wait_until_idle(30)  # nothing waited for forever
    finally:
        assert service.stop(30)
    assert service.error is None
    return collector


def test_every_hostile_file_ends_as_one_row(tmp_path: Path, tiny_bundle: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home, inbox, outside = tmp_path / "home", tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    expected = _drop_hostile_files(inbox, outside)
    _faults(monkeypatch)
    with open_store(home=home) as store:
        import_bundle(store, tiny_bundle, home, actor="tester")
        first = _screen(store, inbox, home)
        assert sorted(path_text(event.path.name) for event in first.scored + first.rejected) == sorted(expected)
        rows = {summary.slide.file_name: summary.slide for summary in store.list_slides()}
        assert sorted(rows) == sorted(expected)  # one row per file
        for name, reason in expected.items():
            if reason is None:
                assert rows[name].status is SlideStatus.SCORED, name
            else:
                assert rows[name].status is SlideStatus.REJECTED, name
                assert reason in rows[name].reason and rows[name].reason, (name, rows[name].reason)
        pair = {rows["alias.png"].duplicate_of_id, rows["crop.png"].duplicate_of_id}
        assert pair in ({None, rows["crop.png"].id}, {None, rows["alias.png"].id})  # one content, one score
        assert rows["private.png"].sha256 != ingest.file_sha256(outside / "private.png")  # never read
        raw = _bytes_name(inbox, b"slide \xff.png")
        assert rows[path_text(raw.name)].path == str(inbox / "slide \\xff.png")  # readable, and lossless:
        assert stored_path(rows[path_text(raw.name)].path) == raw

        again = _screen(store, inbox, home)  # a restart: everything is recognised
        assert again.rejected and all(event.known for event in again.rejected)
        assert len(store.list_slides()) == len(expected)
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM scores").scalar() == 2
        assert not first.errors and not again.errors


def test_a_pending_slide_with_a_name_that_is_not_utf8_is_finished_after_a_restart(
        tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    path = _bytes_name(inbox, b"scan \xe9.png")
    path.write_bytes(image_bytes(1))
    with open_store(home=home) as store:
        import_bundle(store, tiny_bundle, home, actor="tester")
        store.record_slide(path_text(path), ingest.file_sha256(path), path.stat().st_size, path_text(inbox))
        collector = _screen(store, inbox, home)  # as if killed after recording it
        assert [event.path for event in collector.scored] == [path] and not collector.rejected
        (summary,) = store.list_slides()
        assert summary.slide.status is SlideStatus.SCORED


def test_watch_once_finishes_on_links_that_lead_nowhere_or_outside(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox, outside = tmp_path / "home", tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (inbox / "loop.png").symlink_to(inbox / "loop.png")
    (outside / "big.png").write_bytes(image_bytes(1))
    (inbox / "big.png").symlink_to(outside / "big.png")
    _bytes_name(inbox, b"slide \xff.png").write_bytes(image_bytes(2))
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("GANAD_DB", None)
    finished = subprocess.run(
        [sys.executable, "-m", "ganad_clinic", "watch", "--inbox", str(inbox), "--home", str(home), "--once",
         "--quiet", "0.1", "--grace", "0.3", "--threads", "1"],
        capture_output=True, text=True, env=environment, timeout=120)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert any(line.startswith("rejected") and "loop.png" in line and "(a loop)" in line for line in lines)
    assert any(line.startswith("rejected") and "big.png" in line and "outside the inbox" in line for line in lines)
    assert any(line.startswith("scored") and "slide \\xff.png" in line for line in lines)


def test_a_file_in_a_folder_that_may_not_be_entered_is_rejected_and_the_service_goes_idle(
        tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    closed = inbox / "closed" / "scan.png"
    closed.parent.mkdir(parents=True)
    closed.write_bytes(image_bytes(1))
    (inbox / "open.png").write_bytes(image_bytes(2))

    def refusing(real):  # stat and open in a folder without search permission (tests run as root)
        def call(target, *args, **kwargs):
            if isinstance(target, (str, os.PathLike)) and Path(target) == closed:
                raise PermissionError(13, "Permission denied", str(target))
            return real(target, *args, **kwargs)
        return call

    for module, name in ((os, "lstat"), (os, "stat"), (ingest, "file_sha256")):
        monkeypatch.setattr(module, name, refusing(getattr(module, name)))
    with open_store(home=home) as store:
        import_bundle(store, tiny_bundle, home, actor="tester")
        collector = _screen(store, inbox, home, recursive=True)
        assert [event.path for event in collector.rejected] == [closed]
        assert "permission denied" in collector.rejected[0].reason
        assert [event.path.name for event in collector.scored] == ["open.png"]
