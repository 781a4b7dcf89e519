"""The experiments' entry point: recipes, the capped test set, and a whole --quick protocol run
that writes runs, tables and ROC plots and resumes instead of repeating finished runs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import run
from training.protocols import Split

TRAINING = Path(__file__).resolve().parents[2] / "training"


def test_recipes_apply_their_quick_section_and_refuse_unknown_settings(tmp_path) -> None:
    full, quick = run.load_recipe("mnist", quick=False), run.load_recipe("mnist", quick=True)
    assert full["seeds"] == [0, 1, 2] and quick["seeds"] == [0]
    assert full["train"]["steps"] > quick["train"]["steps"] and quick["classes"] == [0, 1]
    for name in ("synthetic", "all-idb2", "mnist", "cifar10", "svhn"):
        recipe = run.load_recipe(name, quick=True)
        assert set(recipe["methods"]) == {"ganad", "anogan", "efficient-gan", "alad", "pca", "knn", "ocsvm", "iforest"}
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "mnist"\n[train]\nstep = 3\n')
    with pytest.raises(SystemExit, match="unknown training settings"):
        run.load_recipe(str(bad), quick=False)
    with pytest.raises(SystemExit, match="no recipe"):
        run.load_recipe("imagenet", quick=False)


def test_the_test_cap_keeps_half_of_each_class_and_is_the_same_for_every_method() -> None:
    labels = np.array([0] * 30 + [1] * 300)
    images = [np.full((2, 2, 3), i, dtype=np.float32) for i in range(len(labels))]
    split = Split("fake", [], [], np.array([]), images, labels, 2, 3)
    capped = run.cap_test(split, 100, seed=0)
    assert len(capped.test) == 100 and (capped.test_labels == 0).sum() == 30  # all 30 normals, 70 anomalies
    assert all(labels[int(image[0, 0, 0])] == label for image, label in zip(capped.test, capped.test_labels))
    again = run.cap_test(split, 100, seed=0)
    assert [int(i[0, 0, 0]) for i in again.test] == [int(i[0, 0, 0]) for i in capped.test]
    assert run.cap_test(split, 1000, seed=0) is split


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAINING / "run.py"), *args], capture_output=True, text=True,
                          timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_a_quick_run_writes_runs_tables_and_plots_and_resumes(tmp_path) -> None:
    out = tmp_path / "out"
    args = ("mnist", "--quick", "--methods", "ganad", "pca", "--protocols", "9v1", "--classes", "1", "--threads", "1",
            "--out", str(out))
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    methods = [row["method"] for row in rows]
    assert methods.count("pca") == 1
    assert {"ganad", "ganad β=0", "ganad raw", "ganad λ=0", "ganad λ=1", "ganad sgan"} <= set(methods)
    for row in rows:
        assert row["dataset"] == "mnist" and row["cls"] == 1 and row["seed"] == 0
        assert len(row["scores"]) == len(row["labels"]) <= 64 and 0.0 <= row["auc"] <= 1.0
    assert next(r for r in rows if r["method"] == "pca" and r["protocol"] == "9v1")["auc"] > 0.9  # a "1" is easy
    with open(out / "results.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    summary = (out / "summary.md").read_text()
    assert "python training/run.py mnist --quick --threads 1" in summary and "## mnist, protocol 9v1" in summary
    assert (out / "roc_mnist_9v1_1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = _run(*args)
    assert again.returncode == 0, again.stderr
    assert len((out / "runs.jsonl").read_text().splitlines()) == len(rows)  # nothing ran twice
    assert "AUC" not in again.stdout.replace("wrote", "")


def test_a_missing_dataset_folder_is_named(tmp_path) -> None:
    done = _run("cifar10", "--quick", "--methods", "pca", "--data-dir", str(tmp_path / "nowhere"), "--out",
                str(tmp_path / "out"))
    assert done.returncode != 0 and "nowhere" in done.stderr


def test_tables_list_our_model_and_its_variants_then_the_baselines_then_the_anchors() -> None:
    runs = ["pca", "anogan", "ganad", "iforest", "ganad λ=0", "alad", "ganad sgan"]
    expected = ["ganad", "ganad λ=0", "ganad sgan", "anogan", "alad", "pca", "iforest"]
    assert sorted(runs, key=run._method_rank) == expected


def test_a_normal_only_run_chooses_on_pseudo_anomalies_and_keeps_its_own_weights_beside(tmp_path) -> None:
    out = tmp_path / "out"
    done = _run("mnist-normal", "--quick", "--methods", "ganad", "--classes", "1", "--threads", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {row["method"]: row for row in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}
    assert set(rows) == {"ganad", "ganad own λ β"}  # on every run that chose λ and β, whatever it chose
    chosen, own = rows["ganad"], rows["ganad own λ β"]
    assert chosen["protocol"] == "normal" and chosen["choice"] == "pseudo-anomaly auc"
    assert (own["lam"], own["beta"]) == (0.8, 1.0) and own["best_step"] == chosen["best_step"]
    assert own["labels"] == chosen["labels"]
    for row in rows.values():
        assert 0.0 <= row["sens_at_95_spec"] <= 1.0 and 0.0 <= row["sens_at_99_spec"] <= row["sens_at_95_spec"]
