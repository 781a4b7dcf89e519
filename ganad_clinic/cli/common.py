"""Small pieces shared by the command modules."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np
import torch

from ganad_clinic.imaging.datasets import Sample
from ganad_clinic.imaging.io import read_image


def add_device_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when a GPU is present, else the CPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: the number of cores)")


def add_field_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--field-scale", type=float, default=1.0,
                        help="pixel scale of large field images relative to the training crops; fields are "
                             "tiled into crop-sized tiles at this scale (default 1; 0.5 for `ganad synth` fields)")


def apply_threads(args: argparse.Namespace) -> None:
    """Use one torch thread per core unless told otherwise (more threads than cores thrash)."""
    torch.set_num_threads(args.threads or os.cpu_count() or 1)


def load_images(samples: Sequence[Sample]) -> list[np.ndarray]:
    return [read_image(sample.path) for sample in samples]
