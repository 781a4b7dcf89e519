from __future__ import annotations

from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.store import open_store
from tests.screening.helpers import write_png


def operating_point(home: Path, *args: str) -> int:
    return main(["operating-point", *args, "--home", str(home)])


def test_show_set_and_show_again(tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    capsys.readouterr()

    assert operating_point(home, "show") == 0
    shown = capsys.readouterr().out
    assert "5 % of normal slides, the active model's training target" in shown
    assert "12 calibration normals" in shown and "7.69 %" in shown  # the lowest rate 12 normals resolve: 1/13
    assert "slides of  6 cells" in shown and "119 calibration normals needed" in shown

    assert operating_point(home, "set", "0.2", "--reason", "validation study") == 0
    assert "20 %" in capsys.readouterr().out
    assert operating_point(home, "show") == 0
    shown = capsys.readouterr().out
    assert "20 % of normal slides, stated by" in shown and "(validation study)" in shown
    with open_store(home=home) as store:
        (event,) = store.list_audit_events("operating_point.set")
        assert event.details == {"target_fpr": 0.2, "reason": "validation study", "previous": None}


@pytest.mark.parametrize("rate", ["0", "1", "1.5", "-0.1", "five"])
def test_a_rate_outside_zero_to_one_is_refused_and_nothing_is_stored(tmp_path: Path, rate: str,
                                                                     capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    with pytest.raises(SystemExit) as exit_info:
        operating_point(home, "set", rate, "--reason", "x")
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "between 0 and 1" in error or "not a number" in error
    with open_store(home=home) as store:
        assert store.target_fpr_setting() is None


def test_reflag_without_a_stated_rate_says_so(tmp_path: Path, tiny_bundle: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    assert operating_point(home, "reflag") == 1
    assert "has not stated a false-positive rate" in capsys.readouterr().err


def test_reflag_since_a_plain_date(tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    assert main(["models", "import", str(tiny_bundle), "--home", str(home)]) == 0
    assert operating_point(home, "set", "0.2", "--reason", "pilot") == 0
    assert operating_point(home, "reflag", "--since", "2026-12-01") == 0
    assert "0 slides got a new score row" in capsys.readouterr().out
    with open_store(home=home) as store:
        (event,) = store.list_audit_events("operating_point.reflagged")
        assert event.details["since"].startswith("2026-12-01T00:00:00")  # the day's start, local time


def test_show_without_an_active_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert operating_point(tmp_path / "home", "show") == 0
    assert "none stated; no model is active" in capsys.readouterr().out


def test_score_says_when_the_asked_rate_cannot_be_kept(tmp_path: Path, tiny_bundle: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    crop = write_png(tmp_path / "crop.png", 3)
    assert main(["score", "--bundle", str(tiny_bundle), "--threads", "1", "--target-fpr", "0.001", str(crop)]) == 0
    assert (f"ganad score: {crop}: 12 calibration normals cannot keep a false-positive rate of 0.1 % for a single "
            "cell") in capsys.readouterr().err
    assert main(["score", "--bundle", str(tiny_bundle), "--threads", "1", "--target-fpr", "0.5", str(crop)]) == 0
    assert "cannot keep" not in capsys.readouterr().err
