"""The field benchmark draws the fields it says it draws and scores both tilings the service's way."""

import json
import sys

import pytest

from ganad_clinic.imaging.synthetic import FieldCell
from ganad_clinic.imaging.tiling import Tile
from training import field_screening


def test_half_the_fields_are_normal_and_half_hold_a_blast() -> None:
    images, cells, labels = field_screening.synthetic_fields(3, seed=1)
    assert labels == [0, 0, 0, 1, 1, 1]
    for drawn, label in zip(cells, labels):
        assert drawn and any(cell.blast for cell in drawn) == bool(label)
    assert all(image.dtype.kind == "f" and image.max() <= 1.0 for image in images)


def test_a_cell_counts_as_found_only_under_a_tile_centred_on_it() -> None:
    cell = FieldCell(row=100.0, col=200.0, radius=20.0, blast=False)
    assert field_screening.found(cell, [Tile(36, 136, 128, 128)], (500, 500))
    assert not field_screening.found(cell, [Tile(36, 166, 128, 128)], (500, 500))
    corner = FieldCell(row=10.0, col=10.0, radius=20.0, blast=False)
    assert field_screening.found(corner, [Tile(-54, -54, 128, 128)], (500, 500))  # centred, reaching beyond


def test_it_prints_both_tilings(tiny_bundle, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["field_screening.py", "--bundle", str(tiny_bundle), "--fields", "1",
                                      "--threads", "1"])
    monkeypatch.setattr(field_screening, "draw_field", _small_field(field_screening.draw_field))
    field_screening.main()
    result = json.loads(capsys.readouterr().out)
    assert result["white_cells_given_a_tile"] == result["white_cells_drawn"] > 0
    for tiling in ("cells", "grid"):
        assert 0.0 <= result[tiling]["auc"] <= 1.0
        assert result[tiling]["normal_fields_flagged"] in (0, 1)
    assert result["cells"]["tiles_per_field"] < result["grid"]["tiles_per_field"]


def _small_field(draw):
    """Fields of 400x300 so the test stays quick (the tiny bundle's crops are 48 px)."""
    return lambda rng, blast_fraction: draw(rng, width=400, height=300, blast_fraction=blast_fraction)
