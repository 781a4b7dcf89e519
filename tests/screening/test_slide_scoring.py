from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.imaging.io import read_image, read_pixels
from ganad_clinic.imaging.synthetic import draw_field, field_rng
from ganad_clinic.imaging.tiling import TilingRule, stitch_heat
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import Scorer
from ganad_clinic.screening import slide_scoring
from ganad_clinic.screening.slide_scoring import SlideScorer, tiling_rule_for


@pytest.fixture(scope="module")
def scorer(tiny_bundle: Path) -> SlideScorer:
    bundle = load_bundle(tiny_bundle)
    return SlideScorer(bundle, tiling_rule_for(bundle, field_scale=0.5))


@pytest.fixture
def field_file(tmp_path: Path) -> Path:
    image, _ = draw_field(field_rng(5, 1), width=400, height=300, n_cells=3)
    path = tmp_path / "field.png"
    Image.fromarray(image).save(path)
    return path


def test_integer_pixels_score_as_the_float_image_does(scorer: SlideScorer, field_file: Path) -> None:
    floats, integers = read_image(field_file), read_pixels(field_file)

    by_float = scorer.score([floats])[0]
    by_integer = scorer.score([integers])[0]

    assert scorer.plan(integers) == scorer.plan(floats)
    assert (by_integer.score, by_integer.l_d, by_integer.l_r, by_integer.l_l, by_integer.flagged) == (
        by_float.score, by_float.l_d, by_float.l_r, by_float.l_l, by_float.flagged)
    np.testing.assert_array_equal(by_integer.heat, by_float.heat)


def test_scores_and_heat_are_those_of_all_tiles_scored_at_once(scorer: SlideScorer, field_file: Path) -> None:
    # Tiles now go through the model a batch at a time; the result must not change.
    image = read_image(field_file)
    crop = np.asarray(Image.fromarray(np.uint8(image * 255)).resize((50, 50))).astype(np.float32) / 255
    plans = [scorer.plan(image), scorer.plan(crop)]
    tiles = [tile.cut(picture) for picture, plan in zip((image, crop), plans) for tile in plan.tiles]
    at_once = Scorer(scorer.bundle).score_images(tiles)

    results = scorer.score([image, crop], plans)

    field_tiles = len(plans[0].tiles)
    assert results[0].score == max(result.score for result in at_once[:field_tiles])
    assert results[1].score == at_once[field_tiles].score
    expected = stitch_heat([result.heat for result in at_once[:field_tiles]], plans[0].tiles, image.shape[:2])
    np.testing.assert_array_equal(results[0].heat, expected)


def test_a_large_fields_heat_map_is_kept_at_the_heat_map_files_size(scorer: SlideScorer, monkeypatch) -> None:
    monkeypatch.setattr(slide_scoring, "HEAT_MAX_SIDE", 100)
    image = np.full((300, 450, 3), 230, dtype=np.uint8)

    result = scorer.score([image])[0]

    assert result.heat.shape == (67, 100)
    assert result.tiles == len(TilingRule(crop_size=scorer.rule.crop_size, field_scale=0.5).grid(300, 450))
