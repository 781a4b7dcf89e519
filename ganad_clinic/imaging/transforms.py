"""MONAI pipelines from `read_image` arrays (HxWx3, [0, 1]) to model tensors (CxHxW, [-1, 1]).

Resizing is to a square of `resize_size` on both sides, not on the short side: cell crops are
square (ALL-IDB2 tiles are 257x257), and for a non-square image a short-side resize followed by a
centre crop would cut off part of the picture, so anomalies near an edge could go unseen. The
paper's ratio of resize to crop (Resize(256) then crop 220) is the default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import (
    CenterSpatialCrop,
    Compose,
    EnsureChannelFirst,
    EnsureType,
    Lambda,
    RandFlip,
    RandRotate90,
    RandSpatialCrop,
    Resize,
    ScaleIntensityRange,
)

from ganad_clinic.imaging.io import pixels_to_float

_LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights, the same Pillow uses for its "L" conversion."""

_ROTATION_PROBABILITY = 0.75
"""With max_k=3, applying a rotation 3 times in 4 makes 0, 90, 180 and 270 degrees equally likely."""


def default_resize_size(image_size: int) -> int:
    """The paper's Resize(256) -> crop 220 ratio, applied to `image_size`."""
    return round(image_size * 256 / 220)


class EvalTransform:
    """The deterministic pipeline for validation, scoring and heat maps: resize, centre crop,
    rescale; for one image (`__call__`) or many at once (`batch`).

    MONAI's resize (its Gaussian anti-aliasing and bilinear interpolation), the crop and the rescale
    each work channel by channel, so `batch` passes the channels of all images of one size through
    them as one image of B x C channels: every image gets exactly the values it gets alone, for a
    quarter of the time (a 257-px crop: 10.7 ms alone, 2.4 ms in a batch of 32, on 2 cores).
    Grayscale images are transformed one at a time: torch filters a lone channel with another kernel
    than several, which differs in the last bit on some CPUs (seen on an AMD EPYC with AVX-512), so
    in a batch a grayscale image would not get exactly its own values.
    """

    def __init__(self, image_size: int, channels: int = 3, resize_size: int | None = None) -> None:
        resize_size = _checked_sizes(image_size, channels, resize_size)
        self.image_size = image_size
        self.channels = channels
        self._geometry = Compose([
            Resize((resize_size, resize_size), mode="bilinear", anti_aliasing=True),
            CenterSpatialCrop((image_size, image_size)),
            *_finish(),
        ])

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """One HxWx3 image (floats in [0, 1], or `read_pixels` integers) as a CxSxS tensor."""
        return self.batch([image])[0]

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """HxWx3 images (floats in [0, 1], or `read_pixels` integers; any sizes) as one
        N x C x S x S tensor in their order; those of one size and type are transformed together."""
        if not images:
            return torch.empty(0, self.channels, self.image_size, self.image_size)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            groups[(np.shape(image), np.asarray(image).dtype.str, index if self.channels == 1 else None)].append(index)
        out = torch.empty(len(images), self.channels, self.image_size, self.image_size)
        for indices in groups.values():
            stacked = np.stack([np.asarray(images[index]) for index in indices])
            if stacked.ndim != 4 or stacked.shape[-1] != 3:
                raise ValueError(f"expected HxWx3 images, got shape {stacked.shape[1:]}")
            x = torch.from_numpy(pixels_to_float(stacked)).permute(0, 3, 1, 2)
            if self.channels == 1:
                x = to_luminance(x)
            count, channels, height, width = x.shape
            done = torch.as_tensor(self._geometry(x.reshape(count * channels, height, width)))
            out[indices] = done.reshape(count, channels, self.image_size, self.image_size)
        return out


def eval_transform(image_size: int, channels: int = 3, resize_size: int | None = None) -> EvalTransform:
    """The deterministic pipeline for validation, scoring and heat maps (`EvalTransform`)."""
    return EvalTransform(image_size, channels, resize_size)


TRAIN_GEOMETRIES = ("cells", "shift", "none")
"""What the training pipeline may do to an image's geometry: "cells" flips, turns by right angles and
crops at random; "shift" only crops at random (a small translation); "none" crops at the centre."""


def train_transform(image_size: int, channels: int = 3, resize_size: int | None = None,
                    geometry: str = "cells") -> Compose:
    """The paper's augmentation (resize, horizontal and vertical flips, random crop) plus 90° turns.

    Cells have no preferred orientation, so right-angle rotations add variety without inventing
    unrealistic images. Digits and other upright images do have one (a flipped 7, a turned 6 is
    another class), so they take `geometry="shift"` or `"none"`. Call `set_random_state(seed)` on the
    result for reproducible draws.
    """
    resize_size = _checked_sizes(image_size, channels, resize_size)
    if geometry not in TRAIN_GEOMETRIES:
        raise ValueError(f"unknown training geometry {geometry!r}; choose one of {TRAIN_GEOMETRIES}")
    orientation = [
        RandFlip(prob=0.5, spatial_axis=1),
        RandFlip(prob=0.5, spatial_axis=0),
        RandRotate90(prob=_ROTATION_PROBABILITY, max_k=3, spatial_axes=(0, 1)),
    ] if geometry == "cells" else []
    crop = (CenterSpatialCrop((image_size, image_size)) if geometry == "none"
            else RandSpatialCrop((image_size, image_size), random_size=False))
    return Compose(
        [
            *_prepare(channels),
            Resize((resize_size, resize_size), mode="bilinear", anti_aliasing=True),
            *orientation,
            crop,
            *_finish(),
        ]
    )


def to_display(tensor: torch.Tensor) -> np.ndarray:
    """Undo the pipelines' scaling: a CxHxW tensor in [-1, 1] becomes an HxWx3 float32 array in [0, 1]."""
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"expected a 1- or 3-channel CxHxW tensor, got shape {tuple(tensor.shape)}")
    pixels = tensor.detach().cpu().float().clamp(-1.0, 1.0).add(1.0).div(2.0)
    pixels = pixels.expand(3, -1, -1).permute(1, 2, 0)
    return np.ascontiguousarray(pixels.numpy(), dtype=np.float32)


def to_luminance(image: torch.Tensor) -> torch.Tensor:
    """Collapse a 3xHxW image to 1xHxW luminance (or N x 3 x H x W images to N x 1 x H x W)."""
    weights = torch.tensor(_LUMINANCE_WEIGHTS, dtype=image.dtype, device=image.device)
    return (image * weights.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def _prepare(channels: int) -> list:
    steps: list = [EnsureChannelFirst(channel_dim=-1)]
    if channels == 1:
        steps.append(Lambda(to_luminance))
    return steps


def _finish() -> list:
    return [
        ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=-1.0, b_max=1.0, clip=True),
        EnsureType(data_type="tensor", dtype=torch.float32, track_meta=False),
    ]


def _checked_sizes(image_size: int, channels: int, resize_size: int | None) -> int:
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    resize_size = default_resize_size(image_size) if resize_size is None else resize_size
    if resize_size < image_size:
        raise ValueError(f"resize_size ({resize_size}) must be at least image_size ({image_size})")
    return resize_size
