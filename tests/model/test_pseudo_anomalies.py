import pytest
import torch

from ganad_clinic.model.pseudo_anomalies import KINDS, PER_IMAGE, pseudo_anomalies
from ganad_clinic.model.trainer import prepare_eval_batch

from .conftest import cells, tiny_config


@pytest.fixture(scope="module")
def normals() -> torch.Tensor:
    return prepare_eval_batch(cells(6, False, start=40), tiny_config())


def test_each_normal_gets_one_copy_of_each_kind_changed_locally_in_its_middle(normals: torch.Tensor) -> None:
    made = pseudo_anomalies(normals, seed=3)
    assert made.shape == (len(normals) * PER_IMAGE, *normals.shape[1:]) and made.dtype == normals.dtype
    assert PER_IMAGE == len(KINDS) and made.min() >= -1 and made.max() <= 1
    size = normals.shape[-1]
    for index in range(len(made)):
        original = normals[index % len(normals)]
        changed = (made[index] - original).abs().amax(0) > 0.02
        share = changed.float().mean().item()
        assert 0.003 < share < 0.45, (index, share)  # local: neither untouched nor the whole image
        rows, cols = torch.nonzero(changed, as_tuple=True)
        for along in (rows, cols):
            assert abs(along.float().mean().item() - size / 2) < size / 3


def test_the_same_seed_makes_the_same_pseudo_anomalies_and_another_seed_others(normals: torch.Tensor) -> None:
    assert torch.equal(pseudo_anomalies(normals, seed=5), pseudo_anomalies(normals, seed=5))
    assert not torch.equal(pseudo_anomalies(normals, seed=5), pseudo_anomalies(normals, seed=6))


def test_fewer_than_two_images_are_refused(normals: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        pseudo_anomalies(normals[:1], seed=0)
