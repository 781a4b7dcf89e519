"""The tables report the paper's two-level "mean ± std over runs", flag unequal seed sets, and write
CSVs, a Markdown page and ROC plots that read back."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.metrics import roc_auc_score

from training import tables

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(method, cls, seed, auc, dataset="mnist", protocol="9v1", seconds=60.0, **extra):
    return {"dataset": dataset, "protocol": protocol, "cls": cls, "method": method, "seed": seed, "auc": auc,
            "seconds": seconds, **extra}


def _class_rows():
    # ganad: class 0 over seeds 0.9, 0.8; class 1 over seeds 0.5, 0.7.
    return [_run("ganad", 0, 0, 0.9, seconds=10), _run("ganad", 0, 1, 0.8, seconds=20),
            _run("ganad", 1, 0, 0.5, seconds=30), _run("ganad", 1, 1, 0.7, seconds=40),
            # knn: class 1 lacks seed 1.
            _run("knn", 0, 0, 0.6), _run("knn", 0, 1, 0.8), _run("knn", 1, 0, 0.4),
            # pca: never ran class 1.
            _run("pca", 0, 0, 0.7)]


def test_class_protocol_is_mean_of_class_means_with_std_of_seed_means() -> None:
    ganad, knn, pca = tables.summarise(_class_rows())
    assert (ganad["dataset"], ganad["protocol"], ganad["method"]) == ("mnist", "9v1", "ganad")
    assert ganad["auc_mean_0"] == pytest.approx(0.85) and ganad["auc_std_0"] == pytest.approx(0.05)
    assert ganad["auc_mean_1"] == pytest.approx(0.6) and ganad["auc_std_1"] == pytest.approx(0.1)
    assert ganad["auc_mean"] == pytest.approx((0.85 + 0.6) / 2)
    # Seed means 0.7 and 0.75: std 0.025, not the mean of class stds (0.075) nor the std of class means (0.125).
    assert ganad["auc_std"] == pytest.approx(0.025)
    assert (ganad["n_seeds"], ganad["n_classes"], ganad["seconds"], ganad["incomplete"]) == (2, 2, 100.0, False)
    assert ganad["n_seeds_0"] == ganad["n_seeds_1"] == 2
    # knn: class means 0.7 and 0.4; the std is over seed 0 alone, the only seed that ran every class.
    assert knn["auc_mean"] == pytest.approx(0.55) and knn["auc_std"] == pytest.approx(0.0)
    assert (knn["n_seeds_0"], knn["n_seeds_1"], knn["incomplete"]) == (2, 1, True)
    assert pca["incomplete"] and pca["n_classes"] == 1 and "auc_mean_1" not in pca


def test_protocol_without_classes_is_plain_seed_mean_and_population_std() -> None:
    rows = [_run("ganad", None, seed, auc, dataset="synthetic", protocol="paper")
            for seed, auc in enumerate([0.9, 0.95, 1.0])]
    (ganad,) = tables.summarise(rows)
    assert ganad["auc_mean"] == pytest.approx(0.95)
    assert ganad["auc_std"] == pytest.approx(math.sqrt(2 * 0.05 ** 2 / 3))  # ddof=0
    assert (ganad["n_seeds"], ganad["n_classes"], ganad["incomplete"]) == (3, 0, False)
    assert not any(key.startswith("auc_mean_") for key in ganad)
    alad = tables.summarise([*rows, _run("alad", None, 0, 0.99, dataset="synthetic", protocol="paper")])[1]
    assert alad["incomplete"]  # one seed where the others have three


def test_methods_keep_first_seen_order_and_duplicates_are_refused() -> None:
    rows = [_run("pca", None, 0, 0.7, dataset="s", protocol="paper"),
            _run("ganad β=0", None, 0, 0.8, dataset="s", protocol="paper"),
            _run("ganad β=0", None, 0, 0.9, dataset="t", protocol="paper"),
            _run("pca", None, 0, 0.6, dataset="t", protocol="paper")]
    assert [(s["dataset"], s["method"]) for s in tables.summarise(rows)] == [
        ("s", "pca"), ("s", "ganad β=0"), ("t", "pca"), ("t", "ganad β=0")]
    with pytest.raises(ValueError, match="two result rows"):
        tables.summarise([*rows, rows[0]])


def _scored(method, cls, seed, shift, rng, **kwargs):
    labels = np.repeat([0, 1], 40)
    scores = rng.normal(size=80) + shift * labels
    return _run(method, cls, seed, float(roc_auc_score(labels, scores)), scores=scores.tolist(),
                labels=labels.tolist(), **kwargs)


def test_write_tables_writes_csvs_markdown_and_readable_roc_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [_scored(method, cls, seed, shift, rng, epochs=5, history=[1.0, 0.5])
            for method, shift in [("ganad", 3.0), ("pca", 1.0)] for cls in (0, 1) for seed in (0, 1)]
    rows += [_run("ganad", None, seed, auc, dataset="synthetic", protocol="paper", seconds=90)
             for seed, auc in enumerate([0.96, 0.98, 0.99])]
    rows += [_run("pca", None, 0, 0.7, dataset="synthetic", protocol="paper")]
    command = "python training/protocols.py --seeds 0 1 --out results/run"
    out = tmp_path / "new" / "tables"
    paths = tables.write_tables(rows, out, "GAN methods vs anchors", command)

    assert set(paths) == {"results", "summary", "markdown", "roc_mnist_9v1_0", "roc_mnist_9v1_1"}
    with paths["results"].open(newline="") as handle:
        reader = csv.DictReader(handle)
        results = list(reader)
    assert reader.fieldnames == ["dataset", "protocol", "cls", "method", "seed", "auc", "seconds", "epochs"]
    assert len(results) == len(rows) and results[-1]["cls"] == "" and results[0]["epochs"] == "5"
    with paths["summary"].open(newline="") as handle:
        reader = csv.DictReader(handle)
        summary = list(reader)
    assert reader.fieldnames[:12] == tables.SUMMARY_COLUMNS and "auc_mean_1" in reader.fieldnames
    assert [(s["dataset"], s["method"]) for s in summary] == [
        ("mnist", "ganad"), ("mnist", "pca"), ("synthetic", "ganad"), ("synthetic", "pca")]

    text = paths["markdown"].read_text(encoding="utf-8")
    assert f"```\n{command}\n```" in text and "# GAN methods vs anchors" in text and " UTC" in text
    synthetic = [s for s in tables.summarise(rows) if s["dataset"] == "synthetic"][0]
    best = f"{100 * synthetic['auc_mean']:.1f} ± {100 * synthetic['auc_std']:.1f}"
    assert best == "97.7 ± 1.2" and f"| ganad | **{best}** | **96.0** | — | — |" in text  # worst run; no sensitivities
    assert "| pca | 70.0 ± 0.0 † |" in text  # one seed beside two
    assert "| Method | 0 | 1 | mean |" in text
    assert "Wall time: ganad 4.0 min, 2 seeds; pca 4.0 min, 2 seeds." in text
    assert "ganad 4.5 min, 3 seeds; pca 1.0 min, 1 seed." in text
    assert text.count(tables.INCOMPLETE) == 2  # the synthetic pca cell and the footnote

    for name in ("roc_mnist_9v1_0", "roc_mnist_9v1_1"):
        assert paths[name] == out / f"{name}.png"
        assert paths[name].read_bytes()[:8] == PNG_SIGNATURE
        image = imread(paths[name])
        assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0


def test_nan_auc_reads_n_a_and_incomplete_is_footnoted(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [_scored("ganad", None, 0, 2.0, rng, dataset="all-idb2", protocol="paper"),
            _run("pca", None, 0, math.nan, dataset="all-idb2", protocol="paper", scores=[0.1, 0.2], labels=[0, 0]),
            _run("knn", 0, 0, 0.8), _run("knn", 1, 0, 0.6), _run("knn", 1, 1, 0.7)]
    paths = tables.write_tables(rows, tmp_path, "Edge cases", "make tables")
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "| pca | n/a |" in text
    # knn: class 1 ran seeds 0 and 1, class 0 only seed 0.
    assert f"| knn | **72.5 ± 0.0** {tables.INCOMPLETE} |" in text
    assert f"| knn | **80.0** {tables.INCOMPLETE} | **65.0** | **72.5** {tables.INCOMPLETE} |" in text
    assert tables.FOOTNOTE in text
    assert "roc_all-idb2_paper" in paths and "roc_mnist_9v1_0" not in paths  # pca's one-class run has no curve
    assert paths["roc_all-idb2_paper"].read_bytes()[:8] == PNG_SIGNATURE


def test_an_incomplete_entry_is_never_the_bold_best(tmp_path: Path) -> None:
    rows = [_run("pca", None, seed, 0.8, dataset="synthetic", protocol="paper") for seed in (0, 1, 2)]
    rows.append(_run("ganad", None, 0, 0.99, dataset="synthetic", protocol="paper"))
    text = tables.write_tables(rows, tmp_path, "t", "cmd")["markdown"].read_text(encoding="utf-8")
    assert "| pca | **80.0 ± 0.0** |" in text and f"| ganad | 99.0 ± 0.0 {tables.INCOMPLETE} |" in text


def test_the_worst_run_and_the_sensitivities_at_high_specificity_are_summarised() -> None:
    rows = [_run("ganad", None, seed, auc, dataset="synthetic", protocol="normal", sens_at_95_spec=s95,
                 sens_at_99_spec=s99) for seed, (auc, s95, s99) in enumerate([(0.96, 0.8, 0.5), (0.90, 0.6, 0.3)])]
    rows.append(_run("pca", None, 0, 0.8, dataset="synthetic", protocol="normal"))
    ganad, pca = tables.summarise(rows)
    assert ganad["auc_min"] == 0.90 and ganad["sens_at_95_spec"] == pytest.approx(0.7)
    assert ganad["sens_at_99_spec"] == pytest.approx(0.4)
    assert pca["auc_min"] == 0.8 and pca["sens_at_95_spec"] is None
