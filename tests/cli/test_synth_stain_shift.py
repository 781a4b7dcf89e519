from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.cli import main


def test_a_stain_shift_darkens_the_same_crops(tmp_path: Path) -> None:
    assert main(["synth", "--out", str(tmp_path / "usual"), "--normal", "2", "--blast", "0"]) == 0
    assert main(["synth", "--out", str(tmp_path / "shifted"), "--normal", "2", "--blast", "0",
                 "--stain-shift", "0.5"]) == 0
    for name in ("Im001_0.tif", "Im002_0.tif"):
        usual = np.asarray(Image.open(tmp_path / "usual" / name), dtype=float)
        shifted = np.asarray(Image.open(tmp_path / "shifted" / name), dtype=float)
        assert usual.shape == shifted.shape and shifted.mean() < usual.mean() - 1  # denser stain: less light


@pytest.mark.parametrize("shift", ["-1", "-2", "inf", "much"])
def test_an_impossible_stain_shift_is_refused(tmp_path: Path, shift: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path / "x"), "--stain-shift", shift])
    assert "--stain-shift" in capsys.readouterr().err and not (tmp_path / "x").exists()
