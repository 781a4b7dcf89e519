"""Every dataset and protocol becomes a leak-free split, and the official file formats read upright."""

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from training import protocols


def _indexed_pool(per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """1x1 images whose value encodes their own index, so every split image can be traced back."""
    labels = np.repeat(np.arange(10), per_class)
    images = (np.arange(len(labels), dtype=np.float32) / len(labels))[:, None, None, None].repeat(3, axis=3)
    return images, labels


def _indices(images: list[np.ndarray], n: int) -> np.ndarray:
    return np.array([int(np.rint(image[0, 0, 0] * n)) for image in images], dtype=int)


def _split_indices(per_class: int, protocol: str, cls: int, seed: int):
    images, labels = _indexed_pool(per_class)
    split = protocols.one_class_split(images, labels, protocol, cls, seed, 1, 3, "fake")
    n = len(labels)
    return split, labels, _indices(split.train, n), _indices(split.val, n), _indices(split.test, n)


@pytest.mark.parametrize(
    ("protocol", "per_class", "counts"),
    [
        # 20 normals: 12 / 4 / 4; 180 anomalies: 4 to validate, 176 to test.
        ("9v1", 20, (12, 4, 4, 4, 176)),
        # 1,080 normals: 648 train, 216 capped to 200 to validate, 232 to test; 120 anomalies: 20 % = 24 to validate.
        ("1v9", 120, (648, 200, 24, 232, 96)),
    ],
)
def test_one_class_split_follows_the_rule(protocol: str, per_class: int, counts: tuple[int, ...]) -> None:
    split, labels, train, val, test = _split_indices(per_class, protocol, 3, seed=0)
    anomalous = labels != 3 if protocol == "9v1" else labels == 3
    n_train, val_normal, val_anomalous, test_normal, test_anomalous = counts
    assert len(train) == n_train and not anomalous[train].any()
    assert (np.bincount(split.val_labels, minlength=2) == (val_normal, val_anomalous)).all()
    assert (np.bincount(split.test_labels, minlength=2) == (test_normal, test_anomalous)).all()
    assert np.array_equal(split.val_labels, anomalous[val]) and np.array_equal(split.test_labels, anomalous[test])
    assert split.val_labels.dtype == np.int64 and split.test_labels.dtype == np.int64
    everything = np.concatenate([train, val, test])
    assert len(np.unique(everything)) == len(everything) == len(labels)


def test_one_class_split_is_deterministic_per_seed() -> None:
    _, _, train, val, test = _split_indices(20, "9v1", 5, seed=1)
    _, _, train_again, val_again, test_again = _split_indices(20, "9v1", 5, seed=1)
    _, _, train_other, _, _ = _split_indices(20, "9v1", 5, seed=2)
    assert all(np.array_equal(a, b) for a, b in ((train, train_again), (val, val_again), (test, test_again)))
    assert not np.array_equal(train, train_other)


@pytest.mark.parametrize(("protocol", "cls"), [("5v5", 1), ("9v1", 10), ("1v9", -1)])
def test_one_class_split_refuses_unknown_protocol_or_class(protocol: str, cls: int) -> None:
    images, labels = _indexed_pool(20)
    with pytest.raises(ValueError):
        protocols.one_class_split(images, labels, protocol, cls, 0, 1, 3, "fake")


def test_mnist_split_gives_gray_images_of_the_digit(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels, labels = protocols.mnist_data()
    monkeypatch.setattr(protocols, "mnist_data", lambda: (pixels, labels))  # parsing it takes seconds: once is enough
    split = protocols.mnist_split("9v1", 3, seed=0)
    threes = {row.astype(np.uint8).tobytes() for row in pixels[labels == 3]}
    assert (split.name, split.image_size, split.channels) == ("mnist-9v1-3", 28, 1)
    assert (len(split.train), len(split.val), len(split.test)) == (300, 200, 4500)
    assert split.val_labels.sum() == 100 and split.test_labels.sum() == 4400
    image = split.train[0]
    assert image.shape == (28, 28, 3) and image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    assert all(np.array_equal(im[..., 0], im[..., 2]) for im in split.train)
    assert all(np.rint(im[..., 0] * 255).astype(np.uint8).tobytes() in threes for im in split.train)


def _cifar_rows(labels: list[int]) -> np.ndarray:
    """Channel-major rows: R plane 200 at (row 2, col 5), G plane 100 at (row 7, col 1), B plane = 10 x label."""
    rows = np.zeros((len(labels), 3, 32, 32), np.uint8)
    rows[:, 0, 2, 5] = 200
    rows[:, 1, 7, 1] = 100
    rows[:, 2] = 10 * np.array(labels, np.uint8)[:, None, None]
    return rows.reshape(len(labels), 3072)


def _write_cifar(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = list(range(10))
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": _cifar_rows(labels),
                 b"filenames": [f"{i}.png".encode() for i in labels]}
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file)


def _check_pattern(split, protocol: str, cls: int) -> None:
    """Every image shows the written pattern upright, and its blue level matches its label."""
    parts = ((split.train, np.zeros(len(split.train))), (split.val, split.val_labels), (split.test, split.test_labels))
    for images, labels in parts:
        for image, label in zip(images, labels):
            assert image.shape == (32, 32, 3) and image.dtype == np.float32
            assert image[2, 5, 0] == pytest.approx(200 / 255) and image[5, 2, 0] == 0.0
            assert image[7, 1, 1] == pytest.approx(100 / 255) and image[1, 7, 1] == 0.0
            digit = int(np.rint(image[0, 0, 2] * 255)) // 10
            assert label == ((digit != cls) if protocol == "9v1" else (digit == cls))


@pytest.mark.parametrize("subfolder", [False, True])
def test_cifar10_reads_the_official_python_files(tmp_path: Path, subfolder: bool) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py" if subfolder else tmp_path)
    split = protocols.cifar10_split(tmp_path, "9v1", 4, seed=0)
    # 6 images of class 4: 3 train, 1 + 1 validation, 2 + 53 test.
    assert (split.name, split.image_size, split.channels) == ("cifar10-9v1-4", 32, 3)
    assert (len(split.train), len(split.val), len(split.test)) == (3, 2, 55)
    _check_pattern(split, "9v1", 4)


def test_svhn_reads_the_official_mat_files(tmp_path: Path) -> None:
    for name, per_digit in (("train_32x32.mat", 4), ("test_32x32.mat", 2)):
        digits = np.tile(np.arange(10), per_digit)
        x = np.zeros((32, 32, 3, len(digits)), np.uint8)
        x[2, 5, 0, :] = 200
        x[7, 1, 1, :] = 100
        x[:, :, 2, :] = 10 * digits.astype(np.uint8)
        scipy.io.savemat(tmp_path / name, {"X": x, "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
    split = protocols.svhn_split(tmp_path, "1v9", 0, seed=0)
    # 54 normals: 32 train, 10 validation, 12 test; 6 zeros: 1 to validate, 5 to test.
    assert (split.name, split.image_size, split.channels) == ("svhn-1v9-0", 32, 3)
    assert (len(split.train), int(split.val_labels.sum()), int(split.test_labels.sum())) == (32, 1, 5)
    _check_pattern(split, "1v9", 0)


@pytest.mark.parametrize("reader", [protocols.cifar10_split, protocols.svhn_split])
def test_missing_files_name_the_folder(tmp_path: Path, reader) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(protocols.ProtocolDataError, match=re.escape(str(folder))):
        reader(folder, "9v1", 0, 0)


@pytest.mark.parametrize("make", [False, True])
def test_allidb2_without_images_names_the_folder(tmp_path: Path, make: bool) -> None:
    folder = tmp_path / "ALL_IDB2"
    if make:
        folder.mkdir()
    with pytest.raises(protocols.ProtocolDataError, match=re.escape(str(folder))):
        protocols.allidb2_split(folder, seed=0)


def test_synthetic_split_is_the_paper_split_and_all_idb2_reads_the_same_folder(tmp_path: Path) -> None:
    split = protocols.synthetic_split(seed=0, folder=tmp_path)
    assert (split.name, split.image_size, split.channels) == ("synthetic-seed0", 64, 3)
    assert len(split.train) == 100 and len(split.test) == 140
    assert (np.bincount(split.val_labels) == (5, 15)).all() and (np.bincount(split.test_labels) == (25, 115)).all()
    assert split.train[0].shape == (257, 257, 3) and split.train[0].dtype == np.float32
    real = protocols.allidb2_split(tmp_path, seed=0)
    assert real.name == "all-idb2-seed0"
    assert all(np.array_equal(a, b) for a, b in zip(real.test, split.test))
    assert np.array_equal(real.test_labels, split.test_labels)


@pytest.mark.parametrize(
    ("dataset", "protocol", "cls", "data_dir", "message"),
    [
        ("imagenet", None, None, None, "unknown dataset"),
        ("synthetic", "9v1", None, None, "no protocol"),
        ("all-idb2", None, 3, Path("x"), "no protocol"),
        ("mnist", None, 3, None, "needs a protocol"),
        ("cifar10", "9v1", None, Path("x"), "needs a protocol"),
        ("svhn", "1v9", 2, None, "needs data_dir"),
        ("all-idb2", None, None, None, "needs data_dir"),
        ("mnist", "9v1", 3, Path("x"), "no data folder"),
        ("cifar10", "5v5", 3, Path("nowhere"), "unknown protocol"),
        ("svhn", "9v1", 10, Path("nowhere"), "class must be"),
    ],
)
def test_load_split_refuses_wrong_combinations(dataset, protocol, cls, data_dir, message) -> None:
    with pytest.raises(ValueError, match=message):
        protocols.load_split(dataset, protocol, cls, 0, data_dir)


def test_protocol_classes() -> None:
    assert protocols.protocol_classes("synthetic") == protocols.protocol_classes("all-idb2") == [None]
    assert all(protocols.protocol_classes(name) == list(range(10)) for name in ("mnist", "cifar10", "svhn"))
    with pytest.raises(ValueError, match="unknown dataset"):
        protocols.protocol_classes("imagenet")


def test_the_synthetic_normal_protocol_has_no_anomaly_before_the_test(monkeypatch) -> None:
    monkeypatch.setattr(protocols, "SYNTHETIC_NORMAL_COUNTS", {"train": 6, "val": 3, "calibration": 2, "test": 4})
    monkeypatch.setattr(protocols, "SYNTHETIC_NORMAL_BLASTS", 5)
    split = protocols.load_split("synthetic", "normal", 8401, 0, None)
    assert split.name == "synthetic-normal-data8401-seed0"
    assert (len(split.train), len(split.val), len(split.calibration_normals)) == (6, 3, 2)
    assert split.val_labels.tolist() == [0, 0, 0] and split.test_labels.tolist() == [0] * 4 + [1] * 5
    seen = [image.tobytes() for image in split.train + split.val + split.calibration_normals + split.test]
    assert len(set(seen)) == len(seen)  # every crop in one part only
    other = protocols.load_split("synthetic", "normal", 8401, 1, None)
    assert sorted(i.tobytes() for i in other.test[4:]) == sorted(i.tobytes() for i in split.test[4:])  # same blasts
    assert [i.tobytes() for i in other.train] != [i.tobytes() for i in split.train]  # normals shared out anew
    with pytest.raises(ValueError, match="needs a data seed"):
        protocols.load_split("synthetic", "normal", None, 0, None)


def test_the_normal_protocol_of_a_class_set_is_9v1_without_its_validation_anomalies() -> None:
    images, labels = _indexed_pool(20)
    full = protocols.one_class_split(images, labels, "9v1", 3, 0, 1, 3, "fake")
    split = protocols.normal_only(full)
    assert split.name == "fake-normal" and split.val_labels.tolist() == [0] * 4
    assert all(np.array_equal(a, b) for a, b in zip(split.val, full.val_normals))
    assert split.train is full.train and split.test is full.test and split.calibration_normals == split.val_normals
