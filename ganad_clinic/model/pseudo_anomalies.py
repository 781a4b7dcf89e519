"""Pseudo-anomalies made from normal images, to make the choices of training when a lab has no
confirmed anomalies: the checkpoint, the score's form, λ and β are chosen by how well the score
tells normal validation images from these altered copies of them.

Three local changes of the kind an abnormal cell shows, none tied to one data set's quirks (in the
spirit of CutPaste and DRAEM):
- "paste": a patch of another normal image pasted over the object (CutPaste);
- "enlarge": a region magnified in place, as a lens would (an enlarged nucleus, a swollen stroke);
- "texture": a blob of smooth foreign texture and tone blended in (coarse chromatin, a stain fleck).
Changes fall in the middle half of the image, where crops and digits hold their object, and cover
a tenth to a third of its side. They choose; they are never targets the networks are trained on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("paste", "enlarge", "texture")
PER_IMAGE = 3  # pseudo-anomalies made of each normal validation image: one of each kind
SIDE_RANGE = (0.12, 0.32)  # the change's size as a fraction of the image side


def pseudo_anomalies(x: torch.Tensor, seed: int, per_image: int = PER_IMAGE) -> torch.Tensor:
    """`per_image` altered copies of each of the N x C x H x W images (in [-1, 1]), the kinds in
    turn, drawn with `seed`: (N * per_image) x C x H x W, image i's copies at i, N + i, 2N + i, ..."""
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(f"pseudo-anomalies need at least 2 images as N x C x H x W, got shape {tuple(x.shape)}")
    rng = torch.Generator().manual_seed(seed)
    images = x.detach().float().cpu()
    made = []
    for round_ in range(per_image):
        for index in range(len(images)):
            kind = KINDS[(round_ + index) % len(KINDS)]
            if kind == "paste":
                donor = (index + 1 + int(torch.randint(len(images) - 1, (1,), generator=rng))) % len(images)
                made.append(_paste(images[index], images[donor], rng))
            elif kind == "enlarge":
                made.append(_enlarge(images[index], rng))
            else:
                made.append(_texture(images[index], rng))
    return torch.stack(made).to(x.dtype)


def _uniform(rng: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=rng))


def _centre(rng: torch.Generator, size: int) -> tuple[float, float]:
    """A point in the middle half of a size x size image (row, column, in pixels)."""
    return _uniform(rng, size / 4, 3 * size / 4), _uniform(rng, size / 4, 3 * size / 4)


def _paste(image: torch.Tensor, donor: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A square patch cut anywhere in `donor`, flipped at random, pasted over the middle of `image`."""
    size = image.shape[-1]
    side = max(2, round(_uniform(rng, *SIDE_RANGE) * size))
    top, left = (int(torch.randint(size - side + 1, (1,), generator=rng)) for _ in range(2))
    patch = donor[:, top:top + side, left:left + side]
    if float(torch.rand((), generator=rng)) < 0.5:
        patch = patch.flip(-1)
    if float(torch.rand((), generator=rng)) < 0.5:
        patch = patch.flip(-2)
    row, col = _centre(rng, size)
    top, left = (min(size - side, max(0, round(v - side / 2))) for v in (row, col))
    altered = image.clone()
    altered[:, top:top + side, left:left + side] = patch
    return altered


def _enlarge(image: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A disc magnified 1.5-2.2 times about its centre, fading smoothly into the untouched rest."""
    size = image.shape[-1]
    radius = _uniform(rng, *SIDE_RANGE) * size
    factor = _uniform(rng, 1.5, 2.2)
    row, col = _centre(rng, size)
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    d_row, d_col = rows - row, cols - col
    weight = (1 - (d_row ** 2 + d_col ** 2) / radius ** 2).clamp_min(0) ** 2  # 1 at the centre, 0 from the rim
    pull = weight * (1 - 1 / factor)  # how far each pixel samples towards the centre
    source_row, source_col = rows - pull * d_row, cols - pull * d_col
    grid = torch.stack([(source_col + 0.5) / size * 2 - 1, (source_row + 0.5) / size * 2 - 1], -1)
    return F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


def _smooth_noise(rng: torch.Generator, channels: int, size: int, cells: int) -> torch.Tensor:
    """Noise of `cells` x `cells` random values per channel, bicubically upsampled to size x size."""
    coarse = torch.randn((1, channels, cells, cells), generator=rng)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]


def _texture(image: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A soft-edged blob in which the image takes on a foreign texture and a darker or lighter tone
    (the same in every channel), both as strong as the image's own variation."""
    size = image.shape[-1]
    radius = _uniform(rng, *SIDE_RANGE) * size
    row, col = _centre(rng, size)
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    # a blob whose rim wobbles, from a distance scaled by smooth noise
    wobble = 1 + 0.35 * _smooth_noise(rng, 1, size, 4)[0]
    distance = ((rows - row) ** 2 + (cols - col) ** 2).sqrt() / (radius * wobble.clamp_min(0.3))
    mask = (1 - distance).clamp(0, 1).mul(4).clamp(max=1)  # a soft edge, a quarter of the radius wide
    spread = float(image.std()) or 1.0
    texture = _smooth_noise(rng, 1, size, max(4, math.ceil(size / 6)))  # one field for every channel: no new hue
    tone = (1.0 if float(torch.rand((), generator=rng)) < 0.5 else -1.0) * _uniform(rng, 0.5, 1.0)
    altered = image + mask * spread * (tone + _uniform(rng, 0.7, 1.4) * texture)
    return altered.clamp(-1, 1)
