"""What every method's training shares: AdamW with the run's settings and the one optimiser
update (zero_grad, backward, step) with CUDA mixed precision.

On CUDA the forward passes run under `torch.autocast`: bf16 where the GPU has it (no loss scaling
needed), otherwise fp16 with a `GradScaler`. On the CPU both are off and an update is exactly
zero_grad, backward and step.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch

from ganad_clinic.model.config import TrainConfig


def adamw(parameters: Iterable[torch.nn.Parameter], lr: float, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameters, lr=lr, betas=config.betas, weight_decay=config.weight_decay)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training on `device`: bf16 or fp16 on CUDA, None (full precision) elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class OptimiserUpdate:
    """The forward context and the update of every training step (implements `config.Updater`)."""

    def __init__(self, device: torch.device, dtype: torch.dtype | None = None) -> None:
        self.device_type = device.type
        self.dtype = amp_dtype(device) if dtype is None else dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    @property
    def mixed_precision(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> AbstractContextManager[Any]:
        return torch.autocast(self.device_type, dtype=self.dtype or torch.bfloat16, enabled=self.mixed_precision)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)  # skipped when an fp16 gradient overflowed
        self.scaler.update()
