"""Find the labelled images in a dataset folder and split them for training, validation and testing.

Two layouts are recognised from the folder's contents:

- "all-idb2": files named like `Im001_0.tif` directly in the folder; the digit after `_` is the
  label (1 = blast = anomalous). Subfolders are ignored, but any other image beside them is an
  error, so no image is silently left out.
- "folders": images in `normal/` and optionally `anomalous/` (direct children only); images at the
  top level are not part of this layout and are ignored.

Hidden files and files without an image extension (README.txt, Thumbs.db) are ignored everywhere.
Training is normal-only in every split, because this is anomaly detection.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ganad_clinic.errors import GanadError
from ganad_clinic.imaging.io import SUPPORTED_SUFFIXES

NORMAL = 0
ANOMALOUS = 1

Layout = Literal["all-idb2", "folders"]

_ALL_IDB2_NAME = re.compile(r"^im\d+_(\d+)\.(tif|tiff|png|jpg|jpeg|bmp)$", re.IGNORECASE)
_NORMAL_FOLDER = "normal"
_ANOMALOUS_FOLDER = "anomalous"


class DatasetError(GanadError, ValueError):
    """A dataset folder cannot be used as it is; the message names the folder and the problem."""


@dataclass(frozen=True)
class Sample:
    """One labelled image: label 0 is normal, 1 is anomalous."""

    path: Path
    label: int


@dataclass(frozen=True)
class Dataset:
    """The labelled images found under `root`, in a stable sorted order."""

    root: Path
    layout: Layout
    samples: tuple[Sample, ...]

    @property
    def normals(self) -> tuple[Sample, ...]:
        return tuple(sample for sample in self.samples if sample.label == NORMAL)

    @property
    def anomalies(self) -> tuple[Sample, ...]:
        return tuple(sample for sample in self.samples if sample.label == ANOMALOUS)


@dataclass(frozen=True)
class Split:
    """Disjoint train / validation / test samples; `train` holds normal samples only."""

    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...]


def load_dataset(root: str | Path) -> Dataset:
    """Detect the layout of `root` and list its labelled images."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"Dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"Dataset folder {root} is not a folder")
    top_images = _images_in(root)
    named = [path for path in top_images if _ALL_IDB2_NAME.match(path.name)]
    subfolders = {entry.name.lower(): entry for entry in root.iterdir() if entry.is_dir()}
    has_folders = _NORMAL_FOLDER in subfolders or _ANOMALOUS_FOLDER in subfolders
    if named and has_folders:
        raise DatasetError(
            f"Dataset folder {root} is ambiguous: it has both ALL-IDB2 named images (e.g. {named[0].name}) "
            f"and {_NORMAL_FOLDER}/ or {_ANOMALOUS_FOLDER}/ subfolders; keep one layout"
        )
    if named:
        return Dataset(root, "all-idb2", _in_order(_all_idb2_samples(root, top_images)))
    if has_folders:
        return Dataset(root, "folders", _in_order(_folder_samples(root, subfolders)))
    if top_images:
        raise DatasetError(
            f"Dataset folder {root} has images but no recognisable layout: expected ALL-IDB2 names "
            f"like Im001_0.tif (label after '_': 0 normal, 1 anomalous) or {_NORMAL_FOLDER}/ and "
            f"optional {_ANOMALOUS_FOLDER}/ subfolders"
        )
    raise DatasetError(
        f"Dataset folder {root} is empty: it contains no images and no {_NORMAL_FOLDER}/ subfolder"
    )


def paper_split(
    dataset: Dataset, seed: int = 0, n_train: int = 100, n_val: int = 20, val_anomalous: int = 15
) -> Split:
    """The paper's ALL protocol: `n_train` normals to train, `n_val` to validate, the rest to test.

    The paper only says "20 for validation"; the authors' notebooks use 5 normal + 15 blast, which
    on the 260-image set leaves 25 normal + 115 blast for testing. `val_anomalous=0` gives an
    all-normal validation set instead.
    """
    if not 0 <= val_anomalous <= n_val:
        raise ValueError(f"val_anomalous must be between 0 and n_val ({n_val}), got {val_anomalous}")
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    val_normal = n_val - val_anomalous
    normals, anomalies = _shuffled(dataset, seed)
    if len(normals) < n_train + val_normal:
        raise DatasetError(
            f"Dataset {dataset.root} has {len(normals)} normal images; the paper split needs "
            f"{n_train + val_normal} ({n_train} to train, {val_normal} to validate)"
        )
    if len(anomalies) < val_anomalous:
        raise DatasetError(
            f"Dataset {dataset.root} has {len(anomalies)} anomalous images; the paper split needs "
            f"{val_anomalous} to validate"
        )
    train = normals[:n_train]
    val = normals[n_train : n_train + val_normal] + anomalies[:val_anomalous]
    test = normals[n_train + val_normal :] + anomalies[val_anomalous:]
    if not test:
        raise DatasetError(f"Dataset {dataset.root} leaves no images to test after the paper split")
    return _sorted_split(train, val, test)


def split_dataset(
    dataset: Dataset, train: float = 0.6, val: float = 0.2, test: float = 0.2, seed: int = 0
) -> Split:
    """Seeded, stratified split: normals by the three fractions, anomalies to val and test only.

    Anomalies are divided in the ratio val:test, so both sets keep the same class balance as far
    as counts allow.
    """
    fractions = (train, val, test)
    if any(not 0.0 <= fraction <= 1.0 for fraction in fractions):
        raise ValueError(f"fractions must each lie in [0, 1], got train={train}, val={val}, test={test}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must add up to 1, got {sum(fractions)}")
    if train == 0.0 or val + test == 0.0:
        raise ValueError("train and at least one of val or test must be above zero")
    normals, anomalies = _shuffled(dataset, seed)
    n_train, n_val, _ = _allocate(len(normals), fractions)
    if n_train == 0:
        raise DatasetError(
            f"Dataset {dataset.root} has {len(normals)} normal images: "
            f"too few to train on {train:.0%} of them"
        )
    a_val, _ = _allocate(len(anomalies), (val / (val + test), test / (val + test)))
    return _sorted_split(
        normals[:n_train],
        normals[n_train : n_train + n_val] + anomalies[:a_val],
        normals[n_train + n_val :] + anomalies[a_val:],
    )


def _images_in(folder: Path) -> list[Path]:
    """Visible files with an image extension directly in `folder`, sorted by name."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in SUPPORTED_SUFFIXES
    )


def _all_idb2_samples(root: Path, images: list[Path]) -> tuple[Sample, ...]:
    samples = []
    for path in images:
        match = _ALL_IDB2_NAME.match(path.name)
        if match is None:
            raise DatasetError(
                f"Dataset folder {root} uses ALL-IDB2 names, but {path.name} does not follow them "
                f"(expected e.g. Im001_0.tif); rename or move it"
            )
        label = int(match.group(1))
        if label not in (NORMAL, ANOMALOUS):
            raise DatasetError(
                f"Dataset folder {root}: {path.name} has label {match.group(1)}; "
                f"the digit after '_' must be 0 (normal) or 1 (anomalous)"
            )
        samples.append(Sample(path, label))
    return tuple(samples)


def _folder_samples(root: Path, subfolders: dict[str, Path]) -> tuple[Sample, ...]:
    normal_folder = subfolders.get(_NORMAL_FOLDER)
    if normal_folder is None:
        raise DatasetError(
            f"Dataset folder {root} has {_ANOMALOUS_FOLDER}/ but no {_NORMAL_FOLDER}/ subfolder"
        )
    normals = _images_in(normal_folder)
    if not normals:
        raise DatasetError(f"Dataset folder {root}: {normal_folder.name}/ contains no images")
    anomaly_folder = subfolders.get(_ANOMALOUS_FOLDER)
    anomalies = _images_in(anomaly_folder) if anomaly_folder is not None else []
    return tuple(Sample(path, NORMAL) for path in normals) + tuple(
        Sample(path, ANOMALOUS) for path in anomalies
    )


def _shuffled(dataset: Dataset, seed: int) -> tuple[tuple[Sample, ...], tuple[Sample, ...]]:
    """Normals and anomalies, each in an order fixed by `seed` alone."""
    rng = random.Random(seed)
    normals = list(dataset.normals)
    anomalies = list(dataset.anomalies)
    rng.shuffle(normals)
    rng.shuffle(anomalies)
    return tuple(normals), tuple(anomalies)


def _allocate(total: int, fractions: tuple[float, ...]) -> list[int]:
    """Whole counts summing to `total`, as close to total x fraction as possible (largest remainder)."""
    exact = [total * fraction for fraction in fractions]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(fractions)), key=lambda index: exact[index] - counts[index], reverse=True)
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    return counts


def _in_order(samples: tuple[Sample, ...]) -> tuple[Sample, ...]:
    """Samples sorted by path, so every listing and split is reproducible across machines."""
    return tuple(sorted(samples, key=lambda sample: sample.path.as_posix()))


def _sorted_split(train: tuple[Sample, ...], val: tuple[Sample, ...], test: tuple[Sample, ...]) -> Split:
    return Split(train=_in_order(train), val=_in_order(val), test=_in_order(test))
