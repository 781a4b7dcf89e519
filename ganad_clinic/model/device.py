"""Where the model runs: the CPU by default, a CUDA GPU when there is one (or when asked)."""

from __future__ import annotations

import os

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """"auto": CUDA when available, else the CPU; "cuda" without a GPU is refused clearly."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {DEVICES}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    return torch.device(name)


def configure_determinism() -> None:
    """Make torch's kernels deterministic for the whole process: deterministic algorithms (warning
    where an op has none), cuDNN without autotuning, cuBLAS with a fixed workspace. For entry points
    only (the command line, the app, benchmark scripts), once, before any CUDA work: library code
    never changes process-wide settings. Training is reproducible per seed on the CPU without it (it
    draws every random number from its own generators); on CUDA it needs this as well."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
