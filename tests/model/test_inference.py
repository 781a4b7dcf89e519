import numpy as np
import pytest
import torch

from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle
from ganad_clinic.model.inference import NonFiniteScoreError, Scorer, batch_size_for


def test_batch_size_shrinks_as_images_grow():
    assert batch_size_for(64) == 32
    assert batch_size_for(220) == 2
    assert batch_size_for(32) == 128
    assert batch_size_for(4096) == 1


def test_default_batch_follows_the_bundles_image_size(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert Scorer(bundle).batch_size == batch_size_for(bundle.image_size)
    assert Scorer(bundle, batch_size=3).batch_size == 3
    for bad in (0, -2):
        with pytest.raises(ValueError, match="batch_size"):
            Scorer(bundle, batch_size=bad)


def test_scores_do_not_depend_on_the_batching(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    images = [generate_cell(crop_rng(5, i % 2 == 1, i), i % 2 == 1, size=48).astype(np.float32) / 255
              for i in range(5)]
    whole = Scorer(bundle).score_images(images)
    one_by_one = Scorer(bundle, batch_size=1).score_images(images)
    pairs = Scorer(bundle, batch_size=2).score_images(images)
    assert len(whole) == len(one_by_one) == len(pairs) == 5
    threshold = bundle.operating_point().threshold()
    for a, b, c in zip(whole, one_by_one, pairs):
        np.testing.assert_allclose([a.score, a.l_d, a.l_r, a.l_l], [b.score, b.l_d, b.l_r, b.l_l], rtol=1e-4)
        np.testing.assert_allclose([a.score, a.l_d], [c.score, c.l_d], rtol=1e-4)
        np.testing.assert_allclose(a.heat, b.heat, atol=1e-5)
        assert (a.score > threshold) == (b.score > threshold) == (c.score > threshold)
    assert len({round(result.score, 6) for result in whole}) == 5


def test_an_image_the_model_gives_no_finite_score_is_never_called_normal(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    images = [generate_cell(crop_rng(6, False, i), False, size=48).astype(np.float32) / 255 for i in range(3)]
    assert all(np.isfinite(result.score) for result in Scorer(bundle).score_images(images))
    with torch.no_grad():
        next(bundle.model.parameters()).fill_(float("nan"))  # e.g. weights gone bad, or an overflow on a GPU
    with pytest.raises(NonFiniteScoreError, match=r"no finite score \(nan\) for image 1 of 3; it cannot be judged"):
        Scorer(bundle).score_images(images)
