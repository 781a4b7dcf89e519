from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.model.inference import HEAT_MAX_SIDE as MAX_SIDE
from ganad_clinic.screening import heatmaps
from ganad_clinic.screening.heatmaps import write_heatmap


def field(height: int = 40, width: int = 60) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_two_writers_of_one_heat_map_do_not_take_each_others_temporary_file(tmp_path: Path, monkeypatch) -> None:
    # Two services sharing a home: the second writes the same slide's heat map while the first is
    # between writing its temporary file and moving it into place. With one temporary name per
    # heat map, the second moved the first's file away and the first crashed (FileNotFoundError).
    path = tmp_path / "heatmaps" / "slide-43-model-1.png"
    real_replace = os.replace
    calls = []

    def replace_after_another_writer(source, target) -> None:
        calls.append(source)
        if len(calls) == 1:
            write_heatmap(path, field(), np.ones((8, 8), dtype=np.float32))
        real_replace(source, target)

    monkeypatch.setattr(heatmaps.os, "replace", replace_after_another_writer)

    write_heatmap(path, field(), np.zeros((8, 8), dtype=np.float32))

    assert len(calls) == 2 and calls[0] != calls[1]
    assert Image.open(path).size == (60, 40)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("step", ["save", "replace"])
def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch, step: str) -> None:
    def failing(*args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    owner = Image.Image if step == "save" else heatmaps.os
    monkeypatch.setattr(owner, step, failing)
    with pytest.raises(OSError, match="No space"):
        write_heatmap(tmp_path / "slide-1-model-1.png", field(), np.zeros((8, 8), dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_large_field_is_written_at_the_screen_size_from_a_coarse_heat_map(tmp_path: Path) -> None:
    image = np.full((MAX_SIDE * 2 + 100, 3000, 3), 230, dtype=np.uint8)
    heat = np.zeros((MAX_SIDE, 1400), dtype=np.float32)
    heat[: MAX_SIDE // 2] = 1.0  # the top half is lit

    written = np.asarray(Image.open(write_heatmap(tmp_path / "large.png", image, heat)).convert("RGB"))

    assert max(written.shape[:2]) == MAX_SIDE
    assert written.shape[0] > written.shape[1]
    assert (written[-50:] == 230).all()  # the unlit bottom stays the slide's colour
    assert (written[:50] != 230).any(axis=2).all()
