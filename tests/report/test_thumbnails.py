from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.imaging.overlay import FLAGGED_COLOUR, NORMAL_COLOUR, CellBox
from ganad_clinic.report.thumbnails import OVERVIEW_PIXELS, field_pictures, make_thumbnail


def decode(jpeg: bytes) -> Image.Image:
    return Image.open(io.BytesIO(jpeg))


def test_a_large_image_becomes_a_small_jpeg_with_its_aspect(tmp_path: Path) -> None:
    path = tmp_path / "field.jpg"
    Image.new("RGB", (2000, 1000), (200, 30, 60)).save(path)
    thumbnail = make_thumbnail(str(path), max_side=200)
    assert thumbnail is not None
    picture = decode(thumbnail.jpeg)
    assert picture.format == "JPEG" and picture.size == (thumbnail.width, thumbnail.height) == (200, 100)
    red, green, blue = np.asarray(picture).reshape(-1, 3).mean(axis=0)
    assert red > 150 and green < 80


def test_sixteen_bit_gray_and_transparency_are_converted(tmp_path: Path) -> None:
    gray = tmp_path / "gray16.png"
    Image.fromarray(np.full((50, 80), 65535, dtype=np.uint16)).save(gray)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(clear)
    for path in (gray, clear):
        thumbnail = make_thumbnail(str(path))
        assert thumbnail is not None
        assert np.asarray(decode(thumbnail.jpeg)).mean() > 240  # white, not black


def test_missing_or_unreadable_files_give_none(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert make_thumbnail(str(tmp_path / "gone.png")) is None
    assert make_thumbnail(str(broken)) is None
    assert make_thumbnail(None) is None
    assert make_thumbnail(str(tmp_path)) is None


def test_a_fields_overview_is_boxed_and_its_crops_are_cut_at_the_pictures_scale(tmp_path: Path) -> None:
    heatmap = tmp_path / "heat.png"
    picture = np.full((500, 1000, 3), 230, dtype=np.uint8)
    picture[100:200, 300:400] = (20, 200, 40)  # cell 1, at slide pixels (600, 200) to (800, 400)
    Image.fromarray(picture).save(heatmap)
    cell = CellBox(1, 600, 200, 200, 200, True)
    calm = CellBox(2, 0, 0, 200, 200, False)
    outside = CellBox(3, 2100, 0, 200, 200, True)

    pictures = field_pictures(str(heatmap), 2000, [cell, calm], [cell, outside])

    assert pictures is not None
    overview = np.asarray(decode(pictures.overview.jpeg)).astype(int)
    assert max(overview.shape[:2]) == OVERVIEW_PIXELS
    assert (np.abs(overview - FLAGGED_COLOUR).sum(axis=-1) < 40).any()
    assert (np.abs(overview - NORMAL_COLOUR).sum(axis=-1) < 40).any()
    crop, missing = pictures.crops
    assert crop is not None and (crop.width, crop.height) == (100, 100) and missing is None
    red, green, blue = np.asarray(decode(crop.jpeg)).reshape(-1, 3).mean(axis=0)
    assert green > 180 and red < 40
    assert field_pictures(str(tmp_path / "gone.png"), 2000, [cell], [cell]) is None
