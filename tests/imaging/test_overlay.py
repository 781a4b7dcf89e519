from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.imaging.overlay import colorize, display_pixels, overlay


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
    expected = np.round(0.5 * 255 + 0.5 * colorize(np.ones((1, 1)))[0, 0].astype(np.float64)).astype(np.uint8)
    np.testing.assert_array_equal(blended[:, 12:], np.broadcast_to(expected, blended[:, 12:].shape))


def test_display_side_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_side"):
        display_pixels(noise(4, 4), 0)
