"""Pixel baselines a user would pick instead of a GAN: PCA reconstruction error and the distance to
the nearest training image. Both see the same eval-transformed pixels as the model."""

from __future__ import annotations

import numpy as np
import torch


def flatten_images(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """N images (any shape per image) as an N x pixels float64 array, the input of every pixel baseline."""
    array = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return array.reshape(len(array), -1).astype(np.float64)


class PCABaseline:
    """Squared error of the reconstruction from the principal components that explain
    `explained_variance` of the training pixels' variance."""

    def __init__(self, explained_variance: float = 0.9) -> None:
        if not 0.0 < explained_variance <= 1.0:
            raise ValueError(f"explained variance must lie in (0, 1], not {explained_variance}")
        self.explained_variance = explained_variance

    def fit(self, x: torch.Tensor | np.ndarray) -> PCABaseline:
        data = flatten_images(x)
        self.mean = data.mean(0)
        _, singular, vt = np.linalg.svd(data - self.mean, full_matrices=False)
        variance = singular**2 / max((singular**2).sum(), 1e-12)
        k = int(np.searchsorted(np.cumsum(variance), self.explained_variance) + 1)
        self.components = vt[:min(k, len(vt))]
        return self

    def score(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        centred = flatten_images(x) - self.mean
        residual = centred - centred @ self.components.T @ self.components
        return (residual**2).sum(1)


class NearestNeighbourBaseline:
    """Euclidean distance to the closest training image."""

    def fit(self, x: torch.Tensor | np.ndarray) -> NearestNeighbourBaseline:
        self.train = flatten_images(x)
        self.train_sq = (self.train**2).sum(1)
        return self

    def score(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        data = flatten_images(x)
        squared = (data**2).sum(1)[:, None] - 2 * data @ self.train.T + self.train_sq[None, :]
        return np.sqrt(np.maximum(squared.min(1), 0.0))
