import math

import pytest
import torch

from ganad_clinic.model.losses import autoencoder_loss, critic_loss, generator_loss


def _neg_log_sigmoid(v: float) -> float:
    return -math.log(1 / (1 + math.exp(-v)))


def test_rsgan_matches_equation_2_by_hand() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    expected_d = (_neg_log_sigmoid(2.0 - 0.5) + _neg_log_sigmoid(-1.0 - 1.0)) / 2
    expected_g = (_neg_log_sigmoid(0.5 - 2.0) + _neg_log_sigmoid(1.0 + 1.0)) / 2
    assert critic_loss(real, fake, "rsgan").item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_loss(real, fake, "rsgan").item() == pytest.approx(expected_g, rel=1e-6)


def test_sgan_by_hand() -> None:
    real, fake = torch.tensor([1.0]), torch.tensor([-2.0])
    expected_d = _neg_log_sigmoid(1.0) + _neg_log_sigmoid(2.0)
    assert critic_loss(real, fake, "sgan").item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_loss(real, fake, "sgan").item() == pytest.approx(_neg_log_sigmoid(-2.0), rel=1e-6)


def test_rsgan_is_relativistic() -> None:
    real, fake = torch.tensor([3.0]), torch.tensor([1.0])
    assert critic_loss(real, fake).item() == pytest.approx(critic_loss(real + 5, fake + 5).item())


def test_autoencoder_loss_is_mean_squared_error() -> None:
    x = torch.zeros(1, 1, 2, 2)
    reconstruction = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])
    assert autoencoder_loss(x, reconstruction).item() == pytest.approx(0.5)


def test_unknown_gan_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown GAN loss"):
        critic_loss(torch.zeros(1), torch.zeros(1), "wgan")
