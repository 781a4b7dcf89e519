"""`ganad train`, `evaluate` and `score` end to end on a tiny synthetic set."""

import json
from pathlib import Path

import pytest
from PIL import Image

from ganad_clinic.cli import main
from ganad_clinic.imaging.synthetic import write_dataset

TINY = ["--image-size", "32", "--width", "0.125", "--latent", "16", "--batch-size", "4", "--steps", "3",
        "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = write_dataset(root / "data", n_normal=10, n_blast=4, seed=3).out_dir
    bundle = root / "bundle"
    assert main(["train", "--data", str(data), "--out", str(bundle), *TINY]) == 0
    return data, bundle


def test_train_writes_a_bundle_that_validated_on_held_out_images(trained, capsys) -> None:
    _, bundle = trained
    metadata = json.loads((bundle / "configs/metadata.json").read_text())
    training = metadata["ganad"]["training"]
    assert training["n_train"] == 8 and training["n_val_normal"] == 2 and training["n_val_anomalous"] == 4
    assert training["config"]["steps"] == 3
    assert "Youden" in metadata["ganad"]["threshold"]["rule"]


def test_train_geometry_option_reaches_the_config() -> None:
    from ganad_clinic.cli import build_parser
    from ganad_clinic.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--image-size", "28", "--channels", "1"])
    assert config_from_args(args, 100).geometry == "none"  # small gray images are taken to be upright
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    assert config_from_args(args, 100).geometry == "cells"  # 64 px cell crops: flips and turns
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--geometry", "shift"])
    assert config_from_args(args, 100).geometry == "shift"


def test_evaluate_json_is_exactly_one_object(trained, capsys) -> None:
    data, bundle = trained
    capsys.readouterr()
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(data), "--json", "--threads", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert set(result) == {"auc", "sensitivity", "specificity", "f1", "accuracy", "threshold", "n_normal",
                           "n_anomalous", "n_tiled", "slides"}
    assert (result["n_normal"], result["n_anomalous"], result["n_tiled"]) == (10, 4, 0)
    assert [slide["label"] for slide in result["slides"]] == [1] * 4 + [0] * 10
    assert all(slide["flagged"] == (slide["score"] >= result["threshold"]) for slide in result["slides"])


def test_score_reports_bad_files_and_writes_heatmaps(trained, tmp_path, capsys) -> None:
    data, bundle = trained
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    good = sorted(data.glob("*.tif"))[:2]
    capsys.readouterr()
    code = main(["score", "--bundle", str(bundle), "--json", "--heatmap-dir", str(tmp_path / "maps"),
                 "--threads", "1", str(good[0]), str(bad), str(good[1])])
    assert code == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [row["file"] for row in rows] == [str(good[0]), str(bad), str(good[1])]
    assert "not an image" in rows[1]["error"] or "cannot identify" in rows[1]["error"].lower()
    for row, path in ((rows[0], good[0]), (rows[2], good[1])):
        assert {"score", "l_d", "l_r", "l_l", "flagged", "threshold", "tiling", "cells"} <= set(row)
        assert Image.open(row["heatmap"]).size == Image.open(path).size  # the slide's own pixels
        [cell] = row["cells"]  # a crop is one cell: the whole image
        assert (cell["index"], cell["x"], cell["y"], cell["found_by"]) == (0, 0, 0, "whole image")
        assert (cell["width"], cell["height"]) == Image.open(path).size and cell["score"] == row["score"]
        assert row["tiling"]["rule"] == "whole image"


def test_bad_bundle_and_data_give_clear_errors(tmp_path, capsys) -> None:
    assert main(["evaluate", "--bundle", str(tmp_path / "none"), "--data", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_version_and_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "ganad" in capsys.readouterr().out
    for command in ("synth", "train", "evaluate", "score", "db"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "usage: ganad" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["anogan", "efficient-gan", "alad"])
def test_train_method_writes_a_baseline_bundle_that_scores(trained, tmp_path, method, capsys) -> None:
    data, _ = trained
    bundle = tmp_path / method
    assert main(["train", "--data", str(data), "--out", str(bundle), "--method", method, "--search-steps", "5",
                 *TINY]) == 0
    metadata = json.loads((bundle / "configs/metadata.json").read_text())
    assert metadata["ganad"]["architecture"]["method"] == method
    assert metadata["ganad"]["training"]["config"]["gan"] == "sgan"
    assert metadata["ganad"]["score"]["beta"] == 0.0
    capsys.readouterr()
    image = sorted(data.glob("*.tif"))[0]
    assert main(["score", "--bundle", str(bundle), "--json", "--threads", "1", str(image)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["l_l"] == 0.0 and row["score"] > 0


def test_train_refuses_the_paper_recipe_for_a_baseline(trained, tmp_path, capsys) -> None:
    data, _ = trained
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "b"), "--method", "alad",
                 "--recipe", "paper", *TINY]) == 2
    assert "paper's own model" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
