from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ganad_clinic.imaging.datasets import (
    Dataset,
    DatasetError,
    Sample,
    Split,
    load_dataset,
    paper_split,
    split_dataset,
)


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), 128, dtype=np.uint8)).save(path)
    return path


def all_idb2_folder(root: Path, normal: int, blast: int) -> Path:
    for index in range(1, normal + blast + 1):
        write_image(root / f"Im{index:03d}_{int(index > normal)}.tif")
    return root


def synthetic_dataset(normal: int, anomalous: int) -> Dataset:
    """A dataset listing without files, for split arithmetic that never opens an image."""
    samples = [Sample(Path(f"/data/n{index:04d}.png"), 0) for index in range(normal)]
    samples += [Sample(Path(f"/data/a{index:04d}.png"), 1) for index in range(anomalous)]
    return Dataset(Path("/data"), "folders", tuple(samples))


def assert_sound(split: Split, dataset: Dataset) -> None:
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(dataset.samples)
    assert all(sample.label == 0 for sample in split.train)


def labels(samples: tuple[Sample, ...]) -> tuple[int, int]:
    normal = sum(sample.label == 0 for sample in samples)
    return normal, len(samples) - normal


@pytest.fixture(scope="module")
def all_idb2_260(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset(all_idb2_folder(tmp_path_factory.mktemp("all_idb2"), normal=130, blast=130))


# --- layouts -----------------------------------------------------------------------------------


def test_all_idb2_names_give_labels_and_ignore_the_rest(tmp_path: Path) -> None:
    write_image(tmp_path / "Im002_1.TIF")
    write_image(tmp_path / "Im001_0.tif")
    write_image(tmp_path / "im003_0.png")
    write_image(tmp_path / "Im004_1.JPEG")
    write_image(tmp_path / "fields" / "field.png")
    write_image(tmp_path / "._Im005_1.tif")
    (tmp_path / "README.txt").write_text("ALL-IDB2 subset")
    (tmp_path / "Thumbs.db").write_bytes(b"\x00")

    dataset = load_dataset(tmp_path)

    assert dataset.root == tmp_path
    assert dataset.layout == "all-idb2"
    assert [(sample.path.name, sample.label) for sample in dataset.samples] == [
        ("Im001_0.tif", 0),
        ("Im002_1.TIF", 1),
        ("Im004_1.JPEG", 1),
        ("im003_0.png", 0),
    ]
    assert [sample.path.name for sample in dataset.normals] == ["Im001_0.tif", "im003_0.png"]
    assert [sample.path.name for sample in dataset.anomalies] == ["Im002_1.TIF", "Im004_1.JPEG"]


def test_folder_layout(tmp_path: Path) -> None:
    write_image(tmp_path / "normal" / "b.png")
    write_image(tmp_path / "normal" / "a.jpg")
    write_image(tmp_path / "normal" / ".hidden.png")
    (tmp_path / "normal" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "anomalous" / "c.bmp")
    write_image(tmp_path / "preview.png")

    dataset = load_dataset(str(tmp_path))

    assert dataset.layout == "folders"
    assert dataset.samples == (
        Sample(tmp_path / "anomalous" / "c.bmp", 1),
        Sample(tmp_path / "normal" / "a.jpg", 0),
        Sample(tmp_path / "normal" / "b.png", 0),
    )
    assert len(dataset.normals) == 2 and len(dataset.anomalies) == 1


def test_folder_layout_without_anomalies(tmp_path: Path) -> None:
    write_image(tmp_path / "normal" / "a.png")
    dataset = load_dataset(tmp_path)
    assert dataset.normals == (Sample(tmp_path / "normal" / "a.png", 0),)
    assert dataset.anomalies == ()


def test_sample_is_frozen() -> None:
    sample = Sample(Path("a.png"), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.label = 1  # type: ignore[misc]


# --- layout errors -----------------------------------------------------------------------------


def dataset_error(root: Path) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(root)
    assert str(root) in str(caught.value)
    return str(caught.value)


def test_missing_folder(tmp_path: Path) -> None:
    assert "does not exist" in dataset_error(tmp_path / "absent")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    assert "not a folder" in dataset_error(write_image(tmp_path / "Im001_0.tif"))


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("nothing here")
    assert "empty" in dataset_error(tmp_path)


def test_images_without_a_recognisable_layout(tmp_path: Path) -> None:
    write_image(tmp_path / "cell_a.png")
    message = dataset_error(tmp_path)
    assert "no recognisable layout" in message
    assert "Im001_0.tif" in message and "normal/" in message


def test_label_other_than_zero_or_one_names_the_file(tmp_path: Path) -> None:
    write_image(tmp_path / "Im001_0.tif")
    write_image(tmp_path / "Im002_2.tif")
    message = dataset_error(tmp_path)
    assert "Im002_2.tif" in message and "label 2" in message


def test_stray_image_beside_all_idb2_names_is_named(tmp_path: Path) -> None:
    write_image(tmp_path / "Im001_0.tif")
    write_image(tmp_path / "extra.png")
    assert "extra.png" in dataset_error(tmp_path)


def test_anomalous_without_normal(tmp_path: Path) -> None:
    write_image(tmp_path / "anomalous" / "a.png")
    assert "no normal/" in dataset_error(tmp_path)


def test_empty_normal_folder(tmp_path: Path) -> None:
    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "Thumbs.db").write_bytes(b"\x00")
    write_image(tmp_path / "anomalous" / "a.png")
    assert "normal/ contains no images" in dataset_error(tmp_path)


def test_both_layouts_at_once_is_ambiguous(tmp_path: Path) -> None:
    write_image(tmp_path / "Im001_0.tif")
    write_image(tmp_path / "normal" / "a.png")
    assert "ambiguous" in dataset_error(tmp_path)


# --- the paper's split -------------------------------------------------------------------------


def test_paper_split_counts(all_idb2_260: Dataset) -> None:
    split = paper_split(all_idb2_260)

    assert labels(split.train) == (100, 0)
    assert labels(split.val) == (5, 15)
    assert labels(split.test) == (25, 115)
    assert_sound(split, all_idb2_260)


def test_paper_split_with_all_normal_validation(all_idb2_260: Dataset) -> None:
    split = paper_split(all_idb2_260, val_anomalous=0)

    assert labels(split.train) == (100, 0)
    assert labels(split.val) == (20, 0)
    assert labels(split.test) == (10, 130)
    assert_sound(split, all_idb2_260)


def test_paper_split_is_seeded(all_idb2_260: Dataset) -> None:
    assert paper_split(all_idb2_260, seed=3) == paper_split(all_idb2_260, seed=3)
    assert paper_split(all_idb2_260, seed=3).train != paper_split(all_idb2_260, seed=4).train


def test_paper_split_needs_enough_normals(tmp_path: Path) -> None:
    dataset = load_dataset(all_idb2_folder(tmp_path, normal=50, blast=50))
    with pytest.raises(DatasetError, match=r"50 normal images.*needs 105") as caught:
        paper_split(dataset)
    assert str(tmp_path) in str(caught.value)


def test_paper_split_needs_enough_anomalies() -> None:
    with pytest.raises(DatasetError, match=r"10 anomalous images.*needs 15"):
        paper_split(synthetic_dataset(130, 10))


def test_paper_split_needs_something_to_test() -> None:
    with pytest.raises(DatasetError, match="no images to test"):
        paper_split(synthetic_dataset(105, 15))


def test_paper_split_rejects_more_anomalies_than_validation_images() -> None:
    with pytest.raises(ValueError, match="val_anomalous"):
        paper_split(synthetic_dataset(130, 130), val_anomalous=21)


# --- the generic split -------------------------------------------------------------------------


def test_split_dataset_is_stratified_and_normal_only_for_training() -> None:
    dataset = synthetic_dataset(10, 6)
    split = split_dataset(dataset)

    assert labels(split.train) == (6, 0)
    assert labels(split.val) == (2, 3)
    assert labels(split.test) == (2, 3)
    assert_sound(split, dataset)


def test_split_dataset_is_seeded() -> None:
    dataset = synthetic_dataset(40, 20)
    assert split_dataset(dataset, seed=1) == split_dataset(dataset, seed=1)
    assert split_dataset(dataset, seed=1).train != split_dataset(dataset, seed=2).train


def test_split_dataset_on_real_folders(tmp_path: Path) -> None:
    for index in range(5):
        write_image(tmp_path / "normal" / f"n{index}.png")
    for index in range(2):
        write_image(tmp_path / "anomalous" / f"a{index}.png")
    dataset = load_dataset(tmp_path)

    split = split_dataset(dataset, train=0.6, val=0.0, test=0.4)

    assert labels(split.train) == (3, 0)
    assert split.val == ()
    assert labels(split.test) == (2, 2)


@pytest.mark.parametrize(
    "fractions",
    [(0.5, 0.2, 0.2), (1.2, -0.1, -0.1), (0.0, 0.5, 0.5), (1.0, 0.0, 0.0)],
)
def test_split_dataset_validates_fractions(fractions: tuple[float, float, float]) -> None:
    train, val, test = fractions
    with pytest.raises(ValueError):
        split_dataset(synthetic_dataset(10, 5), train=train, val=val, test=test)


def test_split_dataset_needs_normals_to_train(tmp_path: Path) -> None:
    write_image(tmp_path / "Im001_1.tif")
    write_image(tmp_path / "Im002_1.tif")
    with pytest.raises(DatasetError, match="0 normal images"):
        split_dataset(load_dataset(tmp_path))


@settings(max_examples=60, deadline=None)
@given(
    normal=st.integers(min_value=1, max_value=60),
    anomalous=st.integers(min_value=0, max_value=60),
    train=st.integers(min_value=1, max_value=9),
    val=st.integers(min_value=0, max_value=9),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_split_dataset_invariants(normal: int, anomalous: int, train: int, val: int, seed: int) -> None:
    train_fraction = train / 10
    val_fraction = min(val / 10, 1 - train_fraction)
    test_fraction = max(0.0, 1 - train_fraction - val_fraction)
    dataset = synthetic_dataset(normal, anomalous)
    try:
        split = split_dataset(dataset, train_fraction, val_fraction, test_fraction, seed=seed)
    except DatasetError:
        assert normal * train_fraction < 1
        return
    assert_sound(split, dataset)
    assert abs(len(split.train) - normal * train_fraction) <= 1
    if anomalous and val_fraction == 0:
        assert labels(split.val)[1] == 0
