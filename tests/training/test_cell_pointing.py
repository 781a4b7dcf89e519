"""The pointing benchmark reads the truth it says it reads and measures what it says."""

import json
import sys
from pathlib import Path

import pytest

from ganad_clinic.imaging.tiling import Tile
from training import cell_pointing


def test_a_box_holds_a_point_inside_it_only() -> None:
    tile = Tile(top=10, left=20, height=5, width=8)
    assert cell_pointing.holds(tile, 20, 10) and cell_pointing.holds(tile, 27, 14)
    assert not cell_pointing.holds(tile, 28, 10) and not cell_pointing.holds(tile, 20, 15)


def test_it_prints_both_figures(tiny_bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "pointing.json"
    monkeypatch.setattr(sys, "argv", ["cell_pointing.py", "--bundle", str(tiny_bundle), "--fields", "4",
                                      "--crops", "2", "--threads", "1", "--out", str(out)])
    cell_pointing.main()
    result = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == result
    pointing, heat = result["pointing"], result["heat"]
    assert pointing["fields"] == 4 and 0 <= pointing["top_cell_is_a_blast"] <= pointing["fields_with_a_blast"] <= 2
    assert pointing["blasts_inside_a_cell_box"] <= pointing["blasts_drawn"]
    assert heat["blast_crops"] == 2 and 0 < heat["cell_share_of_crop_mean"] < 1
