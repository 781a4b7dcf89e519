"""A scanner that pauses longer than the quiet period while writing: no file may be rejected as
truncated, and no decodable prefix (a PNG without IEND, a multi-page TIFF cut after a page) may be
scored as a slide of its own; each file is scored exactly once, when it is complete."""

from __future__ import annotations

import threading
from pathlib import Path

from ganad_clinic.screening import ServiceConfig
from ganad_clinic.store import SlideStatus
from tests.screening.helpers import Collector, image_bytes, screening, wait_until, write_slowly

QUIET = 0.2
PAUSE = 0.5  # longer than the quiet period: each chunk is taken for a complete file
GRACE = 2.0  # longer than the pauses: a file that looks unfinished is given this long


def _files() -> dict[str, bytes]:
    png = image_bytes(1, "PNG")
    return {
        "crop.png": png,
        "crop.jpg": image_bytes(2, "JPEG"),
        "crop.tif": image_bytes(3, "TIFF"),
        "crop.bmp": image_bytes(4, "BMP"),
        "gray.png": image_bytes(5, "PNG", gray=True),
        "field.png": image_bytes(6, "PNG", 100, 150),
        "pages.tif": image_bytes(7, "TIFF", pages=3),
    }


def test_slow_writes_are_scored_once_when_complete(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    files = _files()
    # the cut that the old service scored: all of a PNG but its IEND chunk, all of a TIFF but its last page
    cuts = {"crop.png": len(files["crop.png"]) - 12, "pages.tif": len(files["pages.tif"]) * 2 // 3 + 60}
    collector = Collector()
    def deliver(name: str, data: bytes) -> None:
        if name in cuts:
            write_slowly(inbox / name, data[:cuts[name]], chunks=1, pause=PAUSE * 2)
            with open(inbox / name, "ab") as handle:
                handle.write(data[cuts[name]:])
        else:
            write_slowly(inbox / name, data, chunks=4, pause=PAUSE)

    service_config = ServiceConfig((inbox,), home=home, quiet_seconds=QUIET, grace_seconds=GRACE, rescan_seconds=1,
                                   torch_threads=1)
    with screening(tiny_bundle, service_config, collector) as service:
        writers = [threading.Thread(target=deliver, args=item) for item in files.items()]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        wait_until(lambda: set(files) <= collector.names(), timeout=60)
        assert service.wait_until_idle(30)
        assert service.stop(30)

        store = service.store
        assert collector.rejected == []
        assert sorted(event.path.name for event in collector.scored) == sorted(files)  # one event per file
        slides = store.list_slides()
        assert sorted(summary.slide.file_name for summary in slides) == sorted(files)  # one slide per file
        assert all(summary.slide.status is SlideStatus.SCORED for summary in slides)
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM scores").scalar() == len(files)
        assert not collector.errors


def test_a_rejected_file_that_changes_is_examined_again(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    data = image_bytes(1, "PNG")
    collector = Collector()
    service_config = ServiceConfig((inbox,), home=home, quiet_seconds=0.1, grace_seconds=0.5, torch_threads=1)
    with screening(tiny_bundle, service_config, collector) as service:
        (inbox / "scan.png").write_bytes(data[:100])  # the scanner stalled for longer than the grace period
        wait_until(lambda: collector.rejected)
        with open(inbox / "scan.png", "ab") as handle:
            handle.write(data[100:])
        wait_until(lambda: collector.scored)
        assert service.stop(30)
        assert "truncated" in collector.rejected[0].reason
        statuses = sorted(summary.slide.status.value for summary in service.store.list_slides())
        assert statuses == ["rejected", "scored"]  # the stalled content stays rejected; the whole file is scored
