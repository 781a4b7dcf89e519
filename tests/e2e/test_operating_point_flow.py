"""The operating point as a lab meets it, through the command line only: train on normals, see
the rule, the target and the calibration count in the bundle, score with p-values, screen a folder,
state another rate, screen again and re-flag the earlier slides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganad_clinic.cli import main
from ganad_clinic.model.bundle import read_metadata
from ganad_clinic.store import open_store

TINY = ["--image-size", "32", "--width", "0.125", "--latent", "16", "--batch-size", "4", "--steps", "4",
        "--threads", "1", "--device", "cpu"]


def test_train_score_watch_and_change_the_rate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, bundle, home, inbox = (tmp_path / name for name in ("data", "bundle", "home", "inbox"))
    assert main(["synth", "--out", str(data), "--normal", "60", "--blast", "4", "--seed", "11"]) == 0
    assert main(["train", "--data", str(data), "--out", str(bundle), "--target-fpr", "0.1", *TINY]) == 0
    trained = capsys.readouterr()
    assert "calibrating on 20 normal for a false-positive rate of 10 %" in trained.out

    calibration = read_metadata(bundle)["ganad"]["calibration"]
    assert (calibration["n"], calibration["target_fpr"], calibration["rule"]) == (20, 0.1, "split-conformal")
    assert "split-conformal: the 19th smallest of 20 calibration-normal scores" in \
        read_metadata(bundle)["ganad"]["threshold"]["rule"]

    crops = sorted(data.glob("*.tif"))
    assert main(["score", "--bundle", str(bundle), "--json", "--threads", "1", str(crops[0])]) == 0
    row = json.loads(capsys.readouterr().out)
    assert 1 / 21 <= row["p_value"] <= 1 and row["calibration_n"] == 20 and row["target_fpr"] == 0.1
    assert row["flagged"] == (row["p_value"] <= 0.1 + 1e-12)

    assert main(["models", "import", str(bundle), "--home", str(home)]) == 0
    inbox.mkdir()
    for crop in crops[:3]:
        shutil.copy(crop, inbox / crop.name)
    watch = ["watch", "--inbox", str(inbox), "--home", str(home), "--once", "--threads", "1"]
    assert main(watch) == 0
    assert main(["operating-point", "set", "0.5", "--reason", "pilot", "--home", str(home)]) == 0
    shutil.copy(crops[3], inbox / crops[3].name)
    assert main(watch) == 0
    assert main(["operating-point", "reflag", "--home", str(home)]) == 0
    assert "3 slides got a new score row" in capsys.readouterr().out

    with open_store(home=home) as store:
        summaries = store.list_slides()
        assert len(summaries) == 4 and {summary.score.target_fpr for summary in summaries} == {0.5}
        assert [event.action for event in store.list_audit_events()
                if event.action.startswith("operating_point")] == ["operating_point.set", "operating_point.reflagged"]
