"""`ganad train`, `evaluate` and `score` end to end on a tiny synthetic set."""

import json
from pathlib import Path

import pytest
from PIL import Image

from ganad_clinic.cli import main
from ganad_clinic.imaging.synthetic import write_dataset
from ganad_clinic.model.bundle import load_bundle, threshold_rule
from ganad_clinic.model.conformal import percent

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
    # 10 normals: 2 validate; of the other 8, half calibrate (as many as leave training its share)
    assert (training["n_train"], training["n_val_normal"], training["n_val_anomalous"]) == (4, 2, 4)
    assert training["n_calibration"] == metadata["ganad"]["calibration"]["n"] == 4
    assert training["config"]["steps"] == 3
    assert training["choices"]["figure"] == "auc" and training["choices"]["checkpoint_step"] == training["best_step"]
    assert metadata["ganad"]["threshold"]["rule"].startswith("split-conformal: the 4th smallest of 4 calibration")
    parts = training["content_sha256"]
    assert [len(parts[part]) for part in ("train", "validation", "calibration")] == [4, 6, 4]
    assert not set(parts["calibration"]) & (set(parts["train"]) | set(parts["validation"]))


@pytest.mark.parametrize("rate, warned", [(None, True), ("0.25", False)])
def test_train_records_its_target_rate_and_warns_when_the_calibration_cannot_keep_it(trained, tmp_path, capsys,
                                                                                     rate, warned) -> None:
    data, _ = trained
    bundle = tmp_path / "bundle"
    capsys.readouterr()
    option = [] if rate is None else ["--target-fpr", rate]
    assert main(["train", "--data", str(data), "--out", str(bundle), *option, *TINY]) == 0
    out, err = capsys.readouterr()
    calibration = json.loads((bundle / "configs/metadata.json").read_text())["ganad"]["calibration"]
    target = 0.05 if rate is None else 0.25
    assert calibration["target_fpr"] == target and calibration["rule"] == "split-conformal"
    assert load_bundle(bundle).target_fpr == target
    assert f"calibrating on 4 normal for a false-positive rate of {percent(target)}" in out
    assert f"target false-positive rate {percent(target)}, one-cell threshold" in out
    shortfall = ("4 calibration normals cannot keep a false-positive rate of 5 % for a single cell (that needs at "
                 "least 19); the lowest rate they support there is 20 %")
    if warned:
        assert f"ganad train: warning: {shortfall}; give more normal images to keep the target" in err
        assert calibration["shortfall"] == shortfall
        assert shortfall not in out  # said once, as the warning
    else:
        assert "warning" not in err and calibration["shortfall"] is None  # 1/5 <= 25 %


@pytest.mark.parametrize("rate", ["0", "1", "-0.1", "five"])
def test_train_refuses_a_target_rate_that_is_not_a_rate(tmp_path, capsys, rate) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "b"), "--target-fpr", rate])
    assert exit_info.value.code == 2
    assert "--target-fpr" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


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
    assert set(result) == {"auc", "sensitivity", "specificity", "f1", "accuracy", "target_fpr", "n_normal",
                           "n_anomalous", "n_tiled", "slides"}
    assert (result["n_normal"], result["n_anomalous"], result["n_tiled"]) == (10, 4, 0)
    assert result["target_fpr"] == 0.05
    assert [slide["label"] for slide in result["slides"]] == [1] * 4 + [0] * 10
    threshold = load_bundle(bundle).operating_point().threshold()  # crops are one cell each
    assert all(slide["flagged"] == (slide["score"] > threshold) for slide in result["slides"])
    normals = [slide for slide in result["slides"] if slide["label"] == 0]
    assert result["specificity"] == sum(not slide["flagged"] for slide in normals) / len(normals)


def test_evaluate_says_its_operating_point(trained, capsys) -> None:
    data, bundle = trained
    capsys.readouterr()
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(data), "--threads", "1"]) == 0
    first, *rows = capsys.readouterr().out.strip().splitlines()
    point = load_bundle(bundle).operating_point()
    assert first == (f"{data}: 10 normal, 4 anomalous (0 tiled as fields); target false-positive rate 5 %, "
                     f"one-cell threshold {point.threshold():.4g} ({threshold_rule(point)})")
    assert [row.split()[0] for row in rows] == ["auc", "sensitivity", "specificity", "f1", "accuracy"]


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
    calibration = load_bundle(bundle).calibration
    for row, path in ((rows[0], good[0]), (rows[2], good[1])):
        assert {"score", "l_d", "l_r", "l_l", "flagged", "threshold", "tiling", "cells"} <= set(row)
        assert (row["target_fpr"], row["calibration_n"]) == (0.05, calibration.n) and calibration.n == 4
        assert row["p_value"] == calibration.p_value(row["score"]) == row["cells"][0]["p_value"]
        assert row["kept_fpr"] == 1 / 5  # 4 calibration normals cannot resolve 5 %
        assert row["flagged"] == (row["score"] > row["threshold"]) == (row["p_value"] <= 1 / 5)
        assert Image.open(row["heatmap"]).size == Image.open(path).size  # the slide's own pixels
        [cell] = row["cells"]  # a crop is one cell: the whole image
        assert (cell["index"], cell["x"], cell["y"], cell["found_by"]) == (0, 0, 0, "whole image")
        assert (cell["width"], cell["height"]) == Image.open(path).size and cell["score"] == row["score"]
        assert row["tiling"]["rule"] == "whole image"


def test_score_judges_at_the_target_rate_asked_for(trained, capsys) -> None:
    data, bundle = trained
    files = [str(path) for path in sorted(data.glob("*.tif"))]
    point = load_bundle(bundle).operating_point()
    flags = {}
    for rate in ("0.01", "0.9"):
        capsys.readouterr()
        assert main(["score", "--bundle", str(bundle), "--json", "--threads", "1", "--target-fpr", rate, *files]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
        threshold = point.calibration.threshold(float(rate))
        assert all(row["target_fpr"] == float(rate) and row["threshold"] == threshold for row in rows)
        assert all(row["flagged"] == (row["score"] > threshold) for row in rows)
        flags[rate] = [row["flagged"] for row in rows]
    # 0.01: above the highest of the 4 calibration normals; 0.9: above the lowest (ceil(5 x 0.1) = 1)
    assert point.calibration.threshold(0.01) == point.calibration.scores[-1]
    assert point.calibration.threshold(0.9) == point.calibration.scores[0]
    assert all(high or not low for low, high in zip(flags["0.01"], flags["0.9"]))
    assert sum(flags["0.9"]) > sum(flags["0.01"])  # the calibration normals between the two are flagged at 0.9


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
