"""The inbox folder deleted and created again while the service runs: the observer's events stop
without a word. The service must say so, and watch the new folder once it is there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ganad_clinic.screening import ServiceConfig
from ganad_clinic.screening.watcher import FolderWatcher
from tests.screening.helpers import Collector, screening, wait_until, write_png


def test_a_deleted_and_recreated_inbox_is_reported_and_watched_again(tmp_path: Path, tiny_bundle: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    inbox.mkdir()
    collector = Collector()
    service_config = ServiceConfig((inbox,), home=home, quiet_seconds=0.1, rescan_seconds=0.2, torch_threads=1)
    with screening(tiny_bundle, service_config, collector) as service:
        write_png(inbox / "first.png", 1)
        wait_until(lambda: "first.png" in collector.names())
        shutil.rmtree(inbox)
        wait_until(lambda: any("has disappeared" in message for message in collector.errors))
        inbox.mkdir()
        wait_until(lambda: any("is back; watching it again" in message for message in collector.errors))
        monkeypatch.setattr(FolderWatcher, "scan", lambda self: [])  # from now on only events bring files
        write_png(inbox / "second.png", 2)
        wait_until(lambda: "second.png" in collector.names())
        assert not service.stopped
    assert sorted(event.path.name for event in collector.scored) == ["first.png", "second.png"]

