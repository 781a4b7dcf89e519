from __future__ import annotations

import numpy as np
import pytest

from ganad_clinic.imaging.synthetic import FIELD_SCALE, draw_field, field_rng, generate_cell
from ganad_clinic.imaging.tiling import (
    DEFAULT_CROP_SIZE,
    WHOLE_IMAGE,
    Tile,
    TilePlan,
    TilingRule,
    centred_tile,
    heat_shape,
    paint_heat,
    seen_window,
    slide_tile_index,
    stitch_heat,
    tile_grid,
)
from ganad_clinic.imaging.transforms import default_resize_size, eval_transform


def test_crops_are_scored_whole_and_fields_are_tiled() -> None:
    rule = TilingRule()
    assert rule.crop_size == DEFAULT_CROP_SIZE
    assert rule.tile_above == 386
    assert rule.grid(257, 257) == [Tile(0, 0, 257, 257)]
    assert rule.grid(300, 386) == [Tile(0, 0, 300, 386)]
    assert rule.is_tiled(300, 387)
    assert rule.is_tiled(972, 1296)
    field_tiles = rule.grid(972, 1296)
    assert {(tile.height, tile.width) for tile in field_tiles} == {(257, 257)}


def test_field_scale_sets_the_tile_size_but_not_what_counts_as_a_crop() -> None:
    rule = TilingRule(field_scale=0.5)
    assert rule.tile_size == 128
    assert rule.stride == 64
    assert not rule.is_tiled(257, 257)
    assert all(tile.height == 128 and tile.width == 128 for tile in rule.grid(972, 1296))


def test_a_field_gets_one_tile_centred_on_each_white_cell() -> None:
    image, cells = draw_field(field_rng(4, 0), n_cells=4)
    rule = TilingRule(field_scale=FIELD_SCALE)
    plan = rule.plan(image)
    tiles = plan.tiles
    assert len(tiles) >= len(cells) == 4
    assert plan.how == f"{len(tiles)} tiles, one per white cell"
    height, width = image.shape[:2]
    for tile in tiles:
        assert (tile.height, tile.width) == (128, 128)
        assert -64 <= tile.top <= height - 64 and -64 <= tile.left <= width - 64
    for cell in cells:  # the tile's centre is the cell's, also near an edge
        offsets = [np.hypot(tile.top + 64 - cell.row, tile.left + 64 - cell.col) for tile in tiles]
        assert min(offsets) < 0.4 * cell.radius


def test_a_field_without_white_cells_is_covered_by_the_grid() -> None:
    image, _ = draw_field(field_rng(4, 1), n_cells=0)
    rule = TilingRule(field_scale=FIELD_SCALE)
    plan = rule.plan(image)
    assert plan.tiles == rule.grid(*image.shape[:2])
    assert len(plan.tiles) > 100
    assert plan.how == f"grid of {len(plan.tiles)} tiles: no white cell found"


def test_a_smear_with_more_cells_than_grid_tiles_is_covered_by_the_grid() -> None:
    field = np.empty((600, 800, 3), dtype=np.float32)
    field[...] = (0.92, 0.85, 0.86)
    rows, cols = np.mgrid[:600, :800]
    for row in range(20, 600, 40):
        for col in range(20, 800, 40):
            field[np.hypot(rows - row, cols - col) <= 12] = (0.45, 0.25, 0.6)
    rule = TilingRule(field_scale=FIELD_SCALE)
    plan = rule.plan(field)
    assert plan.tiles == rule.grid(600, 800)
    assert plan.how == f"grid of {len(plan.tiles)} tiles: more white cells (300) than grid tiles"


def test_a_crop_is_one_tile_whatever_it_shows() -> None:
    crop = generate_cell(np.random.default_rng(0), blast=True)
    assert TilingRule().plan(crop) == TilePlan([Tile(0, 0, 257, 257)], "whole image", WHOLE_IMAGE)


@pytest.mark.parametrize("row,col,expected", [
    (100.0, 150.0, Tile(36, 86, 128, 128)),  # inside
    (10.0, 990.0, Tile(-54, 926, 128, 128)),  # near the top-right corner: reaching beyond it
    (299.0, 0.0, Tile(235, -64, 128, 128)),
])
def test_a_tile_is_centred_on_its_cell_even_near_the_edge(row: float, col: float, expected: Tile) -> None:
    assert centred_tile(row, col, 128, 300, 1000) == expected


def test_a_centred_tile_takes_a_side_shorter_than_the_tile_whole() -> None:
    assert centred_tile(40.0, 500.0, 128, 90, 1000) == Tile(0, 436, 90, 128)


def test_the_part_of_a_tile_beyond_the_slide_is_the_slide_mirrored_at_its_edge() -> None:
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)

    cut = Tile(-2, 5, 4, 4).cut(image)

    assert cut.shape == (4, 4, 3) and cut.dtype == np.uint8
    # slide rows -2, -1, 0, 1 and columns 5, 6, 7, 8: row -k is row k, column 8 is column 6
    np.testing.assert_array_equal(cut, image[np.ix_([2, 1, 0, 1], [5, 6, 7, 6])])
    np.testing.assert_array_equal(Tile(1, 1, 3, 3).cut(image), image[1:4, 1:4])
    with pytest.raises(ValueError, match="wholly outside"):
        Tile(-10, 0, 4, 4).cut(image)


def test_heat_of_a_tile_reaching_beyond_the_slide_is_painted_on_the_slide_only() -> None:
    heat = np.ones((64, 64), dtype=np.float32)
    stitched = np.zeros((100, 150), dtype=np.float32)

    paint_heat(stitched, heat, Tile(-40, 100, 100, 100), (100, 150))

    assert stitched[:50, 110:].min() > 0 and stitched[:, :95].max() == 0


@pytest.mark.parametrize("height,width,tile,stride", [
    (972, 1296, 257, 128), (500, 300, 128, 64), (100, 1000, 257, 128), (257, 257, 257, 128), (130, 129, 64, 50),
])
def test_grid_covers_every_pixel_and_stays_inside(height: int, width: int, tile: int, stride: int) -> None:
    covered = np.zeros((height, width), dtype=int)
    tiles = tile_grid(height, width, tile, stride)
    for t in tiles:
        assert t.top >= 0 and t.left >= 0
        assert t.top + t.height <= height and t.left + t.width <= width
        assert (t.height, t.width) == (min(tile, height), min(tile, width))
        covered[t.top:t.top + t.height, t.left:t.left + t.width] += 1
    assert covered.min() >= 1
    tops = sorted({t.top for t in tiles})
    assert all(b - a <= stride for a, b in zip(tops, tops[1:]))


def test_tile_cut_takes_rows_then_columns() -> None:
    image = np.arange(6 * 8).reshape(6, 8)
    assert Tile(top=1, left=2, height=3, width=4).cut(image).tolist() == image[1:4, 2:6].tolist()


def test_seen_window_matches_the_eval_transform() -> None:
    """A horizontal ramp through the eval transform: the values in the output columns tell which
    input columns the model saw, so the window and the orientation (no transpose) are checked."""
    height, width, image_size = 90, 150, 32
    ramp = np.broadcast_to(((np.arange(width) + 0.5) / width)[None, :], (height, width))
    image = np.stack([ramp, np.zeros_like(ramp), np.zeros_like(ramp)], axis=-1).astype(np.float32)
    out = (np.asarray(eval_transform(image_size)(image))[0] + 1) / 2
    start, end = seen_window(width, image_size)
    expected = (start + (np.arange(image_size) + 0.5) * (end - start) / image_size) / width
    observed = out.mean(axis=0)
    assert np.abs(observed[4:-4] - expected[4:-4]).max() < 0.01
    assert np.allclose(out.std(axis=0), 0, atol=1e-3)  # constant down each column: not transposed


def test_seen_window_uses_the_centre_crop_of_the_resize() -> None:
    resize = default_resize_size(64)
    start, end = seen_window(resize, 64)
    assert (start, end) == (resize // 2 - 32, resize // 2 + 32)


def _transform_as_model(tiles: list[np.ndarray], image_size: int) -> list[np.ndarray]:
    """A stand-in model whose heat map is the red channel of what the eval transform hands it."""
    transform = eval_transform(image_size)
    return [(np.asarray(transform(tile))[0] + 1) / 2 for tile in tiles]


def test_stitched_heat_has_the_slide_shape_and_lights_the_anomalous_corner() -> None:
    height, width = 600, 900
    field = np.zeros((height, width, 3), dtype=np.float32)
    field[40:110, 760:840, 0] = 1.0  # an "anomaly" near the top-right corner
    rule = TilingRule(crop_size=160)
    tiles = rule.grid(height, width)
    assert len(tiles) > 1
    heats = _transform_as_model([tile.cut(field) for tile in tiles], image_size=32)
    stitched = stitch_heat(heats, tiles, (height, width))

    assert stitched.shape == (height, width)
    row, col = np.unravel_index(np.argmax(stitched), stitched.shape)
    assert 40 <= row < 110 and 760 <= col < 840
    assert stitched[40:110, 760:840].mean() > 0.7
    assert stitched[height // 2:, : width // 2].max() < 0.05  # the opposite corner stays dark
    assert stitched[: height // 2, : width // 2].max() < 0.05


def test_a_whole_crop_puts_its_heat_on_the_centre_the_model_saw() -> None:
    size = 257
    heat = np.ones((32, 32), dtype=np.float32)
    stitched = stitch_heat([heat], [Tile(0, 0, size, size)], (size, size))
    start, end = seen_window(size, 32)
    inside = stitched[int(np.ceil(start)):int(end), int(np.ceil(start)):int(end)]
    assert inside.min() == 1.0
    assert stitched[: int(start) - 1].max() == 0.0 and stitched[:, int(end) + 1:].max() == 0.0


def test_overlapping_tiles_keep_the_larger_heat() -> None:
    tiles = [Tile(0, 0, 64, 64), Tile(0, 32, 64, 64)]
    stitched = stitch_heat([np.full((16, 16), 0.2), np.full((16, 16), 0.6)], tiles, (64, 96))
    assert stitched[32, 40] == pytest.approx(0.6)
    assert stitched[32, 10] == pytest.approx(0.2)


def test_stitch_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        stitch_heat([np.zeros((8, 8))], [], (10, 10))
    with pytest.raises(ValueError):
        stitch_heat([np.zeros((8, 4))], [Tile(0, 0, 10, 10)], (10, 10))


def test_the_slide_score_is_the_maximum_tile_score() -> None:
    assert slide_tile_index([0.1, 0.9, 0.3]) == 1
    with pytest.raises(ValueError):
        slide_tile_index([])


def test_heat_shape_keeps_the_aspect_under_the_longest_side() -> None:
    assert heat_shape((1944, 2592), 2048) == (1536, 2048)
    assert heat_shape((10000, 10000), 2048) == (2048, 2048)
    assert heat_shape((600, 900), 2048) == (600, 900)


def test_a_coarse_heat_map_samples_the_full_resolution_one_at_its_pixel_centres() -> None:
    height, width = 600, 900
    field = np.zeros((height, width, 3), dtype=np.float32)
    field[40:110, 760:840, 0] = 1.0
    rule = TilingRule(crop_size=160)
    tiles = rule.grid(height, width)
    heats = _transform_as_model([tile.cut(field) for tile in tiles], image_size=32)
    full = stitch_heat(heats, tiles, (height, width))

    coarse = stitch_heat(heats, tiles, (height, width), out_shape=(200, 300))  # a third on each side

    assert coarse.shape == (200, 300)
    np.testing.assert_allclose(coarse, full[1::3, 1::3], atol=1e-6)  # pixel centres 3i + 1.5 ~ full pixel 3i + 1


def test_paint_heat_lights_one_tile_in_place() -> None:
    stitched = np.zeros((32, 48), dtype=np.float32)
    paint_heat(stitched, np.ones((16, 16)), Tile(0, 32, 64, 64), (64, 96))  # the right part, map at half scale
    assert stitched[:, :17].max() == 0.0
    assert stitched[4:28, 18:44].min() == 1.0
