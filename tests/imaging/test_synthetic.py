from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.cli import synth
from ganad_clinic.imaging.synthetic import (
    CROP_SIZE,
    FieldCell,
    crop_rng,
    draw_cell,
    draw_field,
    field_rng,
    generate_cell,
    generate_field,
    nucleus_fraction,
    read_xyc,
    write_dataset,
    write_xyc,
)


@pytest.fixture(scope="module")
def crops_by_class() -> dict[bool, list[np.ndarray]]:
    """40 normal and 40 blast crops of seed 0, shared by the statistical tests (about 2 s)."""
    return {blast: [generate_cell(crop_rng(0, blast, i), blast) for i in range(40)] for blast in (False, True)}


def separation_auc(normal: list[float], blast: list[float]) -> float:
    """max(AUC, 1 - AUC): how well one number per image separates the classes, either direction."""
    n, b = np.asarray(normal)[None, :], np.asarray(blast)[:, None]
    auc = float(np.mean(b > n) + 0.5 * np.mean(b == n))
    return max(auc, 1.0 - auc)


def file_bytes(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("blast", [False, True])
@pytest.mark.parametrize("size", [257, 64])
def test_generate_cell_returns_rgb_uint8_of_requested_size(blast: bool, size: int) -> None:
    image = generate_cell(np.random.default_rng(1), blast=blast, size=size)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10  # a picture, not a flat fill


def test_generate_cell_rejects_a_tiny_size() -> None:
    with pytest.raises(ValueError, match="crop size"):
        generate_cell(np.random.default_rng(0), blast=False, size=8)


def test_write_dataset_names_crops_like_all_idb2_with_blasts_first(tmp_path) -> None:
    written = write_dataset(tmp_path / "set", n_normal=2, n_blast=3, seed=0, n_fields=2)

    names = [p.name for p in written.crop_paths]
    assert names == ["Im001_1.tif", "Im002_1.tif", "Im003_1.tif", "Im004_0.tif", "Im005_0.tif"]
    assert sorted(p.name for p in (tmp_path / "set").glob("*.tif")) == names
    for path in written.crop_paths:
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((257, 257), "RGB")
    assert (written.n_normal, written.n_blast, written.n_fields) == (2, 3, 2)

    field_names = [p.name for p in written.field_paths]
    assert field_names[0] == "Im001_0.jpg"  # even-numbered fields hold no blasts
    assert field_names[1].startswith("Im002_") and field_names[1].endswith(".jpg")
    assert written.n_blast_fields == sum(name.endswith("_1.jpg") for name in field_names)
    for path in written.field_paths:
        assert path.parent == tmp_path / "set" / "fields"
        with Image.open(path) as image:
            assert (image.format, image.size) == ("JPEG", (1296, 972))


def test_same_seed_writes_identical_bytes_and_another_seed_differs(tmp_path) -> None:
    first = write_dataset(tmp_path / "a", n_normal=2, n_blast=2, seed=7, n_fields=1)
    write_dataset(tmp_path / "b", n_normal=2, n_blast=2, seed=7, n_fields=1)
    write_dataset(tmp_path / "c", n_normal=2, n_blast=2, seed=8, n_fields=0)

    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    assert len(file_bytes(tmp_path / "a")) == 6  # 4 crops, a field and its .xyc
    for path in first.crop_paths:
        assert path.read_bytes() != (tmp_path / "c" / path.name).read_bytes()


def test_an_image_does_not_depend_on_how_many_are_asked_for(tmp_path) -> None:
    write_dataset(tmp_path / "small", n_normal=1, n_blast=1, seed=3)
    write_dataset(tmp_path / "large", n_normal=3, n_blast=4, seed=3)

    assert (tmp_path / "small" / "Im001_1.tif").read_bytes() == (tmp_path / "large" / "Im001_1.tif").read_bytes()
    # The first normal crop is numbered after the blasts but has the same pixels.
    assert (tmp_path / "small" / "Im002_0.tif").read_bytes() == (tmp_path / "large" / "Im005_0.tif").read_bytes()


@pytest.mark.parametrize("blast", [False, True])
@pytest.mark.parametrize("size", [CROP_SIZE, 48])
def test_draw_cell_draws_the_same_crop_as_generate_cell_and_says_where_its_cell_is(blast: bool, size: int) -> None:
    for index in range(3):
        image, cell = draw_cell(crop_rng(2, blast, index), blast, size)
        again, after = crop_rng(2, blast, index), crop_rng(2, blast, index)
        np.testing.assert_array_equal(image, generate_cell(again, blast, size))
        draw_cell(after, blast, size)
        assert again.random() == after.random()  # the same draws consumed, so nothing after them shifts

        scale = size / CROP_SIZE
        centre = (size - 1) / 2
        assert abs(cell.row - centre) <= 4 * scale and abs(cell.col - centre) <= 4 * scale
        assert (30 * scale <= cell.radius <= 47 * scale) if not blast else (40 * scale <= cell.radius <= 64 * scale)
        assert cell.blast is blast


def test_each_field_has_its_blast_centres_in_an_xyc_file_beside_it(tmp_path) -> None:
    written = write_dataset(tmp_path / "set", n_normal=0, n_blast=0, seed=4, n_fields=4)

    assert [p.name for p in written.xyc_paths] == [p.with_suffix(".xyc").name for p in written.field_paths]
    assert sorted((tmp_path / "set" / "fields").glob("*.xyc")) == sorted(written.xyc_paths)
    assert any(cells and not any(c.blast for c in cells) for cells in written.field_cells)  # normal fields occur
    for field, xyc, cells in zip(written.field_paths, written.xyc_paths, written.field_cells):
        blasts = [(round(cell.col), round(cell.row)) for cell in cells if cell.blast]
        assert read_xyc(xyc) == blasts
        assert field.stem.endswith("_1") == bool(blasts)
        if not blasts:
            assert xyc.read_bytes() == b""
        for x, y in blasts:
            assert 0 <= x < 1296 and 0 <= y < 972


def test_xyc_files_are_read_as_written_and_as_all_idb1_writes_them(tmp_path) -> None:
    cells = [FieldCell(10.4, 20.6, 30.0, True), FieldCell(5.0, 6.0, 30.0, False), FieldCell(99.5, 0.2, 30.0, True)]
    assert read_xyc(write_xyc(tmp_path / "a.xyc", cells)) == [(21, 10), (0, 100)]
    (tmp_path / "b.xyc").write_text("1136\t812\r\n  \r\n 40 7 \n")
    assert read_xyc(tmp_path / "b.xyc") == [(1136, 812), (40, 7)]


@pytest.mark.parametrize("line", ["12", "1 2 3", "1.5 2", "-1 2", "x y"])
def test_a_bad_xyc_line_is_refused_naming_the_file_and_line(tmp_path, line: str) -> None:
    path = tmp_path / "Im001_1.xyc"
    path.write_text(f"3 4\n{line}\n")
    with pytest.raises(ValueError, match=r"Im001_1\.xyc, line 2: .*" + repr(line).replace(".", r"\.")):
        read_xyc(path)


def test_write_dataset_creates_missing_parents_and_reuses_an_existing_folder(tmp_path) -> None:
    out = tmp_path / "new" / "nested" / "set"
    write_dataset(out, n_normal=1, n_blast=0)
    (out / "Im001_0.tif").write_bytes(b"stale")
    written = write_dataset(out, n_normal=1, n_blast=0)
    with Image.open(written.crop_paths[0]) as image:
        assert image.size == (257, 257)


@pytest.mark.parametrize("counts", [{"n_normal": -1}, {"n_blast": -2}, {"n_fields": -1}, {"seed": -1}])
def test_write_dataset_rejects_negative_counts(tmp_path, counts) -> None:
    with pytest.raises(ValueError, match=next(iter(counts))):
        write_dataset(tmp_path / "set", **counts)
    assert not (tmp_path / "set").exists()


def test_blasts_have_a_larger_dark_nucleus_area(crops_by_class) -> None:
    normal = np.mean([nucleus_fraction(image) for image in crops_by_class[False]])
    blast = np.mean([nucleus_fraction(image) for image in crops_by_class[True]])
    assert normal > 0.01  # the normal nucleus is visible too
    assert blast > 1.5 * normal


def test_mean_colour_and_brightness_do_not_separate_the_classes(crops_by_class) -> None:
    statistics = {
        "mean R": lambda image: image[..., 0].mean(),
        "mean G": lambda image: image[..., 1].mean(),
        "mean B": lambda image: image[..., 2].mean(),
        "mean brightness": lambda image: image.mean(),
    }
    for name, statistic in statistics.items():
        auc = separation_auc(
            [statistic(image) for image in crops_by_class[False]],
            [statistic(image) for image in crops_by_class[True]],
        )
        assert auc < 0.8, f"{name} separates normal from blast with AUC {auc:.3f}"


def test_generate_field_has_requested_size_and_labels_blasts() -> None:
    normal_field, normal_label = generate_field(field_rng(0, 0), width=400, height=300, n_cells=3, blast_fraction=0.0)
    blast_field, blast_label = generate_field(field_rng(0, 1), width=400, height=300, n_cells=3, blast_fraction=1.0)
    assert normal_field.shape == blast_field.shape == (300, 400, 3)
    assert normal_field.dtype == np.uint8
    assert (normal_label, blast_label) == (False, True)
    assert nucleus_fraction(blast_field) > nucleus_fraction(normal_field)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"n_cells": -1}, "n_cells"), ({"blast_fraction": 1.5}, "blast_fraction"), ({"width": 10}, "at least")],
)
def test_generate_field_rejects_bad_arguments(arguments, message) -> None:
    with pytest.raises(ValueError, match=message):
        generate_field(np.random.default_rng(0), **arguments)


def synth_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganad")
    synth.register(parser.add_subparsers(dest="command"))
    return parser


def test_synth_command_writes_the_set_and_prints_a_summary(tmp_path, capsys) -> None:
    args = synth_parser().parse_args(["synth", "--out", str(tmp_path / "demo"), "--normal", "2", "--blast", "1"])
    assert args.func(args) == 0

    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["Im001_1.tif", "Im002_0.tif", "Im003_0.tif"]
    output = capsys.readouterr().out
    assert "2 normal + 1 blast" in output
    assert str(tmp_path / "demo") in output


def test_synth_command_rejects_a_negative_count(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        synth_parser().parse_args(["synth", "--out", str(tmp_path), "--normal", "-3"])
    assert "must not be negative" in capsys.readouterr().err


def test_synth_command_writes_fields_with_their_ground_truth(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    args = synth_parser().parse_args(["synth", "--out", str(out), "--normal", "0", "--blast", "0", "--field", "2"])
    assert args.func(args) == 0

    stems = {suffix: sorted(p.stem for p in (out / "fields").glob(f"*{suffix}")) for suffix in (".jpg", ".xyc")}
    assert stems[".jpg"] == stems[".xyc"] and len(stems[".jpg"]) == 2
    assert "fields/*.xyc" in capsys.readouterr().out

@pytest.mark.parametrize("blast", [False, True])
def test_no_shift_draws_the_very_crop_and_field_of_the_default(blast: bool) -> None:
    np.testing.assert_array_equal(generate_cell(crop_rng(3, blast, 1), blast),
                                  generate_cell(crop_rng(3, blast, 1), blast, stain_shift=0.0))
    default, cells = draw_field(field_rng(3, 1), width=320, height=240)
    unshifted, same_cells = draw_field(field_rng(3, 1), width=320, height=240, stain_shift=0.0)
    np.testing.assert_array_equal(default, unshifted)
    assert cells == same_cells


def test_the_dataset_writer_without_a_shift_writes_the_same_bytes(tmp_path) -> None:
    write_dataset(tmp_path / "default", n_normal=2, n_blast=1, seed=5, n_fields=1)
    write_dataset(tmp_path / "zero", n_normal=2, n_blast=1, seed=5, n_fields=1, stain_shift=0.0)
    assert file_bytes(tmp_path / "default") == file_bytes(tmp_path / "zero")


def test_a_shift_stains_the_same_cells_darker_or_lighter() -> None:
    plain, cell = draw_cell(crop_rng(1, False, 0), False, 64)
    darker, darker_cell = draw_cell(crop_rng(1, False, 0), False, 64, stain_shift=0.5)
    lighter, _ = draw_cell(crop_rng(1, False, 0), False, 64, stain_shift=-0.4)
    assert darker_cell == cell  # the same draws: the same cell, where it was
    assert lighter.mean() > plain.mean() + 5 > darker.mean() + 10
    after, shifted_after = crop_rng(1, False, 0), crop_rng(1, False, 0)
    draw_cell(after, False, 64)
    draw_cell(shifted_after, False, 64, stain_shift=0.5)
    assert after.random() == shifted_after.random()


def test_the_dataset_writer_shifts_every_image(tmp_path) -> None:
    plain = write_dataset(tmp_path / "plain", n_normal=1, n_blast=1, seed=2, n_fields=1)
    write_dataset(tmp_path / "shifted", n_normal=1, n_blast=1, seed=2, n_fields=1, stain_shift=0.3)
    for path in plain.crop_paths + plain.field_paths:
        assert path.read_bytes() != (tmp_path / "shifted" / path.relative_to(tmp_path / "plain")).read_bytes()


@pytest.mark.parametrize("shift", [-1.0, -2.5])
def test_a_shift_that_removes_the_stain_is_refused(tmp_path, shift: float) -> None:
    with pytest.raises(ValueError, match="stain_shift"):
        generate_cell(crop_rng(0, False, 0), False, 32, stain_shift=shift)
    with pytest.raises(ValueError, match="stain_shift"):
        write_dataset(tmp_path / "none", n_normal=1, n_blast=0, stain_shift=shift)
