"""Scoring images with a loaded bundle: arrays in, one result per image out.

Kept apart from training (as anomalib keeps its inferencers) so that the screening service, the
command line and the app share one path from pixels to a flagged score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganad_clinic.imaging.transforms import eval_transform, to_display
from ganad_clinic.model.bundle import Bundle


PIXELS_PER_BATCH = 32 * 64 * 64


class NonFiniteScoreError(ValueError):
    """The model gave an image no finite score (NaN or infinity): such an image can be judged
    neither normal nor abnormal, so it is never reported as either."""


def batch_size_for(image_size: int) -> int:
    """Images per scoring batch: 32 at 64 px, fewer as images grow, so that a batch's activations
    stay near the caches. At 3x220x220 a batch of 32 scored a third slower per image than batches
    of 1 or 2, which are as fast as each other (training/bench.py)."""
    return max(1, PIXELS_PER_BATCH // (image_size * image_size))


@dataclass
class ImageScore:
    score: float
    l_d: float
    l_r: float
    l_l: float
    flagged: bool
    heat: np.ndarray  # H x W in [0, 1): residual / (residual + reference), model resolution
    reconstruction: np.ndarray  # H x W x 3 in [0, 1], G(E(x))
    model_input: np.ndarray  # H x W x 3 in [0, 1], what the model saw


class Scorer:
    """Applies a bundle's eval transform and scores images in batches (by default of
    `batch_size_for` the bundle's image size)."""

    def __init__(self, bundle: Bundle, batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.bundle = bundle
        self.batch_size = batch_size_for(bundle.image_size) if batch_size is None else batch_size
        self.transform = eval_transform(bundle.image_size, bundle.channels)

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.transform(image)).float()

    def score_images(self, images: Sequence[np.ndarray]) -> list[ImageScore]:
        """Score HxWx3 float arrays in [0, 1] (as `read_image` returns them)."""
        return self.score_tensors(torch.stack([self.prepare(image) for image in images])) if images else []

    def score_tensors(self, x: torch.Tensor) -> list[ImageScore]:
        results: list[ImageScore] = []
        threshold = self.bundle.threshold.value
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            batch = self.bundle.score(chunk)
            bad = (~torch.isfinite(batch.score)).nonzero().flatten().tolist()
            if bad:
                raise NonFiniteScoreError(f"the model gave no finite score ({float(batch.score[bad[0]])}) for image "
                                          f"{start + bad[0] + 1} of {len(x)}; it cannot be judged")
            heat = batch.heat(self.bundle.score_config).numpy()
            for i in range(len(chunk)):
                score = float(batch.score[i])
                results.append(ImageScore(
                    score=score, l_d=float(batch.l_d[i]), l_r=float(batch.l_r[i]), l_l=float(batch.l_l[i]),
                    flagged=score >= threshold, heat=heat[i],
                    reconstruction=to_display(batch.reconstruction[i]), model_input=to_display(chunk[i]),
                ))
        return results
