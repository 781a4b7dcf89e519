import numpy as np
import pytest

from ganad_clinic.imaging.cells import chromatin_mask, search_factor, shrink, white_cell_centres
from ganad_clinic.imaging.synthetic import CROP_SIZE, FIELD_SCALE, draw_field, field_rng

CELL_SCALE = CROP_SIZE * FIELD_SCALE  # a crop's side in a synthetic field's pixels


def _pink_background(height: int = 200, width: int = 300) -> np.ndarray:
    image = np.empty((height, width, 3), dtype=np.float32)
    image[...] = (0.92, 0.85, 0.86)
    return image


def _violet_disc(image: np.ndarray, row: int, col: int, radius: float) -> None:
    rows, cols = np.ogrid[:image.shape[0], :image.shape[1]]
    image[np.hypot(rows - row, cols - col) <= radius] = (0.45, 0.25, 0.6)


@pytest.mark.parametrize("index", range(6))
def test_every_drawn_white_cell_is_found_and_nothing_else(index: int) -> None:
    image, cells = draw_field(field_rng(3, index), n_cells=index % 5 + 1)
    centres = white_cell_centres(image, CELL_SCALE)
    assert cells
    for cell in cells:
        distances = [np.hypot(row - cell.row, col - cell.col) for row, col in centres]
        assert min(distances) < 0.4 * cell.radius, f"{cell} not found among {centres}"
    for row, col in centres:
        assert min(np.hypot(row - cell.row, col - cell.col) / cell.radius for cell in cells) < 1.0


def test_a_field_of_red_cells_only_has_no_white_cell() -> None:
    image, cells = draw_field(field_rng(3, 9), n_cells=0)
    assert cells == []
    assert white_cell_centres(image, CELL_SCALE) == []


def test_specks_are_not_nuclei_and_larger_nuclei_come_first() -> None:
    image = _pink_background()
    _violet_disc(image, 50, 60, radius=3)  # a platelet-sized speck
    _violet_disc(image, 120, 100, radius=12)
    _violet_disc(image, 100, 230, radius=18)
    centres = white_cell_centres(image, CELL_SCALE)
    assert len(centres) == 2
    assert np.allclose(centres[0], (100, 230), atol=0.5)
    assert np.allclose(centres[1], (120, 100), atol=0.5)


def test_chromatin_does_not_depend_on_the_value_range() -> None:
    image, _ = draw_field(field_rng(3, 1), width=300, height=200, n_cells=2)
    assert chromatin_mask(image).any()
    assert np.array_equal(chromatin_mask(image), chromatin_mask(image.astype(np.float32) / 255))


def test_cell_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cell_scale"):
        white_cell_centres(_pink_background(), 0)


def test_the_lobes_of_one_nucleus_make_one_cell_at_their_middle() -> None:
    image = _pink_background()
    for row, col in ((90, 140), (90, 158), (106, 149)):  # three lobes, a neutrophil's
        _violet_disc(image, row, col, radius=7)
    _violet_disc(image, 100, 40, radius=12)  # another cell, further than SAME_CELL away
    centres = white_cell_centres(image, CELL_SCALE)
    assert len(centres) == 2
    assert np.allclose(centres[0], (95.3, 149.0), atol=0.6)
    assert np.allclose(centres[1], (100, 40), atol=0.5)


@pytest.mark.parametrize("shape", [(50, 60), (50, 60, 1)])
def test_only_colour_images_are_searched(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="colour image"):
        chromatin_mask(np.ones(shape, dtype=np.float32))


# --- large fields ---------------------------------------------------------------------------------


def test_a_field_over_the_search_limit_is_searched_shrunk_and_every_cell_is_found(monkeypatch) -> None:
    image, cells = draw_field(field_rng(3, 2), n_cells=3)
    tiled = np.tile(image, (2, 2, 1))
    height, width = image.shape[:2]
    expected = [(cell.row + i * height, cell.col + j * width, cell.radius)
                for i in range(2) for j in range(2) for cell in cells]
    monkeypatch.setattr("ganad_clinic.imaging.cells.SEARCH_MAX_PIXELS", tiled.shape[0] * tiled.shape[1] // 9)
    assert search_factor(*tiled.shape[:2]) == 3

    centres = white_cell_centres(tiled, CELL_SCALE)

    assert len(centres) == len(expected)
    for row, col, radius in expected:
        assert min(np.hypot(r - row, c - col) for r, c in centres) < 0.4 * radius


def test_integer_and_float_pixels_of_a_field_give_the_same_cells(monkeypatch) -> None:
    image, _ = draw_field(field_rng(3, 4), n_cells=4)
    floats = image.astype(np.float32) / 255.0
    assert white_cell_centres(image, CELL_SCALE) == white_cell_centres(floats, CELL_SCALE)
    monkeypatch.setattr("ganad_clinic.imaging.cells.SEARCH_MAX_PIXELS", image.shape[0] * image.shape[1] // 4)
    assert white_cell_centres(image, CELL_SCALE) == white_cell_centres(floats, CELL_SCALE)


def test_shrink_takes_block_means_strip_by_strip(monkeypatch) -> None:
    image = np.random.default_rng(0).integers(0, 256, (31, 23, 3), dtype=np.uint8)
    monkeypatch.setattr("ganad_clinic.imaging.cells.STRIP_PIXELS", 5 * 7 * 9)  # strips of 5 block rows

    small = shrink(image, 3)

    expected = (image[:30, :21].astype(np.float64) / 255).reshape(10, 3, 7, 3, 3).mean(axis=(1, 3))
    assert small.shape == (10, 7, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small, expected, atol=1e-6)


def test_the_search_limit_leaves_native_all_idb1_fields_at_full_resolution() -> None:
    assert search_factor(1944, 2592) == 1
    assert search_factor(10000, 10000) == 4
