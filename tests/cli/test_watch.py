from __future__ import annotations

from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.store import open_store
from tests.screening.helpers import write_png


def test_watch_once_without_a_model_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert main(["watch", "--inbox", str(inbox), "--home", str(tmp_path / "home"), "--once"]) == 2
    assert "no model is active" in capsys.readouterr().err


def test_watch_refuses_a_missing_inbox(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["watch", "--inbox", str(tmp_path / "nope"), "--home", str(tmp_path / "home"), "--once"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_watch_once_scores_what_is_there_and_exits(tmp_path: Path, tiny_bundle: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    home, inbox, second = tmp_path / "home", tmp_path / "inbox", tmp_path / "second inbox"
    for index in range(3):
        write_png(inbox / f"slide {index}.png", index)
    write_png(second / "other.png", 10)
    (inbox / "broken.jpg").write_bytes(b"nope")
    (inbox / "scan.png.part").write_bytes(b"still copying")
    args = ["watch", "--inbox", str(inbox), "--inbox", str(second), "--home", str(home), "--once",
            "--quiet", "0.1", "--threads", "1"]

    assert main([*args, "--bundle", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert "registered as model 1.0.0" in out
    scored = [line for line in out.splitlines() if line.startswith("scored")]
    assert len(scored) == 4
    assert any("slide 0.png\t" in line and ("normal" in line or "FLAGGED" in line) for line in scored)
    assert any(line.startswith("rejected") and "broken.jpg" in line for line in out.splitlines())
    assert "scan.png.part" not in out

    assert main(args) == 0  # again, with the active model: everything is known, nothing rescored
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if "(scored before)" in line]) == 4
    with open_store(home=home) as store:
        summaries = store.list_slides()
        assert len(summaries) == 5
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM scores").scalar() == 4


def test_a_station_is_named_stored_with_its_scores_and_listed(tmp_path: Path, tiny_bundle: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    home, inbox = tmp_path / "home", tmp_path / "inbox"
    write_png(inbox / "slide.png", 1)
    assert main(["stations", "--home", str(home)]) == 0
    assert "no station has screened into this database yet" in capsys.readouterr().out
    assert main(["watch", "--inbox", str(inbox), "--home", str(home), "--once", "--quiet", "0.1", "--threads", "1",
                 "--bundle", str(tiny_bundle), "--station", "bench-2"]) == 0
    assert "; station bench-2" in capsys.readouterr().out

    assert main(["stations", "--home", str(home)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("bench-2\tstopped\t") and line.endswith("holds 0 slides")  # a clean stop gave all back
    with open_store(home=home) as store:
        [summary] = store.list_slides()
        assert summary.score.station == "bench-2"
        assert [event.actor for event in store.list_audit_events("station.started")] == ["bench-2"]
    assert main(["watch", "--inbox", str(inbox), "--home", str(home), "--once", "--station", " "]) == 2
    assert "a station name has 1 to 64 characters" in capsys.readouterr().err
