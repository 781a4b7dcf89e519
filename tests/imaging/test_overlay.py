from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.imaging.overlay import (
    FLAGGED_COLOUR,
    HEAT_COLOUR,
    NORMAL_COLOUR,
    OPAQUE_FROM,
    CellBox,
    cell_colour,
    display_pixels,
    draw_cells,
    heat_opacity,
    heat_rgba,
    overlay,
    picture_rect,
)


def noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_an_image_within_the_side_is_displayed_as_it_is() -> None:
    image = noise(30, 40)
    np.testing.assert_array_equal(display_pixels(image, 40), image)
    np.testing.assert_array_equal(display_pixels(image.astype(np.float32) / 255, 40), image)


def test_a_large_image_is_shrunk_strip_by_strip_as_it_would_be_whole(monkeypatch) -> None:
    image = noise(203, 157)
    monkeypatch.setattr("ganad_clinic.imaging.overlay.STRIP_PIXELS", 157 * 9)  # strips of a few rows

    shown = display_pixels(image, 50)

    whole = Image.fromarray(image).reduce(4)
    whole.thumbnail((50, 50), Image.BILINEAR)
    assert max(shown.shape[:2]) == 50
    np.testing.assert_array_equal(shown, np.asarray(whole))


def test_sixteen_bit_pixels_are_displayed_by_their_high_byte() -> None:
    image = np.full((4, 6, 3), 0x8180, dtype=np.uint16)
    assert (display_pixels(image, 8) == 0x81).all()


def test_the_overlay_stays_clear_where_heat_is_low_and_takes_the_colour_where_high() -> None:
    image = np.full((20, 20, 3), 255, dtype=np.uint8)
    heat = np.zeros((10, 10), dtype=np.float32)
    heat[:, 5:] = 1.0

    blended = overlay(image, heat)

    assert (blended[:, :8] == 255).all()
    expected = np.round(0.5 * 255 + 0.5 * np.array(HEAT_COLOUR, dtype=np.float64)).astype(np.uint8)
    np.testing.assert_array_equal(blended[:, 12:], np.broadcast_to(expected, blended[:, 12:].shape))


def test_display_side_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_side"):
        display_pixels(noise(4, 4), 0)


def test_the_overlay_leaves_every_pixel_as_it_is_where_heat_is_zero() -> None:
    image = noise(40, 60)
    heat = np.zeros((20, 30), dtype=np.float32)
    heat[5:10, 5:10] = 0.6  # a lit spot; its bilinear spread stays within a pixel or two of it

    blended = overlay(image, heat)

    np.testing.assert_array_equal(blended[:, 24:], image[:, 24:])
    np.testing.assert_array_equal(overlay(image, np.zeros((20, 30), dtype=np.float32)), image)


def test_positive_heat_is_plainly_visible_at_the_default_opacity() -> None:
    # At 1.25 times what normal cells show (OPAQUE_FROM), and above, the layer shifts the pixels of
    # a pale background, a pink red cell and a purple nucleus by tens of levels, not a faint tint.
    for colour in ((228, 206, 214), (214, 120, 140), (90, 60, 150)):
        image = np.full((16, 16, 3), colour, dtype=np.uint8)
        for heat in (OPAQUE_FROM, 0.5, 0.75):
            blended = overlay(image, np.full((8, 8), heat, dtype=np.float32))
            assert np.abs(blended.astype(int) - image.astype(int)).max() >= 60, (colour, heat)


def test_opacity_rises_from_nothing_at_zero_heat_to_full_at_a_quarter_above_normal() -> None:
    opacity = heat_opacity(np.array([0.0, OPAQUE_FROM / 2, OPAQUE_FROM, 0.9]))
    np.testing.assert_allclose(opacity, [0.0, 0.5, 1.0, 1.0])
    assert OPAQUE_FROM == pytest.approx((1.25 - 1) / (1.25 + 1))
    layer = heat_rgba(np.array([[0.0, OPAQUE_FROM]]))
    assert layer.shape == (1, 2, 4) and tuple(layer[0, 1]) == (*HEAT_COLOUR, 255) and layer[0, 0, 3] == 0


def test_cells_are_red_when_flagged_and_blue_when_not() -> None:
    assert cell_colour(True) == FLAGGED_COLOUR and cell_colour(False) == NORMAL_COLOUR
    assert FLAGGED_COLOUR != NORMAL_COLOUR


def test_cell_boxes_are_outlined_in_their_colour_and_numbered_on_a_label() -> None:
    picture = np.full((120, 160, 3), 200, dtype=np.uint8)
    boxes = [CellBox(3, 40, 40, 100, 80, True), (12, 200, 100, 80, 100, False)]  # slide pixels

    drawn = draw_cells(picture, boxes, scale=0.5)

    assert drawn.dtype == np.uint8 and drawn.shape == picture.shape
    assert (picture == 200).all()  # a new array; the picture is left alone
    np.testing.assert_array_equal(drawn[45, 20], FLAGGED_COLOUR)  # left edge of box 3 at (20, 20)-(69, 59)
    np.testing.assert_array_equal(drawn[59, 45], FLAGGED_COLOUR)  # its bottom edge
    np.testing.assert_array_equal(drawn[99, 130], NORMAL_COLOUR)  # the bottom edge of box 12
    label = drawn[20:36, 20:34]  # the label in the box's top-left corner: vermillion, light digits
    assert (label == FLAGGED_COLOUR).all(-1).mean() > 0.5
    assert (label[..., 2] > 200).sum() >= 10  # (vermillion has no blue; the grey picture is not in it)
    np.testing.assert_array_equal(drawn[40:55, 30:60], picture[40:55, 30:60])  # inside, below the label
    untouched = np.ones(picture.shape[:2], dtype=bool)
    untouched[20:60, 20:70] = untouched[50:100, 100:140] = False
    np.testing.assert_array_equal(drawn[untouched], picture[untouched])


def test_a_box_reaching_beyond_the_picture_keeps_its_number_on_the_picture() -> None:
    picture = np.full((120, 160, 3), 200, dtype=np.uint8)

    drawn = draw_cells(picture, [CellBox(7, -34, -34, 128, 128, True)], scale=1.0)

    label = drawn[0:16, 0:14]  # clamped into the picture's corner: vermillion with light digits
    assert (label == FLAGGED_COLOUR).all(-1).mean() > 0.5 and (label[..., 2] > 200).sum() >= 5
    np.testing.assert_array_equal(drawn[60, 93], FLAGGED_COLOUR)  # the box's right edge, on the picture


def test_a_box_is_kept_on_the_picture_only_its_part_there() -> None:
    assert picture_rect(10, 20, 30, 40, 0.5, 100, 100) == (5, 10, 20, 30)
    assert picture_rect(-34, -34, 128, 128, 1.0, 80, 60) == (0, 0, 80, 60)  # reaching beyond two edges
    assert picture_rect(0, 0, 1, 1, 0.1, 100, 100) == (0, 0, 1, 1)  # at least a pixel
    assert picture_rect(200, 0, 50, 50, 0.5, 100, 100) is None  # wholly off the picture
