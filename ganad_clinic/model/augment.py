"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GANs trained on ~100 images.

The same random transform family is applied to real and fake images before the critic, in both the
critic and the generator steps, so the critic cannot memorise the few real images and the
generator still gets gradients through the augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: tuple[str, ...] = POLICIES,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    for name in policy:
        x = _AUGMENTS[name](x, generator)
    return x


def _rand(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, generator=generator).to(x.device, x.dtype)


def _color(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    x = x + (_rand(x, generator, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, generator, 1, 1, 1) + 0.5) + mean


def _translation(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (_rand(x, generator, 1, 1) * (2 * shift_h + 1)).long() - shift_h
    dx = (_rand(x, generator, 1, 1) * (2 * shift_w + 1)).long() - shift_w
    grid_n, grid_y, grid_x = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device),
        torch.arange(w, device=x.device), indexing="ij")
    grid_y = torch.clamp(grid_y + dy + 1, 0, h + 1)
    grid_x = torch.clamp(grid_x + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[grid_n, grid_y, grid_x].permute(0, 3, 1, 2).contiguous()


def _cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (_rand(x, generator, 1, 1) * (h + (1 - cut_h % 2))).long()
    cx = (_rand(x, generator, 1, 1) * (w + (1 - cut_w % 2))).long()
    grid_n, grid_y, grid_x = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(cut_h, device=x.device),
        torch.arange(cut_w, device=x.device), indexing="ij")
    grid_y = torch.clamp(grid_y + cy - cut_h // 2, 0, h - 1)
    grid_x = torch.clamp(grid_x + cx - cut_w // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[grid_n, grid_y, grid_x] = 0
    return x * mask.unsqueeze(1)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
