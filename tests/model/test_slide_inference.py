"""The one slide-level scorer: crops whole, fields one tile per white cell, each tile a cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.imaging.io import read_image, read_pixels
from ganad_clinic.imaging.synthetic import draw_field, field_rng
from ganad_clinic.imaging.tiling import GRID, WHITE_CELLS, WHOLE_IMAGE, TilingRule, stitch_heat
from ganad_clinic.model import inference
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.conformal import Calibration
from ganad_clinic.model.inference import Inferencer, Scorer


@pytest.fixture(scope="module")
def scorer(tiny_bundle: Path) -> Inferencer:
    return Inferencer(load_bundle(tiny_bundle), field_scale=0.5)


@pytest.fixture
def field_file(tmp_path: Path) -> Path:
    image, _ = draw_field(field_rng(5, 1), width=400, height=300, n_cells=3)
    path = tmp_path / "field.png"
    Image.fromarray(image).save(path)
    return path


def test_integer_pixels_score_as_the_float_image_does(scorer: Inferencer, field_file: Path) -> None:
    floats, integers = read_image(field_file), read_pixels(field_file)

    by_float = scorer.score([floats])[0]
    by_integer = scorer.score([integers])[0]

    assert scorer.plan(integers) == scorer.plan(floats)
    assert by_integer.cells == by_float.cells
    np.testing.assert_array_equal(by_integer.heat, by_float.heat)


def test_every_tile_is_a_cell_and_the_slide_is_its_highest_cell(scorer: Inferencer, field_file: Path) -> None:
    image = read_image(field_file)
    crop = np.asarray(Image.fromarray(np.uint8(image * 255)).resize((50, 50))).astype(np.float32) / 255
    plans = [scorer.plan(image), scorer.plan(crop)]
    tiles = [tile.cut(picture) for picture, plan in zip((image, crop), plans) for tile in plan.tiles]
    at_once = Scorer(scorer.bundle).score_images(tiles)

    field, whole = scorer.score([image, crop], plans)

    assert field.plan.rule == WHITE_CELLS and len(field.cells) == len(plans[0].tiles) == 3
    assert [cell.tile for cell in field.cells] == plans[0].tiles
    assert [cell.index for cell in field.cells] == [0, 1, 2]
    assert {cell.found_by for cell in field.cells} == {"white cell"}
    assert [cell.score for cell in field.cells] == [result.score for result in at_once[:3]]
    assert field.score == max(cell.score for cell in field.cells)
    assert field.l_d == field.top.l_d and field.top.score == field.score
    assert field.flagged == any(cell.flagged for cell in field.cells)
    assert whole.plan.rule == WHOLE_IMAGE and [cell.found_by for cell in whole.cells] == ["whole image"]
    assert whole.score == at_once[3].score
    expected = stitch_heat([result.heat for result in at_once[:3]], plans[0].tiles, image.shape[:2])
    np.testing.assert_array_equal(field.heat, expected)


def test_each_cell_is_judged_by_its_p_value_at_the_slides_bonferroni_level(tiny_bundle: Path,
                                                                            field_file: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    probe = Inferencer(bundle, field_scale=0.5).score([read_pixels(field_file)])[0]
    scores = sorted(cell.score for cell in probe.cells)
    between = (scores[0] + scores[1]) / 2
    # 100 calibration normals all scoring between the two lowest cells: the lowest cell is less
    # unusual than every one of them (p = 1), the others more unusual than all (p = 1/101).
    bundle.calibration = Calibration.of([between] * 100)

    result = Inferencer(bundle, field_scale=0.5).score([read_pixels(field_file)])[0]

    ordered = sorted(result.cells, key=lambda cell: cell.score)
    assert [cell.p_value for cell in ordered] == [1.0, 1 / 101, 1 / 101]
    assert [cell.flagged for cell in ordered] == [False, True, True]  # 1/101 <= 0.05 / 3
    assert result.flagged and result.threshold == between
    assert result.p_value == pytest.approx(3 / 101) and result.target_fpr == bundle.target_fpr
    assert result.decision.cell_level == pytest.approx(bundle.target_fpr / 3)
    assert result.calibration_n == 100 and result.decision.supported


def test_a_cell_scoring_exactly_the_threshold_is_not_flagged(tiny_bundle: Path, field_file: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    probe = Inferencer(bundle, field_scale=0.5).score([read_pixels(field_file)])[0]
    top = max(cell.score for cell in probe.cells)
    bundle.calibration = Calibration.of([top] * 100)  # the threshold is the top cell's own score

    result = Inferencer(bundle, field_scale=0.5).score([read_pixels(field_file)])[0]

    assert result.threshold == top and not result.flagged  # flagged only when the score exceeds it
    assert result.p_value == 1.0


def test_the_views_of_the_highest_scoring_cells_are_kept(scorer: Inferencer, field_file: Path) -> None:
    result = scorer.score([read_pixels(field_file)], keep_views=2)[0]

    best_two = sorted(result.cells, key=lambda cell: cell.score, reverse=True)[:2]
    assert set(result.views) == {cell.index for cell in best_two}
    view = result.views[result.top.index]
    assert view.model_input.shape == view.reconstruction.shape == (scorer.bundle.image_size,) * 2 + (3,)


def test_a_plan_given_with_its_rule_is_scored_as_given(scorer: Inferencer, field_file: Path) -> None:
    pixels = read_pixels(field_file)
    rule = TilingRule(crop_size=scorer.rule.crop_size, field_scale=0.5)
    grid = rule.grid(*pixels.shape[:2])
    plan = type(scorer.plan(pixels))(grid, f"grid of {len(grid)} tiles", GRID)

    result = scorer.score([pixels], [plan], rule=rule)[0]

    assert [cell.tile for cell in result.cells] == grid and result.rule == rule
    assert {cell.found_by for cell in result.cells} == {"grid"}


def test_a_large_fields_heat_map_is_kept_at_the_heat_map_files_size(scorer: Inferencer, monkeypatch) -> None:
    monkeypatch.setattr(inference, "HEAT_MAX_SIDE", 100)
    image = np.full((300, 450, 3), 230, dtype=np.uint8)

    result = scorer.score([image])[0]

    assert result.heat.shape == (67, 100)
    assert len(result.cells) == len(TilingRule(crop_size=scorer.rule.crop_size, field_scale=0.5).grid(300, 450))
