import numpy as np
import pytest

from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.methods import check_config
from ganad_clinic.model.trainer import TrainConfig, train


def tiny_config(**overrides) -> TrainConfig:
    values = dict(spec="all", image_size=32, width=0.125, latent=16, batch_size=4, steps=4, eval_every=2, seed=0)
    values.update(overrides)
    return check_config(TrainConfig(**values))


def cells(n: int, blast: bool, start: int = 0) -> list[np.ndarray]:
    return [generate_cell(crop_rng(0, blast, start + i), blast, size=48).astype(np.float32) / 255 for i in range(n)]


@pytest.fixture(scope="session")
def tiny_data() -> dict:
    return {"train": cells(8, False), "val": cells(3, False, start=8) + cells(3, True), "labels": [0, 0, 0, 1, 1, 1],
            "calibration": cells(12, False, start=11)}


@pytest.fixture(scope="session")
def tiny_result(tiny_data):
    return train(tiny_config(), tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
