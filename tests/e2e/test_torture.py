"""A few hundred files of every kind dropped while the service watches: it must score each valid
image exactly once, reject each bad file with a reason, and keep going."""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

from PIL import Image

from ganad_clinic.screening import ServiceConfig
from ganad_clinic.store import SlideStatus
from tests.screening.helpers import (
    Collector,
    bomb_png_bytes,
    noise_image,
    png_bytes,
    screening,
    wait_until,
    write_slowly,
)

QUIET = 0.2
GRACE = 1.0  # the truncated and empty files look unfinished: rejected once unchanged this long


def _valid_files(source: Path, count: int) -> list[Path]:
    """Unique small images in every supported format, with awkward names."""
    formats = [("png", "PNG"), ("jpg", "JPEG"), ("tif", "TIFF"), ("bmp", "BMP")]
    names = ["slide {i}", "Präparat_{i}", "血液 {i}", "a b  c {i}", "Im{i:03d}_0", "x'{i}"]
    paths = []
    for i in range(count):
        suffix, kind = formats[i % len(formats)]
        path = source / f"{names[i % len(names)].format(i=i)}.{suffix}"
        Image.fromarray(noise_image(1000 + i, 36 + i % 7, 40)).save(path, format=kind)
        paths.append(path)
    field = source / "field with cells.png"
    Image.fromarray(noise_image(7, 100, 150)).save(field)  # tiled: the tiny model's crops are 48 px
    return paths + [field]


def _bad_files(source: Path) -> dict[str, bytes]:
    bad: dict[str, bytes] = {}
    for i in range(12):
        bad[f"corrupt {i}.png"] = random.Random(i).randbytes(300)
        bad[f"truncated {i}.png"] = png_bytes(5000 + i)[: 60 + 10 * i]
        bad[f"empty {i}.jpg"] = b""
        bad[f"not an image {i}.png"] = f"hello {i}, I am text".encode()
        bad[f"notes {i}.txt"] = b"some notes"
    bad["bomb.png"] = bomb_png_bytes()
    bad["bomb 2.png"] = bomb_png_bytes(60_000, 70_000)
    return bad


def _deliver(inbox: Path, valid: list[Path], bad: dict[str, bytes]) -> dict[str, bool]:
    """Drop everything from four writer threads; returns final name -> is a valid image."""
    jobs = []
    expected: dict[str, bool] = {}
    for index, path in enumerate(valid):
        data = path.read_bytes()
        expected[path.name] = True
        mode = index % 6
        if mode == 1:
            temporary = [f"{path.name}.part", f"{path.name}.tmp", f"{path.name}.crdownload", f"~{path.name}",
                         f".{path.name}"][index % 5]
            jobs.append(("rename", path.name, data, temporary))
        elif mode == 2:
            jobs.append(("slow", path.name, data, None))
        else:
            jobs.append(("write", path.name, data, None))
        if index % 7 == 0:
            copy_name = f"copy of {path.name}"
            expected[copy_name] = True
            jobs.append(("write", copy_name, data, None))
    for name, data in bad.items():
        expected[name] = False
        jobs.append(("write", name, data, None))
    random.Random(0).shuffle(jobs)

    def writer(share: list) -> None:
        for kind, name, data, temporary in share:
            if kind == "slow":
                write_slowly(inbox / name, data)
            elif kind == "rename":
                write_slowly(inbox / temporary, data, chunks=2)
                (inbox / temporary).rename(inbox / name)
            else:
                (inbox / name).write_bytes(data)

    threads = [threading.Thread(target=writer, args=(jobs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return expected


def test_torture(tmp_path: Path, tiny_bundle: Path) -> None:
    home, inbox, source = tmp_path / "home", tmp_path / "inbox", tmp_path / "source"
    inbox.mkdir()
    source.mkdir()
    valid = _valid_files(source, 170)
    bad = _bad_files(source)
    collector = Collector()
    service_config = ServiceConfig((inbox,), home=home, quiet_seconds=QUIET, grace_seconds=GRACE, rescan_seconds=2,
                                   torch_threads=1)
    with screening(tiny_bundle, service_config, collector) as service:
        expected = _deliver(inbox, valid, bad)
        assert len(expected) >= 250
        wait_until(lambda: set(expected) <= collector.names(), timeout=150, interval=0.2)
        assert service.wait_until_idle(30)

        assert not service.stopped and service.error is None  # alive, and still working:
        shutil.copy(valid[0], inbox / "one more.png")
        (inbox / "one more bad.png").write_bytes(b"junk")
        wait_until(lambda: {"one more.png", "one more bad.png"} <= collector.names(), timeout=30)
        assert service.stop(30)

        store = service.store

        slides = {}
        for summary in store.list_slides():
            slides.setdefault(summary.slide.file_name, []).append(summary)
        assert not [name for name in slides if name.endswith((".part", ".tmp", ".crdownload"))
                    or name.startswith((".", "~"))]
        for name, is_valid in expected.items():
            (summary,) = slides[name]  # one slide per file: nothing recorded twice
            if is_valid:
                assert summary.slide.status is SlideStatus.SCORED, name
                assert summary.score is not None, name
            else:
                assert summary.slide.status is SlideStatus.REJECTED, name
                assert summary.slide.reason, name
        assert "too many pixels" in slides["bomb.png"][0].slide.reason

        with store.engine.connect() as connection:
            per_content = connection.exec_driver_sql(
                "SELECT slides.sha256, COUNT(*) FROM scores JOIN slides ON slides.id = scores.slide_id "
                "GROUP BY slides.sha256"
            ).all()
        unique_valid = {path.read_bytes() for path in valid}
        assert len(per_content) == len(unique_valid)  # every valid content scored ...
        assert {count for _, count in per_content} == {1}  # ... exactly once
        assert store.list_pending_slides() == []
        assert store.integrity_check() == []
        assert not collector.errors
